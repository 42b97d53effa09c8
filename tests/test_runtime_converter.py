"""The engine's data converter: pydantic's payloads, with TypeAdapters shared per process."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from application.journey import journey
from domain.commands import AnyCommand
from domain.state import CaseState
from runtime.converter import DATA_CONVERTER, CasePayloadConverter, shared_adapters
from workflows.improvement_case import ImprovementCase
from workflows.messages import CaseView

COMMAND_UNION = cast(Any, AnyCommand)
"""The command union as declared, with its discriminator (how the CLI reads commands)."""
AS_THE_SDK_READS_IT = typing.get_type_hints(ImprovementCase.act)["command"]
"""The update's argument type as the SDK hands it to the converter: `typing.get_type_hints`
without `include_extras`, so the bare union of every command, its discriminator dropped."""
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
    CasePayloadConverter().from_payloads(payloads, [AS_THE_SDK_READS_IT])
    built = shared_adapters.cache_info().misses
    for _ in range(3):
        assert (CasePayloadConverter().from_payloads(payloads, [AS_THE_SDK_READS_IT])
                == [COMMANDS[0]])
    assert shared_adapters.cache_info().misses == built


def test_the_update_argument_reads_every_command_back_as_the_sdk_hands_it_over() -> None:
    payloads = pydantic_data_converter.payload_converter.to_payloads(COMMANDS)
    converter = DATA_CONVERTER.payload_converter
    assert converter.from_payloads(payloads, [AS_THE_SDK_READS_IT] * len(COMMANDS)) == COMMANDS


def test_a_malformed_command_is_checked_against_its_own_action_only() -> None:
    """Told apart by `action`, as AnyCommand declares, even though the SDK drops the
    declaration: one error naming the bad field, not one per kind of command."""
    scope = json.loads(DATA_CONVERTER.payload_converter.to_payloads([COMMANDS[0]])[0].data)
    assert scope["action"] == "scope"
    scope["visit_mode"] = "by carrier pigeon"
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(scope).encode())
    with pytest.raises(ValidationError) as refused:
        DATA_CONVERTER.payload_converter.from_payloads([payload], [AS_THE_SDK_READS_IT])
    errors = refused.value.errors()
    assert [error["loc"] for error in errors] == [("scope", "visit_mode")]
