"""Verify one case of an improvement-case event store with nothing but Python's standard library.

    python3 verify_case.py DB_PATH CASE_ID

Opens the SQLite database at DB_PATH read-only, recomputes the hash of every event of CASE_ID
and walks the case's chain, as docs/event-store.md describes. Exit status: 0 the case is intact
(the head is printed: keep it somewhere else to catch a truncated case later); 3 it is not, and
the first bad version is named; 2 nothing was verified (bad arguments, an unreadable database,
or no events at all for CASE_ID).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
INTACT, UNVERIFIED, BROKEN = 0, 2, 3


def canonical(value: Any) -> str:
    """RFC 8785 (JCS) text of a JSON value without floats (the store never holds one)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code units
        return "{" + ",".join(f"{canonical(k)}:{canonical(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)  # JCS escapes strings exactly so
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return str(value)
    raise ValueError(f"{value!r} is not JSON the store writes (integers within ±(2**53-1) only)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a JSON object repeats a key")
    return dict(pairs)


def _no_float(text: str) -> Any:
    raise ValueError(f"the number {text} is not an integer")


def payload(stored: object) -> dict[str, Any]:
    """The payload column, parsed strictly: an object, no floats, no repeated keys."""
    if not isinstance(stored, str):
        raise ValueError("the payload is not JSON text")
    value = json.loads(stored, object_pairs_hook=_object, parse_float=_no_float,
                       parse_constant=_no_float)
    if not isinstance(value, dict):
        raise ValueError("the payload is not a JSON object")
    return value


def utc_time(stored: object) -> str:
    """occurred_at as the hash sees it: YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC."""
    if not isinstance(stored, str):
        raise ValueError("occurred_at is not a time")
    moment = datetime.fromisoformat(stored)  # SQLite holds UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def event_hash(row: sqlite3.Row) -> str:
    hashed = {"case_id": row["case_id"], "version": row["version"],
              "event_id": row["event_id"], "type": row["type"],
              "schema_version": row["schema_version"], "occurred_at": utc_time(row["occurred_at"]),
              "actor": row["actor"], "payload": payload(row["payload"]),
              "prev_hash": row["prev_hash"]}
    return hashlib.sha256(canonical(hashed).encode("utf-8")).hexdigest()


def first_problem(rows: list[sqlite3.Row]) -> str | None:
    """Walk the case in version order; describe the first bad version, or None if intact."""
    prev_hash, prev_position = GENESIS_HASH, 0
    for expected, row in enumerate(rows, start=1):
        if row["version"] != expected:
            return (f"version {expected}: missing: the chain jumps from version {expected - 1} "
                    f"to version {row['version']}")
        try:
            computed = event_hash(row)
        except ValueError as error:  # also UnicodeError and json.JSONDecodeError
            return f"version {expected}: altered: {error}"
        if computed != row["hash"]:
            return (f"version {expected}: altered: stored hash {row['hash']}, "
                    f"recomputed {computed}")
        if row["prev_hash"] != prev_hash:
            return (f"version {expected}: broken_link: prev_hash {row['prev_hash']} is not "
                    f"the hash of version {expected - 1} ({prev_hash})")
        if row["position"] <= prev_position:
            return (f"version {expected}: reordered: position {row['position']} is not after "
                    f"version {expected - 1}'s position {prev_position}")
        prev_hash, prev_position = row["hash"], row["position"]
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: verify_case.py DB_PATH CASE_ID", file=sys.stderr)
        return UNVERIFIED
    db_path, case_id = argv
    try:
        uri = Path(db_path).resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM events WHERE case_id = ? ORDER BY version, position",
                              (case_id,)).fetchall()
    except sqlite3.Error as error:
        print(f"cannot read events from {db_path}: {error}", file=sys.stderr)
        return UNVERIFIED
    if not rows:
        print(f"case {case_id}: no events in {db_path}", file=sys.stderr)
        return UNVERIFIED
    problem = first_problem(rows)
    if problem is not None:
        print(f"case {case_id} {problem}")
        return BROKEN
    head = rows[-1]
    print(f"case {case_id}: intact, versions 1 to {head['version']}; "
          f"head hash {head['hash']}")
    return INTACT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
