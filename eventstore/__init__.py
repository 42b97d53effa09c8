"""The append-only, hash-chained event store: the system of record for every case.

See docs/event-store.md for the table, the hash rule and how to verify a case without this code.
"""

from eventstore.errors import EventIdConflict, InvalidEvent, StoreError, VersionConflict
from eventstore.records import NewEvent, OutboxMessage, StoredEvent
from eventstore.store import EventStore, open_store

__all__ = [
    "EventIdConflict",
    "EventStore",
    "InvalidEvent",
    "NewEvent",
    "OutboxMessage",
    "StoreError",
    "StoredEvent",
    "VersionConflict",
    "open_store",
]
