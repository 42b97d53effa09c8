"""A worker killed with SIGKILL mid-journey: the case finishes, nothing duplicated or lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import journey
from domain import commands as cmd
from domain.vocabulary import CaseKind, Stage
from eventstore import open_store
from eventstore.deliveries import notices_for_case
from eventstore.verify import verify_all
from tests.support import register_council

BIN = Path(sys.executable).parent
TASK_QUEUE = "crash-test"


def start_worker(env: WorkflowEnvironment, database: Path,
                 pause_after_append: float = 0) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
               "CASES_DATABASE_URL": f"sqlite:///{database}",
               "CASES_FAULT_PAUSE_AFTER_APPEND": str(pause_after_append)}
    return subprocess.Popen([str(BIN / "cases-worker"), "--task-queue", TASK_QUEUE],
                            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def test_sigkill_mid_journey_and_mid_append_loses_and_duplicates_nothing(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Promise: an accepted step is stored exactly once, even when the worker dies idle in
    the middle of a journey, or after the store committed a step but before the workflow
    learned so (the retry with the same event ids is an idempotent no-op)."""
    database = tmp_path / "cases.db"
    store = open_store(f"sqlite:///{database}")
    store.migrate()
    register_council(store, "E06000002")  # a case opens only for a council it knows
    cases = CaseClient(dev_server_env.client, task_queue=TASK_QUEUE, store=store)
    steps = list(journey("E06000002", datetime.now(UTC).date()))
    visit = next(i for i, step in enumerate(steps) if isinstance(step, cmd.RecordVisit))
    visited = visit + 3  # the request, the actions before it, the team's approval, the visit
    workers = [start_worker(dev_server_env, database)]
    try:
        view = await cases.start(council="E06000002", kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 reason="Crash test", actor="officer:crash")
        case_id = view.state.case_id
        for step in steps[:visit]:
            await cases.act(case_id, step)
        kill(workers[-1])  # idle, mid-journey
        workers.append(start_worker(dev_server_env, database, pause_after_append=30))
        in_flight = asyncio.create_task(cases.act(case_id, steps[visit]))
        deadline = time.monotonic() + 60
        while store.head(case_id)[0] < visited:  # committed; the activity now pauses
            assert time.monotonic() < deadline, "the append never committed"
            await asyncio.sleep(0.1)
        kill(workers[-1])  # between the store's commit and the workflow's knowing
        workers.append(start_worker(dev_server_env, database))
        view = await asyncio.wait_for(in_flight, timeout=120)
        assert view.state.stage == Stage.VISITED and view.state.version == visited
        for step in steps[visit + 1:]:
            view = await asyncio.wait_for(cases.act(case_id, step), timeout=120)
        assert view.state.stage == Stage.CLOSED
    finally:
        for process in workers:
            kill(process)

    stored = store.read_case(case_id)
    # the request, one event per action, and the approved team beside its approval
    assert [e.version for e in stored] == list(range(1, len(steps) + 3))
    assert len({e.event_id for e in stored}) == len(stored)
    assert stored[0].type == "CaseRequested" and stored[-1].type == "CaseClosed"
    assert verify_all(store).ok
    notices = notices_for_case(store, case_id)
    assert len({(n.event_id, n.recipient) for n in notices}) == len(notices)
