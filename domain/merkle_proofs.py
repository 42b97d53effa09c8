"""Inclusion proofs in the checkpoint's Merkle tree: the few hashes that lead from one case's
head to the root, so that a bundle of one case can be checked against a published root
without the heads of every other case.

The tree is exactly `domain.checkpoints.merkle_root`'s: leaves are the SHA-256 of
`case_id "\\n" version "\\n" hash`, sorted by case id; each level hashes the raw digests of
pairs, left then right; an odd last node is carried up unchanged (so it adds no step to the
proof at that level).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from domain.checkpoints import CaseHead, leaf

LEFT, RIGHT = "left", "right"
"""Which side of the path the sibling is on at a step: "left" means sibling + node."""

ProofStep = tuple[str, str]
"""(the side the sibling is on, the sibling's digest in lowercase hex)."""


def inclusion_proof(leaves: list[bytes], index: int) -> list[ProofStep]:
    """The siblings from leaf `index` up to the root of the tree over `leaves` (digests)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not among {len(leaves)} leaves")
    proof: list[ProofStep] = []
    level = list(leaves)
    while len(level) > 1:
        if index % 2:
            proof.append((LEFT, level[index - 1].hex()))
        elif index + 1 < len(level):
            proof.append((RIGHT, level[index + 1].hex()))
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() if i + 1 < len(level)
                 else level[i] for i in range(0, len(level), 2)]
        index //= 2
    return proof


def root_from_proof(leaf: bytes, proof: Sequence[ProofStep]) -> str:
    """The root (lowercase hex) that `proof` leads to from the leaf digest `leaf`."""
    node = leaf
    for side, sibling_hex in proof:
        sibling = bytes.fromhex(sibling_hex)
        if side == LEFT:
            node = hashlib.sha256(sibling + node).digest()
        elif side == RIGHT:
            node = hashlib.sha256(node + sibling).digest()
        else:
            raise ValueError(f"a proof step's side is {side!r}, not {LEFT!r} or {RIGHT!r}")
    return node.hex()


def head_proof(heads: list[CaseHead], case_id: str
               ) -> tuple[CaseHead, int, list[ProofStep]] | None:
    """The case's head among a checkpoint's heads, its leaf's index in the tree and its
    inclusion proof; None if the checkpoint did not see the case."""
    ordered = sorted(heads, key=lambda h: h.case_id)
    for index, head in enumerate(ordered):
        if head.case_id == case_id:
            return head, index, inclusion_proof([leaf(h) for h in ordered], index)
    return None
