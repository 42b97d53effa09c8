"""Where the store lives: one setting, CASES_DATABASE_URL; and how such a URL is shown.

A URL may carry a password. Every message and log line shows it through `shown_url`, and any
text that may quote it (a driver's error) through `without_secrets`. Neither relies on
SQLAlchemy's parser: it cannot read every URL (`mysql://`, a bad port), and a password with an
unescaped `@` comes out of its `hide_password` half shown (`u:***@cret@host`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from urllib.parse import unquote

DEFAULT_DATABASE_URL = "sqlite:///cases.db"
HIDDEN = "***"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.DOTALL)
_SECRET_PARAMETER = re.compile(r"(pass|pwd|secret|token|key)", re.IGNORECASE)
_FRAGMENT = re.compile(r"[@:/?#]")
_SHORTEST_FRAGMENT = 4
"""Pieces of a password shorter than this are not hunted for in other text: they would blank
ordinary words (a driver that split `s3@cret` at its `@` names the host `cret@…`)."""
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*:)[^\s/]+@")
"""`scheme://user:password@` inside a longer text; the password up to the last `@`."""


def database_url() -> str:
    return os.environ.get("CASES_DATABASE_URL", DEFAULT_DATABASE_URL)


def normalise_url(url: str) -> str:
    """Plain `postgresql://` means psycopg 3 here, the only PostgreSQL driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme://, userinfo, host and the rest, query) of a URL or a bare `user:pass@host:port`
    address. The userinfo ends at the last `@`: a password may hold `@`, `:`, even `/`
    unescaped. An `@` in the query (rare in a database URL) then hides more than the password:
    shown too little, never a secret."""
    matched = _SCHEME.match(url)
    scheme, rest = (matched.group(1), matched.group(2)) if matched else ("", url)
    at = rest.rfind("@")
    userinfo, after = (rest[:at], rest[at + 1:]) if at >= 0 else ("", rest)
    host, _, query = after.partition("?")
    return scheme, userinfo, host, query


def _query_secrets(query: str) -> list[tuple[str, str]]:
    """(name, value) of each query parameter that names a secret (`password=`, `sslpassword=`,
    `api_key=`, …)."""
    pairs = [part.partition("=") for part in re.split(r"[&;]", query) if part]
    return [(name, value) for name, _, value in pairs if value and _SECRET_PARAMETER.search(name)]


def shown_url(url: str) -> str:
    """`url` as it may be printed or logged: its password, and the value of any query
    parameter that names a secret, replaced by `***`; the user, host, port, database and the
    rest kept, so a reader can tell which store was meant."""
    scheme, userinfo, host, query = _split(url)
    user, colon, _password = userinfo.partition(":")
    shown = scheme + (f"{user}{colon and ':' + HIDDEN}@" if userinfo else "") + host
    if query:
        hidden = dict(_query_secrets(query))
        shown += "?" + "&".join(
            f"{name}={HIDDEN}" if name in hidden else part
            for part in re.split(r"[&;]", query) if part
            for name in [part.partition("=")[0]])
    return shown


def secrets_in(url: str) -> list[str]:
    """What of `url` must never be shown: its password (as written and percent-decoded), the
    pieces of it between `@`, `:` and `/` (a parser that split it there shows them as a host or
    port), and secret query values. Longest first, so a piece is never blanked before its whole."""
    _scheme, userinfo, _host, query = _split(url)
    _user, colon, password = userinfo.partition(":")
    found = {password, unquote(password)} if colon else set()
    for whole in list(found):
        found.update(piece for piece in _FRAGMENT.split(whole)
                     if len(piece) >= _SHORTEST_FRAGMENT)
    for _name, value in _query_secrets(query):
        found.update({value, unquote(value)})
    return sorted((s for s in found if s), key=len, reverse=True)


def without_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret, and the password of every URL in it,
    replaced by `***`. A secret shorter than four characters is left to the second rule: hunted
    for alone it would blank ordinary words."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _SHORTEST_FRAGMENT:
            text = text.replace(secret, HIDDEN)
    return _URL_PASSWORD.sub(rf"\g<head>{HIDDEN}@", text)


def failure_said(failure: BaseException, url: str | None = None) -> str:
    """The first line of a failure's message, in the driver's own words when it wraps one, with
    the database URL's secrets taken out (default: CASES_DATABASE_URL's): what a log line or a
    one-line error may say, since a driver's error can quote the URL or a piece of its
    password it took for a host or a port."""
    said = str(getattr(failure, "orig", None) or failure).strip()
    first = said.splitlines()[0] if said else type(failure).__name__
    return without_secrets(first, secrets_in(database_url() if url is None else url))
