"""One class per domain event. The class name is the stored `type`; its fields are the payload.

An event is a fact that happened; it is never edited. A change of shape raises the class's
`schema_version` and ships an upcaster (see `upcasting.py`) so old rows read as today's class.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.peers import SelectionRules
from domain.vocabulary import (
    CaseKind,
    DeadlineName,
    GssCode,
    ScopeArea,
    Sha256,
    ShortText,
    Text,
    Url,
    VisitMode,
)

EVENT_CLASSES: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every domain event: frozen, strict about unknown fields, JSON without floats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: ClassVar[int] = 1
    case_event: ClassVar[bool] = True
    """False for events of other streams (checkpoints), which a case never folds."""
    added_fields: ClassVar[dict[int, tuple[str, ...]]] = {}
    """Fields new in a schema version, by version, for classes that write the older version
    while those fields are at their defaults: an event that uses nothing new is stored exactly
    as before (so replaying an old case's history appends byte for byte what it did)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        EVENT_CLASSES[cls.__name__] = cls

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    def stored_version(self) -> int:
        """The schema version this event is written as: the newest whose added fields it uses."""
        version = self.schema_version
        fields = type(self).model_fields
        for added in sorted(self.added_fields, reverse=True):
            names = self.added_fields[added]
            if any(getattr(self, name) != fields[name].default for name in names):
                break
            version = added - 1
        return version

    def payload(self) -> dict[str, Any]:
        """The JSON object stored as the event's payload (in its `stored_version`'s shape)."""
        data = self.model_dump(mode="json")
        if self.added_fields:
            written = self.stored_version()
            for added, names in self.added_fields.items():
                if added > written:
                    for name in names:
                        data.pop(name, None)
        return data


PeerRole = Literal["lead_member", "lead_officer", "officer", "member", "challenge_manager"]


class PeerPlace(BaseModel):
    """One seat on a peer team: who sits in it, in which role, from which council."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    peer_id: ShortText
    name: ShortText
    role: PeerRole
    home_council: GssCode | None = None
    """None only for the LGA's own peer challenge manager."""


class ImportedFrom(BaseModel):
    """Where an imported past challenge came from: the case's first `events` versions were
    written by `cases import-history` from row `row` of the file with SHA-256 `file_sha256`,
    by the user recorded as their actor. They are history brought in, not steps the engine
    saw happen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_sha256: Sha256
    row: int = Field(ge=2, le=10**6)
    """The file's line of this row (the header is line 1)."""
    events: int = Field(ge=1, le=100)
    source: ShortText | None = None
    """The row's own reference, if the file gave one (say, the LGA report's title)."""


class CaseRequested(Event):
    """Version 2 added the terms the case runs by: the deadline policy's name, the selection
    rules in force and the four-eyes rule. Version 1 cases ran without them. Version 3 added
    the business date of the request, `business_dates` (the case's deadlines count from the
    dates things happened, not from when they were recorded) and, for a past challenge
    brought in by `cases import-history`, where it came from."""

    schema_version: ClassVar[int] = 3
    added_fields: ClassVar[dict[int, tuple[str, ...]]] = {
        3: ("requested_on", "business_dates", "imported")}
    council: GssCode
    kind: CaseKind
    reason: Text
    scope: list[ScopeArea] = Field(default_factory=list, max_length=20)
    budget_gap_pence: int | None = Field(default=None, ge=0, le=10**15)
    deadline_policy: ShortText | None = None
    selection_rules: SelectionRules | None = None
    four_eyes: bool = False
    requested_on: date | None = None
    """None before business dates: the day it was recorded."""
    business_dates: bool = False
    imported: ImportedFrom | None = None


class CaseScoped(Event):
    scope: list[ScopeArea] = Field(min_length=1, max_length=20)
    visit_mode: VisitMode


class PeerSelectionRecord(BaseModel):
    """Every input of an engine selection but the pool's rows, which `pool_version` and
    `pool_digest` name exactly: with them, anyone re-runs the selection and gets this team."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: ShortText
    seed: int = Field(ge=0, lt=2**53)
    pool_version: int = Field(ge=1)
    pool_digest: Sha256
    scope: list[ScopeArea] = Field(max_length=20)
    visit_from: date
    visit_to: date
    rules: SelectionRules
    excluded: list[ShortText] = Field(default_factory=list, max_length=1000)
    """Peers the council objected to, sorted: never chosen again for this case."""
    councils_digest: Sha256 | None = None
    """`domain.councils.register_digest` of the register the rules saw (the locality rules
    read counties, combined authorities and positions from it)."""


class ReasonCode(StrEnum):
    """Why the engine admitted or excluded one peer of the pool: the first rule it broke, or
    ELIGIBLE. An event records only this code against the peer's id; the words (which council,
    which dates) are derived from the pool version when shown, so nothing personal about a
    peer who was not chosen is kept in the permanent record."""

    OBJECTED = "objected"
    SUBJECT_COUNCIL = "subject_council"
    UNKNOWN_COUNCIL = "unknown_council"
    SAME_COUNTY = "same_county"
    SAME_COMBINED_AUTHORITY = "same_combined_authority"
    DISTANCE = "distance"
    COOLING_OFF = "cooling_off"
    DECLARED_INTEREST = "declared_interest"
    ACCREDITATION = "accreditation"
    AVAILABILITY = "availability"
    ERASED = "erased"
    """The peer's personal data had been erased from the pool on request: nobody can be
    proposed without a name, so an erased peer has left the pool."""
    ELIGIBLE = "eligible"


MAX_REASONS = 100_000
"""Most pool peers one selection records a code for; a larger pool records the team alone."""

ReasonCodes = dict[ReasonCode, list[ShortText]]
"""Every pool peer's id under the code that decided it, in peer-id order within each code."""


def _at_most_max_reasons(reasons: ReasonCodes | None) -> None:
    if reasons is not None and sum(map(len, reasons.values())) > MAX_REASONS:
        raise ValueError(f"reasons: more than {MAX_REASONS} peers")


class PeerTeamProposed(Event):
    """Version 2 added `selected_by` and `selection`: before the engine selected teams, every
    team was proposed by a case officer. Version 3 keeps the words out: an engine selection's
    `rationale` is its two header lines (algorithm, seed, case, visit; the rules), and each
    pool peer is `reasons`: its id under a reason code. A version 2 row wrote a line of words
    per candidate; it reads with `reasons` taken from those lines (see `upcasting.py`)."""

    schema_version: ClassVar[int] = 3
    team: list[PeerPlace] = Field(min_length=1, max_length=12)
    """The decision: the peers on the team are named."""
    rationale: list[ShortText] = Field(default_factory=list, max_length=10000)
    selected_by: Literal["engine", "officer"]
    """`officer`: hand-picked, and shown as such to everyone who reads the case."""
    selection: PeerSelectionRecord | None = None
    """The engine's inputs (None for a hand-picked team)."""
    reasons: ReasonCodes | None = None
    """The engine's code for every pool peer (None for a hand-picked team, a pool over
    `MAX_REASONS`, or a version 2 row whose words were summarised)."""

    @model_validator(mode="after")
    def _reasons_bounded(self) -> Self:
        _at_most_max_reasons(self.reasons)
        return self


class PeerTeamCannotBeFilled(Event):
    """The engine's selection ran out of eligible peers for one requirement of the team.
    Version 2 added `reasons`, every pool peer's code, as `PeerTeamProposed` records them;
    `reason` counts peers by rule and names no political group."""

    schema_version: ClassVar[int] = 2
    requirement: ShortText
    reason: Text
    selection: PeerSelectionRecord
    reasons: ReasonCodes | None = None

    @model_validator(mode="after")
    def _reasons_bounded(self) -> Self:
        _at_most_max_reasons(self.reasons)
        return self


class PeerObjectedTo(Event):
    peer_id: ShortText
    reason: Text


class PeerTeamConfirmed(Event):
    team: list[PeerPlace] = Field(min_length=1, max_length=12)


class VisitScheduled(Event):
    """Version 2 added `mode`: before remote visits, every visit was on site."""

    schema_version: ClassVar[int] = 2
    mode: VisitMode
    starts_on: date
    ends_on: date


class VisitHeld(Event):
    mode: VisitMode
    started_on: date
    ended_on: date


class FeedbackGiven(Event):
    given_on: date
    summary: Text


class ReportDrafted(Event):
    report_version: int = Field(ge=1)
    document_sha256: Sha256
    sent_on: date


class FactualAccuracyCommentsReceived(Event):
    comments: Text


class ReportMadeFinal(Event):
    """Version 2 added `made_final_on`, the business date (None: the day it was recorded)."""

    schema_version: ClassVar[int] = 2
    added_fields: ClassVar[dict[int, tuple[str, ...]]] = {2: ("made_final_on",)}
    report_version: int = Field(ge=1)
    document_sha256: Sha256
    factual_accuracy_check: Literal["comments_considered", "no_comments", "lapsed"]
    made_final_on: date | None = None


class ReportCorrected(Event):
    """A final report is never edited: a correction is a new version with its reason."""

    report_version: int = Field(ge=2)
    corrects_version: int = Field(ge=1)
    document_sha256: Sha256
    reason: Text


class ReportPublished(Event):
    report_version: int = Field(ge=1)
    published_on: date
    url: Url | None = None
    """None only for a publication imported from a file that gave no address."""


class ActionPlanPublished(Event):
    published_on: date
    url: Url | None = None
    """None only for a publication imported from a file that gave no address."""


class ProgressReviewHeld(Event):
    mode: VisitMode
    started_on: date
    ended_on: date


class ProgressReviewPublished(Event):
    published_on: date
    url: Url | None = None
    """None only for a publication imported from a file that gave no address."""


class DeadlineApproaching(Event):
    """The engine reminded the council that a deadline is near (its policy says how long
    before); `notice_before` is how long before `due_at` this reminder was due."""

    deadline: DeadlineName
    due_at: datetime
    notice_before: timedelta


class DeadlineMissed(Event):
    deadline: DeadlineName
    due_at: datetime


class EscalationRaised(Event):
    deadline: DeadlineName
    level: int = Field(ge=1, le=3)
    recipient: ShortText


class EscalationResolved(Event):
    deadline: DeadlineName
    level: int = Field(ge=1, le=3)


class ApprovalRequested(Event):
    """A sensitive action asked for; it takes effect only when someone else approves it.
    `command` is the action as asked (without its actor, who is this event's actor)."""

    request_id: ShortText
    action: ShortText
    command: dict[str, Any]


class RequestApproved(Event):
    """A second person approved the request; its effect is recorded in the same append."""

    request_id: ShortText
    action: ShortText


class RequestDeclined(Event):
    request_id: ShortText
    action: ShortText
    reason: Text


class CaseWithdrawn(Event):
    reason: Text


class CaseClosed(Event):
    summary: Text | None = None


class UnknownEventType(ValueError):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}")
        self.type_name = type_name
