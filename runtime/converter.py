"""The data converter of every client, worker and replayer of the engine: pydantic's JSON,
with its TypeAdapters shared by the whole process.

Why: Temporal builds a new payload converter for every workflow instance, so the SDK's own
per-converter cache of TypeAdapters starts empty for every case, and each case paid again for
the adapter of its update's argument (`AnyCommand`, a discriminated union of every command:
about a millisecond to build). One cache for the process builds it once. Payloads are
byte-for-byte those of `temporalio.contrib.pydantic.pydantic_data_converter`.

It also gives discriminated unions their discriminator back. The SDK reads a handler's
argument types with `typing.get_type_hints`, which drops `Annotated`: the update's
`AnyCommand` arrives as the bare union of every command, and pydantic then tries each
command class in turn (15-20 times slower, and a malformed command is answered with one
error per class instead of one for its own).
"""

from __future__ import annotations

import dataclasses
import functools
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.exceptions import ApplicationError

from domain.commands import AnyCommand
from runtime.signing import UNSIGNED_REFUSED, CommandSigningCodec

DISCRIMINATED_UNIONS: tuple[Any, ...] = (AnyCommand,)
"""`Annotated[A | B | …, Field(discriminator=…)]` hints that handlers take as arguments."""


def _members(hint: Any) -> frozenset[Any] | None:
    """A union's members (the same for `A | B` and `Union[A, B]`), or None if not a union."""
    return frozenset(get_args(hint)) if get_origin(hint) in (Union, types.UnionType) else None


_WITH_DISCRIMINATOR = {_members(get_args(annotated)[0]): annotated
                       for annotated in DISCRIMINATED_UNIONS
                       if get_origin(annotated) is Annotated}


def _adapter(hint: Any) -> TypeAdapter[Any]:
    members = _members(hint)
    return TypeAdapter(hint if members is None else _WITH_DISCRIMINATOR.get(members, hint))


shared_adapters = functools.lru_cache(maxsize=1024)(_adapter)
"""TypeAdapter by type hint, for the whole process (bounded: a hint from a module the
sandbox re-imports per case is a new key each time); a bare union that is one of
DISCRIMINATED_UNIONS stripped of its `Annotated` is validated by its discriminator."""


class _SharedAdaptersJSON(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            adapter = shared_adapters(Any if type_hint is None else type_hint)
        except TypeError:  # an unhashable hint (or a bad one): the SDK's own path says which
            return super().from_payload(payload, type_hint)
        return adapter.validate_json(payload.data)


class _UnsignedRefused(EncodingPayloadConverter):
    """A payload the signing codec would not vouch for: reading it refuses, with an error that
    fails a workflow's start or rejects an update (never a workflow task retried forever)."""

    @property
    def encoding(self) -> str:
        return UNSIGNED_REFUSED.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return None

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        raise ApplicationError(
            f"refused: {payload.data.decode(errors='replace')}; only the engine's API may "
            "start or act on a case (nothing was recorded)", type="UnsignedCommand",
            non_retryable=True)


class CasePayloadConverter(CompositePayloadConverter):
    """The default converters with pydantic's JSON in place of the plain JSON one."""

    def __init__(self) -> None:
        super().__init__(*(_SharedAdaptersJSON() if isinstance(c, JSONPlainPayloadConverter)
                           else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters),
                         _UnsignedRefused())


DATA_CONVERTER = DataConverter(payload_converter_class=CasePayloadConverter)
"""Unsigned: for recorded test histories and tools that only read."""

READING_CONVERTER = dataclasses.replace(
    DATA_CONVERTER, payload_codec=CommandSigningCodec(None, verify=False))
"""Reads signed payloads without the key (and unsigned ones): auditors' replays, readers."""


def signed_converter(key: bytes) -> DataConverter:
    """What the API and the workers use: every payload signed, every payload checked."""
    return dataclasses.replace(DATA_CONVERTER, payload_codec=CommandSigningCodec(key))
