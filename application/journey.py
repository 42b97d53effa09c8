"""A whole journey as a script of commands: used by the demo, the benchmark and the tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date

from domain import commands as cmd
from domain.events import PeerPlace
from domain.rules import approval_request_id
from domain.vocabulary import VisitMode


def document(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def demo_team(council: str) -> list[PeerPlace]:
    """A corporate peer challenge team from councils other than `council`."""
    others = [c for c in ("E09000008", "E08000025", "E06000047", "E07000223", "E10000014")
              if c != council]
    return [
        PeerPlace(peer_id="p-lead-member", name="Cllr Amina Shah", role="lead_member",
                  home_council=others[0]),
        PeerPlace(peer_id="p-lead-officer", name="Dr Tom Reyes", role="lead_officer",
                  home_council=others[1]),
        PeerPlace(peer_id="p-officer-finance", name="Jo Pike", role="officer",
                  home_council=others[2]),
        PeerPlace(peer_id="p-member", name="Cllr Eve Lund", role="member",
                  home_council=others[3]),
        PeerPlace(peer_id="p-manager", name="Sam Ode", role="challenge_manager",
                  home_council=None),
    ]


HAND_PICKED_TEAM_REQUEST = approval_request_id("propose_team", 3)
"""The journey's request for its hand-picked team: recorded at version 3, after the request
and the scoping."""


def journey(council: str, today: date, officer: str = "officer:demo", *,
            select_team: bool = False,
            approver: str = "lga_adviser:demo-adviser") -> Iterator[cmd.AnyCommand]:
    """Every action of a corporate peer challenge after its request, in order, dated `today`.
    With `select_team` the engine selects the team from the store's pool (the council must be
    in the register); otherwise the officer proposes `demo_team`, recorded as hand-picked,
    and `approver` approves it (a hand-picked team needs a second person)."""
    contact = f"council:{council}"
    yield cmd.ScopeCase(actor=officer, scope=["finance", "governance"],
                        visit_mode=VisitMode.ON_SITE)
    if select_team:
        yield cmd.SelectPeerTeam(actor=officer, visit_from=today, visit_to=today)
    else:
        yield cmd.ProposePeerTeam(actor=officer, team=demo_team(council),
                                  rationale=["fewest days served among eligible peers"])
        yield cmd.ApproveRequest(actor=approver, request_id=HAND_PICKED_TEAM_REQUEST)
    yield cmd.ConfirmPeerTeam(actor=officer)
    yield cmd.ScheduleVisit(actor=officer, mode=VisitMode.ON_SITE, starts_on=today,
                            ends_on=today)
    yield cmd.RecordVisit(actor=officer, started_on=today, ended_on=today)
    yield cmd.GiveFeedback(actor=officer, given_on=today,
                           summary="Strong leadership; the medium-term financial plan needs work.")
    yield cmd.DraftReport(actor=officer, document_sha256=document("draft report"), sent_on=today)
    yield cmd.SubmitFactualAccuracyComments(actor=contact,
                                            comments="Paragraph 4: the reserves figure is £12m.")
    yield cmd.FinaliseReport(actor=officer, document_sha256=document("final report"))
    yield cmd.PublishReport(actor=contact, published_on=today,
                            url=f"https://example.org/{council}/peer-challenge-report")
    yield cmd.PublishActionPlan(actor=contact, published_on=today,
                                url=f"https://example.org/{council}/action-plan")
    yield cmd.HoldProgressReview(actor=officer, started_on=today, ended_on=today)
    yield cmd.PublishProgressReview(actor=contact, published_on=today,
                                    url=f"https://example.org/{council}/progress-review")
    yield cmd.CloseCase(actor=officer, summary="Action plan delivered; progress review published.")
