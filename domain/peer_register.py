"""The peer pool as a spreadsheet: one peer a row, read and written as CSV rows.

Pure: `parse_peers` reads rows as `csv.DictReader` yields them; opening the file is the
caller's job. A pool file is imported whole or not at all, so every problem in it is
collected (by row and column, as the spreadsheet shows them) before anything is refused.
`peers_to_rows` writes a pool back in the same shape: `parse_peers(peers_to_rows(p)) == p`.

Cells holding several values separate them with `;`:

- `specialisms`: `finance;governance`
- `unavailable`: first and last day, both included: `2026-03-02..2026-03-06` (a single
  day may be written `2026-03-02`)
- `former_employers`: council and last day employed there: `E06000001@2024-03-31`
- `declared_interests`: councils: `E06000001;E09000008`

An empty cell means none (and 0 days served).

Sealing (how the store keeps a pool, see docs/data-protection.md): `sealed_row` is a peer
without its personal fields (name, political group, declared interests) but with their salted
hash; `sealed_pool_digest` covers the sealed rows, so erasing the personal data, held apart
with its salt, breaks no digest; `unseal` checks the personal data against the hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import ValidationError

from domain.councils import Council
from domain.peers import ERASED_NAME, PERSONAL_FIELDS, Peer, PeerKind, Seniority
from domain.table_rows import CellProblem, RowReader, TableError

PEER_COLUMNS = (
    "peer_id", "name", "kind", "home_council", "political_group", "seniority", "specialisms",
    "accredited_until", "unavailable", "days_served_last_3_years", "former_employers",
    "declared_interests",
)
"""The columns of a pool file, every one required, in the order `peers_to_rows` writes them.
Each is the `Peer` field of the same name."""

SEPARATOR = ";"
_GSS = re.compile(r"^[EKNSW][0-9]{8}$")
_KINDS = ", ".join(k.value for k in PeerKind)
_RANKS = ", ".join(s.value for s in Seniority)


PeerFileProblem = CellProblem
"""A cell of a pool file; its `row` as a spreadsheet numbers it (the header is row 1)."""


class PeerFileError(TableError):
    """The pool file cannot be imported; `problems` lists every bad cell found."""

    def __init__(self, problems: Sequence[CellProblem]) -> None:
        super().__init__("the peer pool file", problems)


class _Row(RowReader):
    """One pool-file row being read, against the councils the engine knows."""

    def __init__(self, number: int, row: Mapping[str, str | None],
                 known_councils: Mapping[str, Council], problems: list[CellProblem]
                 ) -> None:
        super().__init__(number, row, problems)
        self.known = known_councils

    def items(self, column: str) -> list[str]:
        return [item.strip() for item in self.text(column).split(SEPARATOR) if item.strip()]

    def choice(self, column: str, allowed: type[PeerKind] | type[Seniority], listed: str,
               *, required: bool) -> str | None:
        value = self.text(column)
        if not value:
            if required:
                self.problem(column, "", f"is empty: one of {listed}")
            return None
        if value not in {member.value for member in allowed}:
            self.problem(column, value, f"is not one of {listed}")
        return value

    def council(self, column: str, code: str) -> str:
        if not _GSS.match(code):
            self.problem(column, code, "is not a GSS code like E06000001")
        elif code not in self.known:
            self.problem(column, code, "is not a council this engine knows (import the "
                                       "register with `cases councils import`)")
        return code

    def days_served(self, column: str) -> int:
        value = self.text(column)
        if not value:
            return 0
        if not value.isdecimal():
            self.problem(column, value, "is not a whole number of days")
            return 0
        return int(value)

    def spells(self, column: str) -> list[tuple[date | None, date | None]]:
        spells: list[tuple[date | None, date | None]] = []
        for item in self.items(column):
            first, dots, last = item.partition("..")
            if dots and not (first.strip() and last.strip()):
                self.problem(column, item, "is not a range FIRST..LAST, e.g. "
                                           "2026-03-02..2026-03-06")
                continue
            start = self.day(column, first.strip())
            spells.append((start, self.day(column, last.strip()) if dots else start))
        return spells

    def former_employers(self, column: str) -> list[tuple[str, date | None]]:
        former: list[tuple[str, date | None]] = []
        for item in self.items(column):
            code, at, last_day = item.partition("@")
            if not at:
                self.problem(column, item, "is not COUNCIL@LAST-DAY, e.g. "
                                           "E06000001@2024-03-31")
                continue
            former.append((self.council(column, code.strip()), self.day(column,
                                                                       last_day.strip())))
        return former


def parse_peers(rows: Iterable[Mapping[str, str | None]],
                known_councils: Mapping[str, Council]) -> list[Peer]:
    """Peers from a pool file's rows, as `csv.DictReader` gives them, in their order.

    Every problem (a missing or unknown column, an empty or malformed cell, a council the
    engine does not know, a peer id used twice, a value the `Peer` model refuses) is
    collected and raised together as `PeerFileError`: a pool is imported whole or not at all.
    Rows are numbered as given, the header being row 1 (`csv.DictReader` skips blank lines,
    so a file with blank lines numbers its later rows one lower than the spreadsheet does).
    """
    problems: list[PeerFileProblem] = []
    peers: list[Peer] = []
    first_row_of: dict[str, int] = {}
    for number, raw in enumerate(rows, start=2):
        if number == 2:
            _check_header(raw)
        row = _Row(number, raw, known_councils, problems)
        before = len(problems)
        if None in raw:  # csv.DictReader files the cells beyond the header under None
            row.problem(None, "", f"has more cells than the header's {len(PEER_COLUMNS)}")
        peer_id = row.required("peer_id")
        home = row.text("home_council")
        fields: dict[str, Any] = {
            "peer_id": peer_id,
            "name": row.required("name"),
            "kind": row.choice("kind", PeerKind, _KINDS, required=True),
            "home_council": row.council("home_council", home) if home else None,
            "political_group": row.text("political_group") or None,
            "seniority": row.choice("seniority", Seniority, _RANKS, required=False),
            "specialisms": row.items("specialisms"),
            "accredited_until": (row.day("accredited_until", row.text("accredited_until"))
                                 if row.text("accredited_until") else None),
            "unavailable": row.spells("unavailable"),
            "days_served_last_3_years": row.days_served("days_served_last_3_years"),
            "former_employers": row.former_employers("former_employers"),
            "declared_interests": [row.council("declared_interests", code)
                                   for code in row.items("declared_interests")],
        }
        if peer_id and peer_id in first_row_of:
            row.problem("peer_id", peer_id, f"repeats the peer id of row {first_row_of[peer_id]}")
        elif peer_id:
            first_row_of[peer_id] = number
        flagged = {problem.column for problem in problems[before:]}
        try:
            peer = Peer.model_validate(fields)
        except ValidationError as invalid:
            # the model's complaints about cells not already found wrong above
            for column, value, message in _validation_lines(invalid):
                if column not in flagged:
                    row.problem(column, value or (row.text(column) if column else ""), message)
            continue
        if len(problems) == before:
            peers.append(peer)
    if problems:
        raise PeerFileError(problems)
    return peers


def _check_header(first: Mapping[str, str | None]) -> None:
    header = [c for c in first if c is not None]
    problems = [PeerFileProblem(1, c, "", "column is missing from the header")
                for c in PEER_COLUMNS if c not in header]
    problems += [PeerFileProblem(1, c, "", "is not a column of a peer pool file (expected: "
                                           f"{', '.join(PEER_COLUMNS)})")
                 for c in header if c not in PEER_COLUMNS]
    if problems:
        raise PeerFileError(problems)


_RULE_COLUMNS = (("home council", "home_council"), ("political group", "political_group"),
                 ("seniority", "seniority"), ("name of an erased peer", "name"))
"""The `Peer` model's whole-row rules (which fields a kind of peer has) name the field they
are about; the column is found by that name."""


def _validation_lines(invalid: ValidationError) -> list[tuple[str | None, str, str]]:
    """(column, value, message) for each complaint of the `Peer` model; the value is the
    item of a several-valued cell the complaint is about, else empty."""
    lines: list[tuple[str | None, str, str]] = []
    for item in invalid.errors():
        location = item.get("loc", ())
        message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
        column = str(location[0]) if location else None
        if column not in PEER_COLUMNS:
            column = next((c for words, c in _RULE_COLUMNS if words in message), None)
        if column == "specialisms" and item.get("type") == "string_pattern_mismatch":
            message = ("is not a specialism: lower-case words joined by _, e.g. "
                       "financial_planning_and_management")
        value = item.get("input")
        shown = value if len(location) > 1 and isinstance(value, str) else ""
        lines.append((column, shown, message))
    return lines


# --- writing ---------------------------------------------------------------------------------


def peers_to_rows(peers: Iterable[Peer]) -> list[dict[str, str]]:
    """A pool as the rows of a pool file (for `csv.DictWriter(fieldnames=PEER_COLUMNS)`)."""
    return [_row(peer) for peer in peers]


def _row(peer: Peer) -> dict[str, str]:
    return {
        "peer_id": peer.peer_id,
        "name": peer.name,
        "kind": peer.kind.value,
        "home_council": peer.home_council or "",
        "political_group": peer.political_group or "",
        "seniority": peer.seniority.value if peer.seniority else "",
        "specialisms": SEPARATOR.join(peer.specialisms),
        "accredited_until": peer.accredited_until.isoformat() if peer.accredited_until else "",
        "unavailable": SEPARATOR.join(f"{first.isoformat()}..{last.isoformat()}"
                                      for first, last in peer.unavailable),
        "days_served_last_3_years": str(peer.days_served_last_3_years),
        "former_employers": SEPARATOR.join(f"{code}@{last.isoformat()}"
                                           for code, last in peer.former_employers),
        "declared_interests": SEPARATOR.join(peer.declared_interests),
    }


# --- the pool's fingerprint -------------------------------------------------------------------


def pool_digest(peers: Iterable[Peer]) -> str:
    """Lowercase hex SHA-256 naming a pool's exact content, whatever the order of its rows:
    the digest pools imported before sealing (migration 0006) were named by, and still are.
    It covers the personal fields, so it can be recomputed only while none is erased; a
    sealed pool is named by `sealed_pool_digest` instead."""
    return pool_digest_of_json(peer.model_dump(mode="json") for peer in peers)


def pool_digest_of_json(peers: Iterable[Mapping[str, Any]]) -> str:
    """`pool_digest` over peers as JSON objects (as a store keeps them), sorted by `peer_id`:
    the SHA-256 of their canonical JSON array (keys sorted, no spaces, UTF-8)."""
    ordered = sorted(peers, key=lambda peer: str(peer["peer_id"]))
    return hashlib.sha256(_canonical(ordered)).hexdigest()


def _canonical(value: Any) -> bytes:
    """RFC 8785 (JCS) for these values: ASCII keys, no floats."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


# --- sealing: personal data held apart, committed to by a salted hash ------------------------

SALT_HEX_LENGTH = 64
"""A salt is 32 random bytes, as 64 lowercase hex digits (the store draws it)."""


def personal_data(peer: Peer) -> dict[str, Any]:
    """The fields erasure removes (`domain.peers.PERSONAL_FIELDS`), as JSON."""
    dumped = peer.model_dump(mode="json", include=set(PERSONAL_FIELDS))
    return {field: dumped[field] for field in PERSONAL_FIELDS}


def personal_sha256(peer_id: str, personal: Mapping[str, Any], salt: str) -> str:
    """The salted hash a sealed row keeps of a peer's personal data: SHA-256 of the canonical
    JSON of the personal fields with `peer_id` and `salt` added. Without the salt (erased with
    the data) nobody can test a guess, such as each political group, against it."""
    if len(salt) != SALT_HEX_LENGTH or salt.strip("0123456789abcdef"):
        raise ValueError(f"a salt is {SALT_HEX_LENGTH} lowercase hex digits")
    return hashlib.sha256(_canonical({**personal, "peer_id": peer_id, "salt": salt})
                          ).hexdigest()


def sealed_row(peer: Peer, salt: str) -> dict[str, Any]:
    """The peer as the append-only pool row keeps them: every field the rules read but the
    personal ones, which are replaced by `personal_sha256`."""
    row = peer.model_dump(mode="json", exclude=set(PERSONAL_FIELDS))
    row["personal_sha256"] = personal_sha256(peer.peer_id, personal_data(peer), salt)
    return row


def sealed_pool_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """The digest of a sealed pool: `pool_digest_of_json` over its sealed rows. Erasing a peer's
    personal data leaves every sealed row, so the digest still verifies."""
    return pool_digest_of_json(rows)


class SealBroken(ValueError):
    """Personal data that does not hash to what its sealed row committed to."""


def unseal(row: Mapping[str, Any], personal: Mapping[str, Any] | None,
           salt: str | None) -> Peer:
    """The peer from a sealed row and its personal data, checked against the salted hash; with
    no personal data (erased), the peer without it (`Peer.erased`)."""
    fields = {key: value for key, value in row.items() if key != "personal_sha256"}
    peer_id = str(row["peer_id"])
    if personal is None or salt is None:
        return Peer.model_validate({**fields, "name": ERASED_NAME, "political_group": None,
                                    "declared_interests": [], "erased": True})
    if personal_sha256(peer_id, personal, salt) != row.get("personal_sha256"):
        raise SealBroken(f"the personal data of peer {peer_id} does not match the salted "
                         "hash its pool row keeps")
    return Peer.model_validate({**fields, **personal})
