"""PostgreSQL's append lock is taken last: a rival writer can slip in before it, and loses
nothing to it. An append on the head the store remembers (one pipeline, no head read) is
checked by the database all the same: a rival, a retry or a wrong head costs it nothing."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection

from eventstore import EventStore, OutboxMessage, VersionConflict, open_store
from eventstore.deliveries import notices_for_case
from eventstore.store import PostgresEventStore
from eventstore.verify import verify
from tests.conftest import POSTGRES_URL
from tests.support import new_event


def notice(event_id: str, subject: str) -> OutboxMessage:
    return OutboxMessage(event_id=event_id, recipient="chief executive", subject=subject,
                         body="…")


def before_the_lock_once(store: EventStore, monkeypatch: pytest.MonkeyPatch,
                         meanwhile: Callable[[], object]) -> None:
    """Run `meanwhile` once, inside the next append, just before it takes the append lock
    (after its head read and its outbox rows). Every append goes the long way (head read,
    then the insert): the one that knows its head has no moment between the two."""
    monkeypatch.setattr(store, "_append_linked", lambda request, head_hash: None)
    lock_and_insert = store._lock_and_insert
    pending = [meanwhile]

    def meanwhile_then_lock(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        if pending:
            pending.pop()()
        return lock_and_insert(conn, rows)

    monkeypatch.setattr(store, "_lock_and_insert", meanwhile_then_lock)


def test_a_rival_append_after_our_head_read_wins_and_nothing_of_ours_is_kept(
    postgres_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between our head read and our insert another writer takes version 2: ours is refused
    as a conflict, and neither our event nor our notification (inserted before the lock) is
    stored; the rival's are, and the chain verifies."""
    store = postgres_store
    store.append("case-a", 0, [new_event("case-a", 1)])
    rival, ours = new_event("case-a", 2, type="RivalWrote"), new_event("case-a", 2)
    before_the_lock_once(store, monkeypatch, lambda: store.append(
        "case-a", 1, [rival], [notice(rival.event_id, "the rival's")]))
    with pytest.raises(VersionConflict):
        store.append("case-a", 1, [ours], [notice(ours.event_id, "ours")])
    assert [(e.version, e.event_id) for e in store.read_case("case-a")] == [
        (1, new_event("case-a", 1).event_id), (2, rival.event_id)]
    assert [n.subject for n in notices_for_case(store, "case-a")] == ["the rival's"]
    assert verify(store, "case-a").ok


def test_a_retry_racing_its_own_first_attempt_returns_what_the_first_stored(
    postgres_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At-least-once activities: the same append, retried while its first attempt is between
    head read and insert, is answered with the stored events, written once."""
    store = postgres_store
    first = new_event("case-b", 1)
    before_the_lock_once(store, monkeypatch, lambda: store.append("case-b", 0, [first]))
    stored = store.append("case-b", 0, [first])
    assert [(e.version, e.event_id) for e in stored] == [(1, first.event_id)]
    assert [e.event_id for e in store.read_case("case-b")] == [first.event_id]


def test_a_retry_with_notifications_waits_for_its_first_attempt_and_writes_them_once(
    postgres_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt has inserted its notification and not yet committed when the retry
    tries the same one: the retry waits on it (never holding the append lock meanwhile, so no
    deadlock), then answers with what the first attempt stored."""
    store = postgres_store
    first = new_event("case-c", 1)
    message = [notice(first.event_id, "once")]
    answers: list[list[str]] = []
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            answers.append([e.event_id for e in store.append("case-c", 0, [first], message)])
        except BaseException as error:
            errors.append(error)

    retrying = threading.Thread(target=retry)

    def retry_meanwhile() -> None:
        retrying.start()
        until_someone_waits_on_a_lock(store)

    before_the_lock_once(store, monkeypatch, retry_meanwhile)
    stored = store.append("case-c", 0, [first], message)
    retrying.join(timeout=30)
    assert not errors
    assert answers == [[e.event_id for e in stored]] == [[first.event_id]]
    assert [e.event_id for e in store.read_case("case-c")] == [first.event_id]
    assert [n.subject for n in notices_for_case(store, "case-c")] == ["once"]


def until_someone_waits_on_a_lock(store: EventStore, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    with store.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()").scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the retry never waited on the first attempt's notification")


# --- the append on a remembered head ----------------------------------------------------------

@pytest.fixture
def other_worker(postgres_store: EventStore) -> Iterator[EventStore]:
    """A second store on the same schema, as another worker's: it remembers its own heads."""
    with postgres_store.engine.connect() as conn:
        schema = conn.exec_driver_sql("SHOW search_path").scalar_one()
    store = open_store(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    yield store
    store.dispose()


def linked_appends(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each append that knows its head, whether it was stored that way."""
    assert isinstance(store, PostgresEventStore)
    append_linked = store._append_linked
    outcomes: list[bool] = []

    def recorded(request: Any, head_hash: str) -> Any:
        stored = append_linked(request, head_hash)
        outcomes.append(stored is not None)
        return stored

    monkeypatch.setattr(store, "_append_linked", recorded)
    return outcomes


def test_appends_on_remembered_heads_chain_and_count_positions_in_order(
    postgres_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case's first append (on genesis) and each one after (on the head this store stored)
    go in without a head read, several events and their notices together, and verify."""
    store = postgres_store
    linked = linked_appends(store, monkeypatch)
    first = store.append("case-d", 0, [new_event("case-d", 1)])
    two = [new_event("case-d", 2), new_event("case-d", 3)]
    stored = store.append("case-d", 1, two, [notice(two[0].event_id, "two"),
                                             notice(two[1].event_id, "three")])
    assert linked == [True, True]
    assert [(e.version, e.prev_hash) for e in stored] == [(2, first[0].hash),
                                                         (3, stored[0].hash)]
    assert [e.position for e in store.read_case("case-d")] == [
        first[0].position, *(e.position for e in stored)]
    assert stored[0].position < stored[1].position
    assert [n.subject for n in notices_for_case(store, "case-d")] == ["two", "three"]
    assert verify(store, "case-d").ok


def test_a_rival_worker_took_the_version_ours_is_a_conflict_and_nothing_is_kept(
    postgres_store: EventStore, other_worker: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our store remembers version 1; another worker has appended version 2 since. Our append
    on version 1 breaks the unique version, is tried the long way and refused; neither our
    event nor our notice is stored."""
    store = postgres_store
    store.append("case-e", 0, [new_event("case-e", 1)])
    rival, ours = new_event("case-e", 2, type="RivalWrote"), new_event("case-e", 2)
    other_worker.append("case-e", 1, [rival], [notice(rival.event_id, "the rival's")])
    linked = linked_appends(store, monkeypatch)
    with pytest.raises(VersionConflict):
        store.append("case-e", 1, [ours], [notice(ours.event_id, "ours")])
    assert linked == [False]
    assert [e.event_id for e in store.read_case("case-e")] == [
        new_event("case-e", 1).event_id, rival.event_id]
    assert [n.subject for n in notices_for_case(store, "case-e")] == ["the rival's"]
    assert verify(store, "case-e").ok


def test_a_retry_on_another_worker_is_answered_with_the_first_attempts_events(
    postgres_store: EventStore, other_worker: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An activity retried on another worker after its first attempt committed: the retry's
    linked insert meets its own events, and it answers with them, written once."""
    store = postgres_store
    store.append("case-f", 0, [new_event("case-f", 1)])
    other_worker.append("case-f", 0, [new_event("case-f", 1)])  # remembers version 1 too
    again = new_event("case-f", 2)
    first = store.append("case-f", 1, [again], [notice(again.event_id, "once")])
    linked = linked_appends(other_worker, monkeypatch)
    retried = other_worker.append("case-f", 1, [again], [notice(again.event_id, "once")])
    assert linked == [False]
    assert retried == first
    assert [n.subject for n in notices_for_case(store, "case-f")] == ["once"]


def test_a_wrong_remembered_head_writes_nothing_and_the_long_way_chains_right(
    postgres_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database checks the link, not the store's memory: a head remembered wrong (here
    made up; a database restored from a backup could do it) inserts neither event nor notice,
    and the append is made on the head as stored."""
    store = postgres_store
    assert isinstance(store, PostgresEventStore)
    head = store.append("case-g", 0, [new_event("case-g", 1)])[-1]
    store._heads.stored(dataclasses.replace(head, hash="f" * 64))
    linked = linked_appends(store, monkeypatch)
    two = new_event("case-g", 2)
    stored = store.append("case-g", 1, [two], [notice(two.event_id, "once")])
    assert linked == [False]
    assert stored[0].prev_hash == head.hash
    assert [n.subject for n in notices_for_case(store, "case-g")] == ["once"]
    assert verify(store, "case-g").ok
