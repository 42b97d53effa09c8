"""Checkpoints form a chain: each names the one before it and must extend it.

Each attack is done as an attacker with the database file would: drop the append-only triggers
with sqlite3, rewrite rows, and recompute the hashes forward with the store's own hash rule,
so that the events' chains alone verify. `Attacker` is shared with test_checkpoint_anchor.py.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from domain.checkpoints import (
    CHECKPOINT_STREAM,
    CaseHead,
    CheckpointRecorded,
    canonical_statement,
    checkpoint,
    merkle_root,
    statement,
    statement_hash,
)
from eventstore import EventStore, NewEvent
from eventstore.chain import GENESIS_HASH, event_hash
from eventstore.checkpoints import (
    CheckpointRefused,
    current_heads,
    load_checkpoint,
    record_checkpoint,
    statement_of,
    verify_against,
    verify_chain,
    verify_py_sha256,
)
from eventstore.verify import ProblemKind, verify_all
from tests.support import T0, new_event, run_cli

Payload = dict[str, Any]


def fill(store: EventStore) -> None:
    for case_id, count in (("case-a", 5), ("case-b", 3), ("case-c", 2)):
        store.append(case_id, 0, [new_event(case_id, n) for n in range(1, count + 1)])


def record(store: EventStore) -> Any:
    return record_checkpoint(store, event_id=str(uuid.uuid4()), at=T0,
                             actor="system:checkpoint")


class Attacker:
    """Someone who can write the SQLite file: no triggers stop them, and they know the hash
    rule (it is published), so every chain they touch verifies again afterwards."""

    def __init__(self, store: EventStore) -> None:
        assert store.engine.url.database
        self.store = store
        self.path = Path(store.engine.url.database)
        with self._db() as db:
            for trigger in ("events_no_update", "events_no_delete"):
                db.execute(f"DROP TRIGGER IF EXISTS {trigger}")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def rehash(self, case_id: str) -> None:
        """Recompute every prev_hash and hash of the case, from version 1 forward."""
        with self._db() as db:
            rows = db.execute("SELECT position, version, event_id, type, schema_version, "
                              "occurred_at, actor, payload FROM events WHERE case_id = ? "
                              "ORDER BY version", (case_id,)).fetchall()
            prev = GENESIS_HASH
            for position, version, event_id, type_, schema, occurred, actor, payload in rows:
                prev_hash, prev = prev, event_hash(
                    case_id=case_id, version=version, event_id=event_id, type=type_,
                    schema_version=schema, actor=actor, payload=json.loads(payload),
                    occurred_at=datetime.fromisoformat(occurred).replace(tzinfo=UTC),
                    prev_hash=prev)
                db.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE position = ?",
                           (prev_hash, prev, position))

    def rewrite(self, case_id: str, version: int, change: Callable[[Payload], Payload]) -> None:
        """Change one event's payload, then re-hash the case forward."""
        with self._db() as db:
            [(payload,)] = db.execute("SELECT payload FROM events WHERE case_id = ? AND "
                                      "version = ?", (case_id, version)).fetchall()
            db.execute("UPDATE events SET payload = ? WHERE case_id = ? AND version = ?",
                       (json.dumps(change(json.loads(payload))), case_id, version))
        self.rehash(case_id)

    def truncate(self, case_id: str, keep: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM events WHERE case_id = ? AND version > ?", (case_id, keep))

    def delete(self, case_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM events WHERE case_id = ?", (case_id,))

    def swap(self, first: str, second: str) -> None:
        """Each case's events relabelled as the other's, then both re-hashed."""
        with self._db() as db:
            db.execute("UPDATE events SET case_id = '~swap' WHERE case_id = ?", (first,))
            db.execute("UPDATE events SET case_id = ? WHERE case_id = ?", (first, second))
            db.execute("UPDATE events SET case_id = ? WHERE case_id = '~swap'", (second,))
        self.rehash(first)
        self.rehash(second)

    def rewrite_checkpoints(self) -> None:
        """Make every checkpoint row agree with the events as they are now: heads, roots and
        the links between them recomputed, and the stream re-hashed."""
        heads_now, _ = current_heads(self.store)
        newest = {head.case_id: head.version for head in heads_now}
        with self._db() as db:
            at = {(c, v): h for c, v, h in db.execute(
                "SELECT case_id, version, hash FROM events")}
            rows = db.execute("SELECT position, version, occurred_at, payload FROM events "
                              "WHERE case_id = ? ORDER BY version",
                              (CHECKPOINT_STREAM,)).fetchall()
            previous: str | None = None
            for position, number, occurred, payload in rows:
                event = CheckpointRecorded.model_validate(json.loads(payload))
                heads = [CaseHead(case_id=h.case_id, version=min(h.version, newest[h.case_id]),
                                  hash=at[(h.case_id, min(h.version, newest[h.case_id]))])
                         for h in event.heads if h.case_id in newest]
                forged = event.model_copy(update={"heads": heads, "previous": previous,
                                                  "merkle_root": merkle_root(heads)})
                previous = statement_hash(statement(
                    number, datetime.fromisoformat(occurred).replace(tzinfo=UTC), forged))
                db.execute("UPDATE events SET payload = ? WHERE position = ?",
                           (json.dumps(forged.payload()), position))
        self.rehash(CHECKPOINT_STREAM)

    def record_checkpoint_by_hand(self) -> None:
        """What record_checkpoint does, without its refusal: a fresh checkpoint of the heads as
        they are now, linked to the newest one."""
        newest = load_checkpoint(self.store)
        assert newest is not None
        heads, last = current_heads(self.store)
        event = checkpoint(heads, last, previous=statement_hash(statement_of(newest)),
                           verify_py_sha256=verify_py_sha256())
        self.store.append(CHECKPOINT_STREAM, newest.version, [NewEvent.of(
            event, event_id=str(uuid.uuid4()), occurred_at=T0, actor="system:checkpoint")])


def renamed(payload: Payload) -> Payload:
    return {**payload, "note": "nothing to see here"}


def test_each_checkpoint_names_the_statement_of_the_one_before(sqlite_store: EventStore) -> None:
    fill(sqlite_store)
    first = record(sqlite_store)
    sqlite_store.append("case-c", 2, [new_event("case-c", 3)])
    second = record(sqlite_store)
    assert first.payload["previous"] is None
    assert second.payload["previous"] == statement_hash(statement_of(first))
    assert second.payload["verify_py_sha256"] == verify_py_sha256()
    assert first.schema_version == second.schema_version == 2
    assert verify_chain(sqlite_store) == []


def test_rewrite_and_rehash_then_a_fresh_checkpoint_is_caught_through_the_chain(
    sqlite_store: EventStore, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill(sqlite_store)
    record(sqlite_store)
    sqlite_store.append("case-a", 5, [new_event("case-a", 6)])
    attacker = Attacker(sqlite_store)
    attacker.rewrite("case-a", 2, renamed)
    assert verify_all(sqlite_store).ok, "a re-hashed chain verifies alone"
    with pytest.raises(CheckpointRefused, match=r"no longer extends checkpoint 1.*case-a"):
        record(sqlite_store)
    attacker.record_checkpoint_by_hand()
    newest = load_checkpoint(sqlite_store)
    assert newest is not None and newest.version == 2
    assert verify_against(sqlite_store, newest) == [], "the fresh checkpoint alone is fooled"
    found = {(p.case_id, p.version, p.kind): p.detail for p in verify_chain(sqlite_store)}
    assert found[("case-a", 5, ProblemKind.ALTERED)] == (
        "version 5 is not the event checkpoint 1 saw")
    assert found[(CHECKPOINT_STREAM, 2, ProblemKind.BROKEN_LINK)] == (
        "checkpoint 2 does not extend checkpoint 1: it vouches for case case-a at version 6 "
        "on a chain whose version 5 is not the event checkpoint 1 saw")
    monkeypatch.setenv("CASES_DATABASE_URL", str(sqlite_store.engine.url))
    assert run_cli(["verify", "--against-checkpoint", "--no-temporal"]) == 3
    said = capsys.readouterr().out
    assert "TAMPERED: case checkpoints version 2: broken_link: checkpoint 2 does not extend " \
           "checkpoint 1" in said
    assert "case case-a version 5: altered" in said


def test_a_fresh_checkpoint_after_a_deleted_case_does_not_extend_the_one_before(
    sqlite_store: EventStore,
) -> None:
    fill(sqlite_store)
    record(sqlite_store)
    attacker = Attacker(sqlite_store)
    attacker.delete("case-b")
    with pytest.raises(CheckpointRefused, match="case-b"):
        record(sqlite_store)
    attacker.record_checkpoint_by_hand()
    details = [p.detail for p in verify_chain(sqlite_store)]
    assert ("checkpoint 2 does not extend checkpoint 1: case case-b, seen at version 3 "
            "before, is missing from it") in details
    assert "the whole case is gone; checkpoint 1 saw it at version 3" in details


def test_a_fresh_checkpoint_after_a_truncated_case_does_not_extend_the_one_before(
    sqlite_store: EventStore,
) -> None:
    fill(sqlite_store)
    record(sqlite_store)
    attacker = Attacker(sqlite_store)
    attacker.truncate("case-a", 3)
    attacker.record_checkpoint_by_hand()
    details = [p.detail for p in verify_chain(sqlite_store)]
    assert ("checkpoint 2 does not extend checkpoint 1: it saw case case-a at version 3, "
            "before the version 5 seen before") in details
    assert "truncated: checkpoint 1 saw version 5, the store now ends at version 3" in details


def test_a_checkpoint_relinked_to_another_predecessor_is_named(sqlite_store: EventStore) -> None:
    fill(sqlite_store)
    record(sqlite_store)
    record(sqlite_store)
    attacker = Attacker(sqlite_store)
    with sqlite3.connect(attacker.path) as db:
        db.execute("UPDATE events SET payload = json_set(payload, '$.previous', ?) "
                   "WHERE case_id = ? AND version = 2", ("ab" * 32, CHECKPOINT_STREAM))
    attacker.rehash(CHECKPOINT_STREAM)
    assert verify_all(sqlite_store).ok
    [problem] = verify_chain(sqlite_store)
    assert (problem.case_id, problem.version, problem.kind) == (
        CHECKPOINT_STREAM, 2, ProblemKind.BROKEN_LINK)
    assert problem.detail.startswith("checkpoint 2 does not link to checkpoint 1")


def test_checkpoints_from_before_the_chain_read_as_unlinked_and_the_chain_goes_on(
    sqlite_store: EventStore,
) -> None:
    fill(sqlite_store)
    heads, last = current_heads(sqlite_store)
    v1 = {"heads": [h.model_dump() for h in heads], "merkle_root": merkle_root(heads),
          "last_position": last}
    sqlite_store.append(CHECKPOINT_STREAM, 0, [NewEvent(
        event_id=str(uuid.uuid4()), type="CheckpointRecorded", schema_version=1,
        occurred_at=T0, actor="system:checkpoint", payload=v1)])
    old = load_checkpoint(sqlite_store)
    assert old is not None
    assert statement_of(old)["previous"] is None
    assert statement_of(old)["verify_py_sha256"] is None
    sqlite_store.append("case-c", 2, [new_event("case-c", 3)])
    new = record(sqlite_store)
    assert new.payload["previous"] == statement_hash(statement_of(old))
    assert verify_chain(sqlite_store) == []


@pytest.mark.postgres
def test_a_case_deleted_by_the_table_owner_is_caught_along_the_chain_on_postgres(
    postgres_store: EventStore,
) -> None:
    fill(postgres_store)
    record(postgres_store)
    postgres_store.append("case-c", 2, [new_event("case-c", 3)])
    record(postgres_store)
    assert verify_chain(postgres_store) == []
    with postgres_store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE events DISABLE TRIGGER events_append_only")
        conn.exec_driver_sql("DELETE FROM events WHERE case_id = 'case-b'")
    assert verify_all(postgres_store).ok
    details = [p.detail for p in verify_chain(postgres_store)]
    assert details == ["the whole case is gone; checkpoint 1 saw it at version 3"]


def test_a_statement_is_canonicalised_as_rfc_8785_says() -> None:
    heads = [CaseHead(case_id=c, version=3, hash="ab" * 32)
             for c in ("cpc-E06000001-2026", "cpc-Ynys Môn-\u00e9\u2028\x7f", "emoji-\U0001f600")]
    said = statement(7, T0, checkpoint(heads, 42, previous="cd" * 32,
                                       verify_py_sha256="ef" * 32))
    assert canonical_statement(said) == rfc8785.dumps(said)
    odd = {**said, "last_position": 1.5, "\u00e9": 1}
    assert canonical_statement(odd) == rfc8785.dumps(odd), "floats and other keys: rfc8785"
