"""The outbox relay's side of the store: take unsent notifications, mark them sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from eventstore.records import as_utc
from eventstore.schema import outbox
from eventstore.store import EventStore


@dataclass(frozen=True)
class PendingNotification:
    id: int
    event_id: str
    case_id: str
    recipient: str
    subject: str
    body: str
    created_at: datetime


def _read(store: EventStore, query: sa.Select[Any]) -> list[PendingNotification]:
    with store.engine.connect() as conn:
        return [PendingNotification(id=r.id, event_id=r.event_id, case_id=r.case_id,
                                    recipient=r.recipient, subject=r.subject, body=r.body,
                                    created_at=as_utc(r.created_at))
                for r in conn.execute(query)]


def unsent(store: EventStore, limit: int = 100) -> list[PendingNotification]:
    query = (sa.select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id)
             .limit(limit))
    return _read(store, query)


def mark_sent(store: EventStore, notification_id: int, at: datetime) -> bool:
    """Mark one notification sent; False if another relay already did (so it sends once)."""
    with store.engine.begin() as conn:
        result = conn.execute(outbox.update()
                              .where(outbox.c.id == notification_id, outbox.c.sent_at.is_(None))
                              .values(sent_at=at))
        return result.rowcount == 1


def for_case(store: EventStore, case_id: str) -> list[PendingNotification]:
    query = sa.select(outbox).where(outbox.c.case_id == case_id).order_by(outbox.c.id)
    return _read(store, query)
