"""PostgreSQL's append lock is taken last: a rival writer can slip in before it, and loses
nothing to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection

from eventstore import EventStore, OutboxMessage, VersionConflict
from eventstore.deliveries import notices_for_case
from eventstore.verify import verify
from tests.support import new_event


def notice(event_id: str, subject: str) -> OutboxMessage:
    return OutboxMessage(event_id=event_id, recipient="chief executive", subject=subject,
                         body="…")


def before_the_lock_once(store: EventStore, monkeypatch: pytest.MonkeyPatch,
                         meanwhile: Callable[[], object]) -> None:
    """Run `meanwhile` once, inside the next append, just before it takes the append lock
    (after its head read and its outbox rows)."""
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
