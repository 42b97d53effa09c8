"""The hash rule of BRIEF §4: SHA-256 of the RFC 8785 (JCS) canonical JSON of each event.

`canonical_json` takes a fast path through the standard library's json when every object key
is ASCII (then Python's key order equals JCS's UTF-16 order and the escapes coincide), and
falls back to the `rfc8785` package otherwise. `row_hash` is the same rule for a row read raw
(payload still JSON text) with orjson in place of json: verifying a whole store spends most of
its time here. Tests check every path against RFC 8785's bytes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
HASHED_FIELDS = ("case_id", "version", "event_id", "type", "schema_version", "occurred_at",
                 "actor", "payload", "prev_hash")


def format_time(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, the only form of time the hash sees."""
    if moment.tzinfo is None:
        raise ValueError("occurred_at must carry a timezone")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _keys_are_ascii(value: Any) -> bool:
    if isinstance(value, dict):
        return all(k.isascii() and _keys_are_ascii(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_keys_are_ascii(v) for v in value)
    return True


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes for JSON made of objects, arrays, strings, integers, booleans and null."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    if text.isascii() or _keys_are_ascii(value):  # all-ASCII text needs no walk of the keys
        return text.encode("utf-8")
    return bytes(rfc8785.dumps(value))


def row_hash(case_id: str, version: int, event_id: str, type: str, schema_version: int,
             occurred_at: str, actor: str, payload: str, prev_hash: str) -> str | None:
    """The hash of a row read raw: `occurred_at` already as the hash writes it, `payload` as
    stored JSON text. None if orjson cannot take it; the caller then reads the row the slow way.

    orjson's compact sorted output is RFC 8785's for JSON without floats (the store never
    holds one) whose keys are ASCII: both sort by code point then, escape only `"`, `\\` and
    controls, the same way, and write integers as digits. Every other column is serialised as
    whatever the driver returned, so a tampered row hashes as the original only if it reads
    back as the original.
    """
    try:
        value = orjson.loads(payload)
        hashed = {"actor": actor, "case_id": case_id, "event_id": event_id,
                  "occurred_at": occurred_at, "payload": value, "prev_hash": prev_hash,
                  "schema_version": schema_version, "type": type, "version": version}
        data = orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS)
        # ASCII text without \u escapes has ASCII keys only; that spares walking the keys.
        if not (data.isascii() or (payload.isascii() and "\\u" not in payload)
                or _keys_are_ascii(value)):
            data = bytes(rfc8785.dumps(hashed))
    except (TypeError, ValueError):  # orjson's and rfc8785's errors derive from these
        return None
    return hashlib.sha256(data).hexdigest()


def hashed_object(*, case_id: str, version: int, event_id: str, type: str, schema_version: int,
                  occurred_at: datetime, actor: str, payload: dict[str, Any],
                  prev_hash: str) -> dict[str, Any]:
    return {"case_id": case_id, "version": version, "event_id": event_id, "type": type,
            "schema_version": schema_version, "occurred_at": format_time(occurred_at),
            "actor": actor, "payload": payload, "prev_hash": prev_hash}


def event_hash(**fields: Any) -> str:
    """The `hash` column of an event with these fields (the keys of HASHED_FIELDS)."""
    return hashlib.sha256(canonical_json(hashed_object(**fields))).hexdigest()
