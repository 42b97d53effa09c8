"""The typed search attributes officers filter cases by, in the server's own list filters."""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    SearchAttributeValueType,
    TypedSearchAttributes,
)

from domain.vocabulary import Stage

CASE_ID = SearchAttributeKey.for_keyword("CaseId")
COUNCIL = SearchAttributeKey.for_keyword("CouncilCode")
KIND = SearchAttributeKey.for_keyword("CaseKind")
STAGE = SearchAttributeKey.for_keyword("CaseStage")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")

ALL = (CASE_ID, COUNCIL, KIND, STAGE, ESCALATION_LEVEL, NEXT_DEADLINE)


def update_if_changed(
    current: TypedSearchAttributes,
    key: SearchAttributeKey[SearchAttributeValueType],
    wanted: SearchAttributeValueType | None,
) -> SearchAttributeUpdate[SearchAttributeValueType] | None:
    """The upsert that brings `key` to `wanted` (None: unset), or None when it already is.
    Each upsert is a visibility write on the server: an action that changes nothing indexed
    should cost none."""
    if current.get(key) == wanted:
        return None
    return key.value_unset() if wanted is None else key.value_set(wanted)


def at_opening(case_id: str, council: str, kind: str) -> TypedSearchAttributes:
    """A case's attributes as its start sets them: what recording its request makes them
    (stage requested, no escalation, no deadline yet), so that the first append upserts
    nothing (each upsert is a visibility write)."""
    return TypedSearchAttributes([
        SearchAttributePair(CASE_ID, case_id),
        SearchAttributePair(COUNCIL, council),
        SearchAttributePair(KIND, kind),
        SearchAttributePair(STAGE, Stage.REQUESTED.value),
        SearchAttributePair(ESCALATION_LEVEL, 0),
    ])
