"""Old event shapes are read as today's classes; stored rows are never rewritten.

An upcaster turns the payload of `(type, schema_version)` into the payload of the next
schema version. Reading applies them in a chain until the class's current version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from domain.events import EVENT_CLASSES, Event, ReasonCode, UnknownEventType
from domain.vocabulary import STORED

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def upcaster(type_name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def register(function: Upcaster) -> Upcaster:
        UPCASTERS[(type_name, from_version)] = function
        return function

    return register


@upcaster("VisitScheduled", 1)
def _visit_scheduled_v1_was_on_site(payload: Payload) -> Payload:
    """Visits scheduled before remote peer challenges existed were all on site."""
    return {**payload, "mode": "on_site"}


@upcaster("PeerTeamProposed", 1)
def _peer_team_v1_was_hand_picked(payload: Payload) -> Payload:
    """Teams proposed before the engine selected them were all proposed by a case officer."""
    return {**payload, "selected_by": "officer", "selection": None}


_CANDIDATE_LINE = re.compile(r"^(?P<peer_id>.+?): (?:admitted|excluded) \((?P<code>[a-z_]+)\)")
"""A version 2 rationale line: `P012: excluded (distance) Leeds is 30 km from …`."""
_CODES = frozenset(code.value for code in ReasonCode)


@upcaster("PeerTeamProposed", 2)
def _peer_team_v2_wrote_words(payload: Payload) -> Payload:
    """Version 2 wrote a line of words per candidate after two header lines; the codes are
    read from those lines (the words stay in the row, which is never rewritten). A rationale
    summarised for a large pool, or a hand-picked team's, gives no codes."""
    lines = payload.get("rationale") or []
    reasons: dict[str, list[str]] | None = None
    if payload.get("selection") is not None and len(lines) > 2:
        reasons = {}
        for line in lines[2:]:
            found = _CANDIDATE_LINE.match(line)
            if found is None or found["code"] not in _CODES:
                reasons = None
                break
            reasons.setdefault(found["code"], []).append(found["peer_id"])
    return {**payload, "reasons": reasons}


@upcaster("PeerTeamCannotBeFilled", 1)
def _unfilled_v1_recorded_no_codes(payload: Payload) -> Payload:
    """Version 1 recorded the requirement and its reason, and no candidate's code."""
    return {**payload, "reasons": None}


@upcaster("CaseRequested", 1)
def _case_requested_v1_had_no_terms(payload: Payload) -> Payload:
    """Cases requested before named policies and the four-eyes rule recorded neither."""
    return {**payload, "deadline_policy": None, "selection_rules": None, "four_eyes": False}


@upcaster("CaseRequested", 2)
def _case_requested_v2_had_no_business_dates(payload: Payload) -> Payload:
    """Cases requested before business dates count their deadlines from recorded times."""
    return {**payload, "requested_on": None, "business_dates": False, "imported": None}


@upcaster("ReportMadeFinal", 1)
def _final_v1_had_no_business_date(payload: Payload) -> Payload:
    """A report made final before business dates was final on the day it was recorded."""
    return {**payload, "made_final_on": None}


@upcaster("CheckpointRecorded", 1)
def _checkpoint_v1_was_unchained(payload: Payload) -> Payload:
    """Checkpoints recorded before the chain named no predecessor and no verifier."""
    return {**payload, "previous": None, "verify_py_sha256": None}


class NoUpcaster(ValueError):
    pass


def parse_event(type_name: str, schema_version: int, payload: Payload) -> Event:
    """Today's event object for a stored `(type, schema_version, payload)`."""
    cls = EVENT_CLASSES.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    version = schema_version
    while version < cls.schema_version:
        step = UPCASTERS.get((type_name, version))
        if step is None:
            raise NoUpcaster(f"no upcaster for {type_name} from schema version {version}")
        payload = step(payload)
        version += 1
    if version > cls.schema_version:
        raise NoUpcaster(
            f"{type_name} schema version {schema_version} is newer than this code "
            f"({cls.schema_version}); upgrade before reading"
        )
    return cls.model_validate(payload, context=STORED)  # by the rules it was recorded under
