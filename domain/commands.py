"""What officers and councils ask of a case. One class per action; the rules decide."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.events import PeerPlace
from domain.peers import SelectionRules
from domain.vocabulary import (
    Actor,
    CaseId,
    CaseKind,
    GssCode,
    ScopeArea,
    Sha256,
    ShortText,
    Text,
    Url,
    VisitMode,
)


class Command(BaseModel):
    """An action someone asks of a case, as they sent it; the rules decide whether it is taken."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor = Field(description="who sends it, role:name or council:GSS:name (the "
                                     "signed-in user; never typed)")
    case_id: CaseId | None = Field(
        default=None,
        description="the case the sender means: actions go to a council's slot (its newest "
                    "case of the kind), so naming the case lets the rules refuse an action "
                    "meant for an older, closed one")


class RequestCase(Command):
    """Open a case for a council: the request for a peer challenge, with its reason and scope."""

    action: Literal["request"] = Field(default="request", description="what is asked: request")
    case_id: CaseId = Field(description="the new case's id, e.g. cpc-E06000001-2026")
    council: GssCode = Field(description="the council's GSS code, e.g. E06000001")
    kind: CaseKind = Field(description="which kind of peer challenge")
    reason: Text = Field(description="why the council needs it")
    scope: list[ScopeArea] = Field(default_factory=list, max_length=20,
                                   description="the areas the challenge looks at, e.g. "
                                               "finance, governance")
    budget_gap_pence: int | None = Field(default=None, ge=0, le=10**15,
                                         description="the council's budget gap, in pence")
    deadline_policy: ShortText = Field(
        default="standard",
        description="the name of one of the server's deadline policies; never durations sent "
                    "by a caller")
    selection_rules: SelectionRules | None = Field(
        default=None,
        description="set by the workflow from the server's terms for the case, not by the "
                    "caller")
    four_eyes: bool = Field(
        default=False,
        description="set by the workflow for every case it opens: sensitive actions need a "
                    "second person")
    requested_on: date | None = Field(
        default=None,
        description="the day the council asked for it, if not today (not in the future)")
    business_dates: bool = Field(
        default=False,
        description="set by the workflow for every case it opens: deadlines count from the "
                    "dates things happened")


class ScopeCase(Command):
    """Agree what the peer challenge looks at and how the team will visit."""

    action: Literal["scope"] = Field(default="scope", description="what is asked: scope")
    scope: list[ScopeArea] = Field(min_length=1, max_length=20,
                                   description="the areas the challenge looks at, e.g. "
                                               "finance, governance")
    visit_mode: VisitMode = Field(description="how the peer team will visit")


class SelectPeerTeam(Command):
    """Ask the engine to propose a peer team from the pool, by the published rules.

    The visit is on these dates: peers must be accredited and available on every one of them."""

    action: Literal["select_team"] = Field(default="select_team",
                                           description="what is asked: select_team")
    visit_from: date = Field(description="the visit's first day")
    visit_to: date = Field(description="the visit's last day")


class ProposePeerTeam(Command):
    """Propose a hand-picked team: recorded, and shown to everyone, as picked by an officer."""

    action: Literal["propose_team"] = Field(default="propose_team",
                                            description="what is asked: propose_team")
    team: list[PeerPlace] = Field(min_length=1, max_length=12,
                                  description="the team's seats: each peer's id, name, role "
                                              "and home council")
    rationale: list[ShortText] = Field(default_factory=list, max_length=10000,
                                       description="why these peers, one reason each")


class ObjectToPeer(Command):
    """Object to a peer on the proposed team: the team cannot be confirmed with them on it."""

    action: Literal["object_to_peer"] = Field(default="object_to_peer",
                                              description="what is asked: object_to_peer")
    peer_id: ShortText = Field(description="the peer objected to, by their id on the team")
    reason: Text = Field(description="why (say, a conflict of interest)")


class ConfirmPeerTeam(Command):
    """Confirm the proposed peer team, once nobody on it is objected to."""

    action: Literal["confirm_team"] = Field(default="confirm_team",
                                            description="what is asked: confirm_team")


class ScheduleVisit(Command):
    """Schedule the peer team's visit to the council."""

    action: Literal["schedule_visit"] = Field(default="schedule_visit",
                                              description="what is asked: schedule_visit")
    mode: VisitMode = Field(description="how the peer team will visit")
    starts_on: date = Field(description="the visit's first day")
    ends_on: date = Field(description="the visit's last day")


class RecordVisit(Command):
    """Record that the visit took place, and when."""

    action: Literal["record_visit"] = Field(default="record_visit",
                                            description="what is asked: record_visit")
    started_on: date = Field(description="the visit's first day")
    ended_on: date = Field(description="the visit's last day")
    mode: VisitMode | None = Field(default=None,
                                   description="how it was held (default: as scheduled)")


class GiveFeedback(Command):
    """Record the peer team's feedback to the council at the end of the visit."""

    action: Literal["give_feedback"] = Field(default="give_feedback",
                                             description="what is asked: give_feedback")
    given_on: date = Field(description="the day the feedback was given")
    summary: Text = Field(description="what the feedback said, in short")


class DraftReport(Command):
    """Record the draft report sent to the council for factual-accuracy comments."""

    action: Literal["draft_report"] = Field(default="draft_report",
                                            description="what is asked: draft_report")
    document_sha256: Sha256 = Field(description="the draft's SHA-256, lowercase hex")
    sent_on: date = Field(description="the day it was sent to the council")


class SubmitFactualAccuracyComments(Command):
    """Send the council's factual-accuracy comments on the draft report."""

    action: Literal["factual_accuracy_comments"] = Field(
        default="factual_accuracy_comments",
        description="what is asked: factual_accuracy_comments")
    comments: Text = Field(description="the council's comments on the draft's facts")


class FinaliseReport(Command):
    """Make the report final: that version cannot be changed, only corrected."""

    action: Literal["finalise_report"] = Field(default="finalise_report",
                                               description="what is asked: finalise_report")
    document_sha256: Sha256 = Field(description="the final report's SHA-256, lowercase hex")
    final_on: date | None = Field(
        default=None,
        description="the day the report was made final, if not today (not before the draft "
                    "was sent)")


class CorrectReport(Command):
    """Correct the final report with a new version, giving the reason (needs approval)."""

    action: Literal["correct_report"] = Field(default="correct_report",
                                              description="what is asked: correct_report")
    document_sha256: Sha256 = Field(description="the corrected report's SHA-256, lowercase hex")
    reason: Text = Field(description="why the final report needs correcting")


class PublishReport(Command):
    """Record the final report's publication, and where it is."""

    action: Literal["publish_report"] = Field(default="publish_report",
                                              description="what is asked: publish_report")
    published_on: date = Field(description="the day the report was published")
    url: Url = Field(description="where the published report is, https://…")


class PublishActionPlan(Command):
    """Record the council's action plan in answer to the report, and where it is."""

    action: Literal["publish_action_plan"] = Field(
        default="publish_action_plan", description="what is asked: publish_action_plan")
    published_on: date = Field(description="the day the action plan was published")
    url: Url = Field(description="where the published action plan is, https://…")


class HoldProgressReview(Command):
    """Record the progress review the peers held on the action plan, and when."""

    action: Literal["hold_progress_review"] = Field(
        default="hold_progress_review", description="what is asked: hold_progress_review")
    started_on: date = Field(description="the review's first day")
    ended_on: date = Field(description="the review's last day")
    mode: VisitMode = Field(default=VisitMode.ON_SITE,
                            description="how it was held (default on_site)")


class PublishProgressReview(Command):
    """Record the progress review report's publication, and where it is."""

    action: Literal["publish_progress_review"] = Field(
        default="publish_progress_review",
        description="what is asked: publish_progress_review")
    published_on: date = Field(description="the day the progress review report was published")
    url: Url = Field(description="where the published progress review report is, https://…")


class WithdrawCase(Command):
    """Withdraw the case, giving the reason (needs approval)."""

    action: Literal["withdraw"] = Field(default="withdraw", description="what is asked: withdraw")
    reason: Text = Field(description="why the case is withdrawn")


class ApproveRequest(Command):
    """Approve someone else's sensitive request: it takes effect now, as requested.

    Sensitive: a correction, a withdrawal, a hand-picked team."""

    action: Literal["approve"] = Field(default="approve", description="what is asked: approve")
    request_id: ShortText = Field(description="the request waiting for approval, e.g. "
                                              "propose-team-3 (`cases status` lists them)")


class DeclineRequest(Command):
    """Decline a sensitive request waiting for approval, with the reason: nothing takes effect."""

    action: Literal["decline"] = Field(default="decline", description="what is asked: decline")
    request_id: ShortText = Field(description="the request waiting for approval, e.g. "
                                              "propose-team-3 (`cases status` lists them)")
    reason: Text = Field(description="why it is declined")


class CloseCase(Command):
    """Close the case once its progress review report is published."""

    action: Literal["close"] = Field(default="close", description="what is asked: close")
    summary: Text | None = Field(default=None, description="how the case ended, in short")


AnyCommand = Annotated[
    RequestCase | ScopeCase | SelectPeerTeam | ProposePeerTeam | ObjectToPeer | ConfirmPeerTeam
    | ScheduleVisit
    | RecordVisit | GiveFeedback | DraftReport | SubmitFactualAccuracyComments | FinaliseReport
    | CorrectReport | PublishReport | PublishActionPlan | HoldProgressReview
    | PublishProgressReview | WithdrawCase | CloseCase | ApproveRequest | DeclineRequest,
    Field(discriminator="action"),
]
"""Any command, told apart by its `action`: how the CLI and the workflow pass them around."""
