"""Group commit: appends waiting for a single writer are committed together, in one transaction.

Why: SQLite has one writer at a time and `synchronous=FULL` makes every commit an fsync. Under
load (a worker with many cases in flight, a burst of deadline lapses) appends queue for the write
lock; the writer that gets it takes every append waiting by then and commits them at once. Each
append is still checked against its own case's head inside that transaction, so a conflict or a
retry is answered exactly as it would be alone; one fsync, one BEGIN and one COMMIT then serve
the whole group, and nothing is answered before its commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventstore.records import NewEvent, OutboxMessage, StoredEvent


@dataclass(eq=False)
class PendingAppend:
    """One caller's append, waiting for the writer that will commit it (maybe the caller)."""

    case_id: str
    expected_version: int
    new_events: Sequence[NewEvent]
    notifications: Sequence[OutboxMessage]
    stored: list[StoredEvent] | None = field(default=None, init=False)
    error: Exception | None = field(default=None, init=False)
    settled: bool = field(default=False, init=False)

    def settle(self, stored: list[StoredEvent] | None, error: Exception | None) -> None:
        self.stored, self.error, self.settled = stored, error, True

    def settle_by(self, append_alone: Callable[[PendingAppend], list[StoredEvent]]) -> None:
        """Settle with what `append_alone` answers for this append, or the error it raises."""
        try:
            self.settle(append_alone(self), None)
        except Exception as error:  # the caller's own outcome: raised again in its thread
            self.settle(None, error)

    def outcome(self) -> list[StoredEvent]:
        assert self.settled, "an append is answered only once it is settled"
        if self.error is not None:
            raise self.error
        assert self.stored is not None
        return self.stored


class GroupCommit:
    """Queue appends; whoever holds the writer lock commits all that are waiting.

    `commit_group` gets the waiting appends (one or more, in arrival order) and settles every
    one of them before it returns. The caller's answer is read only after its own turn at the
    writer lock, so it is never read before the commit that settled it."""

    def __init__(self, commit_group: Callable[[list[PendingAppend]], None]) -> None:
        self._commit_group = commit_group
        self._writer = threading.Lock()
        self._waiting: list[PendingAppend] = []
        self._waiting_lock = threading.Lock()

    def append(self, pending: PendingAppend) -> list[StoredEvent]:
        with self._waiting_lock:
            self._waiting.append(pending)
        with self._writer:
            if not pending.settled:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                try:
                    self._commit_group(group)
                except Exception as error:  # nobody in the group may be left unanswered
                    for waiting in group:
                        if not waiting.settled:
                            waiting.settle(None, error)
        return pending.outcome()
