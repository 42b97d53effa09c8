"""The rows the store takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.events import Event
from domain.recorded import Recorded
from domain.upcasting import parse_event


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: the store assigns case, version, position and the hashes."""

    event_id: str
    type: str
    schema_version: int
    occurred_at: datetime
    actor: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: Event, *, event_id: str, occurred_at: datetime, actor: str) -> NewEvent:
        return cls(event_id=event_id, type=event.type_name(), schema_version=event.stored_version(),
                   occurred_at=occurred_at, actor=actor, payload=event.payload())


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A notification caused by the event `event_id`; stored in the same transaction."""

    event_id: str
    recipient: str
    subject: str
    body: str
    notice: dict[str, Any] | None = None
    """The facts its email is written from (`domain.notifications.Notification`)."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of `events`, exactly as stored."""

    position: int
    case_id: str
    version: int
    event_id: str
    type: str
    schema_version: int
    occurred_at: datetime
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_recorded(self) -> Recorded:
        """Today's domain event for this row, through the upcasters."""
        return Recorded(case_id=self.case_id, version=self.version, event_id=self.event_id,
                        occurred_at=self.occurred_at, actor=self.actor,
                        event=parse_event(self.type, self.schema_version, self.payload))


def as_utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back naive."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
