"""verify_all's raw-row path names exactly what walking `StoredEvent`s with check_chain names.

Each scenario tampers a store as someone with the table owner's rights could, then compares
verify_all (one process and two) with the plain reference: every row read through the store,
grouped by case, judged by check_chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby

import pytest
import sqlalchemy as sa

from eventstore import EventStore, open_store
from eventstore.schema import events
from eventstore.store import _stored
from eventstore.verify import ProblemKind, Verdict, check_chain, verify_all
from tests.conftest import drop_schema, postgres_store_in_new_schema
from tests.support import new_event


def reference_verify_all(store: EventStore) -> Verdict:
    """verify_all as it was before the raw path: slow, obviously right."""
    verdict = Verdict()
    with store.engine.connect() as conn:
        rows = [_stored(r) for r in
                conn.execute(sa.select(events).order_by(events.c.case_id, events.c.version))]
    for _case_id, case_events in groupby(rows, key=lambda e: e.case_id):
        chain = list(case_events)
        _, problem = check_chain(chain)
        verdict.cases += 1
        verdict.events += len(chain)
        if problem is not None:
            verdict.problems.append(problem)
    return verdict


def fill(store: EventStore) -> None:
    """Five cases: plain ASCII, non-ASCII values (the default test event), non-ASCII keys."""
    for case in ("case-a", "case-b", "case-c"):
        store.append(case, 0, [new_event(case, n) for n in range(1, 6)])
    store.append("case-d", 0, [new_event("case-d", n, actor="officer:bench",
                                         payload={"scope": ["finance"], "n": n})
                               for n in range(1, 4)])
    store.append("case-é", 0, [new_event("case-é", n, payload={"clé": n, "\U0001f600": "x",
                                                               "\uff61": [n]})
                               for n in range(1, 4)])


def tamper(store: EventStore, *statements: str) -> None:
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS events_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS events_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
        for sql in statements:
            conn.exec_driver_sql(sql)


def hash_of(store: EventStore, case_id: str, version: int) -> str:
    return next(e.hash for e in store.read_case(case_id) if e.version == version)


A3 = "WHERE case_id = 'case-a' AND version = 3"
COMMON: dict[str, tuple[str, ...]] = {
    "payload": (f"UPDATE events SET payload = '{{\"scope\": [\"housing\"], \"n\": 3}}' {A3}",),
    "payload-key-order": (
        f"UPDATE events SET payload = '{{\"n\": 3, \"scope\": [\"finance\"], "
        f"\"note\": \"\\u00a34.2m \\\"gap\\\"\\n\"}}' {A3}",),
    "actor": (f"UPDATE events SET actor = 'officer:mallory' {A3}",),
    "event-id": (f"UPDATE events SET event_id = '00000000-0000-0000-0000-000000000000' {A3}",),
    "type": (f"UPDATE events SET type = 'CaseClosed' {A3}",),
    "schema-version": (f"UPDATE events SET schema_version = 2 {A3}",),
    "prev-hash-column": (f"UPDATE events SET prev_hash = '{'1' * 64}' {A3}",),
    "hash-column": (f"UPDATE events SET hash = '{'2' * 64}' {A3}",),
    "missing": (f"DELETE FROM events {A3}",),
    "missing-first": ("DELETE FROM events WHERE case_id = 'case-b' AND version = 1",),
    "missing-case": ("DELETE FROM events WHERE case_id = 'case-c'",),
    "swapped": ("UPDATE events SET version = 1000 + version "
                "WHERE case_id = 'case-a' AND version IN (2, 3)",
                "UPDATE events SET version = 2 WHERE case_id = 'case-a' AND version = 1003",
                "UPDATE events SET version = 3 WHERE case_id = 'case-a' AND version = 1002"),
    "reordered": ("UPDATE events SET position = 1000 WHERE case_id = 'case-a' AND version = 2",),
    "non-ascii-key-altered": (
        "UPDATE events SET payload = '{\"clé\": 9, \"\\ud83d\\ude00\": \"x\", \"\\uff61\": [2]}' "
        "WHERE case_id = 'case-é' AND version = 2",),
    "two-cases": (f"DELETE FROM events {A3}",
                  "UPDATE events SET actor = 'x' WHERE case_id = 'case-d' AND version = 2"),
    "intact-but-reformatted": (
        "UPDATE events SET payload = '{\"scope\":[\"finance\"],  \"n\":1}' "
        "WHERE case_id = 'case-d' AND version = 1",),
}
SQLITE_ONLY: dict[str, tuple[str, ...]] = {
    "time": ("UPDATE events SET occurred_at = strftime('%Y-%m-%d %H:%M:%f000', occurred_at, "
             f"'+1 day') {A3}",),
    "time-other-form-same-moment": (
        "UPDATE events SET occurred_at = replace(occurred_at, ' ', 'T') || '+00:00' "
        "WHERE case_id = 'case-b'",),
    "time-seconds-only": ("UPDATE events SET occurred_at = substr(occurred_at, 1, 19) "
                          "WHERE case_id = 'case-d'",),
    "version-as-text": (f"UPDATE events SET version = 'v3' {A3}",),
    "payload-as-blob": (f"UPDATE events SET payload = CAST(payload AS BLOB) {A3}",),
    "payload-not-json": (f"UPDATE events SET payload = 'not json' {A3}",),
}
POSTGRES_ONLY: dict[str, tuple[str, ...]] = {
    "time": (f"UPDATE events SET occurred_at = occurred_at + INTERVAL '1 day' {A3}",),
    "time-microsecond": (f"UPDATE events SET occurred_at = occurred_at "
                         f"+ INTERVAL '1 microsecond' {A3}",),
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[EventStore]:
    if request.param == "sqlite":
        sqlite = open_store(f"sqlite:///{tmp_path}/cases.db")
        sqlite.migrate()
        yield sqlite
        sqlite.dispose()
    else:
        postgres, schema = postgres_store_in_new_schema()
        yield postgres
        drop_schema(postgres, schema)


def scenarios(dialect: str) -> dict[str, tuple[str, ...]]:
    return {"intact": (), **COMMON, **(SQLITE_ONLY if dialect == "sqlite" else POSTGRES_ONLY)}


@pytest.mark.parametrize("name", sorted({"intact", *COMMON, *SQLITE_ONLY, *POSTGRES_ONLY}))
def test_verify_all_names_what_the_reference_names(store: EventStore, name: str) -> None:
    statements = scenarios(store.engine.dialect.name).get(name)
    if statements is None:
        pytest.skip(f"{name} is for the other database")
    fill(store)
    tamper(store, *statements)
    try:
        expected = reference_verify_all(store)
    except ValueError:  # a payload that is not JSON: the reference cannot read it; we can,
        for workers in (1, 2):  # and say so as a verdict rather than a crash
            problems = verify_all(store, workers=workers).problems
            assert [(p.case_id, p.version, str(p.kind)) for p in problems] == [
                ("case-a", 3, "altered")]
        return
    assert verify_all(store) == expected
    assert verify_all(store, workers=2) == expected
    assert verify_all(store, batch_size=2, workers=3) == expected
    if name in ("intact", "intact-but-reformatted", "time-other-form-same-moment",
                "time-seconds-only", "payload-as-blob", "payload-key-order"):
        assert expected.ok
    elif name != "missing-case":  # a whole case gone is invisible to the chain alone
        assert not expected.ok


def test_each_kind_is_named_with_its_hashes(store: EventStore) -> None:
    fill(store)
    altered = hash_of(store, "case-a", 3)
    tamper(store, *COMMON["actor"], *COMMON["missing-first"],
           "UPDATE events SET position = 1000 WHERE case_id = 'case-c' AND version = 2",
           f"UPDATE events SET prev_hash = '{'1' * 64}', hash = '{'3' * 64}' "
           "WHERE case_id = 'case-d' AND version = 2")
    verdict = verify_all(store, workers=2)
    found = {p.case_id: p for p in verdict.problems}
    assert [p.case_id for p in verdict.problems] == ["case-a", "case-b", "case-c", "case-d"]
    assert (found["case-a"].version, found["case-a"].kind) == (3, ProblemKind.ALTERED)
    assert found["case-a"].stored_hash == altered != found["case-a"].computed_hash
    assert (found["case-b"].version, found["case-b"].kind) == (1, ProblemKind.MISSING)
    assert (found["case-c"].version, found["case-c"].kind) == (3, ProblemKind.REORDERED)
    assert (found["case-d"].version, found["case-d"].kind) == (2, ProblemKind.ALTERED)
    assert (verdict.cases, verdict.events) == (5, 20)


def test_an_empty_store_verifies(store: EventStore) -> None:
    assert verify_all(store) == verify_all(store, workers=2) == Verdict()


def test_an_in_memory_store_verifies_in_one_process() -> None:
    """Forked workers would open a new, empty in-memory database; one process must do."""
    memory = open_store("sqlite://")
    memory.migrate()
    fill(memory)
    verdict = verify_all(memory, workers=2)
    assert verdict.ok and (verdict.cases, verdict.events) == (5, 21)
    memory.dispose()
