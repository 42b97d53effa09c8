"""Old event shapes read as today's classes through `domain.upcasting.parse_event`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from domain import events as ev
from domain.recorded import Recorded
from domain.state import CaseState, apply
from domain.upcasting import NoUpcaster, parse_event
from domain.vocabulary import Stage, VisitMode

V1_VISIT: dict[str, Any] = {"starts_on": "2019-05-13", "ends_on": "2019-05-16"}
"""A VisitScheduled as stored before remote visits existed: schema version 1, no `mode`."""


def test_a_version_1_visit_reads_as_todays_class_on_site() -> None:
    stored = dict(V1_VISIT)
    event = parse_event("VisitScheduled", 1, stored)
    assert event == ev.VisitScheduled(mode=VisitMode.ON_SITE, starts_on=date(2019, 5, 13),
                                      ends_on=date(2019, 5, 16))
    assert type(event) is ev.VisitScheduled
    assert stored == V1_VISIT, "the stored payload is read, never rewritten"
    assert event.payload() == {"mode": "on_site", "starts_on": "2019-05-13",
                               "ends_on": "2019-05-16"}


def test_an_upcast_event_folds_like_a_new_one() -> None:
    event = parse_event("VisitScheduled", 1, dict(V1_VISIT))
    state = CaseState(case_id="cpc-E06000001-2019", version=3, stage=Stage.PEERS_SELECTED)
    state = apply(state, Recorded(case_id=state.case_id, version=4, event_id="e-4",
                                  occurred_at=datetime(2019, 4, 1, tzinfo=UTC),
                                  actor="officer:siân.jones", event=event))
    assert (state.stage, state.visit_mode) == (Stage.VISIT_SCHEDULED, VisitMode.ON_SITE)
    assert (state.visit_starts_on, state.visit_ends_on) == (date(2019, 5, 13), date(2019, 5, 16))


def test_todays_version_passes_through_unchanged() -> None:
    assert ev.VisitScheduled.schema_version == 2
    today = ev.VisitScheduled(mode=VisitMode.REMOTE, starts_on=date(2026, 6, 15),
                              ends_on=date(2026, 6, 18))
    assert parse_event("VisitScheduled", 2, today.payload()) == today
    requested = {"council": "E06000001", "kind": "finance", "reason": "Budget gap",
                 "scope": ["finance"], "budget_gap_pence": 420_000_000}
    assert parse_event("CaseRequested", 1, requested).payload() == {
        **requested, "deadline_policy": None, "selection_rules": None, "four_eyes": False}
    opened_today = ev.CaseRequested.model_validate({**requested, "deadline_policy": "standard",
                                                    "four_eyes": True})
    assert parse_event("CaseRequested", 2, opened_today.payload()) == opened_today


def test_an_unknown_type_is_named() -> None:
    with pytest.raises(ev.UnknownEventType, match="unknown event type 'CaseTeleported'") as err:
        parse_event("CaseTeleported", 1, {})
    assert err.value.type_name == "CaseTeleported"


def test_a_schema_version_newer_than_the_code_says_to_upgrade() -> None:
    payload = {"mode": "on_site", "starts_on": "2030-01-01", "ends_on": "2030-01-02"}
    with pytest.raises(NoUpcaster) as err:
        parse_event("VisitScheduled", 3, payload)
    assert str(err.value) == ("VisitScheduled schema version 3 is newer than this code (2); "
                              "upgrade before reading")
    with pytest.raises(NoUpcaster, match="CaseClosed schema version 2 is newer than this code"):
        parse_event("CaseClosed", 2, {})


def test_a_version_with_no_upcaster_is_named() -> None:
    with pytest.raises(NoUpcaster) as err:
        parse_event("VisitScheduled", 0, dict(V1_VISIT))
    assert str(err.value) == "no upcaster for VisitScheduled from schema version 0"


def test_an_upcast_payload_is_still_validated() -> None:
    with pytest.raises(ValueError, match="ends_on"):
        parse_event("VisitScheduled", 1, {**V1_VISIT, "ends_on": "2019-02-30"})
    with pytest.raises(ValueError, match="venue"):
        parse_event("VisitScheduled", 1, {**V1_VISIT, "venue": "Town hall"})


def test_a_version_1_team_proposal_reads_as_hand_picked() -> None:
    """Before the engine selected teams, every team was proposed by a case officer."""
    team = [{"peer_id": "p1", "name": "Cllr Amina Shah", "role": "lead_member",
             "home_council": "E09000008"}]
    event = parse_event("PeerTeamProposed", 1, {"team": team, "rationale": ["fewest days"]})
    assert isinstance(event, ev.PeerTeamProposed)
    assert event.selected_by == "officer" and event.selection is None
    assert [p.peer_id for p in event.team] == ["p1"] and event.rationale == ["fewest days"]
    state = apply(CaseState(case_id="cpc-E06000001-2026", version=2, stage=Stage.SCOPED),
                  Recorded(case_id="cpc-E06000001-2026", version=3, event_id="e3",
                           occurred_at=datetime(2026, 3, 2, tzinfo=UTC), actor="officer:a",
                           event=event))
    assert state.team_selected_by == "officer" and state.selection is None
    with pytest.raises(ValueError):  # since version 2 it must say who selected the team
        parse_event("PeerTeamProposed", 2, {"team": team})
    with pytest.raises(ValueError):
        parse_event("PeerTeamProposed", 3, {"team": team})


SELECTION: dict[str, Any] = {
    "algorithm": "peer-selection/1", "seed": 7, "pool_version": 1, "pool_digest": "ab" * 32,
    "scope": ["finance"], "visit_from": "2027-03-01", "visit_to": "2027-03-04", "rules": {},
    "excluded": [], "councils_digest": None}
V2_ENGINE_TEAM: dict[str, Any] = {
    "team": [{"peer_id": "cl: 1", "name": "Cllr Amina Shah", "role": "lead_member",
              "home_council": "E09000008"}],
    "rationale": [
        "peer-selection/1; seed 7; corporate_peer_challenge at E06000001; visit 2027-03-01 to "
        "2027-03-04",
        "rules: 50 km, 5-year cooling off, 4-7 peers, days served over 3 years; 0 objected to",
        "cl: 1: admitted (eligible) eligible; 0 days served in the last 3 years; fairness rank "
        "1; selected as lead_member",
        "ce-2: excluded (declared_interest) declared an interest in Hartlepool",
        "of-3: excluded (distance) Durham is 20 km from Hartlepool, under 50 km"],
    "selected_by": "engine", "selection": SELECTION}
"""A PeerTeamProposed as version 2 stored an engine's selection: a line of words a peer."""


def test_a_version_2_engine_proposal_reads_its_codes_from_its_words() -> None:
    stored = json.loads(json.dumps(V2_ENGINE_TEAM))
    event = parse_event("PeerTeamProposed", 2, stored)
    assert isinstance(event, ev.PeerTeamProposed)
    assert event.reasons == {ev.ReasonCode.ELIGIBLE: ["cl: 1"],
                             ev.ReasonCode.DECLARED_INTEREST: ["ce-2"],
                             ev.ReasonCode.DISTANCE: ["of-3"]}
    assert event.rationale == V2_ENGINE_TEAM["rationale"], "the words are read, not dropped"
    assert stored == V2_ENGINE_TEAM, "the stored payload is read, never rewritten"
    state = apply(CaseState(case_id="cpc-E06000001-2026", version=2, stage=Stage.SCOPED),
                  Recorded(case_id="cpc-E06000001-2026", version=3, event_id="e3",
                           occurred_at=datetime(2026, 3, 2, tzinfo=UTC), actor="officer:a",
                           event=event))
    assert state.team_selected_by == "engine" and [p.peer_id for p in state.proposed_team] == [
        "cl: 1"]


def test_a_version_2_summary_or_hand_picked_team_reads_without_codes() -> None:
    summarised = {**V2_ENGINE_TEAM, "rationale": [
        *V2_ENGINE_TEAM["rationale"][:3], "excluded by distance: 9 peers"]}
    for payload in (summarised, {**V2_ENGINE_TEAM, "selected_by": "officer",
                                 "selection": None}):
        event = parse_event("PeerTeamProposed", 2, payload)
        assert isinstance(event, ev.PeerTeamProposed) and event.reasons is None


def test_a_version_1_unfilled_team_reads_without_codes_and_folds() -> None:
    stored = {"requirement": "lead_member", "reason": "no lead member peer (a councillor): "
              "the pool has no such peer", "selection": SELECTION}
    event = parse_event("PeerTeamCannotBeFilled", 1, dict(stored))
    assert isinstance(event, ev.PeerTeamCannotBeFilled) and event.reasons is None
    assert parse_event("PeerTeamCannotBeFilled", 2, event.payload()) == event
    state = apply(CaseState(case_id="cpc-E06000001-2026", version=2, stage=Stage.SCOPED),
                  Recorded(case_id="cpc-E06000001-2026", version=3, event_id="e3",
                           occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
                           actor="system:peer-selection", event=event))
    assert state.selection_problem == f"lead_member: {stored['reason']}"
