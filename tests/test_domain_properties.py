"""Property tests of the rules: any sequence of commands leaves a case sound.

Hypothesis drives one case with commands of every class, from actors of every role, with
dates near and far, at increasing times; between commands the engine fires whatever deadline
has come due (lapses, escalations), as the workflow's timers would. Half the time the command
drawn is one the case's stage could take next, so runs get deep into the journey; the rest are
anything at all, which the rules must refuse or absorb. After every step:

- a refused command left the state as it was, and the history still folds to it;
- an accepted command's events applied one by one give a state that `violations` finds sound;
- commands the brief reserves to a role were accepted only from that role;
- the history folded from scratch is the incrementally built state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, note, settings
from hypothesis import event as tally
from hypothesis import strategies as st

from domain import commands as cmd
from domain import events as ev
from domain.actors import Role, parse_actor
from domain.deadlines import DeadlinePolicy, DeadlineRules, next_due, on_due
from domain.invariants import violations
from domain.recorded import Recorded
from domain.rules import CommandRefused, decide
from domain.state import CaseState, apply, fold
from domain.vocabulary import CaseKind, Stage, VisitMode
from tests.test_domain_rules import event_id

CASE_ID = "prop-E06000001"
COUNCILS = ("E06000001", "E09000008")
"""Subject councils a case may be requested for; each also lends a peer to the pool."""
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ENGINE = "system:escalation"

POLICY = DeadlinePolicy(default=DeadlineRules(
    factual_accuracy_check=timedelta(days=3), report_publication=timedelta(days=20),
    action_plan_publication=timedelta(days=40), progress_review=timedelta(days=60),
    progress_review_publication=timedelta(days=80), escalation_interval=timedelta(days=4)))
"""Deadlines of days, so that the time a run spans reaches lapses and the top of the ladder."""

OFFICERS = ("officer:siân.jones", "officer:raj.patel")
ACTORS = (*OFFICERS, *(f"council:{c}" for c in COUNCILS), "auditor:ada", ENGINE)

POOL = (
    ev.PeerPlace(peer_id="p-lead-member", name="Cllr Amina Shah", role="lead_member",
                 home_council="E08000025"),
    ev.PeerPlace(peer_id="p-lead-officer", name="Dr Tom Reyes", role="lead_officer",
                 home_council="E06000047"),
    ev.PeerPlace(peer_id="p-officer", name="Jo Pike", role="officer", home_council="E07000223"),
    ev.PeerPlace(peer_id="p-member", name="Cllr Eve Lund", role="member",
                 home_council="E10000014"),
    ev.PeerPlace(peer_id="p-manager", name="Sam Ode", role="challenge_manager"),
    ev.PeerPlace(peer_id="p-from-1", name="Pat Local", role="lead_member",
                 home_council=COUNCILS[0]),
    ev.PeerPlace(peer_id="p-from-2", name="Kit Near", role="lead_officer",
                 home_council=COUNCILS[1]),
    ev.PeerPlace(peer_id="p-lead-member-2", name="Cllr Ola Bell", role="lead_member",
                 home_council="E07000001"),
    ev.PeerPlace(peer_id="p-lead-officer-2", name="Ann Ward", role="lead_officer",
                 home_council="E07000002"),
)
GOOD_TEAMS = (list(POOL[:5]), [*POOL[7:], POOL[2]])
"""Teams a corporate peer challenge can confirm, whichever council it is for."""
DOCUMENTS = tuple(hashlib.sha256(t.encode()).hexdigest() for t in ("draft", "final", "fix"))
TEXTS = st.sampled_from(["Budget gap", "Paragraph 4: reserves are £12m.", "Line one\nline two"])
LINES = st.sampled_from(["Budget gap", "Paragraph 4: reserves are £12m."])
"""Short text (a rationale line): one line, no newline."""
URLS = st.sampled_from(["https://example.org/report", "http://example.org/x"])
SCOPES = st.lists(st.sampled_from(["finance", "governance", "leadership"]), min_size=1,
                  max_size=3)

COMMAND_TYPES: tuple[type[cmd.Command], ...] = tuple(cmd.Command.__subclasses__())

NEXT: dict[Stage | None, tuple[type[cmd.Command], ...]] = {
    None: (cmd.RequestCase,),
    Stage.REQUESTED: (cmd.ScopeCase,),
    Stage.SCOPED: (cmd.SelectPeerTeam, cmd.ProposePeerTeam, cmd.ProposePeerTeam, cmd.ObjectToPeer,
                   cmd.ConfirmPeerTeam, cmd.ConfirmPeerTeam, cmd.ConfirmPeerTeam,
                   cmd.ApproveRequest, cmd.ApproveRequest),
    Stage.PEERS_SELECTED: (cmd.ScheduleVisit,),
    Stage.VISIT_SCHEDULED: (cmd.RecordVisit, cmd.ScheduleVisit),
    Stage.VISITED: (cmd.GiveFeedback, cmd.DraftReport),
    Stage.REPORT_DRAFTED: (cmd.SubmitFactualAccuracyComments, cmd.FinaliseReport),
    Stage.REPORT_FINAL: (cmd.PublishReport, cmd.CorrectReport, cmd.ApproveRequest),
    Stage.REPORT_PUBLISHED: (cmd.PublishActionPlan, cmd.CorrectReport, cmd.ApproveRequest,
                             cmd.DeclineRequest),
    Stage.ACTION_PLAN_PUBLISHED: (cmd.HoldProgressReview,),
    Stage.PROGRESS_REVIEW_HELD: (cmd.PublishProgressReview,),
    Stage.PROGRESS_REVIEW_PUBLISHED: (cmd.CloseCase,),
    Stage.CLOSED: COMMAND_TYPES,
    Stage.WITHDRAWN: COMMAND_TYPES,
}
"""What a case at each stage could take next (a repeat weighs more): drawn three times in
four, to get deep into the journey."""

OFFICER_ONLY = (ev.CaseRequested, ev.CaseScoped, ev.PeerTeamProposed, ev.PeerTeamConfirmed,
                ev.VisitScheduled, ev.VisitHeld, ev.ReportDrafted, ev.ReportMadeFinal,
                ev.ReportCorrected, ev.CaseWithdrawn, ev.CaseClosed)
COUNCIL_ONLY = (ev.PeerObjectedTo, ev.FactualAccuracyCommentsReceived)


def test_the_strategies_cover_every_command() -> None:
    assert len(COMMAND_TYPES) == 21
    assert set(COMMAND_TYPES) == set(RECIPES)
    assert set(NEXT) == {None, *Stage}


# --- drawing commands ---------------------------------------------------------------------------
# Every strategy is built once: each draws a recipe, which makes the command from the case as
# it stands and today's date. (Strategies built afresh at every step made a run 30× slower.)

Recipe = Callable[[CaseState, date], cmd.Command]
SUBJECT = "council:<subject>"
"""Stands for the case's own council, whichever it is when the command is made."""


def actors(*likely: str) -> st.SearchStrategy[str]:
    """Mostly an actor who may, sometimes anyone."""
    return st.sampled_from([*likely * (len(ACTORS) // len(likely)), *ACTORS])


def actor_for(actor: str, state: CaseState) -> str:
    return f"council:{state.council or COUNCILS[0]}" if actor == SUBJECT else actor


OFFSETS = st.one_of(st.just(0), st.integers(-3, 0), st.integers(-60, 60),
                    st.integers(-4000, 4000))
"""A date as days from today: today, recent past, near, or years either way."""
RECENT = st.one_of(st.integers(-6, -3), OFFSETS)
"""The first day of something held: mostly just past."""
AHEAD = st.one_of(st.integers(0, 40), OFFSETS)
"""The first day of something scheduled: mostly soon."""
LENGTHS = st.one_of(st.integers(0, 3), st.integers(-5, 30))
"""Days from first to last: usually a few, sometimes backwards or too long."""
OFFICER_ACTORS = actors(*OFFICERS)
COUNCIL_ACTORS = actors(SUBJECT)
PUBLISHERS = actors(SUBJECT, *OFFICERS)


def on(today: date, offset: int) -> date:
    return today + timedelta(days=offset)


def _request(actor: str, own_id: bool, council: str, kind: CaseKind, reason: str,
             scope: list[str], gap: int | None, four_eyes: bool) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.RequestCase(actor=actor, case_id=state.case_id if own_id else "another-case",
                               council=council, kind=kind, reason=reason, scope=scope,
                               budget_gap_pence=gap, four_eyes=four_eyes)
    return make


def _answer(approve: bool, actor: str, which: int, reason: str) -> Recipe:
    """Approve or decline a waiting request (or, when none waits, one that does not exist)."""
    def make(state: CaseState, today: date) -> cmd.Command:
        waiting = [a.request_id for a in state.awaiting_approval] or ["withdraw-99"]
        request_id = waiting[which % len(waiting)]
        if approve:
            return cmd.ApproveRequest(actor=actor, request_id=request_id)
        return cmd.DeclineRequest(actor=actor, request_id=request_id, reason=reason)
    return make


def _constant(command: cmd.Command) -> Recipe:
    return lambda state, today: command


def _propose(actor: str, team: list[ev.PeerPlace] | None, rationale: list[str]) -> Recipe:
    """`team`, or if None what an officer would pick: the pool less the subject council's
    own peers and those the council objected to."""
    def make(state: CaseState, today: date) -> cmd.Command:
        objected = {o.peer_id for o in state.objections}
        sensible = [p for p in POOL
                    if p.home_council != state.council and p.peer_id not in objected]
        return cmd.ProposePeerTeam(actor=actor, team=team or sensible or list(POOL[:1]),
                                   rationale=rationale)
    return make


def _object(actor: str, which: int | str, reason: str) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        proposed = [p.peer_id for p in state.proposed_team] or ["p-nobody"]
        peer_id = proposed[which % len(proposed)] if isinstance(which, int) else which
        return cmd.ObjectToPeer(actor=actor_for(actor, state), peer_id=peer_id, reason=reason)
    return make


def _schedule(actor: str, mode: VisitMode, first: int, length: int) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.ScheduleVisit(actor=actor, mode=mode, starts_on=on(today, first),
                                 ends_on=on(today, first + length))
    return make


def _select(actor: str, first: int, length: int) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.SelectPeerTeam(actor=actor, visit_from=on(today, first),
                                  visit_to=on(today, first + length))
    return make


def _record_visit(actor: str, mode: VisitMode | None, first: int, length: int) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.RecordVisit(actor=actor, mode=mode, started_on=on(today, first),
                               ended_on=on(today, first + length))
    return make


def _feedback(actor: str, offset: int, summary: str) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.GiveFeedback(actor=actor, given_on=on(today, offset), summary=summary)
    return make


def _draft(actor: str, document: str, offset: int) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.DraftReport(actor=actor, document_sha256=document, sent_on=on(today, offset))
    return make


def _comments(actor: str, comments: str) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.SubmitFactualAccuracyComments(actor=actor_for(actor, state),
                                                 comments=comments)
    return make


Publication = type[cmd.PublishReport | cmd.PublishActionPlan | cmd.PublishProgressReview]


def _publishing(kind: Publication) -> st.SearchStrategy[Recipe]:
    def recipe(actor: str, offset: int, url: str) -> Recipe:
        def make(state: CaseState, today: date) -> cmd.Command:
            return kind(actor=actor_for(actor, state), published_on=on(today, offset), url=url)
        return make
    return st.builds(recipe, PUBLISHERS, OFFSETS, URLS)


def _review(actor: str, mode: VisitMode, first: int, length: int) -> Recipe:
    def make(state: CaseState, today: date) -> cmd.Command:
        return cmd.HoldProgressReview(actor=actor, mode=mode, started_on=on(today, first),
                                      ended_on=on(today, first + length))
    return make


TEAMS = st.one_of(st.sampled_from(GOOD_TEAMS),
                  st.lists(st.sampled_from(POOL), min_size=1, max_size=7, unique=True),
                  st.lists(st.sampled_from(POOL), min_size=1, max_size=7))
DOCUMENT = st.sampled_from(DOCUMENTS)
MODES = st.sampled_from(VisitMode)

RECIPES: dict[type[cmd.Command], st.SearchStrategy[Recipe]] = {
    cmd.RequestCase: st.builds(
        _request, OFFICER_ACTORS, st.sampled_from([True, True, False]),
        st.sampled_from(COUNCILS), st.sampled_from(CaseKind), TEXTS,
        st.lists(st.sampled_from(["finance", "governance"]), max_size=2),
        st.none() | st.integers(0, 10**12), st.booleans()),
    cmd.ApproveRequest: st.builds(_answer, st.just(True), OFFICER_ACTORS, st.integers(0, 3),
                                  TEXTS),
    cmd.DeclineRequest: st.builds(_answer, st.just(False), OFFICER_ACTORS, st.integers(0, 3),
                                  TEXTS),
    cmd.ScopeCase: st.builds(cmd.ScopeCase, actor=OFFICER_ACTORS, scope=SCOPES,
                             visit_mode=MODES).map(_constant),
    cmd.SelectPeerTeam: st.builds(_select, OFFICER_ACTORS, AHEAD, LENGTHS),
    cmd.ProposePeerTeam: st.builds(_propose, OFFICER_ACTORS, st.none() | TEAMS,
                                   st.lists(LINES, max_size=2)),
    cmd.ObjectToPeer: st.builds(
        _object, COUNCIL_ACTORS,
        st.one_of(st.integers(0, 6), st.sampled_from([p.peer_id for p in POOL])), TEXTS),
    cmd.ConfirmPeerTeam: st.builds(cmd.ConfirmPeerTeam, actor=OFFICER_ACTORS).map(_constant),
    cmd.ScheduleVisit: st.builds(_schedule, OFFICER_ACTORS, MODES, AHEAD, LENGTHS),
    cmd.RecordVisit: st.builds(_record_visit, OFFICER_ACTORS, st.none() | MODES, RECENT,
                               LENGTHS),
    cmd.GiveFeedback: st.builds(_feedback, OFFICER_ACTORS, RECENT, TEXTS),
    cmd.DraftReport: st.builds(_draft, OFFICER_ACTORS, DOCUMENT, OFFSETS),
    cmd.SubmitFactualAccuracyComments: st.builds(_comments, COUNCIL_ACTORS, TEXTS),
    cmd.FinaliseReport: st.builds(cmd.FinaliseReport, actor=OFFICER_ACTORS,
                                  document_sha256=DOCUMENT).map(_constant),
    cmd.CorrectReport: st.builds(cmd.CorrectReport, actor=OFFICER_ACTORS,
                                 document_sha256=DOCUMENT, reason=TEXTS).map(_constant),
    cmd.PublishReport: _publishing(cmd.PublishReport),
    cmd.PublishActionPlan: _publishing(cmd.PublishActionPlan),
    cmd.HoldProgressReview: st.builds(_review, OFFICER_ACTORS, MODES, RECENT, LENGTHS),
    cmd.PublishProgressReview: _publishing(cmd.PublishProgressReview),
    cmd.WithdrawCase: st.builds(cmd.WithdrawCase, actor=st.sampled_from(ACTORS),
                                reason=TEXTS).map(_constant),
    cmd.CloseCase: st.builds(cmd.CloseCase, actor=OFFICER_ACTORS,
                             summary=st.none() | TEXTS).map(_constant),
}

ANY_RECIPE = st.one_of(*RECIPES.values())
STEPS: dict[Stage | None, st.SearchStrategy[tuple[timedelta, Recipe]]] = {}
"""A step at each stage: a wait, then three times in four a command the stage could take next,
else any command at all."""

WAITS = st.one_of(st.integers(1, 600).map(lambda n: timedelta(minutes=n)),
                  st.integers(1, 10).map(lambda n: timedelta(days=n)),
                  st.integers(11, 400).map(lambda n: timedelta(days=n)))

def _steps(likely: tuple[type[cmd.Command], ...]) -> st.SearchStrategy[tuple[timedelta, Recipe]]:
    kinds = st.sampled_from(likely)

    @st.composite
    def step(draw: st.DrawFn) -> tuple[timedelta, Recipe]:
        # Not one_of(next, any): one_of flattens its branches, and any's 18 would swamp next.
        wait = draw(WAITS)
        return wait, draw(RECIPES[draw(kinds)] if draw(st.integers(0, 3)) else ANY_RECIPE)

    return step()


STEPS.update({stage: _steps(likely) for stage, likely in NEXT.items()})


# --- the run ------------------------------------------------------------------------------------

class Run:
    """One case, its history and its state, advanced one recorded event at a time."""

    def __init__(self) -> None:
        self.history: list[Recorded] = []
        self.state = CaseState(case_id=CASE_ID)

    def record(self, actor: str, events: list[ev.Event], at: datetime) -> None:
        for event in events:
            version = self.state.version + 1
            recorded = Recorded(case_id=CASE_ID, version=version,
                                event_id=event_id(CASE_ID, version), occurred_at=at,
                                actor=actor, event=event)
            self.state = apply(self.state, recorded)
            self.history.append(recorded)
        # Sound after the whole batch: one command's events are appended together.
        found = violations(self.state)
        assert found == [], f"after {[type(e).__name__ for e in events]} by {actor}: {found}"

    def engine_until(self, now: datetime) -> None:
        """What the workflow's timers record by themselves up to `now`."""
        for _ in range(50):
            due = next_due(self.state, POLICY)
            if due is None or due.due_at > now:
                return
            events = on_due(self.state, due)
            assert events, due
            assert self.state.last_event_at is not None
            self.record(ENGINE, events, max(due.due_at, self.state.last_event_at))
        raise AssertionError("the engine kept finding something due")

    def command(self, command: cmd.Command, now: datetime) -> bool:
        before = self.state
        snapshot = before.model_dump()
        try:
            events = decide(before, command, now)
        except CommandRefused as refusal:
            assert self.state is before and before.model_dump() == snapshot
            assert fold(CASE_ID, self.history) == before
            assert refusal.reason and str(refusal).startswith(f"case {CASE_ID} (")
            return False
        if isinstance(command, cmd.SelectPeerTeam):  # its events come from the pool, later
            assert events == [] and before.stage == Stage.SCOPED
            return True
        assert events, command
        assert before.stage is None or before.is_open, "accepted on an ended case"
        assert isinstance(command, cmd.RequestCase) == (before.stage is None)
        role = parse_actor(command.actor).role
        for event in events:
            if isinstance(event, OFFICER_ONLY):
                assert role in (Role.CASE_OFFICER, Role.LGA_ADVISER), (command, event)
            if before.four_eyes and isinstance(event, (ev.CaseWithdrawn, ev.ReportCorrected)):
                assert isinstance(command, cmd.ApproveRequest), "took effect unapproved"
                waiting = before.awaiting(command.request_id)
                assert waiting is not None
                assert parse_actor(waiting.requested_by).person != parse_actor(
                    command.actor).person, "approved by the person who asked"
            if isinstance(event, COUNCIL_ONLY):
                assert command.actor == f"council:{before.council}", (command, event)
        self.record(command.actor, events, now)
        assert self.state.version == before.version + len(events)
        return True


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_sequence_of_commands_leaves_the_case_sound(data: st.DataObject) -> None:
    run = Run()
    now = T0
    for _ in range(data.draw(st.integers(3, 40), label="steps")):
        wait, recipe = data.draw(STEPS[run.state.stage])
        now += wait
        if run.state.stage is not None:
            run.engine_until(now)
        command = recipe(run.state, now.date())
        accepted = run.command(command, now)
        note(f"{now:%Y-%m-%d %H:%M} {'accepted' if accepted else 'refused'}: {command!r}")
    assert fold(CASE_ID, run.history) == run.state
    assert violations(run.state) == []
    tally(f"reached {run.state.stage}")
