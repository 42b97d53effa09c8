"""Preparing a Temporal namespace for cases: the search attributes `cases list` filters on.

`cases dev` starts its server with them; any other server (a plain `temporal server start-dev`,
a self-hosted cluster) gets them from `cases setup`, and Temporal Cloud from the namespace's
settings. Workers check before they serve: a case started without them could not be listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import ALL

_TYPE_NAMES = {1: "Text", 2: "Keyword", 3: "Int", 4: "Double", 5: "Bool", 6: "Datetime",
               7: "KeywordList"}
WANTED = {key.name: _TYPE_NAMES[key.indexed_value_type] for key in ALL}
"""Each search attribute a case sets, with the type its filters need."""


class NamespaceNotReady(RuntimeError):
    """The namespace lacks search attributes, or they cannot be registered from here: the
    message says what to do (exit 1)."""


@dataclass(frozen=True)
class Registered:
    namespace: str
    added: list[str]
    present: list[str]


def dev_server_flags() -> list[str]:
    """`--search-attribute NAME=TYPE` for each, for a dev server started by us."""
    flags: list[str] = []
    for name, type_name in WANTED.items():
        flags += ["--search-attribute", f"{name}={type_name}"]
    return flags


def _listed_by_hand() -> str:
    return ", ".join(f"{name} ({type_name})" for name, type_name in WANTED.items())


async def _known(client: Client) -> dict[str, int] | None:
    """The namespace's custom search attributes by name, or None when the server cannot list
    them (the time-skipping test server)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace))
    except RPCError as error:
        if error.status == RPCStatusCode.UNIMPLEMENTED:
            return None
        if error.status == RPCStatusCode.PERMISSION_DENIED:
            raise NamespaceNotReady(
                f"not allowed to list the search attributes of namespace {client.namespace} "
                f"({error.message}); on Temporal Cloud, add them in the namespace's settings: "
                f"{_listed_by_hand()}") from None
        raise
    return {name: int(kind) for name, kind in listed.custom_attributes.items()}


async def missing_search_attributes(client: Client) -> list[str]:
    """The attributes the namespace lacks, or has with another type (empty when it cannot
    tell: a server that cannot list them has them registered some other way or not at all,
    and the first start says so)."""
    known = await _known(client)
    if known is None:
        return []
    return [key.name for key in ALL
            if known.get(key.name) != int(key.indexed_value_type)]


async def require_search_attributes(client: Client, address: str) -> None:
    """Refuse to serve a namespace without them, saying how to add them."""
    missing = await missing_search_attributes(client)
    if missing:
        raise NamespaceNotReady(
            f"namespace {client.namespace} at {address} lacks the search attributes "
            f"{', '.join(missing)}: run `cases setup` (on Temporal Cloud, add them in the "
            "namespace's settings: see docs/operations.md); nothing was started")


async def register_search_attributes(client: Client) -> Registered:
    """Register the case search attributes (idempotent): for servers started without them.
    An attribute already registered with another type is refused by name."""
    known = await _known(client) or {}
    clashing = [key.name for key in ALL
                if key.name in known and known[key.name] != int(key.indexed_value_type)]
    if clashing:
        raise NamespaceNotReady(
            f"namespace {client.namespace} already has {', '.join(clashing)} with another "
            f"type; cases need {_listed_by_hand()}: remove them, or use another namespace")
    wanted = {key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL
              if key.name not in known}
    if wanted:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace,
                                           search_attributes=wanted))
        except RPCError as error:
            if error.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED,
                                RPCStatusCode.UNAUTHENTICATED):
                raise NamespaceNotReady(
                    f"cannot register search attributes on namespace {client.namespace} "
                    f"({error.message}): on Temporal Cloud add them in the namespace's "
                    f"settings ({_listed_by_hand()}); elsewhere run `cases setup` with an "
                    "operator's access") from None
            raise
    return Registered(client.namespace, sorted(wanted),
                      sorted(key.name for key in ALL if key.name in known))
