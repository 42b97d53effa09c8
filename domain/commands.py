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
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    case_id: CaseId | None = None
    """The case the sender means. Actions go to a council's slot (its newest case of the kind),
    so naming the case lets the rules refuse an action meant for an older, closed one."""


class RequestCase(Command):
    action: Literal["request"] = "request"
    case_id: CaseId
    council: GssCode
    kind: CaseKind
    reason: Text
    scope: list[ScopeArea] = Field(default_factory=list, max_length=20)
    budget_gap_pence: int | None = Field(default=None, ge=0, le=10**15)
    deadline_policy: ShortText = "standard"
    """The name of one of the server's deadline policies; never durations sent by a caller."""
    selection_rules: SelectionRules | None = None
    """Set by the workflow from the server's terms for the case, not by the caller."""
    four_eyes: bool = False
    """Set by the workflow for every case it opens: sensitive actions need a second person."""


class ScopeCase(Command):
    action: Literal["scope"] = "scope"
    scope: list[ScopeArea] = Field(min_length=1, max_length=20)
    visit_mode: VisitMode


class SelectPeerTeam(Command):
    """Ask the engine to propose a peer team from the pool, by the published rules, for a
    visit on these dates (peers must be accredited and available on every one of them)."""

    action: Literal["select_team"] = "select_team"
    visit_from: date
    visit_to: date


class ProposePeerTeam(Command):
    """Propose a hand-picked team: recorded, and shown to everyone, as picked by an officer."""

    action: Literal["propose_team"] = "propose_team"
    team: list[PeerPlace] = Field(min_length=1, max_length=12)
    rationale: list[ShortText] = Field(default_factory=list, max_length=10000)


class ObjectToPeer(Command):
    action: Literal["object_to_peer"] = "object_to_peer"
    peer_id: ShortText
    reason: Text


class ConfirmPeerTeam(Command):
    action: Literal["confirm_team"] = "confirm_team"


class ScheduleVisit(Command):
    action: Literal["schedule_visit"] = "schedule_visit"
    mode: VisitMode
    starts_on: date
    ends_on: date


class RecordVisit(Command):
    action: Literal["record_visit"] = "record_visit"
    started_on: date
    ended_on: date
    mode: VisitMode | None = None


class GiveFeedback(Command):
    action: Literal["give_feedback"] = "give_feedback"
    given_on: date
    summary: Text


class DraftReport(Command):
    action: Literal["draft_report"] = "draft_report"
    document_sha256: Sha256
    sent_on: date


class SubmitFactualAccuracyComments(Command):
    action: Literal["factual_accuracy_comments"] = "factual_accuracy_comments"
    comments: Text


class FinaliseReport(Command):
    action: Literal["finalise_report"] = "finalise_report"
    document_sha256: Sha256


class CorrectReport(Command):
    action: Literal["correct_report"] = "correct_report"
    document_sha256: Sha256
    reason: Text


class PublishReport(Command):
    action: Literal["publish_report"] = "publish_report"
    published_on: date
    url: Url


class PublishActionPlan(Command):
    action: Literal["publish_action_plan"] = "publish_action_plan"
    published_on: date
    url: Url


class HoldProgressReview(Command):
    action: Literal["hold_progress_review"] = "hold_progress_review"
    started_on: date
    ended_on: date
    mode: VisitMode = VisitMode.ON_SITE


class PublishProgressReview(Command):
    action: Literal["publish_progress_review"] = "publish_progress_review"
    published_on: date
    url: Url


class WithdrawCase(Command):
    action: Literal["withdraw"] = "withdraw"
    reason: Text


class ApproveRequest(Command):
    """Approve a sensitive request (a correction, a withdrawal, a hand-picked team) made by
    someone else: it takes effect now, as requested."""

    action: Literal["approve"] = "approve"
    request_id: ShortText


class DeclineRequest(Command):
    """Decline a sensitive request waiting for approval, with the reason: nothing takes effect."""

    action: Literal["decline"] = "decline"
    request_id: ShortText
    reason: Text


class CloseCase(Command):
    action: Literal["close"] = "close"
    summary: Text | None = None


AnyCommand = Annotated[
    RequestCase | ScopeCase | SelectPeerTeam | ProposePeerTeam | ObjectToPeer | ConfirmPeerTeam
    | ScheduleVisit
    | RecordVisit | GiveFeedback | DraftReport | SubmitFactualAccuracyComments | FinaliseReport
    | CorrectReport | PublishReport | PublishActionPlan | HoldProgressReview
    | PublishProgressReview | WithdrawCase | CloseCase | ApproveRequest | DeclineRequest,
    Field(discriminator="action"),
]
"""Any command, told apart by its `action`: how the CLI and the workflow pass them around."""
