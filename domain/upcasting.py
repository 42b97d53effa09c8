"""Old event shapes are read as today's classes; stored rows are never rewritten.

An upcaster turns the payload of `(type, schema_version)` into the payload of the next
schema version. Reading applies them in a chain until the class's current version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.events import EVENT_CLASSES, Event, UnknownEventType

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


@upcaster("CaseRequested", 1)
def _case_requested_v1_had_no_terms(payload: Payload) -> Payload:
    """Cases requested before named policies and the four-eyes rule recorded neither."""
    return {**payload, "deadline_policy": None, "selection_rules": None, "four_eyes": False}


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
    return cls.model_validate(payload)
