"""Replay recorded case histories against today's workflow code.

A case workflow lives for a year or more; a worker deployed mid-case must replay its history
exactly. Every `tests/histories/*.json` (written by tests/histories/record_histories.py) is
replayed here, each generation (the names' middle part) recorded by the code of its day; a
change to the workflow that would make a running case non-deterministic fails this test. The
later tests prove that it would: a workflow that does one thing more before its first append
is caught on every recorded history, and each patch is what keeps the cases started before
it (and, for the newest, after it) replaying.

Histories are read as `cases audit replay` reads them (READING_CONVERTER): the older
generations' payloads are unsigned, the newest are signed with a key nobody keeps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from runtime.converter import READING_CONVERTER
from runtime.signing import SIGNED
from workflows.improvement_case import BUSINESS_DATES, CHECKED_OPENING, ImprovementCase
from workflows.messages import CaseStart, CaseView, workflow_id_for_case

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
BUSINESS = [p for p in HISTORIES if p.stem.endswith(".business-dates")]
"""Recorded since BUSINESS_DATES: deadlines count from the dates things happened."""
REMINDED = [p for p in HISTORIES if p.stem.endswith(".reminders")] + BUSINESS
"""Recorded since reminders: the standard policy reminds the council before each deadline."""
CHECKED = [p for p in HISTORIES if p.stem.endswith(".checked-opening")] + REMINDED
"""Recorded since CHECKED_OPENING: the opening checked by the server, commands signed."""
BEFORE_CHECKED = [p for p in HISTORIES if p not in CHECKED]
BEFORE_ALARMS = [p for p in BEFORE_CHECKED if not p.stem.endswith(".alarms")]
"""Every generation recorded before DEADLINE_ALARMS."""
OPENED = [p for p in CHECKED if not p.stem.startswith("opening_refused")]
"""The newest generation's cases that opened (one start was refused, and its workflow failed)."""


async def load(path: Path) -> WorkflowHistory:
    """The history in `path`, under the workflow id of the case it started."""
    events = WorkflowHistory.from_json("unknown", path.read_text()).events
    started = events[0].workflow_execution_started_event_attributes
    assert started.workflow_type.name == "ImprovementCase", path
    [start] = await READING_CONVERTER.decode(started.input.payloads, [CaseStart])
    assert isinstance(start, CaseStart)
    return WorkflowHistory(workflow_id_for_case(start.request.case_id), events)


def replayer(case: type[ImprovementCase] = ImprovementCase, *,
             sandboxed: bool = True) -> Replayer:
    if sandboxed:
        return Replayer(workflows=[case], data_converter=READING_CONVERTER)
    return Replayer(workflows=[case], data_converter=READING_CONVERTER,
                    workflow_runner=UnsandboxedWorkflowRunner())


def test_there_are_histories_to_replay() -> None:
    names = {path.stem for path in HISTORIES}
    assert {"full_journey", "lapse_and_escalate"} <= names, names
    assert {"full_journey.only-changes", "lapse_and_escalate.only-changes"} <= names, names
    assert "peer_selection" in names, names
    assert {"full_journey.alarms", "lapse_and_escalate.alarms", "peer_selection.alarms"} <= names
    assert {"full_journey.checked-opening", "lapse_and_escalate.checked-opening",
            "peer_selection.checked-opening", "opening_refused.checked-opening"} <= names
    assert {"full_journey.reminders", "lapse_and_escalate.reminders"} <= names


async def test_the_newest_histories_are_signed_and_the_older_ones_are_not() -> None:
    """What a production worker is sent now is signed; a replay needs no key to read it."""
    for path in HISTORIES:
        events = WorkflowHistory.from_json("unknown", path.read_text()).events
        payload = events[0].workflow_execution_started_event_attributes.input.payloads[0]
        assert (payload.metadata.get("encoding") == SIGNED) == (path in CHECKED), path.stem


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_todays_workflow_replays_the_recorded_history(path: Path) -> None:
    result = await replayer().replay_workflow(await load(path))
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
    with pytest.raises(NondeterminismError):
        await replayer(DriftedCase, sandboxed=False).replay_workflow(await load(path))


def patched_except(*off: str) -> Callable[[str], bool]:
    """`workflow.patched` with every patch on but `off` (no patch marker is recorded)."""
    return lambda patch_id: patch_id not in off


def with_patch(patch_id: str, on: bool) -> Callable[[str], bool]:
    """`workflow.patched` as the SDK answers it, but for `patch_id`: always `on`."""
    asked = workflow.patched
    return lambda asked_for: on if asked_for == patch_id else asked(asked_for)


@pytest.mark.parametrize("path", BEFORE_ALARMS, ids=[p.stem for p in BEFORE_ALARMS])
async def test_the_patches_are_what_keeps_old_cases_replaying(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cases started before a patch (timer kept, search attributes, deadline alarms) replay
    only because the workflow asks `workflow.patched`: with those patches forced on, their
    histories diverge. (CHECKED_OPENING stays off here, or every history would diverge at
    its first step for that patch alone: it has tests of its own, below.)"""
    monkeypatch.setattr(workflow, "patched", patched_except(CHECKED_OPENING))
    with pytest.raises(NondeterminismError):
        await replayer(sandboxed=False).replay_workflow(await load(path))


@pytest.mark.parametrize("path", BEFORE_CHECKED, ids=[p.stem for p in BEFORE_CHECKED])
async def test_cases_opened_before_the_check_replay_only_because_it_is_patched(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CHECKED_OPENING's guard: a case started before it recorded its request straight
    away. Were the opening check not behind `workflow.patched`, replaying such a case would
    read its first append's answer as the check's, and its workflow task would fail; it
    replays (test_todays_workflow_replays_the_recorded_history) only because it is."""
    monkeypatch.setattr(workflow, "patched", with_patch(CHECKED_OPENING, True))
    result = await replayer(sandboxed=False).replay_workflow(
        await load(path), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "validation errors for OpeningTerms" in str(result.replay_failure)


@pytest.mark.parametrize("path", CHECKED, ids=[p.stem for p in CHECKED])
@pytest.mark.filterwarnings("ignore:.*Workflow finished while update handlers are still running")
async def test_cases_opened_on_the_servers_terms_replay_only_with_the_check(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other side of the guard: a case started since CHECKED_OPENING ran the check before
    its first append (or was refused by it), and its history holds the check's answer and
    the patch's marker. Code that skipped the check for it (the patch removed too early, or
    not asked) could not replay it."""
    monkeypatch.setattr(workflow, "patched", with_patch(CHECKED_OPENING, False))
    result = await replayer(sandboxed=False).replay_workflow(
        await load(path), raise_on_replay_failure=False)
    failure = str(result.replay_failure)
    if path in OPENED:  # the check's answer read as the append's
        assert "validation errors for Appended" in failure
    else:  # refused: nothing was appended, but the patch's marker is there
        assert isinstance(result.replay_failure, NondeterminismError)
        assert f"patch marker encountered for change {CHECKED_OPENING}" in failure


REMINDERS_SENT = [p for p in REMINDED if p.stem.startswith("lapse_and_escalate")]
"""Those whose council was reminded (in the full journey every deadline is met first)."""


@pytest.mark.parametrize("path", REMINDERS_SENT, ids=[p.stem for p in REMINDERS_SENT])
async def test_cases_that_remind_replay_only_with_their_reminders(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reminders need no patch: they come from the policy a case records when it opens, and
    the cases opened before them recorded policies without any (their histories replay
    above, unchanged). This is the other side: a case whose policy reminds has the reminders'
    timers and appends in its history, and code that dropped them could not replay it."""
    import domain.deadlines

    monkeypatch.setattr(domain.deadlines, "_reminders", lambda *args: [])
    result = await replayer(sandboxed=False).replay_workflow(
        await load(path), raise_on_replay_failure=False)
    assert result.replay_failure is not None


BUSINESS_OPENED = [p for p in BUSINESS if p in OPENED]
"""(A refused opening never reaches the patch: nothing is recorded for it.)"""


@pytest.mark.parametrize("path", BUSINESS_OPENED, ids=[p.stem for p in BUSINESS_OPENED])
async def test_cases_opened_with_business_dates_replay_only_with_the_patch(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BUSINESS_DATES's guard, from the side of the cases opened since: their histories hold
    the patch's marker, so code that stopped asking for it (and opened cases that count
    deadlines from recorded times again) cannot replay them. Cases opened before it replay
    above without the marker, counting from recorded times as they always did."""
    monkeypatch.setattr(workflow, "patched", with_patch(BUSINESS_DATES, False))
    result = await replayer(sandboxed=False).replay_workflow(
        await load(path), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError), path
    assert BUSINESS_DATES in str(result.replay_failure)

