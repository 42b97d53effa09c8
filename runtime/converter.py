"""The data converter of every client, worker and replayer of the engine: pydantic's JSON,
with its TypeAdapters shared by the whole process.

Why: Temporal builds a new payload converter for every workflow instance, so the SDK's own
per-converter cache of TypeAdapters starts empty for every case, and each case paid again for
the adapter of its update's argument (`AnyCommand`, a discriminated union of every command:
about a millisecond to build). One cache for the process builds it once. Payloads are
byte-for-byte those of `temporalio.contrib.pydantic.pydantic_data_converter`.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

shared_adapters = functools.lru_cache(maxsize=1024)(TypeAdapter)
"""TypeAdapter by type hint, for the whole process (bounded: a hint from a module the
sandbox re-imports per case is a new key each time)."""


class _SharedAdaptersJSON(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            adapter = shared_adapters(Any if type_hint is None else type_hint)
        except TypeError:  # an unhashable hint (or a bad one): the SDK's own path says which
            return super().from_payload(payload, type_hint)
        return adapter.validate_json(payload.data)


class CasePayloadConverter(CompositePayloadConverter):
    """The default converters with pydantic's JSON in place of the plain JSON one."""

    def __init__(self) -> None:
        super().__init__(*(_SharedAdaptersJSON() if isinstance(c, JSONPlainPayloadConverter)
                           else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters))


DATA_CONVERTER = DataConverter(payload_converter_class=CasePayloadConverter)
