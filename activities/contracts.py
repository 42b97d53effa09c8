"""What the workflow sends its activities and gets back. No I/O here: workflows import it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.deadlines import DeadlinePolicy
from domain.events import PeerTeamCannotBeFilled, PeerTeamProposed
from domain.peers import SelectionRules
from domain.vocabulary import CaseKind

APPEND_EVENTS = "append_events"
CHECK_OPENING = "check_opening"
LOAD_CASE = "load_case"


class OpeningToCheck(BaseModel):
    """A case about to be opened: its council must be in the register, and its deadline
    policy one of the server's."""

    model_config = ConfigDict(frozen=True)

    council: str
    kind: CaseKind
    deadline_policy: str


class OpeningTerms(BaseModel):
    """What the server says the case runs by."""

    model_config = ConfigDict(frozen=True)

    policy: DeadlinePolicy
    selection_rules: SelectionRules


class EventToAppend(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    type: str
    schema_version: int
    occurred_at: datetime
    actor: str
    payload: dict[str, Any]


class NotificationToSend(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    recipient: str
    subject: str
    body: str
    notice: dict[str, Any] | None = None
    """The notice's kind, recipient role and facts, for the relay's email."""


class AppendEvents(BaseModel):
    """Append these events after `expected_version` of the case, with their notifications."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    expected_version: int
    events: list[EventToAppend]
    notifications: list[NotificationToSend] = []


class Appended(BaseModel):
    """The head after the append, and each event's time as stored (a retry keeps the first)."""

    model_config = ConfigDict(frozen=True)

    version: int
    hash: str
    last_position: int
    occurred_at: list[datetime]


RECORD_CHECKPOINT = "record_checkpoint"


class CheckpointRequest(BaseModel):
    """Record every case's head now; `event_id` comes from the workflow, so retries are no-ops."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    at: datetime
    publish_to: str = "auditors"


class CheckpointSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    checkpoint: int
    cases: int
    merkle_root: str
    last_position: int
    path: str | None = None
    """The signed file the worker published it as; None when the worker has no signing key
    (CASES_SIGNING_KEY), and in histories from before checkpoints were signed."""
    public_key_sha256: str | None = None
    """Which key signed it (lowercase hex SHA-256 of the raw public key)."""


SELECT_PEER_TEAM = "select_peer_team"


class TeamOutcome(BaseModel):
    """What an engine selection records: a proposal, or why the team cannot be filled."""

    model_config = ConfigDict(frozen=True)

    proposed: PeerTeamProposed | None = None
    unfilled: PeerTeamCannotBeFilled | None = None


class CaseToLoad(BaseModel):
    """A case whose events are already in the store (a past challenge imported while still
    under way), for its workflow to take up."""

    model_config = ConfigDict(frozen=True)

    case_id: str


class LoadedEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int
    event_id: str
    type: str
    schema_version: int
    occurred_at: datetime
    actor: str
    payload: dict[str, Any]


class LoadedCase(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: list[LoadedEvent]
