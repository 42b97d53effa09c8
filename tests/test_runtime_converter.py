"""The engine's data converter: pydantic's payloads, with TypeAdapters shared per process;
and its signing codec, which lets a worker read only what the engine's API signed."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from application.journey import journey
from domain import commands as cmd
from domain.commands import AnyCommand
from domain.state import CaseState
from runtime.converter import (
    DATA_CONVERTER,
    READING_CONVERTER,
    CasePayloadConverter,
    shared_adapters,
    signed_converter,
)
from runtime.signing import KEY_FILE_VARIABLE, SIGNED, NoCommandKey, command_key, write_key
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


# --- signed commands (runtime/signing.py) ---------------------------------------------------

KEY = bytes(range(32))
WITHDRAW = cmd.WithdrawCase(actor="case_officer:siân.jones", case_id="cpc-E09000008-2026",
                            reason="The council asked us to stop")


async def test_a_signed_payload_is_the_plain_payload_wrapped_and_reads_back() -> None:
    """Signing wraps the same pydantic payload (so it reads the same), with an HMAC of it."""
    [signed] = await signed_converter(KEY).encode([WITHDRAW])
    assert signed.metadata["encoding"] == SIGNED
    inner = Payload.FromString(signed.data)
    assert inner == DATA_CONVERTER.payload_converter.to_payloads([WITHDRAW])[0]
    assert signed.metadata["signature"] == hmac.new(KEY, signed.data, hashlib.sha256).digest()
    assert await signed_converter(KEY).decode([signed], [COMMAND_UNION]) == [WITHDRAW]


async def refusal(payload: Payload) -> ApplicationError:
    """What a worker holding KEY makes of `payload`: it must refuse it."""
    with pytest.raises(ApplicationError) as refused:
        await signed_converter(KEY).decode([payload], [AS_THE_SDK_READS_IT])
    assert refused.value.type == "UnsignedCommand" and refused.value.non_retryable
    return refused.value


async def test_an_unsigned_payload_is_refused_not_read() -> None:
    [plain] = await DATA_CONVERTER.encode([WITHDRAW])
    assert "it is not signed by the engine's API" in (await refusal(plain)).message


async def test_a_payload_signed_with_another_key_is_refused() -> None:
    [forged] = await signed_converter(bytes(32)).encode([WITHDRAW])
    assert "its signature does not match" in (await refusal(forged)).message


async def test_a_signed_payload_altered_after_signing_is_refused() -> None:
    """The signature covers the whole payload: another actor in it breaks the signature."""
    [signed] = await signed_converter(KEY).encode([WITHDRAW])
    inner = Payload.FromString(signed.data)
    inner.data = inner.data.replace(b"case_officer:si", b"lga_adviser:si")
    altered = Payload(metadata=dict(signed.metadata), data=inner.SerializeToString())
    assert "its signature does not match" in (await refusal(altered)).message


async def test_the_reading_converter_reads_signed_and_unsigned_payloads_without_the_key(
) -> None:
    """Auditors replay histories of either generation and need no key."""
    [signed] = await signed_converter(KEY).encode([WITHDRAW])
    [plain] = await DATA_CONVERTER.encode([WITHDRAW])
    assert await READING_CONVERTER.decode([signed, plain], [COMMAND_UNION] * 2) == [WITHDRAW] * 2
    assert await READING_CONVERTER.encode([WITHDRAW]) == [plain]  # it signs nothing


def test_the_command_key_file_is_private_and_must_exist_when_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys" / "command.key"
    monkeypatch.setenv(KEY_FILE_VARIABLE, str(path))
    with pytest.raises(NoCommandKey, match="no command key at"):
        command_key()  # named but absent: never made up on the spot
    write_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(command_key()) == 32
    with pytest.raises(FileExistsError):
        write_key(path)  # never overwritten
