"""The relay: drains the outbox, emailing each notice to the people who hold its recipient's
role in the contacts in force, and records what became of it.

Why a relay and not an activity: a notice is written to the outbox in the same transaction
as the event that causes it, so it exists if and only if its event does, whatever happens to
the worker after; the relay then only has to get it out. While the mail server is down the
relay waits with backoff, logging once per step rather than once per notice, and nothing is
lost: the notices stay due. A notice with nobody to send it to (no contact for the role, or
every address refused) is undeliverable: it goes to the region's LGA principal adviser, or
to the admins (CASES_ADMIN_EMAIL) when there is none, and is shown as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosmtplib
import structlog

from domain.contacts import NATIONAL_SCOPE, ContactBook, ContactRole, lga_scope
from domain.councils import Council
from eventstore.contacts import contact_book, version_in_force
from eventstore.councils import known_councils
from eventstore.deliveries import (
    ClaimedNotice,
    Outcome,
    claim_due,
    record_outcomes,
    release,
    waiting_count,
)
from eventstore.store import EventStore
from notices.compose import Addressed, Email, addressed, compose, message_id
from notices.settings import MailSettings
from runtime.telemetry import engine_metrics

log = structlog.get_logger("relay")

RECORD_EVERY = 25
"""Outcomes recorded together, in one transaction: a relay killed mid-run sends at most these
again, under the same Message-IDs (which an inbox that honours them shows once)."""

BACKOFF_STEPS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds between tries while the mail server cannot be reached: minutes of outage cost a
few log lines, and the notices go within 30 s of its return."""


class MailServerUnavailable(Exception):
    """The server could not be reached or answered 4xx: try the notice again later."""


@dataclass(frozen=True)
class Targets:
    """Who one notice goes to, and whether they are its recipient or stand in for them."""

    to: list[str]
    undeliverable: str | None = None
    """Why the recipient cannot be told (then `to` stands in for them), or None."""


def targets_for(who: Addressed, book: ContactBook, council: Council | None,
                admins: tuple[str, ...]) -> Targets:
    """The recipient's addresses; else, with the reason, those who stand in: the region's
    LGA principal adviser, or the admins."""
    found = _holders(book, who.role, who.council, council)
    if found:
        return Targets(to=found)
    why = f"no contact for the {who.role.label} of {_scope_name(who, council)}"
    return Targets(to=stand_ins(who, book, council, admins), undeliverable=why)


def stand_ins(who: Addressed, book: ContactBook, council: Council | None,
              admins: tuple[str, ...]) -> list[str]:
    if who.role != ContactRole.PRINCIPAL_ADVISER:
        adviser = _holders(book, ContactRole.PRINCIPAL_ADVISER, who.council, council)
        if adviser:
            return adviser
    return list(admins)


def _holders(book: ContactBook, role: ContactRole, gss: str | None,
             council: Council | None) -> list[str]:
    if not role.of_the_lga:
        return [c.email for c in book.find(gss, role)] if gss else []
    region = council.region if council else None
    for scope in ([lga_scope(region)] if region else []) + [NATIONAL_SCOPE]:
        found = [c.email for c in book.find(scope, role)]
        if found:
            return found
    return []


def _scope_name(who: Addressed, council: Council | None) -> str:
    if who.role.of_the_lga:
        region = council.region if council else None
        return f"the region {region}" if region else "any region"
    return council.name if council else (who.council or "the council")


class Relay:
    """One relay; several (one per worker) share the outbox safely through claims."""

    def __init__(self, store: EventStore, settings: MailSettings, *,
                 name: str | None = None, batch: int = 200,
                 lease: timedelta = timedelta(minutes=2), poll_seconds: float = 0.25,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._backoff = 0
        self._councils: dict[str, Council] = {}
        self._book: ContactBook | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping` is set; a failure of the store or the server is a wait,
        never the end of the relay."""
        log.info("relay starting", server=self.settings.server)
        while not stopping.is_set():
            try:
                delivered = await self.deliver_due()
            except MailServerUnavailable as down:
                delay = self._next_backoff()
                log.warning("mail server unavailable; notices wait", server=self.settings.server,
                            error=str(down), retry_in_s=delay,
                            notices_waiting=await self._waiting())
                await _sleep_unless(stopping, delay)
                continue
            except Exception as failure:  # the store down, say: wait and try again
                delay = self._next_backoff()
                log.warning("relay could not finish a round; notices wait",
                            error=_said(failure), retry_in_s=delay)
                await _sleep_unless(stopping, delay)
                continue
            if self._backoff:
                log.info("relay delivering again", server=self.settings.server)
                self._backoff = 0
            if not delivered:
                await _sleep_unless(stopping, self.poll_seconds)
        log.info("relay stopped")

    async def _waiting(self) -> int | None:
        try:
            return await asyncio.to_thread(waiting_count, self.store)
        except Exception:  # the store is down too: the count is not worth a second failure
            return None

    def _next_backoff(self) -> float:
        delay = BACKOFF_STEPS[min(self._backoff, len(BACKOFF_STEPS) - 1)]
        self._backoff += 1
        return delay

    async def deliver_due(self) -> int:
        """One round: claim what is due, send it, record each outcome. Returns how many
        notices were claimed (0: nothing was due). Raises MailServerUnavailable, having
        handed back what it could not send, when the server cannot be reached."""
        now = self.clock()
        claimed = await asyncio.to_thread(claim_due, self.store, now=now, lease=self.lease,
                                          relay=self.name, limit=self.batch)
        if not claimed:
            return 0
        book = await self._contacts()
        await self._know_councils(claimed)
        remaining = list(claimed)
        done: list[tuple[ClaimedNotice, Outcome]] = []
        try:
            async with self._connection() as smtp:
                while remaining:
                    try:
                        outcome = await self._deliver(smtp, remaining[0], book)
                    except (MailServerUnavailable, asyncio.CancelledError):
                        raise
                    except Exception as broken:  # this notice only: the rest still go
                        log.error("notice cannot be written", case_id=remaining[0].notice.case_id,
                                  notice=remaining[0].notice.id, error=_said(broken))
                        outcome = Outcome(status="failed", problem="the notice could not be "
                                          f"written as an email: {_said(broken)}")
                    done.append((remaining.pop(0), outcome))
                    if len(done) >= RECORD_EVERY:
                        await self._record(done)
        except MailServerUnavailable as down:
            await self._record(done)
            retry_at = self.clock() + timedelta(seconds=BACKOFF_STEPS[
                min(self._backoff, len(BACKOFF_STEPS) - 1)])
            await asyncio.to_thread(release, self.store, remaining, retry_at=retry_at,
                                    relay=self.name, problem=f"mail server: {down}")
            raise
        await self._record(done)
        return len(claimed)

    async def _record(self, done: list[tuple[ClaimedNotice, Outcome]]) -> None:
        """Record what was sent so far, and say so, one line a notice."""
        if not done:
            return
        await asyncio.to_thread(record_outcomes, self.store, list(done), now=self.clock(),
                                relay=self.name)
        metrics = engine_metrics()
        for claimed, outcome in done:
            metrics.notice_outcome(outcome.status)
            log.info("notice delivered", case_id=claimed.notice.case_id,
                     recipient=claimed.notice.recipient, status=outcome.status,
                     message_id=outcome.message_id, attempt=claimed.attempts + 1)
        done.clear()

    async def _contacts(self) -> ContactBook:
        """The contacts in force, read again only when an import has replaced them."""
        version = await asyncio.to_thread(version_in_force, self.store)
        if self._book is None or self._book.version != version:
            self._book = await asyncio.to_thread(contact_book, self.store)
        return self._book

    async def _know_councils(self, claimed: list[ClaimedNotice]) -> None:
        wanted = {addressed(c.notice).council for c in claimed} - set(self._councils)
        if wanted - {None}:
            self._councils = await asyncio.to_thread(known_councils, self.store)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        s = self.settings
        smtp = aiosmtplib.SMTP(hostname=s.host, port=s.port, use_tls=s.implicit_tls,
                               start_tls=s.start_tls, timeout=30, cert_bundle=s.ca_file)
        try:
            await smtp.connect()
            if s.username and s.password:
                await smtp.login(s.username, s.password)
        except (TimeoutError, OSError, aiosmtplib.SMTPException) as failure:
            raise MailServerUnavailable(_said(failure)) from None
        try:
            yield smtp
        finally:
            with contextlib.suppress(Exception):
                await smtp.quit()

    async def _deliver(self, smtp: aiosmtplib.SMTP, claimed: ClaimedNotice,
                       book: ContactBook) -> Outcome:
        notice = claimed.notice
        who = addressed(notice)
        council = self._councils.get(who.council or "")
        admins = self.settings.admin_emails
        targets = targets_for(who, book, council, admins)
        if targets.undeliverable is None:
            sent = await self._send(smtp, compose(notice, targets.to, self.settings, council))
            if sent.status != "refused":
                return sent.outcome(book.version)
            targets = Targets(to=stand_ins(who, book, council, admins),
                              undeliverable=f"the server refused every address of the "
                                            f"{who.role.label}: {sent.answer}")
        log.warning("notice undeliverable", case_id=notice.case_id, recipient=who.role.value,
                    why=targets.undeliverable, stand_ins=len(targets.to))
        if not targets.to:
            return Outcome(status="failed", contacts_version=book.version,
                           message_id=message_id(notice, self.settings.message_id_domain),
                           problem=f"{targets.undeliverable}, and nobody to stand in (no LGA "
                                   "principal adviser for the region; set CASES_ADMIN_EMAIL)")
        message = compose(notice, targets.to, self.settings, council,
                          undeliverable=targets.undeliverable)
        sent = await self._send(smtp, message)
        if sent.status == "refused":
            return Outcome(status="failed", contacts_version=book.version,
                           message_id=message.message_id,
                           problem=f"{targets.undeliverable}; its stand-ins were refused too: "
                                   f"{sent.answer}")
        return Outcome(status="undeliverable", message_id=message.message_id,
                       sent_to=sent.accepted, answer=sent.answer,
                       problem=targets.undeliverable, contacts_version=book.version)

    async def _send(self, smtp: aiosmtplib.SMTP, mail: Email) -> _Sent:
        message_id_, to = mail.message_id, mail.to
        try:
            refused, answer = await smtp.sendmail(self.settings.sender, to, mail.raw)
        except aiosmtplib.SMTPRecipientsRefused as every:
            codes = [r.code for r in every.recipients]
            said = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in every.recipients)
            if any(400 <= c < 500 for c in codes):
                raise MailServerUnavailable(said) from None
            with contextlib.suppress(Exception):
                await smtp.rset()
            return _Sent("refused", message_id_, [], said)
        except aiosmtplib.SMTPResponseException as answered:
            if 400 <= answered.code < 500:
                raise MailServerUnavailable(f"{answered.code} {answered.message}") from None
            with contextlib.suppress(Exception):
                await smtp.rset()
            return _Sent("refused", message_id_, [], f"{answered.code} {answered.message}")
        except (TimeoutError, OSError, aiosmtplib.SMTPException) as failure:
            raise MailServerUnavailable(_said(failure)) from None
        accepted = [a for a in to if a not in refused]
        partly = "; ".join(f"{a}: {r.code} {r.message}" for a, r in refused.items())
        return _Sent("sent", message_id_, accepted, answer.strip() +
                     (f" (refused: {partly})" if partly else ""))


@dataclass(frozen=True)
class _Sent:
    status: str
    message_id: str
    accepted: list[str]
    answer: str

    def outcome(self, contacts_version: int | None) -> Outcome:
        return Outcome(status="sent", message_id=self.message_id, sent_to=self.accepted,
                       answer=self.answer, contacts_version=contacts_version)


def _said(failure: BaseException) -> str:
    text = str(failure).strip()
    return f"{type(failure).__name__}: {text.splitlines()[0]}" if text else type(failure).__name__


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


LEASE_SECONDS = "CASES_NOTICE_LEASE_SECONDS"


def lease_from_environment() -> timedelta:
    """How long a relay's claim on a notice lasts (CASES_NOTICE_LEASE_SECONDS, default 120):
    after a relay dies mid-send, its notices go again once the claim lapses."""
    raw = os.environ.get(LEASE_SECONDS, "").strip()
    try:
        seconds = float(raw) if raw else 120.0
    except ValueError:
        raise ValueError(f"{LEASE_SECONDS}={raw!r}: expected a number of seconds") from None
    if not 1 <= seconds <= 86_400:
        raise ValueError(f"{LEASE_SECONDS}={raw!r}: between 1 and 86400")
    return timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def relaying(store: EventStore, settings: MailSettings | None,
                   lease: timedelta | None = None) -> AsyncIterator[Relay | None]:
    """Run a relay beside the caller (a worker) for the duration of the block; with no mail
    server configured, say once that notices wait in the outbox, and run none."""
    if settings is None:
        log.warning("CASES_SMTP_URL is not set: notices are kept in the outbox and not sent; "
                    "`cases outbox` lists them")
        yield None
        return
    relay = Relay(store, settings, lease=lease or lease_from_environment())
    stopping = asyncio.Event()
    task = asyncio.create_task(relay.run(stopping))
    try:
        yield relay
    finally:
        stopping.set()
        await task
