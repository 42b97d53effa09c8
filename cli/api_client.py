"""The `cases` actions as a client of the API: the same door every person acts through.

CASES_API_URL (default: the API `cases dev` serves) and CASES_TOKEN, or the credentials
`cases login` keeps in the user's config folder, readable only by them.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.paths import config_dir

if TYPE_CHECKING:
    import httpx

# httpx is imported by the call that uses it: on import it also loads its own command line's
# libraries (click, rich, pygments), a tenth of a second that an auditor's report never needs.
DEFAULT_API_URL = "http://127.0.0.1:8000"
TIMEOUT_SECONDS, CONNECT_SECONDS = 120.0, 5.0


class ApiRefused(Exception):
    """The API refused: the rules, the role table, bad input or no sign-in (exit 2)."""


class ApiUnavailable(Exception):
    """The API could not be reached or could not answer now (exit 1): try again."""


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def api_url() -> str:
    configured = os.environ.get("CASES_API_URL", "").strip()
    if configured:
        return configured.rstrip("/")
    saved = _saved()
    return str(saved.get("api_url") or DEFAULT_API_URL).rstrip("/")


def _saved() -> dict[str, Any]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_credentials(url: str, name: str, token: str) -> Path:
    """Keep the token for later commands, in a file only its owner can read."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"api_url": url, "name": name, "token": token}, file)
    temporary.replace(path)
    return path


def forget_credentials() -> bool:
    path = credentials_path()
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


def _token() -> str | None:
    return os.environ.get("CASES_TOKEN", "").strip() or _saved().get("token") or None


RETRY_WAITS = (1.0, 3.0)
"""Waits before the second and third sending of an action whose answer was lost or was 503:
safe, as each carries the invocation's Idempotency-Key."""


class ApiClient:
    def __init__(self, url: str | None = None, token: str | None = None,
                 idempotency_key: str | None = None) -> None:
        """`idempotency_key`: what this invocation's actions carry (a new one per invocation
        unless given), so that resending one after a lost answer records it once."""
        self.url = url or api_url()
        self.token = token if token is not None else _token()
        self.idempotency_key = idempotency_key or f"cli-{uuid.uuid4().hex}"

    def _call(self, method: str, path: str, *, signed_in: bool = True,
              idempotent: bool = False, headers_extra: dict[str, str] | None = None,
              **kwargs: Any) -> Any:
        import httpx

        headers = dict(headers_extra or {})
        if signed_in and self.token:  # without one, the API says how to sign in (401)
            headers["Authorization"] = f"Bearer {self.token}"
        if idempotent:
            headers["Idempotency-Key"] = self.idempotency_key
        waits = RETRY_WAITS if idempotent else ()
        for attempt in range(len(waits) + 1):
            last = attempt == len(waits)
            try:
                with httpx.Client(base_url=self.url, timeout=httpx.Timeout(
                        TIMEOUT_SECONDS, connect=CONNECT_SECONDS)) as http:
                    answer = http.request(method, path, headers=headers, **kwargs)
            except httpx.TimeoutException:
                if not last:
                    time.sleep(waits[attempt])
                    continue
                raise ApiUnavailable(self._lost(idempotent, "did not answer in time")) from None
            except httpx.ConnectError:
                raise ApiUnavailable(f"cannot reach the API at {self.url} (is `cases dev` or "
                                     "`cases serve` running? CASES_API_URL names it); nothing "
                                     "was recorded; try again") from None
            except httpx.HTTPError:
                if not last and idempotent:
                    time.sleep(waits[attempt])
                    continue
                raise ApiUnavailable(self._lost(idempotent, "dropped the connection")) from None
            if answer.status_code == 503 and not last:
                time.sleep(waits[attempt])
                continue
            return self._read(answer, idempotent)
        raise AssertionError("unreachable")

    def _lost(self, idempotent: bool, what: str) -> str:
        if idempotent:
            return (f"the API at {self.url} {what}, three times; nothing is recorded twice: "
                    f"run the same command with --idempotency-key {self.idempotency_key} to "
                    "get its answer, or to record it once")
        return f"the API at {self.url} {what}; nothing was recorded; try again"

    def _read(self, answer: httpx.Response, idempotent: bool) -> Any:
        if answer.status_code < 400:
            return answer.json() if answer.content else None
        detail = _detail(answer)
        if answer.status_code == 401:
            raise ApiRefused(f"{detail}; sign in with `cases login NAME` (or set CASES_TOKEN)")
        if answer.status_code == 503 and idempotent:
            raise ApiUnavailable(f"{detail} (run the same command with --idempotency-key "
                                 f"{self.idempotency_key}: it is recorded once)")
        if answer.status_code in (429,) or answer.status_code >= 500:
            raise ApiUnavailable(detail)
        raise ApiRefused(detail + _problems(answer))

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/api/whoami")
        return result

    def new_token(self, name: str, password: str, label: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "/api/tokens", signed_in=False,
            json={"name": name, "password": password, "label": label})
        return result

    def start(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/api/cases", json=body,
                                            idempotent=True)
        return result

    def act(self, case_id: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/cases/{_segment(case_id)}/actions",
                                            json=body, idempotent=True)
        return result

    def case(self, case_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/cases/{_segment(case_id)}")
        return result

    def notices(self, case_id: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET",
                                                  f"/api/cases/{_segment(case_id)}/notices")
        return result

    def import_history(self, data: bytes) -> dict[str, Any]:
        """Safe to resend: a file imported already changes nothing the second time."""
        result: dict[str, Any] = self._call("POST", "/api/imports/history", content=data,
                                            headers_extra={"Content-Type": "text/csv"},
                                            idempotent=True)
        return result

    def cases(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v not in (None, False)}
        result: list[dict[str, Any]] = self._call("GET", "/api/cases", params=params)
        return result


_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _segment(case_id: str) -> str:
    """A case id, which is always one plain path segment; anything else is refused here."""
    if not _CASE_ID.match(case_id):
        raise ApiRefused(f"no case {case_id!r}: a case id looks like cpc-E06000001-2026")
    return case_id


def _problems(answer: httpx.Response) -> str:
    """Every problem a refusal listed (an import's rows), one indented line each."""
    try:
        listed = answer.json().get("problems")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(listed, list):
        return ""
    return "".join(f"\n  {problem}" for problem in listed)


def _detail(answer: httpx.Response) -> str:
    try:
        detail = answer.json().get("detail")
    except ValueError:
        detail = None
    return str(detail) if detail else f"the API answered {answer.status_code}"
