"""The Temporal dev server restarted on its on-disk database: open cases and timers survive."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from application.cases import CaseClient
from application.journey import journey
from cli.dev_server import dev_server
from domain import commands as cmd
from domain.deadlines import DeadlinePolicy, DeadlineRules
from domain.policies import PolicyBook
from domain.vocabulary import CaseKind, DeadlineName, Stage
from eventstore import EventStore
from eventstore.verify import verify
from worker import build_worker

LONG = timedelta(days=365)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
async def test_a_restarted_server_keeps_open_cases_and_their_timers(
    sqlite_store: EventStore, tmp_path: Path
) -> None:
    """Promise: a case and its pending deadline outlive a restart of the Temporal server;
    the deadline still lapses and escalates, once, after the restart."""
    port, db_file = free_port(), tmp_path / "temporal.db"
    policy = DeadlinePolicy(default=DeadlineRules(
        report_publication=timedelta(seconds=20), factual_accuracy_check=LONG,
        action_plan_publication=LONG, progress_review=LONG, progress_review_publication=LONG))
    policies = PolicyBook(named={"restart-test": policy})
    async with dev_server(port, db_file) as client, build_worker(client, sqlite_store,
                                                                   policies=policies):
        cases = CaseClient(client, store=sqlite_store)
        view = await cases.start(council="E10000014", kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 reason="Restart test", actor="officer:a",
                                 deadline_policy="restart-test")
        case_id = view.state.case_id
        for step in journey("E10000014", datetime.now(UTC).date()):
            if isinstance(step, cmd.PublishReport):
                break
            view = await cases.act(case_id, step)
        assert view.state.stage == Stage.REPORT_FINAL
        assert view.next_deadline is not None
        assert view.next_deadline.deadline == DeadlineName.REPORT_PUBLICATION

    async with dev_server(port, db_file) as client, build_worker(client, sqlite_store):
        cases = CaseClient(client, store=sqlite_store)
        assert (await cases.view(case_id)).state.stage == Stage.REPORT_FINAL
        deadline = time.monotonic() + 90
        while not any(e.type == "EscalationRaised" for e in sqlite_store.read_case(case_id)):
            assert time.monotonic() < deadline, "the timer did not survive the restart"
            await asyncio.sleep(0.5)
        view = await cases.view(case_id)
        assert [e.level for e in view.state.escalations] == [1]
        types = [e.type for e in sqlite_store.read_case(case_id)]
        assert types.count("DeadlineMissed") == 1
        view = await cases.act(case_id, cmd.PublishReport(
            actor="council:E10000014", published_on=datetime.now(UTC).date(),
            url="https://example.org/report"))
        assert view.state.escalations == () and view.state.escalations_resolved == 1
    assert verify(sqlite_store, case_id).ok
