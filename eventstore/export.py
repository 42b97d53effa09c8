"""Exports of one case: JSON, CSV, and a bundle an auditor can verify without this project.

`export_json` is the case's rows exactly as stored, hashes included, as one JSON document;
`export_csv` is one row per event with the payload as canonical JSON in a column;
`write_bundle` writes a directory of four files:

- `events.json`: what `export_json` gives (UTF-8);
- `RULE.md`: the hash rule and the checks, in a few precise lines;
- `verify.py`: a verifier that needs only Python's standard library and reads `events.json`
  from its own directory (`python3 verify.py`; exit 0 intact, 3 naming the first bad event,
  2 nothing verified). Its checks and messages are those of `docs/verify_case.py`;
- `MANIFEST.json`: the case id, the number of events, the head (version, hash), the sha256 of
  `events.json`, when it was exported and whether the store verified at that moment.

In `events.json` each event's `occurred_at` is written exactly as the hash sees it
(`YYYY-MM-DDTHH:MM:SS.ffffffZ`, UTC) and `payload` is the stored JSON value; every other field
is the column as stored. Events are listed in version order.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.checkpoints import CHECKPOINT_STREAM
from domain.recorded import Recorded
from eventstore.chain import canonical_json, format_time
from eventstore.records import StoredEvent
from eventstore.store import EventStore
from eventstore.verify import check_chain

EXPORT_FORMAT = "improvement-case-events/1"
COLUMNS = ("position", "case_id", "version", "event_id", "type", "schema_version",
           "occurred_at", "actor", "payload", "prev_hash", "hash")
"""The columns of the `events` table, in table order: the keys of each exported event."""
BUNDLE_FILES = ("events.json", "RULE.md", "verify.py", "MANIFEST.json")


class NoSuchCase(LookupError):
    """The store holds no event of this case: nothing to export."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id} in the store")
        self.case_id = case_id


def _read(store: EventStore, case_id: str) -> list[StoredEvent]:
    stored = store.read_case(case_id)
    if not stored:
        raise NoSuchCase(case_id)
    return stored


def event_row(event: StoredEvent) -> dict[str, Any]:
    """One event as exported: the table's columns, `occurred_at` in the hash's own form."""
    return {"position": event.position, "case_id": event.case_id, "version": event.version,
            "event_id": event.event_id, "type": event.type,
            "schema_version": event.schema_version,
            "occurred_at": format_time(event.occurred_at), "actor": event.actor,
            "payload": event.payload, "prev_hash": event.prev_hash, "hash": event.hash}


def _json_document(case_id: str, stored: list[StoredEvent]) -> str:
    document = {"format": EXPORT_FORMAT, "case_id": case_id,
                "events": [event_row(e) for e in stored]}
    return json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def export_json(store: EventStore, case_id: str) -> str:
    """`{"format", "case_id", "events": [every row, in version order]}` as JSON text.

    Raises NoSuchCase if the store holds no event of the case."""
    return _json_document(case_id, _read(store, case_id))


def export_csv(store: EventStore, case_id: str) -> str:
    """One line per event, columns as in the table (header first); `payload` is its RFC 8785
    canonical JSON, `occurred_at` as the hash sees it. RFC 4180 CSV (CRLF line ends)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for event in _read(store, case_id):
        row = event_row(event)
        row["payload"] = canonical_json(event.payload).decode("utf-8")
        writer.writerow([row[c] for c in COLUMNS])
    return out.getvalue()


def write_bundle(store: EventStore, case_id: str, directory: Path, *,
                 now: datetime | None = None) -> Path:
    """Write the case's audit bundle (module docstring) into `directory`; returns it.

    The directory is created if need be and must otherwise be empty (FileExistsError), so a
    bundle never mixes two exports. The store's own verdict on the case at export time goes
    into MANIFEST.json; a case that does not verify is exported all the same, as stored, and
    its verify.py will say where it breaks. Raises NoSuchCase for a case with no events.
    """
    stored = _read(store, case_id)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty; give a new or empty directory")
    events_bytes = _json_document(case_id, stored).encode("utf-8")
    _, problem = check_chain(stored)
    head = stored[-1]
    manifest = {
        "format": EXPORT_FORMAT, "case_id": case_id, "event_count": len(stored),
        "head": {"version": head.version, "hash": head.hash},
        "events_json_sha256": hashlib.sha256(events_bytes).hexdigest(),
        "exported_at": format_time(now or datetime.now(UTC)),
        "verified_at_export": {"ok": problem is None,
                               "problem": None if problem is None else str(problem)},
    }
    (directory / "events.json").write_bytes(events_bytes)
    (directory / "RULE.md").write_bytes(RULE.encode("utf-8"))
    verifier = directory / "verify.py"
    verifier.write_bytes(VERIFIER.encode("utf-8"))
    verifier.chmod(0o755)
    (directory / "MANIFEST.json").write_bytes(
        (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return directory


def case_histories(store: EventStore) -> dict[str, list[Recorded]]:
    """Every case's history (upcast domain events, version order), keyed by case id, read in
    one pass over the store; the checkpoint stream is left out. What `domain.figures` takes."""
    histories: dict[str, list[Recorded]] = defaultdict(list)
    for event in store.iter_after(0):
        if event.case_id != CHECKPOINT_STREAM:
            histories[event.case_id].append(event.to_recorded())
    for history in histories.values():
        history.sort(key=lambda r: r.version)
    return dict(sorted(histories.items()))


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

RULE = r"""# How each event of `events.json` is hashed and checked

Contract: BRIEF §4 of the improvement-case engine; the full text is the project's
`docs/event-store.md` (§2 and §4). `verify.py` beside this file does all of this.

**Hash.** `hash` = lowercase hex SHA-256 of the UTF-8 bytes of the RFC 8785 (JCS) canonical
JSON of an object with exactly these 9 keys, taken from the event: `case_id`, `version`,
`event_id`, `type`, `schema_version`, `occurred_at`, `actor`, `payload`, `prev_hash`.
(`position` and `hash` are not hashed.) `occurred_at` is the UTC instant written
`YYYY-MM-DDTHH:MM:SS.ffffffZ`, as it already is in `events.json`; `payload` is the JSON
object as given; `schema_version` is as stored (old shapes are never rewritten).

**Canonical JSON, for these values** (there are never floats): no whitespace; object keys
sorted by their UTF-16 code units (plain character order for ASCII keys), nested objects too,
arrays in order, no key twice; strings escape only `"` as `\"`, `\` as `\\` and characters
below U+0020 (`\b \t \n \f \r`, the others `\u00xx` in lowercase hex), every other character
written as itself in UTF-8; integers in plain decimal, within ±(2^53−1); `true`, `false`,
`null`. In Python, when every key is ASCII (as in every event this project writes):
`json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")`.

**Chain.** Version 1's `prev_hash` is 64 zeros; version n's is version n−1's `hash`.

**Checks**, walking the events in version order with n = 1, 2, 3 …, stopping at the first
failure: (1) `version` is n, else version n is **missing**; (2) the recomputed hash equals
`hash`, else the event was **altered**; (3) `prev_hash` is the previous event's `hash`, else
**broken_link**; (4) `position` is greater than the previous event's, else **reordered**.
Then, against `MANIFEST.json`: the last event is the manifest's `head` (version and hash;
else versions are **missing** or **added**), and the SHA-256 of the bytes of `events.json` is
its `events_json_sha256`. The chain alone cannot see a truncated tail; the manifest's head
can, but only if a copy of that head is kept where the bundle's holder cannot change it.

**Test vector** (BRIEF §4): this canonical line (`\"` and `\n` in it are JSON escapes)

```json
""" + TEST_VECTOR + r"""
```

hashes to `""" + TEST_VECTOR_HASH + """`.
"""
"""RULE.md of a bundle."""

VERIFIER = r'''#!/usr/bin/env python3
"""Verify the exported case in this directory with nothing but Python's standard library.

    python3 verify.py [DIR]

Reads DIR/events.json (DIR defaults to this script's own directory), recomputes the hash of
every event by the rule in RULE.md and walks the case's chain; then, if DIR/MANIFEST.json is
there, checks that the chain ends at the head the manifest records and that events.json is the
very file it describes. Exit status: 0 the case is intact (its head is printed: compare it with
a head kept elsewhere); 3 it is not, and the first bad version is named (or the file, when every
event verifies but the file is not the one exported); 2 nothing was verified (no events.json,
not JSON, or no events). The checks and messages are those of docs/verify_case.py, which reads a
SQLite store instead; here the rows are walked in file order, which the export writes in version
order. Python 3.8 or later.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
INTACT, UNVERIFIED, BROKEN = 0, 2, 3


class NotInteger(str):
    """A number with a fraction or an exponent, or NaN: something the store never writes."""


class RepeatedKeys(dict):  # type: ignore[type-arg]
    """A JSON object that names a key twice: something the store never writes."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    return RepeatedKeys(value) if len(value) != len(pairs) else value


def canonical(value: Any) -> str:
    """RFC 8785 (JCS) text of a JSON value without floats (the store never holds one)."""
    if isinstance(value, RepeatedKeys):
        raise ValueError("a JSON object repeats a key")
    if isinstance(value, NotInteger):
        raise ValueError(f"the number {value} is not an integer")
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code units
        return "{" + ",".join(f"{canonical(k)}:{canonical(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=False)  # JCS escapes strings exactly so
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return str(value)
    raise ValueError(f"{value!r} is not JSON the store writes (integers within ±(2**53-1) only)")


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def utc_time(stored: object) -> str:
    """occurred_at as the hash sees it: YYYY-MM-DDTHH:MM:SS.ffffffZ in UTC."""
    if not isinstance(stored, str):
        raise ValueError("occurred_at is not a time")
    text = stored[:-1] + "+00:00" if stored.endswith("Z") else stored
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def event_hash(row: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the row's nine hashed fields (RULE.md)."""
    if not isinstance(row.get("payload"), dict):
        raise ValueError("the payload is not a JSON object")
    hashed = {"case_id": row["case_id"], "version": row["version"],
              "event_id": row["event_id"], "type": row["type"],
              "schema_version": row["schema_version"], "occurred_at": utc_time(row["occurred_at"]),
              "actor": row["actor"], "payload": row["payload"],
              "prev_hash": row["prev_hash"]}
    return hashlib.sha256(canonical(hashed).encode("utf-8")).hexdigest()


def first_problem(rows: list[Any]) -> str | None:
    """Walk the case in file (version) order; describe the first bad version, or None."""
    prev_hash, prev_position = GENESIS_HASH, 0
    for expected, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not _is_integer(row.get("version")):
            return f"version {expected}: altered: the row has no integer version"
        if row["version"] != expected:
            return (f"version {expected}: missing: the chain jumps from version {expected - 1} "
                    f"to version {row['version']}")
        try:
            computed = event_hash(row)
        except KeyError as error:
            return f"version {expected}: altered: the field {error} is missing"
        except ValueError as error:  # also UnicodeError
            return f"version {expected}: altered: {error}"
        if computed != row.get("hash"):
            return (f"version {expected}: altered: stored hash {row.get('hash')}, "
                    f"recomputed {computed}")
        if row["prev_hash"] != prev_hash:
            return (f"version {expected}: broken_link: prev_hash {row['prev_hash']} is not "
                    f"the hash of version {expected - 1} ({prev_hash})")
        position = row.get("position")
        if (not isinstance(position, int) or isinstance(position, bool)
                or position <= prev_position):
            return (f"version {expected}: reordered: position {position} is not after "
                    f"version {expected - 1}'s position {prev_position}")
        prev_hash, prev_position = row["hash"], position
    return None


def manifest_problem(directory: Path, case_id: str, rows: list[Any],
                     events_bytes: bytes) -> str | None:
    """Compare an intact chain with MANIFEST.json: the head it records, the file's sha256."""
    try:
        manifest = json.loads((directory / "MANIFEST.json").read_text(encoding="utf-8"))
        head_version, head_hash = manifest["head"]["version"], manifest["head"]["hash"]
        recorded_case, recorded_sha = manifest["case_id"], manifest["events_json_sha256"]
    except (ValueError, KeyError, TypeError) as error:
        return f"MANIFEST.json: altered: not a manifest this export writes ({error!r})"
    last = rows[-1]["version"]
    if recorded_case != case_id:
        return f"MANIFEST.json: altered: it is for case {recorded_case}, not {case_id}"
    if not _is_integer(head_version) or head_version < 1:
        return f"MANIFEST.json: altered: head version {head_version!r} is not a version"
    if last < head_version:
        return (f"version {last + 1}: missing: MANIFEST.json records head version "
                f"{head_version}, events.json ends at version {last}")
    if last > head_version:
        return (f"version {head_version + 1}: added: MANIFEST.json records head version "
                f"{head_version}, events.json goes on to version {last}")
    if rows[-1]["hash"] != head_hash:
        return (f"version {last}: altered: hash {rows[-1]['hash']} is not the head hash "
                f"{head_hash} that MANIFEST.json records")
    computed = hashlib.sha256(events_bytes).hexdigest()
    if computed != recorded_sha:
        return (f"events.json: altered: its sha256 is {computed}, MANIFEST.json records "
                f"{recorded_sha}; every event verifies, so a field outside the hash (a "
                "position) or the file's layout changed")
    return None


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: verify.py [DIR]", file=sys.stderr)
        return UNVERIFIED
    directory = Path(argv[0]) if argv else Path(__file__).resolve().parent
    path = directory / "events.json"
    try:
        events_bytes = path.read_bytes()
        document = json.loads(events_bytes.decode("utf-8"), object_pairs_hook=_object,
                              parse_float=NotInteger, parse_constant=NotInteger)
    except (OSError, ValueError) as error:
        print(f"cannot read events from {path}: {error}", file=sys.stderr)
        return UNVERIFIED
    rows = document.get("events") if isinstance(document, dict) else None
    if not isinstance(rows, list) or not rows:
        print(f"no events in {path}", file=sys.stderr)
        return UNVERIFIED
    case_id = document.get("case_id")
    if not isinstance(case_id, str) and isinstance(rows[0], dict):
        case_id = rows[0].get("case_id")
    problem = first_problem(rows)
    if problem is None and (directory / "MANIFEST.json").exists():
        problem = manifest_problem(directory, str(case_id), rows, events_bytes)
    elif problem is None:
        print("no MANIFEST.json: a truncated or extended tail cannot be seen", file=sys.stderr)
    if problem is not None:
        print(f"case {case_id} {problem}")
        return BROKEN
    head = rows[-1]
    print(f"case {case_id}: intact, versions 1 to {head['version']}; "
          f"head hash {head['hash']}")
    return INTACT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''
"""The bundle's verify.py: standard library only; the logic of docs/verify_case.py over JSON."""
