"""How the relay reaches the mail server, from the environment. A setting that cannot be read
stops the worker at start with one line naming the variable; a secret is never shown."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SMTP_URL = "CASES_SMTP_URL"
_ADDRESS = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class MailSettingsError(ValueError):
    """A mail setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    implicit_tls: bool
    """`smtps://`: TLS from the first byte (port 465 by default)."""
    start_tls: bool | None
    """Upgrade with STARTTLS: True required, False never, None when the server offers it."""
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    """Certificates to trust for the server's (CASES_SMTP_CA_FILE), instead of the system's: a
    relay inside an organisation often has its own certificate authority."""
    public_url: str | None = None
    """Where the case pages are (CASES_PUBLIC_URL): each email links to its case there."""
    admin_emails: tuple[str, ...] = ()
    """Who is told of a notice nobody else could be told of, when a region has no adviser."""

    @property
    def server(self) -> str:
        """The server as logs and messages may show it (no credentials)."""
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"

    @property
    def message_id_domain(self) -> str:
        return self.sender.rsplit("@", 1)[1]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> MailSettings | None:
        """The settings, or None when CASES_SMTP_URL is not set (notices then wait)."""
        env = os.environ if environ is None else environ
        raw = env.get(SMTP_URL, "").strip()
        if not raw:
            return None
        host, port, implicit_tls = _parse_smtp_url(raw)
        sender = env.get("CASES_MAIL_FROM", "").strip() or "improvement-cases@localhost.localdomain"
        if not _ADDRESS.match(sender):
            raise MailSettingsError(f"CASES_MAIL_FROM={sender!r}: expected an address such as "
                                    "cases@lga.example.org")
        return cls(host=host, port=port, implicit_tls=implicit_tls,
                   start_tls=_start_tls(env.get("CASES_SMTP_STARTTLS", "")),
                   sender=sender, username=env.get("CASES_SMTP_USERNAME") or None,
                   password=env.get("CASES_SMTP_PASSWORD") or None,
                   ca_file=_ca_file(env.get("CASES_SMTP_CA_FILE", "")),
                   public_url=_public_url(env.get("CASES_PUBLIC_URL", "")),
                   admin_emails=_addresses(env.get("CASES_ADMIN_EMAIL", "")))


def _parse_smtp_url(raw: str) -> tuple[str, int, bool]:
    def refuse(why: str) -> MailSettingsError:
        return MailSettingsError(f"{SMTP_URL} cannot be used: {why}; expected "
                                 "smtp://HOST:PORT or smtps://HOST:PORT")

    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise refuse("it is not a URL with a valid port") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise refuse(f"the scheme is {parts.scheme or 'missing'!r}")
    if parts.username is not None or parts.password is not None:
        raise refuse("it holds credentials (set CASES_SMTP_USERNAME and CASES_SMTP_PASSWORD "
                     "instead, so they are never shown)")
    if not parts.hostname:
        raise refuse("it names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise refuse("it has a path or query")
    implicit_tls = parts.scheme == "smtps"
    return parts.hostname, port or (465 if implicit_tls else 25), implicit_tls


def _ca_file(raw: str) -> str | None:
    path = raw.strip()
    if not path:
        return None
    if not os.path.isfile(path):
        raise MailSettingsError(f"CASES_SMTP_CA_FILE={raw!r}: no such file (expected PEM "
                                "certificates to trust for the mail server)")
    return path


def _start_tls(raw: str) -> bool | None:
    value = raw.strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise MailSettingsError(f"CASES_SMTP_STARTTLS={raw!r}: expected 1, 0 or auto")


def _public_url(raw: str) -> str | None:
    value = raw.strip().rstrip("/")
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
        raise MailSettingsError(f"CASES_PUBLIC_URL={raw!r}: expected the address of the case "
                                "pages, such as https://cases.lga.example.org")
    return value


def _addresses(raw: str) -> tuple[str, ...]:
    found = tuple(a.strip() for a in raw.split(",") if a.strip())
    for address in found:
        if not _ADDRESS.match(address):
            raise MailSettingsError(f"CASES_ADMIN_EMAIL: {address!r} is not an email address")
    return found
