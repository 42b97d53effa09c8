"""Update payloads fuzzed straight at the workflow, past any client-side check: every one is
refused with a message, and neither the history nor the store changes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from application.cases import CaseClient
from cli.actions import ACTION_NAMES
from domain.vocabulary import CaseKind
from eventstore import EventStore
from tests.support import register_council
from worker import build_worker
from workflows.messages import workflow_id_for_case

NASTY = st.sampled_from(["", "x" * 5000, "\x00", "\x07", "'; DROP TABLE events; --",
                         "9999-12-31", "0001-01-01", "2026-02-30", "E99999999", "☃" * 50,
                         "officer:a", "council:E06000005", "on_site", "ab" * 32,
                         "case_officer:a", "lga_adviser:b", "council:E06000005:sam",
                         "withdraw-2", "propose-team-2"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | NASTY
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
FIELDS = ["actor", "case_id", "council", "kind", "reason", "scope", "visit_mode", "team",
          "peer_id", "mode", "starts_on", "ends_on", "started_on", "ended_on", "given_on",
          "summary", "document_sha256", "sent_on", "comments", "published_on", "url",
          "visit_from", "visit_to", "request_id", "deadline_policy", "four_eyes"]
# At `requested`, a well-formed `scope` would rightly be accepted, and a well-formed
# `withdraw` recorded as a request for approval (the four-eyes rule): both left out.
ACTIONS = sorted(ACTION_NAMES - {"scope", "withdraw"})


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    payload: dict[str, Any] = {"action": draw(st.sampled_from([*ACTIONS, "nope", ""]))}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        payload[field] = draw(JSON)
    if draw(st.booleans()):
        payload["actor"] = draw(st.sampled_from(["officer:a", "council:E06000005",
                                                 "case_officer:a", "lga_adviser:b",
                                                 "council:E06000005:sam"]))
    return payload


def collect(count: int) -> list[Any]:
    """Hypothesis draws the payloads; the async test sends them (hypothesis is synchronous)."""
    drawn: list[Any] = []

    @settings(max_examples=count, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(payloads())
    def draw_one(payload: Any) -> None:
        drawn.append(payload)

    draw_one()
    return drawn


@pytest.mark.slow
async def test_fuzzed_update_payloads_are_refused_and_change_nothing(
    dev_server_env: WorkflowEnvironment, sqlite_store: EventStore
) -> None:
    task_queue = f"fuzz-{uuid.uuid4().hex[:6]}"
    register_council(sqlite_store, "E06000005")  # a case opens only for a council it knows
    async with build_worker(dev_server_env.client, sqlite_store, task_queue):
        cases = CaseClient(dev_server_env.client, task_queue=task_queue, store=sqlite_store)
        view = await cases.start(council="E06000005", kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                                 reason="Fuzz target", actor="officer:fuzz")
        handle = dev_server_env.client.get_workflow_handle(
            workflow_id_for_case(view.state.case_id))
        history = len((await handle.fetch_history()).events)
        position = sqlite_store.last_position()
        for payload in collect(300):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update("act", payload)
            assert str(refused.value.cause), payload
        assert len((await handle.fetch_history()).events) == history
        assert sqlite_store.last_position() == position
        assert (await cases.view(view.state.case_id)).state.version == 1
