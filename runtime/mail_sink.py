"""A local SMTP server that keeps what it is sent: developers (`cases dev --mail-sink`) and
tests see exactly what the engine mailed, over real SMTP.

It behaves like a deduplicating inbox: a message whose Message-ID it already holds is
answered `250` but not kept again, only counted, because the engine derives a notice's
Message-ID from the notice, so a resend after a crash must not show up as a second email.
Everything lives in one folder (0700): a `.eml` file per message (0600) and `index.jsonl`,
one JSON line per message kept or duplicate seen, appended, so `received()` and
`duplicates()` read it without the server and after a restart.

Fault switches (`refuse`, `temporary_failure`, `data_delay_seconds`) let a test make the
server bounce a recipient, defer every message, or hold its answer to DATA while a sender is
killed; they may be flipped while it runs.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = structlog.get_logger("mail-sink")

INDEX = "index.jsonl"
"""One JSON object a line: `{"kind": "message", …}` per message kept, `{"kind":
"duplicate", …}` per message not kept again because its Message-ID was already there."""

REFUSED = "550 5.1.1 mailbox unavailable"
DEFERRED = "451 4.3.0 try again later"


@dataclass(frozen=True)
class ReceivedMail:
    """A message the sink kept, as a test or `cases dev mail` looks at it."""

    message_id: str | None
    """The Message-ID header as sent (angle brackets kept); None if it had none."""
    sender: str
    """The envelope sender (MAIL FROM), not the From header."""
    recipients: tuple[str, ...]
    """The envelope recipients the sink accepted (a refused one is not among them)."""
    subject: str
    date: str | None
    """The Date header as sent."""
    text: str
    """The text/plain part ("" if there is none)."""
    html: str | None
    """The text/html part, if any."""
    received_at: datetime
    path: Path
    """The `.eml` file: the message byte for byte as it arrived."""


def received(folder: Path) -> list[ReceivedMail]:
    """The messages kept in `folder`, in the order they arrived; a `.eml` file deleted by hand
    is left out. Needs no running server."""
    kept = []
    for entry in _entries(folder):
        if entry.get("kind") != "message":
            continue
        name = str(entry.get("file", ""))
        if not name.endswith(".eml") or Path(name).name != name:
            continue  # an index line edited by hand: only files of the folder are read
        try:
            kept.append(_mail(entry, (folder / name).read_bytes(), folder / name))
        except FileNotFoundError:
            continue
        except (KeyError, TypeError, ValueError):  # an index line edited by hand
            continue
    return kept


def duplicates(folder: Path) -> int:
    """How many messages arrived with a Message-ID already kept (answered 250, not kept)."""
    return sum(1 for entry in _entries(folder) if entry.get("kind") == "duplicate")


class MailSink:
    """A real SMTP server on `host:port` (port 0: a free one), keeping mail in `folder`.

    It runs in a thread of its own (aiosmtpd's Controller), so it serves the same whether it
    is started from synchronous test code or from inside an asyncio loop such as `cases
    dev`'s; `start()` returns once it answers. Also a context manager."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = folder
        self.host = host
        self._port = port
        self.temporary_failure = False
        """True: every MAIL FROM is answered `451 4.3.0 try again later`."""
        self.data_delay_seconds = 0.0
        """Seconds to wait, after keeping a message, before answering its DATA (other
        connections are served meanwhile): a sender killed in that time has sent a message
        it never saw accepted, which is what makes it resend."""
        self._refused: frozenset[str] = frozenset()
        self._controller: _Controller | None = None

    def refuse(self, address: str) -> None:
        """Bounce `address` from now on: `550 5.1.1 mailbox unavailable` at RCPT TO."""
        self._refused = self._refused | {address.casefold()}

    def stop_refusing(self, address: str) -> None:
        self._refused = self._refused - {address.casefold()}

    def is_refused(self, address: str) -> bool:
        return address.casefold() in self._refused

    @property
    def port(self) -> int:
        """The port it listens on once started (the one chosen, when asked for port 0)."""
        return self._port

    @property
    def url(self) -> str:
        """`smtp://host:port`, what CASES_SMTP_URL is set to."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Listen and serve; OSError if the folder cannot be made private or the port is
        taken (nothing is left running then)."""
        if self._controller is not None:
            raise RuntimeError("the mail sink is already running")
        _private_folder(self.folder)
        inbox = _Inbox(self.folder, self)
        listening = _listen(self.host, self._port)
        controller = _Controller(inbox, listening)
        try:
            controller.start()
        except BaseException:
            listening.close()
            if not controller.loop.is_running() and not controller.loop.is_closed():
                controller.loop.close()
            raise
        self._port = listening.getsockname()[1]
        self._controller = controller
        log.info("mail sink listening", url=self.url, folder=str(self.folder))

    def stop(self) -> None:
        """Stop listening; a message in the middle of being sent is dropped unanswered."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def received(self) -> list[ReceivedMail]:
        return received(self.folder)

    def duplicates(self) -> int:
        return duplicates(self.folder)


class _Inbox:
    """aiosmtpd's handler: its hooks run on the server thread's loop, one at a time, so the
    Message-IDs seen and the file numbering need no lock."""

    def __init__(self, folder: Path, sink: MailSink) -> None:
        self.folder = folder
        self.sink = sink
        entries = list(_entries(folder))
        self.seen = {str(e["message_id"]) for e in entries
                     if e.get("kind") == "message" and e.get("message_id")}
        self.kept = sum(1 for e in entries if e.get("kind") == "message")

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        if self.sink.temporary_failure:
            return DEFERRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if self.sink.is_refused(address):
            return REFUSED
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            kept = self.keep(raw, envelope.mail_from or "", tuple(envelope.rcpt_tos))
        except OSError as error:
            log.warning("mail sink cannot keep a message", error=str(error))
            return "451 4.3.0 cannot keep the message now"
        delay = self.sink.data_delay_seconds
        if delay > 0:
            await asyncio.sleep(delay)
        return "250 2.0.0 kept" if kept else "250 2.0.0 already kept: duplicate not kept again"

    async def handle_exception(self, error: Exception) -> str:
        """Answer a failure in a hook as a temporary one, with no traceback in the log."""
        log.warning("mail sink failed on a command", error=f"{type(error).__name__}: {error}")
        return "451 4.3.0 the mail sink failed; try again later"

    def keep(self, raw: bytes, sender: str, recipients: tuple[str, ...]) -> bool:
        """Write the message and its index line; False (and only a count) if its Message-ID
        is already kept. The file is written first: an index line always has its file."""
        message_id = _message_id(raw)
        entry: dict[str, Any] = {"message_id": message_id, "sender": sender,
                                 "recipients": list(recipients),
                                 "received_at": datetime.now(UTC).isoformat()}
        if message_id is not None and message_id in self.seen:
            _append(self.folder / INDEX, {"kind": "duplicate", **entry})
            log.info("mail sink: duplicate not kept", message_id=_printable(message_id))
            return False
        key = message_id or f"generated-{secrets.token_hex(8)}"
        name = f"{self.kept + 1:06d}-{secrets.token_hex(4)}.eml"
        _write_private(self.folder / name, raw)
        _append(self.folder / INDEX, {"kind": "message", "key": key, "file": name, **entry})
        self.kept += 1
        if message_id is not None:
            self.seen.add(message_id)
        log.info("mail sink: kept", message_id=_printable(key),
                 to=_printable(", ".join(recipients)))
        return True


class _Controller(Controller):
    """aiosmtpd's threaded Controller on a socket we bound ourselves: the Controller alone
    cannot be asked for port 0 (it connects to the port it was given to check it serves)."""

    def __init__(self, handler: _Inbox, listening: socket.socket) -> None:
        host, port = listening.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, ready_timeout=10.0,
                         server_hostname="cases-mail-sink")
        self._listening = listening

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listening)


logging.getLogger("mail.log").setLevel(logging.WARNING)
"""aiosmtpd logs every connection and command at INFO: noise beside `cases dev`."""


def _listen(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family)


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _append(path: Path, entry: dict[str, Any]) -> None:
    """One write of one line, so a reader sees whole lines (or a torn last one it skips)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, (json.dumps(entry, sort_keys=True) + "\n").encode())
    finally:
        os.close(descriptor)


def _entries(folder: Path) -> Iterator[dict[str, Any]]:
    try:
        text = (folder / INDEX).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash mid-write
        if isinstance(entry, dict):
            yield entry


def _message_id(raw: bytes) -> str | None:
    """The first Message-ID header, unfolded; None if absent or blank."""
    value = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    if value is None:
        return None
    unfolded = " ".join(str(value).split())
    return unfolded or None


def _mail(entry: dict[str, Any], raw: bytes, path: Path) -> ReceivedMail:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    recipients = entry.get("recipients") or []
    return ReceivedMail(
        message_id=None if entry.get("message_id") is None else str(entry["message_id"]),
        sender=str(entry.get("sender", "")),
        recipients=tuple(str(r) for r in recipients),
        subject=_header(message, "Subject") or "",
        date=_header(message, "Date"),
        text=_part(message, "plain") or "",
        html=_part(message, "html"),
        received_at=datetime.fromisoformat(str(entry["received_at"])),
        path=path,
    )


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a header too malformed to parse: show it raw
        value = email.message_from_bytes(message.as_bytes()).get(name)
    return None if value is None else " ".join(str(value).split())  # unfolded, as shown


def _part(message: Message, subtype: str) -> str | None:
    """The text of the message's text/`subtype` body, decoded, with SMTP's CRLF line ends
    as Python's; None if it has none."""
    if not isinstance(message, EmailMessage):
        return None
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def _printable(text: str) -> str:
    """`text` for a log line: control characters written as escapes."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
