"""PostgreSQL unreachable for 30 s while cases are driven: appends retry, cases resume."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import journey
from domain import commands as cmd
from domain.peers import demo_pool
from domain.vocabulary import CaseKind, Stage, VisitMode
from eventstore import EventStore, open_store
from eventstore.deliveries import notices_for_case
from eventstore.peers import import_pool
from eventstore.verify import verify_all
from tests.conftest import POSTGRES_URL, drop_schema, need_postgres, new_postgres_schema
from tests.support import register_council
from tests.tcp_proxy import CuttableProxy
from worker import build_worker
from workflows.messages import workflow_id_for_case

OUTAGE_SECONDS = 30


@pytest_asyncio.fixture
async def store_behind_proxy() -> AsyncIterator[tuple[EventStore, CuttableProxy]]:
    need_postgres()
    url = make_url(POSTGRES_URL)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    schema = new_postgres_schema()
    store = open_store(url.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
                       connect_args={"options": f"-csearch_path={schema}", "connect_timeout": 3})
    store.migrate()
    yield store, proxy
    drop_schema(store, schema)  # the store disposed first, as the proxy still runs
    proxy.stop()


@pytest.mark.postgres
@pytest.mark.slow
async def test_postgres_unreachable_for_30_seconds_loses_nothing(
    dev_server_env: WorkflowEnvironment, store_behind_proxy: tuple[EventStore, CuttableProxy]
) -> None:
    """Promise: while the database is unreachable, accepted actions wait and retry with
    backoff; when it returns they are stored once each, with their notifications once."""
    store, proxy = store_behind_proxy
    task_queue = f"pg-outage-{uuid.uuid4().hex[:6]}"
    cases = CaseClient(dev_server_env.client, task_queue=task_queue, store=store)
    async with build_worker(dev_server_env.client, store, task_queue):
        councils = [register_council(store, c) for c in ("E06000003", "E06000004", "E06000010")]
        case_ids = [(await cases.start(council=c, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                       reason="Outage test", actor="officer:a")).state.case_id
                    for c in councils]
        steps = {c: list(journey(c, datetime.now(UTC).date())) for c in councils}
        # Up to the visit's scheduling (the team proposed, approved and confirmed); the
        # scheduling itself is the action sent while the database is cut off.
        cut_at = next(i for i, step in enumerate(steps[councils[0]])
                      if isinstance(step, cmd.ScheduleVisit))
        for council, case_id in zip(councils, case_ids, strict=True):
            for step in steps[council][:cut_at]:
                await cases.act(case_id, step)

        proxy.cut()
        during = [asyncio.create_task(cases.act(case_id, steps[council][cut_at]))
                  for council, case_id in zip(councils, case_ids, strict=True)]
        await asyncio.sleep(OUTAGE_SECONDS)
        assert not any(task.done() for task in during), "nothing can be stored while cut"
        proxy.restore()
        answers = await asyncio.wait_for(asyncio.gather(*during), timeout=120)
        assert all(a.state.stage == Stage.VISIT_SCHEDULED for a in answers)

        for council, case_id in zip(councils, case_ids, strict=True):
            for step in steps[council][cut_at + 1:]:
                view = await cases.act(case_id, step)
            assert view.state.stage == Stage.CLOSED

    # The request, one event per action, and the hand-picked team's approval (recorded with
    # the team it proposes): 17 events a case.
    recorded = 1 + len(steps[councils[0]]) + 1
    assert recorded == 17
    for case_id in case_ids:
        stored = store.read_case(case_id)
        assert [e.version for e in stored] == list(range(1, recorded + 1))
        assert len({e.event_id for e in stored}) == recorded
        notices = notices_for_case(store, case_id)
        assert len(notices) == len({(n.event_id, n.recipient) for n in notices}) > 0
    assert verify_all(store).ok


SELECTION_OUTAGE_SECONDS = 20
"""Longer than the selection activity's retries used to last (5 attempts, about 15 s), after
which a selection was answered as refused, the code for the rules saying no."""


@pytest.mark.postgres
@pytest.mark.slow
async def test_a_selection_during_a_long_outage_waits_and_is_never_refused(
    dev_server_env: WorkflowEnvironment, store_behind_proxy: tuple[EventStore, CuttableProxy]
) -> None:
    store, proxy = store_behind_proxy
    task_queue = f"pg-selection-{uuid.uuid4().hex[:6]}"
    cases = CaseClient(dev_server_env.client, task_queue=task_queue, store=store)
    today = datetime.now(UTC).date()
    council = register_council(store, "E06000001")
    import_pool(store, demo_pool(today), "demo pool")
    async with build_worker(dev_server_env.client, store, task_queue):
        case_id = (await cases.start(council=council, kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                     reason="Outage test", actor="officer:a")).state.case_id
        await cases.act(case_id, cmd.ScopeCase(actor="officer:a", scope=["finance"],
                                               visit_mode=VisitMode.ON_SITE))
        proxy.cut()
        selecting = asyncio.create_task(cases.act(case_id, cmd.SelectPeerTeam(
            actor="officer:a", visit_from=today + timedelta(days=30),
            visit_to=today + timedelta(days=33))))
        await asyncio.sleep(SELECTION_OUTAGE_SECONDS)
        assert not selecting.done(), "nothing can be read or stored while cut"
        proxy.restore()
        view = await asyncio.wait_for(selecting, timeout=120)
        assert view.state.team_selected_by == "engine" and view.state.proposed_team
        await dev_server_env.client.get_workflow_handle(
            workflow_id_for_case(case_id)).terminate()
