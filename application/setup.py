"""Preparing a Temporal namespace for cases: the search attributes `cases list` filters on."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import ALL

_TYPE_NAMES = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime",
               7: "KeywordList"}


def dev_server_flags() -> list[str]:
    """`--search-attribute NAME=TYPE` for each, for a dev server started by us."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_TYPE_NAMES[key.indexed_value_type]}"]
    return flags


async def register_search_attributes(client: Client) -> None:
    """Register the case search attributes (idempotent): for servers started without them."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    try:
        known = set((await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))).custom_attributes)
    except RPCError as error:  # the time-skipping test server cannot list them
        if error.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    wanted = {key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL
              if key.name not in known}
    if wanted:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=wanted))
