"""What goes in and out of the case workflow: its start input and its answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from domain.commands import RequestCase
from domain.deadlines import DeadlinePolicy, Due
from domain.peers import SelectionRules
from domain.state import CaseState
from domain.vocabulary import CaseKind

TASK_QUEUE = "improvement-cases"

_KIND_PREFIX = {
    CaseKind.CORPORATE_PEER_CHALLENGE: "cpc",
    CaseKind.FINANCE: "fin",
    CaseKind.CHILDRENS_SERVICES: "csc",
    CaseKind.ADULT_SOCIAL_CARE: "asc",
    CaseKind.PLANNING: "pln",
    CaseKind.COMMUNICATIONS: "com",
    CaseKind.RECOVERY_SUPPORT: "rec",
}


class CaseStart(BaseModel):
    model_config = ConfigDict(frozen=True)

    request: RequestCase
    policy: DeadlinePolicy = DeadlinePolicy()
    selection_rules: SelectionRules = SelectionRules()
    """The peer-selection rules this case's teams are chosen by (distance, cooling-off, team
    size and shape); fixed when the case starts, and recorded with every selection."""
    resume: bool = False
    """A past challenge imported while still under way: its events are in the store already
    (`request` is its recorded request); the workflow takes them up and follows its deadlines,
    which may already have lapsed."""


class CaseView(BaseModel):
    """The answer to every action and query: the case, and what it is waiting for."""

    model_config = ConfigDict(frozen=True)

    state: CaseState
    next_deadline: Due | None = None
    pending: list[Due] = []


def case_id_for(kind: CaseKind, council: str, year: int, attempt: int = 1) -> str:
    """`cpc-E06000001-2026`; a second case of the kind in the same year gets `-2`."""
    base = f"{_KIND_PREFIX[kind]}-{council}-{year}"
    return base if attempt == 1 else f"{base}-{attempt}"


def workflow_id_for(kind: CaseKind, council: str) -> str:
    """One open case per council and kind: the workflow id is that slot."""
    return f"improvement-case-{_KIND_PREFIX[kind]}-{council}"


def workflow_id_for_case(case_id: str) -> str:
    prefix, council = case_id.split("-")[:2]
    kind = next(k for k, p in _KIND_PREFIX.items() if p == prefix)
    return workflow_id_for(kind, council)


def council_of_case(case_id: str) -> str | None:
    """The council a case id names (`cpc-E06000001-2026` → E06000001), or None."""
    parts = case_id.split("-")
    return parts[1] if len(parts) >= 3 and parts[0] in _KIND_PREFIX.values() else None
