"""Replay recorded case histories against today's workflow code.

A case workflow lives for a year or more; a worker deployed mid-case must replay its history
exactly. Every `tests/histories/*.json` (written by tests/histories/record_histories.py) is
replayed here; a change to the workflow that would make a running case non-deterministic
fails this test. The last test proves that it would: a workflow that does one thing more
before its first append is caught on every recorded history.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from runtime.converter import DATA_CONVERTER
from workflows.improvement_case import ImprovementCase
from workflows.messages import CaseStart, CaseView, workflow_id_for_case

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    """The history in `path`, under the workflow id of the case it started."""
    events = WorkflowHistory.from_json("unknown", path.read_text()).events
    started = events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "ImprovementCase", path
    start = DATA_CONVERTER.payload_converter.from_payload(started.input.payloads[0],
                                                                   CaseStart)
    return WorkflowHistory(workflow_id_for_case(start.request.case_id), events)


def test_there_are_histories_to_replay() -> None:
    names = {path.stem for path in HISTORIES}
    assert {"full_journey", "lapse_and_escalate"} <= names, names
    assert {"full_journey.only-changes", "lapse_and_escalate.only-changes"} <= names, names
    assert "peer_selection" in names, names
    assert {"full_journey.alarms", "lapse_and_escalate.alarms", "peer_selection.alarms"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_todays_workflow_replays_the_recorded_history(path: Path) -> None:
    history = load(path)
    replayer = Replayer(workflows=[ImprovementCase], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


@workflow.defn(name="ImprovementCase")
class DriftedCase(ImprovementCase):
    """Today's workflow with one change that is not replay-safe: a timer before the request."""

    @workflow.run
    async def run(self, start: CaseStart) -> CaseView:
        await workflow.sleep(1)
        return await super().run(start)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_non_deterministic_change_is_caught(path: Path) -> None:
    replayer = Replayer(workflows=[DriftedCase], data_converter=DATA_CONVERTER,
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(path))


BEFORE_ALARMS = [p for p in HISTORIES if not p.stem.endswith(".alarms")]
"""Every generation recorded before the newest patch (DEADLINE_ALARMS)."""


@pytest.mark.parametrize("path", BEFORE_ALARMS, ids=[p.stem for p in BEFORE_ALARMS])
async def test_the_patches_are_what_keeps_old_cases_replaying(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases started before a patch (timer kept, search attributes, deadline alarms) replay
    only because the workflow asks `workflow.patched`: with every patch forced on, their
    histories diverge."""
    monkeypatch.setattr(workflow, "patched", lambda patch_id: True)
    replayer = Replayer(workflows=[ImprovementCase], data_converter=DATA_CONVERTER,
                        workflow_runner=UnsandboxedWorkflowRunner())
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(path))
