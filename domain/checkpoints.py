"""Checkpoints: every case's head (version, hash) at a moment, and one Merkle root over them.

A hash chain proves nothing about events removed from its end, or about a case removed
whole. A checkpoint, recorded as an event of its own stream and published elsewhere,
remembers each head, so a later verification can say "this case had version 7 with this
hash; now it has 5" or "this case is gone".

The Merkle root: leaves are SHA-256 of `case_id "\\n" version "\\n" hash` (UTF-8), sorted by
case id; each level hashes the concatenated raw digests of pairs, an odd last one carried
up unchanged; the root of no leaves is SHA-256 of the empty string. Lowercase hex.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from domain.events import Event

CHECKPOINT_STREAM = "checkpoints"
"""The stream (the `case_id` column) that holds checkpoints; no case can be called that."""


class CaseHead(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    version: int = Field(ge=1)
    hash: str


class CheckpointRecorded(Event):
    case_event: ClassVar[bool] = False

    heads: list[CaseHead]
    merkle_root: str
    last_position: int = Field(ge=0)
    """The highest position the checkpoint saw: every event up to here is covered."""


def leaf(head: CaseHead) -> bytes:
    return hashlib.sha256(f"{head.case_id}\n{head.version}\n{head.hash}".encode()).digest()


def merkle_root(heads: list[CaseHead]) -> str:
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


def checkpoint(heads: list[CaseHead], last_position: int) -> CheckpointRecorded:
    ordered = sorted(heads, key=lambda h: h.case_id)
    return CheckpointRecorded(heads=ordered, merkle_root=merkle_root(ordered),
                              last_position=last_position)
