"""The words of the journey: stages, kinds of case, visit modes, deadlines, actors."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, ValidationInfo, WithJsonSchema


class Stage(StrEnum):
    """Where a case stands; the order of the journey is the order of declaration."""

    REQUESTED = "requested"
    SCOPED = "scoped"
    PEERS_SELECTED = "peers_selected"
    VISIT_SCHEDULED = "visit_scheduled"
    VISITED = "visited"
    REPORT_DRAFTED = "report_drafted"
    REPORT_FINAL = "report_final"
    REPORT_PUBLISHED = "report_published"
    ACTION_PLAN_PUBLISHED = "action_plan_published"
    PROGRESS_REVIEW_HELD = "progress_review_held"
    PROGRESS_REVIEW_PUBLISHED = "progress_review_published"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"

    @property
    def is_open(self) -> bool:
        return self not in (Stage.CLOSED, Stage.WITHDRAWN)

    @property
    def rank(self) -> int:
        """Position in the journey; withdrawn ranks after everything."""
        return list(Stage).index(self)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class CaseKind(StrEnum):
    CORPORATE_PEER_CHALLENGE = "corporate_peer_challenge"
    FINANCE = "finance"
    CHILDRENS_SERVICES = "childrens_services"
    ADULT_SOCIAL_CARE = "adult_social_care"
    PLANNING = "planning"
    COMMUNICATIONS = "communications"
    RECOVERY_SUPPORT = "recovery_support"


CORE_ELEMENTS = (
    "local_priorities_and_outcomes",
    "organisational_and_place_leadership",
    "governance_and_culture",
    "financial_planning_and_management",
    "capacity_for_improvement",
)
"""The five core elements every corporate peer challenge covers."""


class VisitMode(StrEnum):
    ON_SITE = "on_site"
    REMOTE = "remote"


class DeadlineName(StrEnum):
    """The deadlines of the journey whose lapse is recorded (and most escalate)."""

    FACTUAL_ACCURACY_CHECK = "factual_accuracy_check"
    REPORT_PUBLICATION = "report_publication"
    ACTION_PLAN_PUBLICATION = "action_plan_publication"
    PROGRESS_REVIEW = "progress_review"
    PROGRESS_REVIEW_PUBLICATION = "progress_review_publication"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class ActorRole(StrEnum):
    """The first word of an actor. `officer` is the legacy spelling of `case_officer`, and a
    legacy council actor (`council:E06000001`) names no person; both stay readable."""

    OFFICER = "officer"
    CASE_OFFICER = "case_officer"
    LGA_ADVISER = "lga_adviser"
    COUNCIL = "council"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SYSTEM = "system"


_BIDI = r"\u2028\u2029\u202a-\u202e\u2066-\u2069"
_SHORT_FORBIDDEN = r"\u0000-\u001f\u007f-\u009f" + _BIDI
"""Every C0 and C1 control (tab, newline and carriage return too), line and paragraph
separators and the bidirectional embeddings, overrides and isolates: each changes what a
reader is shown (ESC recolours a terminal, CR overwrites a line, U+202E reorders it)."""
_TEXT_FORBIDDEN = r"\u0000-\u0008\u000b-\u001f\u007f-\u009f" + _BIDI
"""The same, but a newline or tab may break free text into lines (a carriage return may not:
it moves back over what is already shown)."""
_IN_A_LINE = re.compile(f"[{_SHORT_FORBIDDEN}]")
_IN_TEXT = re.compile(f"[{_TEXT_FORBIDDEN}]")
"""One source for both the validators and the JSON Schema the API publishes (see
`_text_schema`), so the two never disagree."""


_RECORDED_BEFORE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
"""What was refused when events recorded before today's rules were written: a stored event is
read by the rules it was recorded under (escaped on output), never refused on reading, or a
case recorded yesterday could not be read or replayed today."""
STORED = {"stored": True}
"""The validation context of an event read back from the store (domain.upcasting)."""


def _refuse(forbidden: re.Pattern[str], text: str, info: ValidationInfo) -> str:
    if isinstance(info.context, dict) and info.context.get("stored"):
        forbidden = _RECORDED_BEFORE
        text_seen = text.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    else:
        text_seen = text
    match = forbidden.search(text_seen)
    if match:
        raise ValueError(f"contains a control character (U+{ord(match.group()):04X})")
    return text


def _no_control_characters(text: str, info: ValidationInfo) -> str:
    return _refuse(_IN_A_LINE, text, info)


def _no_control_characters_but_lines(text: str, info: ValidationInfo) -> str:
    return _refuse(_IN_TEXT, text, info)


def _not_blank(text: str) -> str:
    if not text.replace("\ufeff", "").strip():  # blank as JSON Schema's \s counts it too
        raise ValueError("must not be blank")
    return text


GssCode = Annotated[
    str,
    StringConstraints(pattern=r"^[EKNSW][0-9]{8}$"),
]
"""An official GSS code of a council, e.g. E09000008 (Croydon)."""

CaseId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"),
]

Actor = Annotated[
    str,
    StringConstraints(
        pattern=r"^(?:(?:officer|case_officer|lga_adviser|auditor|admin|system):[^\s:]{1,120}"
                r"|council:[EKNSW][0-9]{8}(?::[^\s:]{1,120})?)$"),
    AfterValidator(_no_control_characters),
]
"""Who did it: `role:name`, or `council:GSS:name` for a council's user (see domain/actors.py),
e.g. `case_officer:siân.jones` or `council:E06000001:sam.lee`."""

def _text_schema(max_length: int, forbidden: str) -> WithJsonSchema:
    """What the validators below enforce, said in JSON Schema for the API's document: not
    blank, no control characters or bidirectional overrides."""
    return WithJsonSchema({"type": "string", "maxLength": max_length,
                           "pattern": f"^[^{forbidden}]*[^\\s{forbidden}][^{forbidden}]*$"})


ShortText = Annotated[
    str,
    StringConstraints(max_length=200),
    AfterValidator(_no_control_characters),
    AfterValidator(_not_blank),
    _text_schema(200, _SHORT_FORBIDDEN),
]

Text = Annotated[
    str,
    StringConstraints(max_length=4000),
    AfterValidator(_no_control_characters_but_lines),
    AfterValidator(_not_blank),
    _text_schema(4000, _TEXT_FORBIDDEN),
]
"""Free text from a person: a reason, a summary, comments. Newlines and tabs allowed, carriage
returns not (a line's end is a newline alone)."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""Lowercase hex SHA-256 of a document, so a report's text is pinned without storing it."""

Url = Annotated[str, StringConstraints(
    pattern=r"^https?://[^\s\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]{1,500}$")]
"""A public address: no spaces, controls or bidirectional overrides (the same pattern reads
alike in pydantic's regex engine and in JSON Schema's)."""

ScopeArea = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]


def role_of(actor: str) -> ActorRole:
    return ActorRole(actor.split(":", 1)[0])
