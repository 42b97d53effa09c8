"""Who was told what about a case, and when: its notices with their delivery, for the API,
the command line and the case pages. A council user sees its own people's addresses only,
not the LGA's."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from eventstore.deliveries import NoticeDelivery, deliveries_of
from eventstore.store import EventStore
from notices.compose import addressed


class NoticeShown(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    kind: str | None
    recipient: str
    """The role told (`chief_executive`, `principal_adviser`, …)."""
    subject: str
    created_at: datetime
    status: str
    """`pending`, `sending`, `sent`, `undeliverable` or `failed`."""
    sent_to: list[str]
    """Who was told: the role's people, or for an undeliverable notice those standing in."""
    finished_at: datetime | None
    problem: str | None


def case_notices(store: EventStore, case_id: str, *,
                 lga_addresses: bool = True) -> list[NoticeShown]:
    """The case's notices, oldest first; without the addresses of the LGA's people (and of
    stand-ins) unless `lga_addresses`."""
    return [_shown(d, lga_addresses)
            for d in deliveries_of(store, case_id=case_id, now=datetime.now(UTC))]


def _shown(d: NoticeDelivery, lga_addresses: bool) -> NoticeShown:
    who = addressed(d.notice)
    private = not lga_addresses and (who.role.of_the_lga or d.status == "undeliverable")
    return NoticeShown(id=d.notice.id, kind=who.kind or None, recipient=who.role.value,
                       subject=d.notice.subject, created_at=d.notice.created_at,
                       status="sending" if d.sending else d.status,
                       sent_to=[] if private else list(d.sent_to), finished_at=d.finished_at,
                       problem=d.problem)
