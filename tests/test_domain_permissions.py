"""The role table (domain/permissions.py) and the four-eyes rule, through `decide`.

The matrix is property-based: every command, every role, the case's own council and another.
A command the table refuses is refused by `decide` before any rule runs, whatever the stage.
"""

from __future__ import annotations

import typing
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import commands as cmd
from domain import events as ev
from domain.actors import NotAnActor, Role, parse_actor, principal_for
from domain.permissions import MAY, SENSITIVE
from domain.rules import CommandNotPermitted, CommandRefused, decide
from domain.state import CaseState
from tests.test_domain_rules import (
    CASE_ID,
    COUNCIL,
    CPC,
    TEAM,
    Case,
    document,
    report_drafted,
    report_final,
    scoped,
)

OTHER_COUNCIL = "E08000025"
COMMAND_CLASSES = [c for c in typing.get_args(typing.get_args(cmd.AnyCommand)[0])]
ACTION_OF = {c: typing.get_args(c.model_fields["action"].annotation)[0] for c in COMMAND_CLASSES}

ACTORS_BY_ROLE = {
    Role.CASE_OFFICER: "case_officer:siân.jones",
    Role.LGA_ADVISER: "lga_adviser:raj.patel",
    Role.COUNCIL: f"council:{COUNCIL}:sam.lee",
    Role.AUDITOR: "auditor:ada.lovelace",
    Role.ADMIN: "admin:ops",
    Role.SYSTEM: "system:escalation",
}


def four_eyes_case() -> Case:
    """A case opened as the workflow opens one today: under the four-eyes rule."""
    case = Case()
    case.do(cmd.RequestCase(actor="case_officer:siân.jones", case_id=CASE_ID, council=COUNCIL,
                            kind=CPC, reason="Budget gap", four_eyes=True),
            after=timedelta(0))
    case.do(cmd.ScopeCase(actor="case_officer:siân.jones", scope=["finance"],
                          visit_mode="on_site"))
    return case


def _sample(command_class: type[cmd.Command], actor: str) -> cmd.Command:
    """Some instance of the command (its fields need only be valid, not wise)."""
    values: dict[str, object] = {"actor": actor}
    for name, info in command_class.model_fields.items():
        if name in values or name == "action" or not info.is_required():
            continue
        values[name] = {
            "case_id": CASE_ID, "council": COUNCIL, "kind": CPC, "reason": "Because",
            "scope": ["finance"], "visit_mode": "on_site", "mode": "on_site",
            "visit_from": "2026-06-01", "visit_to": "2026-06-02", "starts_on": "2026-06-01",
            "ends_on": "2026-06-02", "started_on": "2026-03-01", "ended_on": "2026-03-02",
            "given_on": "2026-03-02", "sent_on": "2026-03-02", "published_on": "2026-03-02",
            "summary": "Summary", "comments": "Comments", "document_sha256": document("x"),
            "url": "https://example.org/r", "peer_id": "p1", "team": TEAM,
            "request_id": "withdraw-3",
        }[name]
    return command_class.model_validate(values)


@settings(max_examples=300, deadline=None)
@given(command_class=st.sampled_from(COMMAND_CLASSES), role=st.sampled_from(list(Role)),
       own_council=st.booleans(), stage_case=st.sampled_from([scoped, report_drafted,
                                                               report_final]))
def test_every_role_may_issue_exactly_what_the_table_says(
        command_class: type[cmd.Command], role: Role, own_council: bool,
        stage_case: typing.Callable[[], Case]) -> None:
    actor = ACTORS_BY_ROLE[role]
    if role == Role.COUNCIL and not own_council:
        actor = f"council:{OTHER_COUNCIL}:kit.ward"
    state = CaseState(case_id=CASE_ID) if command_class is cmd.RequestCase else (
        stage_case().state)
    command = _sample(command_class, actor)
    permitted = ACTION_OF[command_class] in MAY[role] and (role != Role.COUNCIL or own_council)
    try:
        decide(state, command, state.last_event_at or Case().now)
    except CommandNotPermitted as refused:
        assert not permitted, refused
        assert refused.reason.startswith("cannot ")
        if role == Role.COUNCIL and ACTION_OF[command_class] in MAY[role]:
            assert "is not the council of this case" in refused.reason
        else:
            assert f"may, not {actor}" in refused.reason
    except CommandRefused as refused:  # the rules of the stage, after the table let it by
        assert permitted, refused
    else:
        assert permitted


def test_the_actor_names_the_role_the_person_and_the_council() -> None:
    council_user = principal_for(Role.COUNCIL, "sam.lee", "E09000008")
    assert council_user.actor == "council:E09000008:sam.lee"
    assert parse_actor(council_user.actor) == council_user
    assert parse_actor("officer:siân.jones").role == Role.CASE_OFFICER  # the legacy spelling
    assert parse_actor("council:E06000001").name == ""  # a legacy council actor names nobody
    for bad in ("ghost", "officer:", "council:E0600000", "wizard:kim"):
        with pytest.raises(NotAnActor):
            parse_actor(bad)
    with pytest.raises(NotAnActor, match="needs the council"):
        principal_for(Role.COUNCIL, "sam.lee")
    with pytest.raises(NotAnActor, match="only a council user"):
        principal_for(Role.AUDITOR, "ada", "E09000008")


def test_sensitive_actions_wait_for_a_second_person() -> None:
    case = four_eyes_case()
    [asked] = case.do(cmd.WithdrawCase(actor="case_officer:siân.jones", reason="Intervention"))
    assert isinstance(asked, ev.ApprovalRequested) and asked.action == "withdraw"
    assert case.state.stage is not None and case.state.stage.is_open  # nothing took effect
    [waiting] = case.state.awaiting_approval
    assert waiting.requested_by == "case_officer:siân.jones"

    own = case.refused(cmd.ApproveRequest(actor="case_officer:siân.jones",
                                          request_id=waiting.request_id))
    assert "it is your own request" in own
    # the same person under another role is still the same person
    assert "it is your own request" in case.refused(cmd.ApproveRequest(
        actor="lga_adviser:siân.jones", request_id=waiting.request_id))
    assert "only a case officer or an LGA principal adviser may" in case.refused(
        cmd.ApproveRequest(actor=f"council:{COUNCIL}:sam.lee", request_id=waiting.request_id))

    events = case.do(cmd.ApproveRequest(actor="lga_adviser:raj.patel",
                                        request_id=waiting.request_id))
    assert [type(e) for e in events] == [ev.RequestApproved, ev.CaseWithdrawn]
    assert case.state.stage is not None and not case.state.stage.is_open
    assert case.state.withdrawal_reason == "Intervention"
    assert case.state.awaiting_approval == ()


def test_a_hand_picked_team_is_proposed_only_on_approval_and_a_decline_changes_nothing() -> None:
    case = four_eyes_case()
    case.do(cmd.ProposePeerTeam(actor="case_officer:siân.jones", team=TEAM))
    assert case.state.proposed_team == ()
    [waiting] = case.state.awaiting_approval
    assert "already waits for approval" in case.refused(
        cmd.ProposePeerTeam(actor="case_officer:raj.patel", team=TEAM))
    case.do(cmd.DeclineRequest(actor="case_officer:raj.patel", request_id=waiting.request_id,
                               reason="Pick from the pool"))
    assert case.state.proposed_team == () and case.state.awaiting_approval == ()
    assert "no request" in case.refused(cmd.ApproveRequest(actor="case_officer:raj.patel",
                                                           request_id=waiting.request_id))
    case.do(cmd.ProposePeerTeam(actor="case_officer:siân.jones", team=TEAM))
    again = case.state.awaiting(f"propose-team-{case.state.version}")
    assert again is not None
    case.do(cmd.ApproveRequest(actor="case_officer:raj.patel", request_id=again.request_id))
    assert case.state.proposed_team == tuple(TEAM) and case.state.team_selected_by == "officer"


def test_a_request_that_could_never_take_effect_is_refused_at_once() -> None:
    case = four_eyes_case()
    reason = case.refused(cmd.CorrectReport(actor="case_officer:siân.jones",
                                            document_sha256=document("fix"), reason="Typo"))
    assert "the report is not final yet" in reason
    assert case.state.awaiting_approval == ()


def test_sensitive_actions_of_cases_opened_before_the_rule_take_effect_at_once() -> None:
    case = scoped()  # opened without the four-eyes rule, as older cases were
    assert not case.state.four_eyes
    [withdrawn] = case.do(cmd.WithdrawCase(actor="officer:siân.jones", reason="Intervention"))
    assert isinstance(withdrawn, ev.CaseWithdrawn)


def test_every_sensitive_action_is_in_the_table() -> None:
    every_action = set(ACTION_OF.values())
    assert every_action >= SENSITIVE
    assert every_action == set().union(*MAY.values())  # no command nobody may issue
