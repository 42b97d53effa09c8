"""Never twice: an action sent again with the same request id (the API's Idempotency-Key, the
update's id in Temporal) answers as the first did and records nothing new, across a worker
killed with SIGKILL too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from application.journey import demo_team, journey
from domain import commands as cmd
from domain.vocabulary import CaseKind
from eventstore import open_store
from tests.api_support import Api, scoped_case
from tests.support import register_council
from tests.test_worker_crash import TASK_QUEUE, kill, start_worker
from workflows.messages import CaseView, workflow_id_for

KEY = {"Idempotency-Key": "retry-me-0001"}


def _types(api: Api, case_id: str) -> list[str]:
    return [event.type for event in api.world.store.read_case(case_id)]


async def test_the_same_action_sent_twice_with_one_key_is_recorded_once(api: Api) -> None:
    case_id = await scoped_case(api)
    team = [p.model_dump() for p in demo_team("E09000008")]
    headers = {"Authorization": f"Bearer {api.tokens['officer']}", **KEY}
    url = f"/api/cases/{case_id}/actions"
    first = await api.http.post(url, json={"action": "propose_team", "team": team},
                                headers=headers)
    again = await api.http.post(url, json={"action": "propose_team", "team": team},
                                headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert _types(api, case_id).count("ApprovalRequested") == 1
    without = await api.act("officer", case_id, action="propose_team", team=team)
    assert without.status_code == 409  # a new request: the rules see a second proposal
    assert _types(api, case_id).count("ApprovalRequested") == 1


async def test_one_key_from_two_users_is_two_requests(api: Api) -> None:
    case_id = await scoped_case(api)
    team = [p.model_dump() for p in demo_team("E09000008")]
    answers = [await api.http.post(
        f"/api/cases/{case_id}/actions", json={"action": "propose_team", "team": team},
        headers={"Authorization": f"Bearer {api.tokens[who]}", **KEY})
        for who in ("officer", "adviser")]
    assert [a.status_code for a in answers] == [200, 409]  # the adviser's is a new request
    assert _types(api, case_id).count("ApprovalRequested") == 1


async def test_a_start_sent_twice_with_one_key_opens_one_case(api: Api) -> None:
    body = {"council": "E09000008", "kind": "corporate_peer_challenge",
            "reason": "Budget gap flagged by the s151 officer", "scope": ["finance"]}
    headers = {"Authorization": f"Bearer {api.tokens['officer']}", **KEY}
    first = await api.http.post("/api/cases", json=body, headers=headers)
    api.leave_none_running("improvement-case-cpc-E09000008")
    again = await api.http.post("/api/cases", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["state"]["case_id"] == first.json()["state"]["case_id"]
    other = await api.http.post("/api/cases", json=body, headers={
        "Authorization": f"Bearer {api.tokens['officer']}", "Idempotency-Key": "another-key"})
    assert other.status_code == 409 and "already has an open" in other.json()["detail"]
    assert len(_types(api, first.json()["state"]["case_id"])) == 1


async def test_a_malformed_key_is_refused_by_name_and_records_nothing(api: Api) -> None:
    case_id = await scoped_case(api)
    for bad in ("", "x" * 201):
        answer = await api.http.post(
            f"/api/cases/{case_id}/actions", json={"action": "give_feedback"},
            headers={"Authorization": f"Bearer {api.tokens['officer']}",
                     "Idempotency-Key": bad})
        assert answer.status_code == 422 and "Idempotency-Key" in answer.text, answer.text
    assert len(_types(api, case_id)) == 2


async def _polled(env: WorkflowEnvironment, task_queue: str) -> None:
    """Wait for a worker to poll `task_queue`: Temporal refuses an update (and an update with
    start) while none has polled it lately."""
    request = DescribeTaskQueueRequest(namespace=env.client.namespace,
                                       task_queue=TaskQueue(name=task_queue))
    deadline = time.monotonic() + 60
    while not (await env.client.workflow_service.describe_task_queue(request)).pollers:
        assert time.monotonic() < deadline, "no worker polled the task queue"
        await asyncio.sleep(0.2)


async def _once_served(send: Callable[[], Awaitable[CaseView]]) -> CaseView:
    """Send until a worker polls again: Temporal refuses an update while no worker has polled
    the task queue lately (as the API answers 503 then, and `cases` sends again)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await send()
        except RPCError as error:
            if error.status != RPCStatusCode.FAILED_PRECONDITION or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_the_same_request_id_after_a_worker_sigkill_records_nothing_new(
    dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Temporal keeps the update's outcome with the case's history, not in the worker: a
    retry after the worker died answers from it, and no second event is written."""
    database = tmp_path / "cases.db"
    store = open_store(f"sqlite:///{database}")
    store.migrate()
    register_council(store, "E06000014")
    cases = CaseClient(dev_server_env.client, task_queue=TASK_QUEUE, store=store)
    steps = [s for s in journey("E06000014", datetime.now(UTC).date())
             if isinstance(s, cmd.ScopeCase)]
    workers = [start_worker(dev_server_env, database)]
    try:
        await _polled(dev_server_env, TASK_QUEUE)
        case_id = (await cases.start(council="E06000014",
                                     kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                     reason="Idempotency test", actor="officer:once",
                                     request_id="start-once")).state.case_id
        first = await cases.act(case_id, steps[0], request_id="scope-once")
        kill(workers[-1])
        workers.append(start_worker(dev_server_env, database))
        again = await _once_served(lambda: cases.act(case_id, steps[0], request_id="scope-once"))
        reopened = await cases.start(council="E06000014",
                                     kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                     reason="Idempotency test", actor="officer:once",
                                     request_id="start-once")
        assert again == first and reopened.state.case_id == case_id
        assert [e.type for e in store.read_case(case_id)] == ["CaseRequested", "CaseScoped"]
    finally:
        for worker in workers:
            kill(worker)
        await dev_server_env.client.get_workflow_handle(
            workflow_id_for(CaseKind.CORPORATE_PEER_CHALLENGE, "E06000014")).terminate()
        store.dispose()
