"""The typed search attributes officers filter cases by, in the server's own list filters."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CASE_ID = SearchAttributeKey.for_keyword("CaseId")
COUNCIL = SearchAttributeKey.for_keyword("CouncilCode")
KIND = SearchAttributeKey.for_keyword("CaseKind")
STAGE = SearchAttributeKey.for_keyword("CaseStage")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")

ALL = (CASE_ID, COUNCIL, KIND, STAGE, ESCALATION_LEVEL, NEXT_DEADLINE)
