"""The engine's data converter: pydantic's payloads, with TypeAdapters shared per process."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from temporalio.contrib.pydantic import pydantic_data_converter

from cli.journey import journey
from domain.commands import AnyCommand
from domain.state import CaseState
from runtime.converter import DATA_CONVERTER, CasePayloadConverter, shared_adapters
from workflows.messages import CaseView

COMMAND_UNION = cast(Any, AnyCommand)
"""The update's argument type, as the SDK passes it (a type hint, not a class)."""
COMMANDS = list(journey("E09000008", datetime(2026, 11, 23, tzinfo=UTC).date()))


def test_payloads_are_those_of_the_sdks_pydantic_converter() -> None:
    """Histories written with either converter read the same with the other."""
    ours, theirs = DATA_CONVERTER.payload_converter, pydantic_data_converter.payload_converter
    view = CaseView(state=CaseState(case_id="cpc-E09000008-2026"))
    for value in [*COMMANDS, view]:
        assert ours.to_payloads([value]) == theirs.to_payloads([value])
    for command in COMMANDS:
        payloads = theirs.to_payloads([command])
        assert ours.from_payloads(payloads, [COMMAND_UNION]) == [command]


def test_a_new_converter_per_workflow_does_not_rebuild_the_command_adapter() -> None:
    """Temporal makes a converter per workflow instance: the adapter for the command union
    must be built once per process, not once per case."""
    payloads = pydantic_data_converter.payload_converter.to_payloads([COMMANDS[0]])
    CasePayloadConverter().from_payloads(payloads, [COMMAND_UNION])
    built = shared_adapters.cache_info().misses
    for _ in range(3):
        assert CasePayloadConverter().from_payloads(payloads, [COMMAND_UNION]) == [COMMANDS[0]]
    assert shared_adapters.cache_info().misses == built
