"""ImprovementCase: one workflow per case, from request to closed, with its deadlines.

Every action is an update: its validator asks the domain's rules and refuses before anything
is recorded; its handler, under a lock, decides again, has an activity append the events,
and only then folds them into the state it answers with. Deadlines are durable timers; a
lapse climbs the escalation ladder by itself.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import structlog

    # By its full name: `from workflows import search_attributes` would ask the sandbox's own
    # fresh copy of this package, and the module would be compiled and run again for every case.
    import workflows.search_attributes as sa
    from activities.contracts import (
        APPEND_EVENTS,
        CHECK_OPENING,
        LOAD_CASE,
        SELECT_PEER_TEAM,
        Appended,
        AppendEvents,
        CaseToLoad,
        EventToAppend,
        LoadedCase,
        NotificationToSend,
        OpeningTerms,
        OpeningToCheck,
        TeamOutcome,
    )
    from domain import events as ev
    from domain.commands import AnyCommand, Command, ObjectToPeer, RequestCase, SelectPeerTeam
    from domain.deadlines import Due, on_due, pending, soonest, soonest_lapse
    from domain.notifications import notifications_for
    from domain.recorded import Recorded
    from domain.rules import (
        CommandRefused,
        SelectionInputs,
        check_proposal,
        decide,
        reselection_inputs,
        selection_inputs,
    )
    from domain.state import CaseState, apply
    from domain.upcasting import parse_event
    from workflows.messages import CaseStart, CaseView

ESCALATION_ACTOR = "system:escalation"
PEER_SELECTION_ACTOR = "system:peer-selection"
SELECTION_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                              maximum_interval=timedelta(seconds=30))
"""Unlimited attempts, as for every activity that needs the database: an outage delays a
selection, and never refuses it (a refusal by the rules is non-retryable, so it is at once)."""
KEEP_UNMOVED_DEADLINE_TIMER = "keep-unmoved-deadline-timer"
"""Patch: the run loop keeps its timer when an action leaves the next due time unchanged."""
INDEX_ONLY_CHANGES = "index-only-changed-search-attributes"
"""Patch: upsert only the search attributes whose values changed."""
DEADLINE_ALARMS = "deadline-alarms-never-cancelled"
"""Patch: one timer per earlier due time, left to ring rather than cancelled when it moves.
Asked once, before anything is recorded; a case that has it also has INDEX_ONLY_CHANGES
without asking (each patch asked costs a case a TemporalChangeVersion upsert)."""
CHECKED_OPENING = "opening-checked-by-the-server"
"""Patch: before the request is recorded, an activity checks the council against the register
and resolves the named deadline policy; the case runs by the server's terms (never durations
sent by the caller) and under the four-eyes rule. Cases started before it keep theirs."""
BUSINESS_DATES = "deadlines-from-business-dates"
"""Patch: the case is opened with `business_dates`, recorded in its request, so its deadlines
count from the dates things happened and the rules check those dates (domain.deadlines.anchor);
cases opened before keep counting from recorded times, as their histories did."""
OPENING_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                            maximum_interval=timedelta(seconds=10))
APPEND_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=10))


@workflow.defn
class ImprovementCase:
    @workflow.init
    def __init__(self, start: CaseStart) -> None:
        self.state = CaseState(case_id=start.request.case_id)
        self.policy = start.policy
        self.selection_rules = start.selection_rules
        self.lock = asyncio.Lock()
        self._waiting_since = 0
        self._waiting_for: Due | None = None
        self._alarms: list[datetime] = []
        """Due times of the alarms still running (see _follow_deadlines_by_alarms)."""
        self._alarm_tasks: set[asyncio.Task[None]] = set()
        self._rung = False
        self._alarms_generation = False
        """Started with DEADLINE_ALARMS (and so with INDEX_ONLY_CHANGES): set as `run` begins."""
        self._pending_for: CaseState | None = None
        self._pending_dues: list[Due] = []
        self._opening_refusal: ApplicationError | None = None
        """Why the start was refused (CHECKED_OPENING cases): what `opened` answers with."""

    # --- the journey ---------------------------------------------------------------------

    @workflow.run
    async def run(self, start: CaseStart) -> CaseView:
        self._alarms_generation = workflow.patched(DEADLINE_ALARMS)
        if start.resume:
            await self._take_up(start.request)
        else:
            await self._open(start.request)
        if self._alarms_generation:
            await self._follow_deadlines_by_alarms()
        else:  # cases started before the patch keep the loop they were started with
            await self._follow_deadlines_by_timeouts()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view()

    async def _take_up(self, request: RequestCase) -> None:
        """An imported case still under way: fold the events the import stored (only new
        workflows take this path: `resume` did not exist before), on the server's terms."""
        try:
            await self._on_the_servers_terms(request)
        except ApplicationError as refused:
            await self._refuse_opening(refused)
        loaded = await workflow.execute_activity(
            LOAD_CASE, CaseToLoad(case_id=request.case_id), result_type=LoadedCase,
            start_to_close_timeout=timedelta(seconds=60), retry_policy=SELECTION_RETRY)
        async with self.lock:
            state = self.state
            for stored in loaded.events:
                state = apply(state, Recorded(
                    case_id=state.case_id, version=stored.version, event_id=stored.event_id,
                    occurred_at=stored.occurred_at, actor=stored.actor,
                    event=parse_event(stored.type, stored.schema_version, stored.payload)))
            if state.version == 0:
                raise ApplicationError(f"case {request.case_id} has no events to take up",
                                       type="NothingToTakeUp", non_retryable=True)
            self.state = state
            self._index()

    async def _open(self, request: RequestCase) -> None:
        checked = workflow.patched(CHECKED_OPENING)
        if checked:
            try:
                request = await self._on_the_servers_terms(request)
            except ApplicationError as refused:
                await self._refuse_opening(refused)
        if workflow.patched(BUSINESS_DATES):
            request = request.model_copy(update={"business_dates": True})
        async with self.lock:
            try:
                events = decide(self.state, request, workflow.now())
            except CommandRefused as refused:  # a start the API would not have sent
                failure = ApplicationError(str(refused), type=type(refused).__name__,
                                           non_retryable=True)
                if checked:
                    await self._refuse_opening(failure)
                raise failure from None
            await self._record(request, events)

    async def _refuse_opening(self, refusal: ApplicationError) -> NoReturn:
        """Fail the start with `refusal`, once `opened` (what `cases start` waits on) has
        answered with it: otherwise the caller hears only that the workflow completed before
        its update did, and never why. Nothing was recorded."""
        self._opening_refusal = refusal
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise refusal

    async def _on_the_servers_terms(self, request: RequestCase) -> RequestCase:
        """The request as the server opens it: its council checked against the register, its
        deadline policy resolved by name, the selection rules in force, four eyes required.
        A refusal fails the workflow before anything is recorded."""
        try:
            terms = await workflow.execute_local_activity(
                CHECK_OPENING, OpeningToCheck(council=request.council, kind=request.kind,
                                              deadline_policy=request.deadline_policy),
                result_type=OpeningTerms, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=OPENING_RETRY)
        except ActivityError as failed:
            cause = failed.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(failed)
            raise ApplicationError(message, type="OpeningRefused", non_retryable=True) from None
        self.policy = terms.policy
        self.selection_rules = terms.selection_rules
        return request.model_copy(update={"selection_rules": terms.selection_rules,
                                          "four_eyes": True})

    async def _follow_deadlines_by_alarms(self) -> None:
        """Until the case closes, act on each deadline when it falls due.

        Each due time gets one timer (an alarm) that is never cancelled: an action that moves
        the next due time later leaves the running alarm to ring early, find nothing due and
        set the next; only a due time earlier than every running alarm starts a new timer.
        Most actions then cost no timer at all, where cancelling and restarting cost two."""
        while self.state.is_open:
            due = self._next_due()
            if due is not None and due.due_at <= workflow.now():
                await self._act_on_due()
                continue
            if due is not None and not any(at <= due.due_at for at in self._alarms):
                self._set_alarm(due.due_at)
            self._waiting_since = self.state.version
            self._waiting_for = due
            await workflow.wait_condition(lambda: self._rung or self._deadline_moved())
            if self._rung:
                self._rung = False
                await self._act_on_due()

    def _set_alarm(self, at: datetime) -> None:
        self._alarms.append(at)

        async def ring() -> None:
            await workflow.sleep(at - workflow.now())
            self._alarms.remove(at)
            self._rung = True

        task = asyncio.create_task(ring())
        self._alarm_tasks.add(task)  # held until it rings: the loop keeps only weak references
        task.add_done_callback(self._alarm_tasks.discard)

    async def _follow_deadlines_by_timeouts(self) -> None:
        """The loop before DEADLINE_ALARMS: a timeout per wait, cancelled when the case moves."""
        while self.state.is_open:
            due = self._next_due()
            self._waiting_since = self.state.version
            self._waiting_for = due
            timeout = None if due is None else max(due.due_at - workflow.now(), timedelta(0))
            if workflow.patched(KEEP_UNMOVED_DEADLINE_TIMER):
                woken = self._deadline_moved
            else:  # cases started before the patch restart their timer on every version
                woken = self._version_moved
            try:
                await workflow.wait_condition(woken, timeout=timeout)
            except TimeoutError:
                await self._act_on_due()

    def _version_moved(self) -> bool:
        return self.state.version != self._waiting_since

    def _deadline_moved(self) -> bool:
        """Wake only when the case closed or its next deadline changed: an action that leaves
        the due time where it was keeps the running timer (no cancel and restart)."""
        if self.state.version == self._waiting_since:
            return False
        return not self.state.is_open or self._next_due() != self._waiting_for

    async def _act_on_due(self) -> None:
        async with self.lock:
            due = self._next_due()
            if due is not None and due.due_at <= workflow.now():
                await self._record_by_engine(due)

    async def _record_by_engine(self, due: Due) -> None:
        # Reminders need no patch: they come only from a policy that names them, and every
        # case started before them runs by a policy recorded in its history without any.
        events = on_due(self.state, due, workflow.now(), self.policy)
        await self._append(ESCALATION_ACTOR, events)

    # --- actions -------------------------------------------------------------------------

    @workflow.update
    async def act(self, command: AnyCommand) -> CaseView:
        """Any officer or council action; answered with the case as it now stands."""
        async with self.lock:
            try:
                events = decide(self.state, command, workflow.now())
                if isinstance(command, SelectPeerTeam):
                    inputs = selection_inputs(self.state, command.visit_from, command.visit_to,
                                              self.selection_rules)
                    await self._select_team(command.actor, inputs)
                    return self.view()
                await self._record(command, events)
                if isinstance(command, ObjectToPeer):
                    again = reselection_inputs(self.state)
                    if again is not None:  # the engine's team: it replaces the objected peer
                        await self._select_team(
                            PEER_SELECTION_ACTOR, again,
                            failing=f"the objection to {command.peer_id} is recorded, but "
                                    "the re-selection failed (select the team again)")
            except CommandRefused as refused:
                raise ApplicationError(str(refused), type=type(refused).__name__,
                                       non_retryable=True) from None
        return self.view()

    async def _select_team(self, actor: str, inputs: SelectionInputs,
                           failing: str = "cannot select a peer team") -> None:
        """Have the selection activity choose from the pool, then record what it chose (or
        which requirement ran out of peers): the rules every team keeps are checked again.
        If the activity cannot run, the update fails with `failing` and the reason."""
        try:
            outcome = await workflow.execute_activity(
                SELECT_PEER_TEAM, inputs, result_type=TeamOutcome,
                start_to_close_timeout=timedelta(minutes=1), retry_policy=SELECTION_RETRY)
        except ActivityError as failed:
            cause = failed.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(failed)
            raise ApplicationError(f"case {self.state.case_id}: {failing}: {message}",
                                   type="SelectionRefused", non_retryable=True) from None
        if outcome.proposed is not None:
            check_proposal(self.state, outcome.proposed.team)
            await self._append(actor, [outcome.proposed])
        elif outcome.unfilled is not None:
            await self._append(actor, [outcome.unfilled])

    @act.validator
    def refuse_before_recording(self, command: AnyCommand) -> None:
        decide(self.state, command, workflow.now())

    @workflow.update
    async def opened(self) -> CaseView:
        """Wait until the request is recorded: what `cases start` answers with (or, if the
        start is refused, the refusal)."""
        await workflow.wait_condition(
            lambda: self.state.version >= 1 or self._opening_refusal is not None)
        refusal = self._opening_refusal
        if refusal is not None:
            raise ApplicationError(refusal.message, type=refusal.type, non_retryable=True)
        return self.view()

    @workflow.query
    def view(self) -> CaseView:
        return CaseView(state=self.state, next_deadline=self._next_deadline(),
                        pending=self._pending())

    def _pending(self) -> list[Due]:
        """The case's pending deadlines, worked out once per version of the state: the run
        loop, its wake-up test, the search attributes and the answer all ask for them."""
        if self._pending_for is not self.state:
            self._pending_for, self._pending_dues = self.state, pending(self.state, self.policy)
        return self._pending_dues

    def _next_due(self) -> Due | None:
        return soonest(self._pending())

    def _next_deadline(self) -> Due | None:
        return soonest_lapse(self._pending())

    # --- recording -----------------------------------------------------------------------

    async def _record(self, command: Command, events: list[ev.Event]) -> None:
        await self._append(command.actor, events)

    async def _append(self, actor: str, events: list[ev.Event]) -> None:
        """Append through the store first; fold into the state only once it is durable."""
        now = workflow.now()
        event_ids = [str(workflow.uuid4()) for _ in events]
        notifications: list[NotificationToSend] = []
        state = self.state
        for event_id, event in zip(event_ids, events, strict=True):
            notifications += [
                NotificationToSend(event_id=event_id, recipient=n.key, subject=n.subject,
                                   body=n.body, notice=n.model_dump(mode="json"))
                for n in notifications_for(state, event)]
            state = apply(state, self._entry(state, event_id, now, actor, event))
        request = AppendEvents(
            case_id=self.state.case_id, expected_version=self.state.version,
            events=[EventToAppend(event_id=event_id, type=event.type_name(),
                                  schema_version=event.stored_version(), occurred_at=now,
                                  actor=actor, payload=event.payload())
                    for event_id, event in zip(event_ids, events, strict=True)],
            notifications=notifications)
        appended = await workflow.execute_local_activity(
            APPEND_EVENTS, request, result_type=Appended,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=APPEND_RETRY)
        state = self.state
        for event_id, event, stored_at in zip(event_ids, events, appended.occurred_at,
                                              strict=True):
            state = apply(state, self._entry(state, event_id, stored_at, actor, event))
        self.state = state
        self._index()
        if not workflow.unsafe.is_replaying():
            structlog.get_logger("workflow").info(
                "case recorded", case_id=state.case_id, workflow_id=workflow.info().workflow_id,
                actor=actor, version=appended.version, stage=state.stage,
                events=[e.type_name() for e in events])

    @staticmethod
    def _entry(state: CaseState, event_id: str, at: datetime, actor: str,
               event: ev.Event) -> Recorded:
        return Recorded(case_id=state.case_id, version=state.version + 1, event_id=event_id,
                        occurred_at=at, actor=actor, event=event)

    def _index(self) -> None:
        """Keep the case's search attributes (what `cases list` filters on) in step."""
        state = self.state
        deadline = self._next_deadline()
        level = max((e.level for e in state.escalations), default=0)
        stage = state.stage.value if state.stage else ""
        current = workflow.info().typed_search_attributes
        if self._alarms_generation or workflow.patched(INDEX_ONLY_CHANGES):
            assert state.council is not None and state.kind is not None
            wanted: list[SearchAttributeUpdate[Any] | None] = [
                sa.update_if_changed(current, sa.CASE_ID, state.case_id),
                sa.update_if_changed(current, sa.COUNCIL, state.council),
                sa.update_if_changed(current, sa.KIND, state.kind.value),
                sa.update_if_changed(current, sa.STAGE, stage),
                sa.update_if_changed(current, sa.ESCALATION_LEVEL, level),
                sa.update_if_changed(current, sa.NEXT_DEADLINE,
                                     None if deadline is None else deadline.due_at),
            ]
            changed = [update for update in wanted if update is not None]
            if changed:
                workflow.upsert_search_attributes(changed)
            return
        updates: list[SearchAttributeUpdate[Any]] = [sa.STAGE.value_set(stage),
                                                     sa.ESCALATION_LEVEL.value_set(level)]
        if deadline is not None:
            updates.append(sa.NEXT_DEADLINE.value_set(deadline.due_at))
        elif current.get(sa.NEXT_DEADLINE) is not None:
            updates.append(sa.NEXT_DEADLINE.value_unset())  # never unset what was never set
        if state.version <= 1 or not current.get(sa.CASE_ID):
            assert state.council is not None and state.kind is not None
            updates += [sa.CASE_ID.value_set(state.case_id), sa.COUNCIL.value_set(state.council),
                        sa.KIND.value_set(state.kind.value)]
        workflow.upsert_search_attributes(updates)
