"""SQLite's group commit: appends waiting for the writer are committed together, and each one
is still answered exactly as it would be alone (its events, its conflict, its retry)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from eventstore import EventIdConflict, EventStore, OutboxMessage, VersionConflict, open_store
from eventstore.deliveries import notices_for_case
from eventstore.group_commit import PendingAppend
from eventstore.records import StoredEvent
from eventstore.store import SqliteEventStore
from eventstore.verify import verify_all
from tests.support import new_event

Outcome = list[StoredEvent] | Exception


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteEventStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    assert isinstance(opened, SqliteEventStore)
    opened.migrate()
    yield opened
    opened.dispose()


def commits(store: EventStore) -> list[int]:
    """A counter of the transactions the store commits from now on."""
    counted = [0]

    def count(_conn: sa.Connection) -> None:
        counted[0] += 1

    sa.event.listen(store.engine, "commit", count)
    return counted


def as_one_group(store: SqliteEventStore, appends: list[Callable[[], list[StoredEvent]]]
                 ) -> list[Outcome]:
    """Run `appends` from threads of their own while the writer is busy, so that all of them
    are waiting when it is free again; the outcome of each, in the order given."""
    outcomes: list[Outcome | None] = [None] * len(appends)

    def run(index: int) -> None:
        try:
            outcomes[index] = appends[index]()
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(appends))]
    group_commit = store._group_commit
    with group_commit._writer:  # the writer is busy (as another append would keep it)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(group_commit._waiting) < len(appends):
            assert time.monotonic() < deadline, "the appends never queued for the writer"
            time.sleep(0.001)
    for thread in threads:
        thread.join(timeout=30)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def first_append(store: EventStore, case_id: str, *, notify: bool = False
                 ) -> Callable[[], list[StoredEvent]]:
    """The case's first event (with a notification to the council if `notify`), to run later."""
    event = new_event(case_id, 1)
    notices = [OutboxMessage(event_id=event.event_id, recipient="council",
                             subject=f"to {case_id}", body="…")] if notify else []
    return lambda: store.append(case_id, 0, [event], notices)


def test_appends_waiting_for_the_writer_commit_in_one_transaction(
    store: SqliteEventStore,
) -> None:
    """Eight cases' appends queue behind a busy writer: one transaction stores them all, and
    each caller gets back its own events, with its notification."""
    cases = [f"case-{n}" for n in range(8)]
    counted = commits(store)
    outcomes = as_one_group(store, [first_append(store, case_id, notify=True)
                                    for case_id in cases])
    assert counted[0] == 1
    for case_id, outcome in zip(cases, outcomes, strict=True):
        assert not isinstance(outcome, Exception), outcome
        assert [(e.case_id, e.version, e.event_id) for e in outcome] == [
            (case_id, 1, new_event(case_id, 1).event_id)]
        assert store.read_case(case_id) == outcome
        assert [n.subject for n in notices_for_case(store, case_id)] == [f"to {case_id}"]
    assert len({e.position for o in outcomes if isinstance(o, list) for e in o}) == len(cases)
    assert verify_all(store).ok


def test_a_conflict_in_a_group_is_its_own_and_the_others_are_stored(
    store: SqliteEventStore,
) -> None:
    store.append("case-a", 0, [new_event("case-a", 1)])
    outcomes = as_one_group(store, [
        lambda: store.append("case-a", 0, [new_event("case-a", 1, type="Stale")]),
        lambda: store.append("case-b", 0, [new_event("case-b", 1)]),
        lambda: store.append("case-c", 0, [new_event("case-c", 1)]),
    ])
    assert isinstance(outcomes[0], VersionConflict)
    assert [e.version for e in store.read_case("case-a")] == [1]
    assert [e.event_id for e in store.read_case("case-b")] == [new_event("case-b", 1).event_id]
    assert [e.event_id for e in store.read_case("case-c")] == [new_event("case-c", 1).event_id]
    assert verify_all(store).ok


def test_two_writers_at_one_version_in_a_group_the_first_wins(
    store: SqliteEventStore,
) -> None:
    """Two appends at version 1 of one case wait together: exactly one is stored, the other is
    a conflict, as if they had come one after the other."""
    ours, theirs = new_event("case-a", 1, type="Ours"), new_event("case-a", 1, type="Theirs")
    outcomes = as_one_group(store, [lambda: store.append("case-a", 0, [ours]),
                                    lambda: store.append("case-a", 0, [theirs])])
    conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
    stored = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(conflicts) == 1 and len(stored) == 1
    assert store.read_case("case-a") == stored[0]


def test_a_retry_in_the_same_group_as_its_first_attempt_gets_the_same_events(
    store: SqliteEventStore,
) -> None:
    """At-least-once activities: an append and its retry wait together; both are answered
    with the one stored copy."""
    first = [new_event("case-a", 1), new_event("case-a", 2)]
    outcomes = as_one_group(store, [lambda: store.append("case-a", 0, first),
                                    lambda: store.append("case-a", 0, first)])
    assert outcomes[0] == outcomes[1] == store.read_case("case-a")
    assert len(store.read_case("case-a")) == 2


def test_an_event_id_taken_by_another_case_fails_alone(store: SqliteEventStore) -> None:
    """The insert fails part-way through the group's transaction: nothing of the group is kept
    from it, each append is made again on its own, and only the bad one is refused."""
    taken = new_event("case-a", 1)
    store.append("case-a", 0, [taken])
    reused = new_event("case-b", 1)
    reused = type(reused)(event_id=taken.event_id, type=reused.type,
                          schema_version=reused.schema_version, occurred_at=reused.occurred_at,
                          actor=reused.actor, payload=reused.payload)
    counted = commits(store)
    outcomes = as_one_group(store, [
        lambda: store.append("case-c", 0, [new_event("case-c", 1)]),
        lambda: store.append("case-b", 0, [reused]),
        lambda: store.append("case-d", 0, [new_event("case-d", 1)]),
    ])
    assert isinstance(outcomes[1], EventIdConflict)
    assert store.read_case("case-b") == []
    assert [len(store.read_case(c)) for c in ("case-a", "case-c", "case-d")] == [1, 1, 1]
    assert counted[0] >= 2  # made again one by one
    assert verify_all(store).ok


def test_many_threads_appending_at_once_lose_and_duplicate_nothing(
    store: SqliteEventStore,
) -> None:
    """Sixteen threads, each driving four cases version by version, as a worker's activity
    threads do: every append is answered with its own events and the chain verifies."""
    failures: list[BaseException] = []

    def writer(thread: int) -> None:
        try:
            for version in range(1, 11):
                for n in range(4):
                    case_id = f"case-{thread}-{n}"
                    [stored] = store.append(case_id, version - 1,
                                            [new_event(case_id, version)])
                    assert (stored.case_id, stored.version) == (case_id, version)
        except BaseException as error:
            failures.append(error)

    counted = commits(store)
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert sorted(store.case_ids()) == sorted(f"case-{t}-{n}" for t in range(16)
                                              for n in range(4))
    assert store.last_position() == 16 * 4 * 10
    assert counted[0] <= 16 * 4 * 10
    assert verify_all(store).ok


def test_a_database_failure_in_a_group_is_every_appends_answer_and_nothing_is_kept(
    store: SqliteEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills (or the file goes) half-way through a group: every append of it is told
    so, and none is stored; each caller's activity retries, as it would alone."""
    append_in = store._append_in

    def disk_full_at_case_b(conn: sa.Connection, request: PendingAppend) -> list[StoredEvent]:
        if request.case_id == "case-b":
            raise sa.exc.OperationalError("INSERT …", {}, Exception("database or disk is full"))
        return append_in(conn, request)

    monkeypatch.setattr(store, "_append_in", disk_full_at_case_b)
    outcomes = as_one_group(store, [first_append(store, case_id)
                                    for case_id in ("case-a", "case-b", "case-c")])
    assert all(isinstance(o, sa.exc.OperationalError) for o in outcomes), outcomes
    assert store.case_ids() == []
