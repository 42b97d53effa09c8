"""A case as it stood at any moment, and what changed between two moments (domain.timeline).

A full journey is driven through the domain rules and the deadline engine, as the workflow
does, with a lapse that climbs the escalation ladder; at every event boundary the state as of
that moment must be the fold of the events recorded up to it, and the store's own time-bounded
read must agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pytest

from domain import commands as cmd
from domain import events as ev
from domain.deadlines import DeadlinePolicy, next_due, on_due
from domain.recorded import Recorded
from domain.rules import decide
from domain.state import CaseState, apply, fold
from domain.timeline import as_of, diff, end_of_day, events_as_of, parse_moment
from domain.vocabulary import CaseKind, DeadlineName, Stage, VisitMode
from eventstore import EventStore, NewEvent

NAMESPACE = uuid.UUID("0b6e3f4c-7d1a-4c55-9a0e-5a1f2b3c4d5e")
OFFICER = "officer:siân.jones"
ENGINE = "system:deadlines"


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def doc(text: str) -> str:
    return uuid.uuid5(NAMESPACE, text).hex * 2


@dataclass
class Driver:
    """Drives one case as the workflow would: before each command, whatever the deadline engine
    has due by then is recorded at its due time; then the rules decide the command."""

    case_id: str
    policy: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    history: list[Recorded] = field(default_factory=list)
    state: CaseState = field(init=False)

    def __post_init__(self) -> None:
        self.state = CaseState(case_id=self.case_id)

    def record(self, events: Iterable[ev.Event], moment: datetime, actor: str) -> None:
        """Record events as the workflow does (for what no command decides: a selection)."""
        for event in events:
            version = self.state.version + 1
            recorded = Recorded(
                case_id=self.case_id, version=version, occurred_at=moment, actor=actor,
                event_id=str(uuid.uuid5(NAMESPACE, f"{self.case_id}/{version}")), event=event)
            self.state = apply(self.state, recorded)
            self.history.append(recorded)

    def catch_up(self, until: datetime) -> None:
        while (due := next_due(self.state, self.policy)) is not None and due.due_at <= until:
            self.record(on_due(self.state, due), due.due_at, ENGINE)

    def act(self, command: cmd.Command, moment: datetime) -> None:
        self.catch_up(moment)
        self.record(decide(self.state, command, moment), moment, command.actor)


def team(council: str) -> list[ev.PeerPlace]:
    homes = [c for c in ("E09000008", "E08000025", "E06000047", "E07000223") if c != council]
    return [
        ev.PeerPlace(peer_id="p-lm", name="Cllr Amina Shah", role="lead_member",
                     home_council=homes[0]),
        ev.PeerPlace(peer_id="p-lo", name="Dr Tom Reyes", role="lead_officer",
                     home_council=homes[1]),
        ev.PeerPlace(peer_id="p-o", name="Jo Pike", role="officer", home_council=homes[2]),
        ev.PeerPlace(peer_id="p-m", name="Cllr Eve Lund", role="member", home_council=homes[2]),
        ev.PeerPlace(peer_id="p-cm", name="Sam Ode", role="challenge_manager"),
    ]


def full_journey(case_id: str = "cpc-E06000001-2025", council: str = "E06000001",
                 start: date = date(2025, 1, 6)) -> list[Recorded]:
    """Every stage of a corporate peer challenge, with an objection, factual-accuracy comments,
    a correction, and a report published late: the lapse is recorded and climbs to level 2
    before publication resolves it."""
    contact = f"council:{council}"
    d = Driver(case_id)
    d.act(cmd.RequestCase(actor=OFFICER, case_id=case_id, council=council,
                          kind=CaseKind.CORPORATE_PEER_CHALLENGE,
                          reason="Budget gap of £4.2m \"flagged\"\n", scope=["finance"],
                          budget_gap_pence=420_000_000), at(start, 9, 30))
    d.act(cmd.ScopeCase(actor=OFFICER, scope=["finance", "governance"],
                        visit_mode=VisitMode.ON_SITE), at(start + timedelta(days=7)))
    objected = ev.PeerPlace(peer_id="p-x", name="Pat Vane", role="officer",
                            home_council="E09000001")
    d.act(cmd.ProposePeerTeam(actor=OFFICER, team=[*team(council), objected]),
          at(start + timedelta(days=8)))
    d.act(cmd.ObjectToPeer(actor=contact, peer_id="p-x", reason="A former employee"),
          at(start + timedelta(days=9)))
    d.act(cmd.ProposePeerTeam(actor=OFFICER, team=team(council)), at(start + timedelta(days=10)))
    d.act(cmd.ConfirmPeerTeam(actor=OFFICER), at(start + timedelta(days=10), 15))
    visit = start + timedelta(days=40)
    d.act(cmd.ScheduleVisit(actor=OFFICER, mode=VisitMode.ON_SITE, starts_on=visit,
                            ends_on=visit + timedelta(days=3)), at(start + timedelta(days=11)))
    visit_end = visit + timedelta(days=3)
    d.act(cmd.RecordVisit(actor=OFFICER, started_on=visit, ended_on=visit_end),
          at(visit_end, 17))
    d.act(cmd.GiveFeedback(actor=OFFICER, given_on=visit_end, summary="Strong leadership."),
          at(visit_end, 18))
    d.act(cmd.DraftReport(actor=OFFICER, document_sha256=doc("draft"),
                          sent_on=visit_end + timedelta(days=10)),
          at(visit_end + timedelta(days=10)))
    d.act(cmd.SubmitFactualAccuracyComments(actor=contact, comments="Reserves are £12m."),
          at(visit_end + timedelta(days=15)))
    d.act(cmd.FinaliseReport(actor=OFFICER, document_sha256=doc("final")),
          at(visit_end + timedelta(days=20)))
    d.act(cmd.CorrectReport(actor=OFFICER, document_sha256=doc("corrected"),
                            reason="A typo in the reserves figure"),
          at(visit_end + timedelta(days=21)))
    published = visit_end + timedelta(days=110)  # past the 91 days: lapse, then level 2
    d.act(cmd.PublishReport(actor=contact, published_on=published,
                            url="https://example.org/report"), at(published, 12))
    d.act(cmd.PublishActionPlan(actor=contact, published_on=published + timedelta(days=5),
                                url="https://example.org/plan"),
          at(published + timedelta(days=5), 12))
    review = visit_end + timedelta(days=280)
    d.act(cmd.HoldProgressReview(actor=OFFICER, started_on=review, ended_on=review),
          at(review, 16))
    d.act(cmd.PublishProgressReview(actor=contact, published_on=review + timedelta(days=30),
                                    url="https://example.org/review"),
          at(review + timedelta(days=30), 12))
    d.act(cmd.CloseCase(actor=OFFICER, summary="Done."), at(review + timedelta(days=31)))
    return d.history


@pytest.fixture(scope="module")
def journey() -> list[Recorded]:
    return full_journey()


def test_the_journey_covers_every_stage_and_a_climbing_escalation(
    journey: list[Recorded],
) -> None:
    types = [r.event.type_name() for r in journey]
    assert types.count("EscalationRaised") == 2 and "EscalationResolved" in types
    stages = {fold(r.case_id, journey[:i + 1]).stage for i, r in enumerate(journey)}
    assert stages == set(Stage) - {Stage.WITHDRAWN}
    # Two events share a moment (the lapse with its escalation; publication with resolution).
    assert len({r.occurred_at for r in journey}) < len(journey)


def test_as_of_every_event_boundary_is_the_fold_of_the_events_recorded_up_to_it(
    journey: list[Recorded],
) -> None:
    case_id = journey[0].case_id
    for event in journey:
        moment = event.occurred_at
        up_to = [r for r in journey if r.occurred_at <= moment]
        before = [r for r in journey if r.occurred_at < moment]
        assert as_of(journey, moment) == fold(case_id, up_to), f"at version {event.version}"
        just_before = moment - timedelta(microseconds=1)
        assert as_of(journey, just_before) == fold(case_id, before)
        assert events_as_of(journey, moment) == up_to
        assert as_of(journey, moment).version >= event.version
    assert as_of(journey, journey[0].occurred_at - timedelta(days=1)) == CaseState(
        case_id=case_id)
    assert as_of(journey, journey[-1].occurred_at + timedelta(days=999)) == fold(case_id,
                                                                                 journey)


def test_as_of_the_middle_of_the_ladder(journey: list[Recorded]) -> None:
    raised = [r for r in journey if isinstance(r.event, ev.EscalationRaised)]
    state = as_of(journey, raised[0].occurred_at + timedelta(days=1))
    assert state.stage == Stage.REPORT_FINAL
    assert state.missed_deadlines == (DeadlineName.REPORT_PUBLICATION,)
    assert [e.level for e in state.escalations] == [1]
    state = as_of(journey, raised[1].occurred_at)
    assert [e.level for e in state.escalations] == [2] and state.escalations_raised == 1


def test_a_bare_date_means_the_end_of_that_day_in_utc(journey: list[Recorded]) -> None:
    confirmed = next(r for r in journey if isinstance(r.event, ev.PeerTeamConfirmed))
    day = confirmed.occurred_at.date()
    assert parse_moment(day.isoformat()) == end_of_day(day)
    assert end_of_day(day) == datetime.combine(day, time(23, 59, 59, 999999), tzinfo=UTC)
    state = as_of(journey, parse_moment(day.isoformat()))
    assert state.stage == Stage.PEERS_SELECTED and [p.peer_id for p in state.team] == [
        "p-lm", "p-lo", "p-o", "p-m", "p-cm"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-02", datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC)),
    ("2026-03-02T09:30", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),
    ("2026-03-02 09:30:00", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),
    ("2026-03-02T09:30:00Z", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),
    ("2026-03-02T10:30:00+01:00", datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),
])
def test_parse_moment(text: str, expected: datetime) -> None:
    assert parse_moment(text) == expected


@pytest.mark.parametrize("text", ["", "2026-13-01", "yesterday", "02/03/2026"])
def test_parse_moment_refuses_what_is_not_a_moment(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        parse_moment(text)


def test_a_moment_without_a_zone_is_refused(journey: list[Recorded]) -> None:
    with pytest.raises(ValueError, match="time zone"):
        as_of(journey, datetime(2025, 6, 1))
    with pytest.raises(ValueError, match="no events"):
        as_of([], datetime(2025, 6, 1, tzinfo=UTC))


def test_a_later_version_with_an_earlier_time_ends_the_timeline_there(
    journey: list[Recorded],
) -> None:
    """Times are not checked to rise with versions; the timeline never folds across a gap."""
    odd = list(journey[:4])
    odd[3] = odd[3].model_copy(update={"occurred_at": odd[1].occurred_at})
    moment = odd[2].occurred_at - timedelta(seconds=1)
    assert as_of(odd, moment).version == 2
    assert as_of(odd, odd[2].occurred_at).version == 4


def test_diff_between_two_moments(journey: list[Recorded]) -> None:
    visit = next(r for r in journey if isinstance(r.event, ev.VisitHeld))
    published = next(r for r in journey if isinstance(r.event, ev.ReportPublished))
    assert isinstance(published.event, ev.ReportPublished)
    change = diff(journey, visit.occurred_at, published.occurred_at)
    assert change.before == fold(visit.case_id, journey[:visit.version])
    assert change.after == fold(visit.case_id, [r for r in journey
                                                if r.occurred_at <= published.occurred_at])
    assert [r.version for r in change.events] == list(range(visit.version + 1,
                                                            change.after.version + 1))
    assert change.events[0].event.type_name() == "FeedbackGiven"
    assert change.events[-1].event.type_name() == "EscalationResolved"
    changes = {c.field: (c.old, c.new) for c in change.changes}
    assert changes["stage"] == ("visited", "report_published")
    assert changes["report_published_on"] == (None, published.event.published_on.isoformat())
    assert changes["escalations_raised"] == (0, 1) and changes["escalations_resolved"] == (0, 1)
    assert changes["version"] == (visit.version, change.after.version)
    assert "team" not in changes and "council" not in changes
    # Exactly the fields that differ, and the JSON form carries the payloads.
    before, after = change.before.model_dump(mode="json"), change.after.model_dump(mode="json")
    assert set(changes) == {k for k in before if before[k] != after[k]}
    data = change.to_json()
    assert data["events"][0]["payload"]["summary"] == "Strong leadership."
    assert data["changes"][0]["field"] == "version"


def test_diff_of_a_moment_with_itself_changes_nothing(journey: list[Recorded]) -> None:
    moment = journey[5].occurred_at
    same = diff(journey, moment, moment)
    assert same.unchanged and same.changes == () and same.before == same.after
    before_start = diff(journey, journey[0].occurred_at - timedelta(days=2),
                        journey[0].occurred_at)
    assert before_start.before.stage is None and before_start.after.stage == Stage.REQUESTED
    assert {c.field for c in before_start.changes} >= {"stage", "council", "kind", "version"}
    with pytest.raises(ValueError, match="is after"):
        diff(journey, journey[3].occurred_at, journey[2].occurred_at)


def test_the_store_as_of_read_folds_to_the_same_state(sqlite_store: EventStore,
                                                       journey: list[Recorded]) -> None:
    case_id = journey[0].case_id
    sqlite_store.append(case_id, 0, [NewEvent.of(
        r.event, event_id=r.event_id, occurred_at=r.occurred_at, actor=r.actor) for r in journey])
    stored = [s.to_recorded() for s in sqlite_store.read_case(case_id)]
    assert stored == journey
    for recorded in journey:
        moment = recorded.occurred_at
        read = [s.to_recorded() for s in sqlite_store.read_case(case_id, as_of=moment)]
        assert fold(case_id, read) == as_of(stored, moment)
