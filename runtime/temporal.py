"""Connecting to Temporal with its own environment names (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, …), so the same commands work
against the dev server, a self-hosted cluster or Temporal Cloud."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from runtime.converter import READING_CONVERTER, signed_converter
from runtime.signing import command_key

DEFAULT_ADDRESS = "localhost:7233"


def connect_options() -> dict[str, Any]:
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", DEFAULT_ADDRESS)
    return options


async def connect(*, signing: bool = True, **overrides: Any) -> Client:
    """A client of the engine: signing (the API's and the workers': needs the command key,
    runtime/signing.py) or, with `signing=False`, one that reads and replays without it."""
    options = {**connect_options(), **overrides}
    converter = signed_converter(command_key()) if signing else READING_CONVERTER
    return await Client.connect(data_converter=converter, **options)
