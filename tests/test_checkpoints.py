"""Checkpoints catch what a chain cannot: a truncated tail and a whole case deleted."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from application.checkpoints import SCHEDULE_ID, schedule_checkpoints
from domain.checkpoints import CHECKPOINT_STREAM, CaseHead, merkle_root
from eventstore import EventStore
from eventstore.checkpoint_files import (
    generate_key_pair,
    read_checkpoint_file,
    verify_checkpoint_signature,
)
from eventstore.checkpoints import load_checkpoint, record_checkpoint, verify_against
from eventstore.deliveries import notices_for_case
from eventstore.verify import ProblemKind, verify_all
from tests.conftest import CaseWorld
from tests.support import T0, new_event
from worker import build_worker
from workflows.checkpoints import RecordCheckpoint


def fill(store: EventStore) -> None:
    for case_id, count in (("case-a", 5), ("case-b", 3), ("case-c", 2)):
        store.append(case_id, 0, [new_event(case_id, n) for n in range(1, count + 1)])


def drop_triggers(store: EventStore, sql: str) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS events_no_delete")
        conn.exec_driver_sql(sql)


def test_the_merkle_root_depends_on_every_head_and_not_on_order() -> None:
    heads = [CaseHead(case_id=c, version=v, hash=h * 64)
             for c, v, h in (("a", 1, "1"), ("b", 2, "2"), ("c", 3, "3"))]
    root = merkle_root(heads)
    assert merkle_root(list(reversed(heads))) == root
    assert merkle_root(heads[:2]) != root
    changed = [*heads[:2], CaseHead(case_id="c", version=4, hash="3" * 64)]
    assert merkle_root(changed) != root


def test_a_truncated_tail_is_caught_only_against_a_checkpoint(sqlite_store: EventStore) -> None:
    fill(sqlite_store)
    point = record_checkpoint(sqlite_store, event_id=str(uuid.uuid4()), at=T0,
                              actor="system:checkpoint", publish_to="auditors")
    assert verify_against(sqlite_store, point) == []
    drop_triggers(sqlite_store, "DELETE FROM events WHERE case_id = 'case-a' AND version >= 4")
    assert verify_all(sqlite_store).ok, "a chain alone cannot see a truncated tail"
    [problem] = verify_against(sqlite_store, point)
    assert (problem.case_id, problem.version, problem.kind) == ("case-a", 4, ProblemKind.MISSING)
    assert "truncated" in problem.detail and "version 5" in problem.detail


def test_a_whole_deleted_case_is_caught_against_a_checkpoint(sqlite_store: EventStore) -> None:
    fill(sqlite_store)
    point = record_checkpoint(sqlite_store, event_id=str(uuid.uuid4()), at=T0,
                              actor="system:checkpoint")
    drop_triggers(sqlite_store, "DELETE FROM events WHERE case_id = 'case-b'")
    assert verify_all(sqlite_store).ok
    [problem] = verify_against(sqlite_store, point)
    assert problem.case_id == "case-b" and "whole case is gone" in problem.detail


def test_later_events_are_fine_and_an_altered_checkpoint_is_caught(
    sqlite_store: EventStore,
) -> None:
    fill(sqlite_store)
    point = record_checkpoint(sqlite_store, event_id=str(uuid.uuid4()), at=T0,
                              actor="system:checkpoint")
    sqlite_store.append("case-c", 2, [new_event("case-c", 3)])
    assert verify_against(sqlite_store, point) == []
    with sqlite_store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER events_no_update")
        conn.exec_driver_sql(f"UPDATE events SET payload = replace(payload, '\"case-a\"', "
                             f"'\"case-z\"') WHERE case_id = '{CHECKPOINT_STREAM}'")
    kinds = {(p.case_id, p.kind) for p in verify_against(sqlite_store, point)}
    assert (CHECKPOINT_STREAM, ProblemKind.ALTERED) in kinds


def test_recording_is_idempotent_and_published_once(sqlite_store: EventStore) -> None:
    fill(sqlite_store)
    event_id = str(uuid.uuid4())
    first = record_checkpoint(sqlite_store, event_id=event_id, at=T0, actor="system:checkpoint",
                              publish_to="auditors")
    again = record_checkpoint(sqlite_store, event_id=event_id, at=T0, actor="system:checkpoint",
                              publish_to="auditors")
    assert first == again
    assert [e.version for e in sqlite_store.read_case(CHECKPOINT_STREAM)] == [1]
    [notice] = notices_for_case(sqlite_store, CHECKPOINT_STREAM)
    assert first.payload["merkle_root"] in notice.subject


async def test_the_checkpoint_workflow_records_every_head_and_publishes_it_signed(
    case_world: CaseWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fill(case_world.store)
    key = tmp_path / "signing.key"
    generate_key_pair(key)
    monkeypatch.setenv("CASES_SIGNING_KEY", str(key))
    monkeypatch.setenv("CASES_CHECKPOINT_DIR", str(tmp_path / "published"))
    summary = await case_world.env.client.execute_workflow(
        RecordCheckpoint.run, id=f"checkpoint-{uuid.uuid4()}", task_queue=case_world.task_queue)
    assert (summary.checkpoint, summary.cases) == (1, 3)
    point = load_checkpoint(case_world.store)
    assert point is not None and point.payload["merkle_root"] == summary.merkle_root
    assert summary.path == str(tmp_path / "published" / "checkpoint-000001.json")
    statement, signature, _ = read_checkpoint_file(Path(summary.path))
    assert statement["merkle_root"] == summary.merkle_root
    assert verify_checkpoint_signature(statement, signature, Path(f"{key}.pub").read_bytes())


@pytest.mark.slow
async def test_the_schedule_records_checkpoints_on_the_dev_server(
    dev_server_env: WorkflowEnvironment, sqlite_store: EventStore
) -> None:
    fill(sqlite_store)
    client: Client = dev_server_env.client
    task_queue = f"checkpoints-{uuid.uuid4().hex[:6]}"
    async with build_worker(client, sqlite_store, task_queue):
        await schedule_checkpoints(client, timedelta(hours=1), task_queue)
        handle = client.get_schedule_handle(SCHEDULE_ID)
        try:
            await handle.trigger()
            for _ in range(100):
                if load_checkpoint(sqlite_store) is not None:
                    break
                await asyncio.sleep(0.1)
            point = load_checkpoint(sqlite_store)
            assert point is not None and len(point.payload["heads"]) == 3
        finally:
            await handle.delete()
