"""The event-store contract (BRIEF §4), one suite that every database's store inherits."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.events import VisitScheduled
from domain.vocabulary import VisitMode
from eventstore import EventIdConflict, EventStore, InvalidEvent, NewEvent, VersionConflict
from eventstore.chain import GENESIS_HASH
from eventstore.verify import ProblemKind, verify, verify_all
from tests.conftest import drop_schema, postgres_store_in_new_schema
from tests.support import T0, new_event

BRIEF_VECTOR = NewEvent(
    event_id="3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10",
    type="CaseRequested",
    schema_version=1,
    occurred_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    actor="officer:siân.jones",
    payload={"budget_gap_pence": 420000000, "council": "E06000001",
             "kind": "corporate_peer_challenge",
             "reason": 'Budget gap of £4.2m "flagged" by the s151 officer\n',
             "scope": ["finance", "governance"]},
)
BRIEF_HASH = "a4225a32fce5148c2884b499ab1d9451f7dccf636a826fec0d06aaa9bc9d0774"


def append_case(store: EventStore, case_id: str, count: int) -> None:
    store.append(case_id, 0, [new_event(case_id, n) for n in range(1, count + 1)])


class EventStoreContract:
    """Every backend's test class inherits this and provides `store` and `tamper`."""

    @pytest.fixture
    def store(self) -> Iterator[EventStore]:
        raise NotImplementedError

    def tamper(self, store: EventStore, sql: str) -> None:
        """Run SQL behind the store's back, as someone with the table owner's rights could."""
        raise NotImplementedError

    # --- append ----------------------------------------------------------------------

    def test_the_brief_test_vector_hashes_as_specified(self, store: EventStore) -> None:
        [stored] = store.append("cpc-E06000001-2026", 0, [BRIEF_VECTOR])
        assert stored.version == 1
        assert stored.prev_hash == GENESIS_HASH
        assert stored.hash == BRIEF_HASH
        assert store.read_case("cpc-E06000001-2026")[0].hash == BRIEF_HASH

    def test_appended_events_read_back_exactly_in_version_order(self, store: EventStore) -> None:
        first = store.append("case-a", 0, [new_event("case-a", 1), new_event("case-a", 2)])
        second = store.append("case-a", 2, [new_event("case-a", 3)])
        stored = store.read_case("case-a")
        assert stored == [*first, *second]
        assert [e.version for e in stored] == [1, 2, 3]
        assert [e.prev_hash for e in stored] == [GENESIS_HASH, stored[0].hash, stored[1].hash]
        assert stored[0].payload == {"scope": ["finance"], "n": 1, "note": "£4.2m \"gap\"\n"}
        assert stored[0].occurred_at == T0 + timedelta(minutes=1)
        assert stored[0].position < stored[1].position < stored[2].position
        assert store.head("case-a") == (3, stored[2].hash)

    def test_a_retried_append_succeeds_and_stores_nothing_new(self, store: EventStore) -> None:
        batch = [new_event("case-a", 1), new_event("case-a", 2)]
        first = store.append("case-a", 0, batch)
        before = store.last_position()
        again = store.append("case-a", 0, batch)
        assert again == first
        assert store.last_position() == before
        assert len(store.read_case("case-a")) == 2

    def test_a_different_event_at_a_taken_version_is_a_conflict(self, store: EventStore) -> None:
        append_case(store, "case-a", 2)
        intruder = new_event("case-a", 99)
        with pytest.raises(VersionConflict) as caught:
            store.append("case-a", 1, [intruder])
        assert caught.value.case_id == "case-a"
        assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
        assert "case case-a" in str(caught.value) and "version 2" in str(caught.value)
        assert [e.version for e in store.read_case("case-a")] == [1, 2]

    def test_appending_past_the_head_is_a_conflict(self, store: EventStore) -> None:
        append_case(store, "case-a", 1)
        with pytest.raises(VersionConflict):
            store.append("case-a", 5, [new_event("case-a", 6)])
        assert store.head("case-a")[0] == 1

    def test_an_event_id_reused_with_other_content_is_refused(self, store: EventStore) -> None:
        [stored] = store.append("case-a", 0, [new_event("case-a", 1)])
        reuse = NewEvent(stored.event_id, "CaseScoped", 1, T0, "officer:someone.else", {})
        with pytest.raises(EventIdConflict):
            store.append("case-b", 0, [reuse])
        with pytest.raises(EventIdConflict):
            store.append("case-a", 0, [reuse])
        assert store.read_case("case-b") == []

    def test_a_batch_is_all_or_nothing(self, store: EventStore) -> None:
        [stored] = store.append("case-a", 0, [new_event("case-a", 1)])
        clash = NewEvent(stored.event_id, "CaseScoped", 1, T0, "officer:x", {"other": 1})
        with pytest.raises(EventIdConflict):
            store.append("case-b", 0, [new_event("case-b", 1), clash])
        assert store.read_case("case-b") == []

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"payload": {"amount": 1.5}}, "floats are not allowed"),
            ({"payload": {"amount": 2**60}}, "outside"),
            ({"payload": {"text": "nul\x00"}}, "NUL"),
            ({"payload": {"bad": "\ud800"}}, "not valid Unicode"),
            ({"occurred_at": datetime(2026, 1, 1)}, "timezone"),
            ({"event_id": "not-a-uuid"}, "not a UUID"),
            ({"event_id": str(uuid.uuid4()).upper()}, "lowercase"),
            ({"actor": ""}, "actor"),
        ],
    )
    def test_invalid_events_are_refused_and_nothing_is_written(
        self, store: EventStore, change: dict[str, object], message: str
    ) -> None:
        good = new_event("case-a", 1)
        fields = {"event_id": good.event_id, "type": good.type,
                  "schema_version": good.schema_version, "occurred_at": good.occurred_at,
                  "actor": good.actor, "payload": good.payload, **change}
        with pytest.raises(InvalidEvent, match=message):
            store.append("case-a", 0, [new_event("case-a", 2), NewEvent(**fields)])  # type: ignore[arg-type]
        assert store.last_position() == 0

    def test_a_bad_case_id_is_refused(self, store: EventStore) -> None:
        for case_id in ("", " padded", "x" * 101, "tab\there"):
            with pytest.raises(InvalidEvent):
                store.append(case_id, 0, [new_event("any", 1)])
        assert store.last_position() == 0

    # --- reads -----------------------------------------------------------------------

    def test_a_case_reads_up_to_a_version_and_as_of_a_time(self, store: EventStore) -> None:
        append_case(store, "case-a", 5)
        assert [e.version for e in store.read_case("case-a", up_to_version=3)] == [1, 2, 3]
        as_of = T0 + timedelta(minutes=2, seconds=30)
        assert [e.version for e in store.read_case("case-a", as_of=as_of)] == [1, 2]
        exactly = T0 + timedelta(minutes=4)
        assert [e.version for e in store.read_case("case-a", as_of=exactly)] == [1, 2, 3, 4]
        assert store.read_case("case-a", as_of=T0) == []
        assert store.read_case("no-such-case") == []

    def test_everything_after_a_position_comes_in_batches_in_order(
        self, store: EventStore
    ) -> None:
        for case in ("case-a", "case-b", "case-c"):
            append_case(store, case, 4)
        everything = list(store.iter_after(0, batch_size=5))
        assert len(everything) == 12
        positions = [e.position for e in everything]
        assert positions == sorted(positions) and len(set(positions)) == 12
        middle = positions[5]
        assert [e.position for e in store.read_after(middle, limit=3)] == positions[6:9]
        assert store.case_ids() == ["case-a", "case-b", "case-c"]

    def test_an_old_schema_version_reads_as_todays_class(self, store: EventStore) -> None:
        old = new_event("case-a", 1, type="VisitScheduled", schema_version=1,
                        payload={"starts_on": "2019-05-07", "ends_on": "2019-05-10"})
        store.append("case-a", 0, [old])
        [stored] = store.read_case("case-a")
        assert stored.schema_version == 1 and "mode" not in stored.payload
        event = stored.to_recorded().event
        assert isinstance(event, VisitScheduled)
        assert event.mode == VisitMode.ON_SITE
        assert verify(store, "case-a").ok

    # --- append-only and tamper-evident ----------------------------------------------

    def test_plain_update_and_delete_are_refused_by_the_database(self, store: EventStore) -> None:
        append_case(store, "case-a", 2)
        refused = ["UPDATE events SET actor = 'officer:mallory'", "DELETE FROM events"]
        if store.engine.dialect.name == "postgresql":
            refused.append("TRUNCATE events")
        for sql in refused:
            with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as c:
                c.exec_driver_sql(sql)
        assert verify(store, "case-a").ok and len(store.read_case("case-a")) == 2

    def test_a_retry_whose_payload_differs_only_as_true_for_1_is_refused(
        self, store: EventStore
    ) -> None:
        first = new_event("case-a", 1, payload={"flag": 1})
        store.append("case-a", 0, [first])
        retry = NewEvent(first.event_id, first.type, 1, first.occurred_at, first.actor,
                         {"flag": True})
        with pytest.raises(EventIdConflict):
            store.append("case-a", 0, [retry])

    def test_a_retry_recorded_later_keeps_the_first_time(self, store: EventStore) -> None:
        first = new_event("case-a", 1)
        [stored] = store.append("case-a", 0, [first])
        later = NewEvent(first.event_id, first.type, 1, first.occurred_at + timedelta(hours=1),
                         first.actor, first.payload)
        assert store.append("case-a", 0, [later]) == [stored]

    def test_an_intact_store_verifies(self, store: EventStore) -> None:
        append_case(store, "case-a", 3)
        append_case(store, "case-b", 2)
        verdict = verify_all(store)
        assert verdict.ok and (verdict.cases, verdict.events) == (2, 5)
        assert verify(store, "case-a").ok

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE events SET payload = '{\"scope\": [\"housing\"], \"n\": 3, \"note\": \"\"}'",
            "UPDATE events SET actor = 'officer:mallory'",
            "UPDATE events SET occurred_at = occurred_at + INTERVAL '1 day'",
        ],
        ids=["payload", "actor", "time"],
    )
    def test_an_altered_event_is_named(self, store: EventStore, sql: str) -> None:
        append_case(store, "case-a", 5)
        append_case(store, "case-b", 2)
        stored = store.read_case("case-a")[2]
        self.tamper(store, f"{self.portable(sql)} WHERE case_id = 'case-a' AND version = 3")
        problem = verify(store, "case-a").first_problem
        assert problem is not None
        assert (problem.case_id, problem.version) == ("case-a", 3)
        assert problem.kind == ProblemKind.ALTERED
        assert problem.stored_hash == stored.hash and problem.computed_hash != stored.hash
        verdict = verify_all(store)
        assert [(p.case_id, p.version) for p in verdict.problems] == [("case-a", 3)]
        assert verdict.events == 7

    def test_a_deleted_event_is_named(self, store: EventStore) -> None:
        append_case(store, "case-a", 5)
        self.tamper(store, "DELETE FROM events WHERE case_id = 'case-a' AND version = 3")
        problem = verify(store, "case-a").first_problem
        assert problem is not None
        assert (problem.version, problem.kind) == (3, ProblemKind.MISSING)

    def test_a_deleted_first_event_is_named(self, store: EventStore) -> None:
        append_case(store, "case-a", 3)
        self.tamper(store, "DELETE FROM events WHERE case_id = 'case-a' AND version = 1")
        problem = verify_all(store).first_problem
        assert problem is not None and (problem.version, problem.kind) == (1, ProblemKind.MISSING)

    def test_two_swapped_events_are_named(self, store: EventStore) -> None:
        append_case(store, "case-a", 5)
        self.tamper(store, "UPDATE events SET version = 1000 + version "
                           "WHERE case_id = 'case-a' AND version IN (2, 3)")
        where = "WHERE case_id = 'case-a' AND version"
        self.tamper(store, f"UPDATE events SET version = 2 {where} = 1003")
        self.tamper(store, f"UPDATE events SET version = 3 {where} = 1002")
        problem = verify(store, "case-a").first_problem
        assert problem is not None and problem.version == 2
        assert problem.kind in (ProblemKind.ALTERED, ProblemKind.REORDERED)

    def test_a_rewritten_and_rehashed_event_breaks_the_link_after_it(
        self, store: EventStore
    ) -> None:
        """Re-hashing the altered event itself still breaks the chain at the next version."""
        append_case(store, "case-a", 4)
        from eventstore.verify import recompute

        target = store.read_case("case-a")[1]
        forged = NewEvent(target.event_id, target.type, target.schema_version,
                          target.occurred_at, "officer:mallory", target.payload)
        from eventstore.chain import event_hash

        new_hash = event_hash(case_id="case-a", version=2, event_id=forged.event_id,
                              type=forged.type, schema_version=1, occurred_at=forged.occurred_at,
                              actor=forged.actor, payload=forged.payload,
                              prev_hash=target.prev_hash)
        assert recompute(target) == target.hash
        self.tamper(store, f"UPDATE events SET actor = 'officer:mallory', hash = '{new_hash}' "
                           "WHERE case_id = 'case-a' AND version = 2")
        problem = verify(store, "case-a").first_problem
        assert problem is not None
        assert (problem.version, problem.kind) == (3, ProblemKind.BROKEN_LINK)

    # --- concurrency -----------------------------------------------------------------

    def test_racing_writers_on_one_case_each_version_won_exactly_once(
        self, store: EventStore
    ) -> None:
        writers, rounds = 8, 12
        barrier = threading.Barrier(writers)
        wins: list[list[int]] = [[] for _ in range(writers)]
        conflicts = [0] * writers
        errors: list[BaseException] = []

        def writer(index: int) -> None:
            try:
                for version in range(rounds):
                    barrier.wait()
                    try:
                        store.append("contested", version, [new_event("contested", 1000 * index
                                                                      + version)])
                        wins[index].append(version + 1)
                    except VersionConflict:
                        conflicts[index] += 1
            except BaseException as error:
                errors.append(error)
                barrier.abort()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors
        won = sorted(v for w in wins for v in w)
        assert won == list(range(1, rounds + 1)), "every version won exactly once"
        assert sum(conflicts) == (writers - 1) * rounds
        stored = store.read_case("contested")
        assert [e.version for e in stored] == list(range(1, rounds + 1))
        assert verify(store, "contested").ok

    def test_a_reader_tailing_positions_sees_every_event_once_in_order(
        self, store: EventStore
    ) -> None:
        writers, per_writer = 8, 25
        done = threading.Event()
        seen: list[int] = []
        seen_ids: list[str] = []
        errors: list[BaseException] = []

        def writer(index: int) -> None:
            try:
                case_id = f"case-{index}"
                for version in range(per_writer):
                    store.append(case_id, version, [new_event(case_id, version + 1)])
            except BaseException as error:
                errors.append(error)

        def reader() -> None:
            position = 0
            while True:
                finished = done.is_set()
                batch = store.read_after(position, limit=7)
                for event in batch:
                    seen.append(event.position)
                    seen_ids.append(event.event_id)
                if batch:
                    position = batch[-1].position
                elif finished:
                    return

        tail = threading.Thread(target=reader)
        tail.start()
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        done.set()
        tail.join(timeout=60)
        assert not errors
        stored_ids = {e.event_id for e in store.iter_after(0)}
        assert len(stored_ids) == writers * per_writer
        assert len(seen_ids) == len(set(seen_ids)), "no event seen twice"
        assert set(seen_ids) == stored_ids, "no event missed"
        assert seen == sorted(seen)

    @staticmethod
    def portable(sql: str) -> str:
        return sql


class TestSqliteEventStore(EventStoreContract):
    @pytest.fixture
    def store(self, sqlite_store: EventStore) -> EventStore:
        return sqlite_store

    def tamper(self, store: EventStore, sql: str) -> None:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS events_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS events_no_delete")
            conn.exec_driver_sql(sql)

    @staticmethod
    def portable(sql: str) -> str:
        return sql.replace("occurred_at + INTERVAL '1 day'",
                           "strftime('%Y-%m-%d %H:%M:%f000', occurred_at, '+1 day')")


@pytest.mark.postgres
class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[EventStore]:
        store, schema = postgres_store_in_new_schema()
        yield store
        drop_schema(store, schema)

    def tamper(self, store: EventStore, sql: str) -> None:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
            conn.exec_driver_sql(sql)
