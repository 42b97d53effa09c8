"""Connecting to Temporal with its own environment names (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, …), so the same commands work
against the dev server, a self-hosted cluster or Temporal Cloud."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

from runtime.converter import DATA_CONVERTER

DEFAULT_ADDRESS = "localhost:7233"


def connect_options() -> dict[str, Any]:
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", DEFAULT_ADDRESS)
    return options


async def connect(**overrides: Any) -> Client:
    options = {**connect_options(), **overrides}
    return await Client.connect(data_converter=DATA_CONVERTER, **options)


async def register_search_attributes(client: Client) -> None:
    """Register the case search attributes (idempotent): for servers started without them."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    from workflows.search_attributes import ALL

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
