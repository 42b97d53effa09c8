"""Connecting to Temporal with its own environment names (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH, …), so the same commands work
against the dev server, a self-hosted cluster or Temporal Cloud."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from runtime.converter import READING_CONVERTER, signed_converter
from runtime.signing import command_key
from runtime.telemetry import client_interceptors, process_runtime

DEFAULT_ADDRESS = "localhost:7233"


class TemporalUnreachable(RuntimeError):
    """Temporal could not be reached: one line naming the address and what to do, never the
    transport library's own words."""

    def __init__(self, address: str, failure: Exception | None = None) -> None:
        said = str(failure) if failure is not None else ""
        why = ("the connection was refused" if "refused" in said.lower() else
               "its name did not resolve" if "dns" in said.lower() or "resolve" in said.lower()
               else "timed out" if "timed out" in said.lower() else "no answer")
        super().__init__(
            f"cannot reach Temporal at {address} ({why}): TEMPORAL_ADDRESS names it, and "
            f"`cases dev` runs one on this machine; nothing was recorded; try again")
        self.address = address


def connect_options() -> dict[str, Any]:
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", DEFAULT_ADDRESS)
    return options


async def connect(*, signing: bool = True, **overrides: Any) -> Client:
    """A client of the engine: signing (the API's and the workers': needs the command key,
    runtime/signing.py) or, with `signing=False`, one that reads and replays without it.
    Every client of the process shares its Temporal runtime (runtime/telemetry.py: the core's
    logs through structlog, the metrics endpoint) and, with CASES_TRACING, its tracing."""
    options = {**connect_options(), **overrides}
    options.setdefault("runtime", process_runtime())  # its logs go through structlog
    options.setdefault("interceptors", client_interceptors())  # tracing, when switched on
    converter = signed_converter(command_key()) if signing else READING_CONVERTER
    try:
        return await Client.connect(data_converter=converter, **options)
    except RuntimeError as failed:  # the core's message quotes tonic's transport error
        raise TemporalUnreachable(str(options.get("target_host", DEFAULT_ADDRESS)),
                                  failed) from None
