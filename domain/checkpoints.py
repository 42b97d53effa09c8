"""Checkpoints: every case's head (version, hash) at a moment, one Merkle root over them, and
the hash of the checkpoint before, so checkpoints form a chain of their own.

A hash chain proves nothing about events removed from its end, or about a case removed
whole. A checkpoint, recorded as an event of its own stream and published elsewhere,
remembers each head, so a later verification can say "this case had version 7 with this
hash; now it has 5" or "this case is gone". A checkpoint also names the one before it, and
each must extend its predecessor (every case the older saw is still there, at the same or a
later version, on the same chain), as consecutive tree heads of a Certificate Transparency
log must (RFC 9162, consistency): so a rewrite followed by a fresh checkpoint shows as a
checkpoint that no longer extends the one before it.

The Merkle root: leaves are SHA-256 of `case_id "\\n" version "\\n" hash` (UTF-8), sorted by
case id; each level hashes the concatenated raw digests of pairs, an odd last one carried
up unchanged; the root of no leaves is SHA-256 of the empty string. Lowercase hex.

The statement: what is signed and published (docs/checkpoints.md), a JSON object with exactly
the keys `number`, `recorded_at`, `last_position`, `merkle_root`, `heads`, `previous` and
`verify_py_sha256`; its hash (SHA-256 of its RFC 8785 canonical JSON) is what the next
checkpoint's `previous` holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import rfc8785
from pydantic import BaseModel, ConfigDict, Field

from domain.events import Event
from domain.vocabulary import Sha256

CHECKPOINT_STREAM = "checkpoints"
"""The stream (the `case_id` column) that holds checkpoints; no case can be called that."""

STATEMENT_KEYS = ("number", "recorded_at", "last_position", "merkle_root", "heads", "previous",
                  "verify_py_sha256")


class CaseHead(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = Field(ge=1)
    hash: str


class CheckpointRecorded(Event):
    """Version 2 added `previous` (the statement hash of the checkpoint before, None for the
    first) and `verify_py_sha256` (the bundle verifier it vouches for). Version 1 checkpoints
    were recorded before the chain and name neither."""

    schema_version: ClassVar[int] = 2
    case_event: ClassVar[bool] = False

    heads: list[CaseHead]
    merkle_root: str
    last_position: int = Field(ge=0)
    """The highest position the checkpoint saw: every event up to here is covered."""
    previous: Sha256 | None = None
    verify_py_sha256: Sha256 | None = None


def leaf(head: CaseHead) -> bytes:
    return hashlib.sha256(f"{head.case_id}\n{head.version}\n{head.hash}".encode()).digest()


def merkle_root(heads: Sequence[CaseHead]) -> str:
    level = [leaf(h) for h in sorted(heads, key=lambda h: h.case_id)]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [hashlib.sha256(level[i] + level[i + 1]).digest()
                  for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def checkpoint(heads: Sequence[CaseHead], last_position: int, *, previous: str | None = None,
               verify_py_sha256: str | None = None) -> CheckpointRecorded:
    ordered = sorted(heads, key=lambda h: h.case_id)
    return CheckpointRecorded(heads=ordered, merkle_root=merkle_root(ordered),
                              last_position=last_position, previous=previous,
                              verify_py_sha256=verify_py_sha256)


def utc_text(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ`, the one form of time a statement holds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def statement(number: int, recorded_at: datetime, event: CheckpointRecorded) -> dict[str, Any]:
    """What is signed and published of checkpoint `number` (its version in the stream)."""
    return {
        "number": number,
        "recorded_at": utc_text(recorded_at),
        "last_position": event.last_position,
        "merkle_root": event.merkle_root,
        "heads": [{"case_id": h.case_id, "version": h.version, "hash": h.hash}
                  for h in sorted(event.heads, key=lambda h: h.case_id)],
        "previous": event.previous,
        "verify_py_sha256": event.verify_py_sha256,
    }


def _plain(value: Any) -> bool:
    """No floats and only ASCII keys: then the standard library's sorted, compact JSON is
    RFC 8785's to the byte (docs/event-store.md §5). Walked without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) and key.isascii() for key in item):
                return False
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            return False
    return True


def canonical_statement(signed: Mapping[str, Any]) -> bytes:
    """The statement's RFC 8785 canonical JSON, UTF-8: what is signed and hashed. The
    `rfc8785` package for anything unusual; the standard library (about fifty times faster
    for a statement of thousands of heads) when that gives the same bytes."""
    value = dict(signed)
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
    return bytes(rfc8785.dumps(value))


def statement_hash(signed: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the statement's RFC 8785 canonical JSON: the next
    checkpoint's `previous`, and how a published file is found again in the store."""
    return hashlib.sha256(canonical_statement(signed)).hexdigest()


def heads_of(signed: Mapping[str, Any]) -> list[CaseHead]:
    """The heads of a statement read from outside (a published file); ValueError if any is
    not a head."""
    heads = signed.get("heads")
    if not isinstance(heads, list):
        raise ValueError("`heads` is not a list")
    try:
        return [CaseHead.model_validate(head, strict=True) for head in heads]
    except ValueError as bad:
        raise ValueError(f"`heads` holds something that is not a case head: "
                         f"{str(bad).splitlines()[0]}") from None


def not_extending(older: Sequence[CaseHead], newer: Sequence[CaseHead]) -> list[str]:
    """Why `newer` does not extend `older`, so far as the two alone can tell: a case the older
    saw is missing from the newer, is at an earlier version, or has another hash at the same
    version. (A later version must also lie on the same chain: only the events can say.)"""
    now = {head.case_id: head for head in newer}
    reasons: list[str] = []
    for then in sorted(older, key=lambda h: h.case_id):
        head = now.get(then.case_id)
        if head is None:
            reasons.append(f"case {then.case_id}, seen at version {then.version} before, "
                           "is missing from it")
        elif head.version < then.version:
            reasons.append(f"it saw case {then.case_id} at version {head.version}, before the "
                           f"version {then.version} seen before")
        elif head.version == then.version and head.hash != then.hash:
            reasons.append(f"it saw case {then.case_id} version {head.version} with hash "
                           f"{head.hash}, not {then.hash} as before")
    return reasons
