"""An outbox notice as an email: who it is for (by role), its Message-ID, and its text and HTML
parts, written from the templates beside this module."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2

from domain.contacts import ContactRole
from domain.councils import Council
from domain.vocabulary import DeadlineName
from eventstore.deliveries import OutboxNotice
from notices.settings import MailSettings

_LOADER = jinja2.FileSystemLoader(Path(__file__).parent / "templates")
_TEXT = jinja2.Environment(loader=_LOADER, autoescape=False, undefined=jinja2.StrictUndefined,
                           trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
"""The wording and the plain-text part: nothing escaped."""
_HTML = jinja2.Environment(loader=_LOADER, autoescape=True, undefined=jinja2.StrictUndefined,
                           trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
"""The HTML part: everything escaped. The wording is rendered as text first and given to it
as plain strings (a macro imported into an escaping template would come back unescaped)."""
_GSS = re.compile(r"[EKNSW][0-9]{8}")
_LEGACY = (
    (re.compile(r"^council contact"), ContactRole.COUNCIL_CONTACT),
    (re.compile(r"^chief executive"), ContactRole.CHIEF_EXECUTIVE),
    (re.compile(r"^(LGA principal adviser|case officer)"), ContactRole.PRINCIPAL_ADVISER),
    (re.compile(r"^improvement board"), ContactRole.IMPROVEMENT_BOARD),
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Addressed:
    """A notice's recipient as the relay looks them up: a role, for a council."""

    role: ContactRole
    council: str | None
    kind: str
    facts: dict[str, str]


def addressed(notice: OutboxNotice) -> Addressed:
    """Who the notice is for. Rows written before notices were structured carry only a
    phrase ("chief executive of E08000025", "case officer for …"), read here as the role
    that receives such notices now; the council is the one in the case id."""
    data = notice.notice or {}
    council = data.get("council")
    if not isinstance(council, str):
        found = _GSS.search(notice.case_id) or _GSS.search(notice.recipient)
        council = found.group(0) if found else None
    facts = {str(k): str(v) for k, v in (data.get("facts") or {}).items()}
    try:
        role = ContactRole(data.get("recipient", notice.recipient))
    except ValueError:
        role = next((r for pattern, r in _LEGACY if pattern.match(notice.recipient)),
                    ContactRole.PRINCIPAL_ADVISER)
    return Addressed(role=role, council=council, kind=str(data.get("kind", "")), facts=facts)


def message_id(notice: OutboxNotice, domain: str, variant: str = "") -> str:
    """The notice's own Message-ID: the same for every attempt, so an inbox that honours it
    shows a resend once. From the event and the recipient role, which identify the notice."""
    digest = hashlib.sha256(f"{notice.event_id}\x00{notice.recipient}".encode()).hexdigest()
    return f"<notice.{digest[:32]}{'.' + variant if variant else ''}@{domain}>"


@dataclass(frozen=True)
class Email:
    """One email, ready to send: its Message-ID, its recipients and its bytes."""

    message_id: str
    to: list[str]
    raw: bytes


def compose(notice: OutboxNotice, to: list[str], settings: MailSettings,
            council: Council | None, *, undeliverable: str | None = None) -> Email:
    """The email for `notice`, to `to`; `undeliverable` says why it goes to someone other
    than its recipient (then with a Message-ID of its own). Its headers and parts are
    written out directly: the standard library's email classes cost the relay most of its
    time per notice, which at a thousand lapses a minute is what matters.
    Every value is ASCII by construction (addresses checked at import, control characters
    out of the subject, bodies in base64)."""
    who = addressed(notice)
    context = _context(notice, who, settings, council, undeliverable)
    wording = _TEXT.get_template("_wording.j2").make_module({"n": context})
    context["happened"] = str(wording.happened(context)).strip()  # type: ignore[attr-defined]
    context["expected"] = str(wording.expected(context)).strip()  # type: ignore[attr-defined]
    subject = notice.subject if undeliverable is None else f"Undeliverable: {notice.subject}"
    identity = message_id(notice, settings.message_id_domain,
                          "undeliverable" if undeliverable else "")
    headers = [("From", settings.sender), ("To", ", ".join(to)),
               ("Subject", _encoded_word(_CONTROL.sub(" ", subject)[:250])),
               ("Date", format_datetime(notice.created_at)), ("Message-ID", identity),
               ("Auto-Submitted", "auto-generated"), ("MIME-Version", "1.0")]
    boundary = f"=_{identity.strip('<>').split('@')[0]}"  # "=_" never occurs in base64
    text = _TEXT.get_template("notice.txt.j2").render(n=context)
    html = _HTML.get_template("notice.html.j2").render(n=context)
    lines = [f"{name}: {value}" for name, value in headers]
    lines += [f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
    for subtype, body in (("plain", text), ("html", html)):
        lines += [f"--{boundary}", f'Content-Type: text/{subtype}; charset="utf-8"',
                  "Content-Transfer-Encoding: base64", "", *_base64_lines(body)]
    lines += [f"--{boundary}--", ""]
    return Email(message_id=identity, to=list(to), raw="\r\n".join(lines).encode("ascii"))


def _encoded_word(text: str) -> str:
    """A header value as it may travel: itself if plain ASCII, else RFC 2047 encoded words
    of at most 75 characters each, folded onto lines of their own."""
    if text.isascii():
        return text
    words, chunk = [], ""
    for character in text:
        if len((chunk + character).encode()) > 45:  # 45 bytes: 60 in base64, 72 a word
            words.append(chunk)
            chunk = ""
        chunk += character
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode('ascii')}?="
                         for w in words)


def _base64_lines(body: str) -> list[str]:
    encoded = base64.b64encode(body.encode("utf-8")).decode("ascii")
    return [encoded[i:i + 76] for i in range(0, len(encoded), 76)]


def _context(notice: OutboxNotice, who: Addressed, settings: MailSettings,
             council: Council | None, undeliverable: str | None) -> dict[str, Any]:
    deadline = who.facts.get("deadline")
    label = DeadlineName(deadline).label if deadline in set(DeadlineName) else deadline
    return {
        "subject": notice.subject, "body": notice.body, "kind": who.kind,
        "recipient": who.role.value, "recipient_label": who.role.label,
        "case_id": notice.case_id,
        "council_code": who.council or "unknown",
        "council_name": council.name if council else (who.council or "the council"),
        "deadline": deadline or "", "deadline_label": label or "",
        "due_on": _when(who.facts.get("due_at")), "level": who.facts.get("level", ""),
        "sent_on": who.facts.get("sent_on", ""),
        "case_url": f"{settings.public_url}/cases/{notice.case_id}" if settings.public_url
                    else None,
        "undeliverable": undeliverable, "notice_ref": f"{notice.event_id}/{who.role.value}",
    }


def _when(raw: str | None) -> str:
    if not raw:
        return ""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return f"{at:%-d %B %Y}, {at:%H:%M} UTC"
