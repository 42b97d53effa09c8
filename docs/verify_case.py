"""Verify one case of an improvement-case event store with nothing but Python's standard library.

    python3 -I -S verify_case.py DB_PATH CASE_ID

Opens the SQLite database at DB_PATH read-only, recomputes the hash of every event of CASE_ID
and walks the case's chain, as docs/event-store.md describes. Exit status: 0 the case is intact
(the head is printed: keep it somewhere else to catch a truncated case later); 3 it is not, and
the first bad version is named; 2 nothing was verified (bad arguments, an unreadable database,
no events at all for CASE_ID, or this Python does not reproduce the rule's test vector).
Started without -I -S, it starts itself again so before importing anything, so that no file
beside it (a hashlib.py, a json.py) can stand in for the standard library. Python 3.11 or later.
"""

import sys


def isolate() -> None:
    """Start again as `python -I -S` unless already so: no script directory, no site-packages,
    no PYTHON* variables, so that imports come from the standard library only."""
    if sys.flags.isolated and sys.flags.no_site:
        return
    os = sys.modules.get("os")  # imported as the interpreter started, before this directory
    if os is None and "posix" in sys.builtin_module_names:  # was on the path; posix is built in
        import posix as os
    if (os is None or not sys.executable or sys.platform == "win32"
            or "verify-restarted" in sys._xoptions):
        sys.stderr.write("run me as `python3 -I -S verify_case.py …`, isolated, so that no file "
                         "beside me can stand in for the standard library; nothing was verified\n")
        sys.exit(2)
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-X", "verify-restarted", __file__,
                              *sys.argv[1:]])


if __name__ == "__main__":
    isolate()

import hashlib  # noqa: E402  (every import comes after isolate())
import json  # noqa: E402
import sqlite3  # noqa: E402
from contextlib import closing  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
MAX_NESTING = 1000
"""A payload nests objects and arrays at most this deep (the payload itself is level 1)."""
TOO_DEEP = (f"the payload is nested deeper than {MAX_NESTING} levels of objects and arrays: "
            "it cannot be verified; treat it as tampered")
INTACT, UNVERIFIED, BROKEN = 0, 2, 3
TEST_VECTOR = (
    '{"actor":"officer:siân.jones","case_id":"cpc-E06000001-2026",'
    '"event_id":"3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10",'
    '"occurred_at":"2026-03-02T09:30:00.000000Z","payload":{"budget_gap_pence":420000000,'
    '"council":"E06000001","kind":"corporate_peer_challenge","reason":"Budget gap of £4.2m '
    r'\"flagged\" by the s151 officer\n","scope":["finance","governance"]},'
    '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"schema_version":1,"type":"CaseRequested","version":1}'
)
"""BRIEF §4's test vector, one canonical line; its backslashes are JSON escapes."""
TEST_VECTOR_HASH = "a4225a32fce5148c2884b499ab1d9451f7dccf636a826fec0d06aaa9bc9d0774"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a JSON object repeats a key")
    return dict(pairs)


def _no_float(text: str) -> Any:
    raise ValueError(f"the number {text} is not an integer")


DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_float=_no_float,
                           parse_constant=_no_float)


def _space(text: str, at: int) -> int:
    while text[at:at + 1] in (" ", "\t", "\n", "\r"):
        at += 1
    return at


def _member_key(text: str, at: int) -> tuple[str, int]:
    if text[at:at + 1] != '"':
        raise ValueError(f"a property name at character {at} is not in double quotes")
    key, at = DECODER.raw_decode(text, at)
    at = _space(text, at)
    if text[at:at + 1] != ":":
        raise ValueError(f"expecting ':' at character {at}")
    return key, _space(text, at + 1)


def parse(text: str, max_depth: int) -> Any:
    """JSON text read as json.loads reads it with DECODER, but with an explicit stack instead of
    recursion, so that no nesting can crash it: ValueError for objects and arrays nested deeper
    than max_depth levels, as for anything else the store never writes."""
    frames: list[tuple[list[Any], bool, list[str]]] = []  # (members, an object?, its keys)
    at = _space(text, 0)
    while True:
        opener = text[at:at + 1]
        value: Any
        if opener in ("{", "["):
            if len(frames) >= max_depth:
                raise ValueError(TOO_DEEP)
            at = _space(text, at + 1)
            if text[at:at + 1] == ("}" if opener == "{" else "]"):
                value, at = ({} if opener == "{" else []), at + 1
            else:
                frames.append(([], opener == "{", []))
                if opener == "{":
                    key, at = _member_key(text, at)
                    frames[-1][2].append(key)
                continue
        else:
            value, at = DECODER.raw_decode(text, at)
        while True:  # the value ends a member: close every object or array that ends here too
            if not frames:
                if _space(text, at) != len(text):
                    raise ValueError(f"extra data at character {_space(text, at)}")
                return value
            members, is_object, keys = frames[-1]
            members.append(value)
            at = _space(text, at)
            if text[at:at + 1] == ",":
                at = _space(text, at + 1)
                if is_object:
                    key, at = _member_key(text, at)
                    keys.append(key)
                break
            if text[at:at + 1] != ("}" if is_object else "]"):
                raise ValueError(f"expecting ',' at character {at}")
            at += 1
            frames.pop()
            value = _object(list(zip(keys, members, strict=True))) if is_object else members


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)  # JCS escapes strings exactly so
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return str(value)
    raise ValueError(f"{value!r} is not JSON the store writes (integers within ±(2**53-1) only)")


def canonical(value: Any, max_depth: int = MAX_NESTING + 1) -> str:
    """RFC 8785 (JCS) text of a JSON value without floats (the store never holds one), written
    with an explicit stack; ValueError for objects and arrays nested deeper than max_depth
    levels (an event's payload sits one level down in the hashed object)."""
    out: list[str] = []
    frames: list[tuple[Any, str]] = []  # (iterator over the members left, the closing mark)
    while True:
        if isinstance(value, dict | list) and len(frames) >= max_depth:
            raise ValueError(TOO_DEEP)
        if isinstance(value, dict):
            keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code units
            out.append("{")
            frames.append((iter([(key, value[key]) for key in keys]), "}"))
        elif isinstance(value, list):
            out.append("[")
            frames.append((iter([(None, item) for item in value]), "]"))
        else:
            out.append(_scalar(value))
        while frames:
            member = next(frames[-1][0], None)
            if member is None:
                out.append(frames.pop()[1])
                continue
            if out[-1] not in ("{", "["):
                out.append(",")
            if member[0] is not None:
                out.append(_scalar(member[0]) + ":")
            value = member[1]
            break
        else:
            return "".join(out)


def hashing_works() -> bool:
    """Whether this Python reproduces the rule's test vector: read and written again, the line
    must come back byte for byte and hash to the stated hash."""
    try:
        line = canonical(parse(TEST_VECTOR, MAX_NESTING + 1))
    except ValueError:
        return False
    return (line == TEST_VECTOR
            and hashlib.sha256(line.encode("utf-8")).hexdigest() == TEST_VECTOR_HASH)


def shown(text: str) -> str:
    """`text` with every character a terminal acts on (controls, bidirectional overrides)
    written as an escape: the database may have been written by anyone."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def payload(stored: object) -> dict[str, Any]:
    """The payload column, parsed strictly: an object, no floats, no repeated keys, no deeper
    than MAX_NESTING levels."""
    if not isinstance(stored, str):
        raise ValueError("the payload is not JSON text")
    value = parse(stored, MAX_NESTING)
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
        except ValueError as error:  # also UnicodeError
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
    if not hashing_works():
        print("this Python does not reproduce the rule's test vector: its hashing cannot be "
              "trusted; nothing was verified", file=sys.stderr)
        return UNVERIFIED
    db_path, case_id = argv
    try:
        uri = Path(db_path).resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM events WHERE case_id = ? ORDER BY version, position",
                              (case_id,)).fetchall()
    except sqlite3.Error as error:
        print(shown(f"cannot read events from {db_path}: {error}"), file=sys.stderr)
        return UNVERIFIED
    if not rows:
        print(shown(f"case {case_id}: no events in {db_path}"), file=sys.stderr)
        return UNVERIFIED
    problem = first_problem(rows)
    if problem is not None:
        print(shown(f"case {case_id} {problem}"))
        return BROKEN
    head = rows[-1]
    print(shown(f"case {case_id}: intact, versions 1 to {head['version']}; "
                f"head hash {head['hash']}"))
    return INTACT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
