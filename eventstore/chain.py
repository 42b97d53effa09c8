"""The hash rule of BRIEF §4: SHA-256 of the RFC 8785 (JCS) canonical JSON of each event.

`canonical_json` takes a fast path through the standard library's json when every object key
is ASCII (then Python's key order equals JCS's UTF-16 order and the escapes coincide), and
otherwise writes JCS itself with an explicit stack. `row_hash` is the same rule for a row read
raw (payload still JSON text) with orjson in place of json: verifying a whole store spends most
of its time here. Tests check every path against RFC 8785's bytes.

Nothing here recurses over a value: a payload nested deeper than MAX_NESTING levels, which a
tamperer can write but this project never does, is a `TooDeep` error (a verdict for the
verifier to give) instead of a RecursionError that would stop verification naming nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import rfc8785

GENESIS_HASH = "0" * 64
MAX_SAFE_INTEGER = 2**53 - 1
MAX_NESTING = 1000
"""How deep objects and arrays may nest in a payload, the payload object itself being level 1.
Far beyond any event's needs; a deeper payload cannot be verified and counts as tampered (the
bundle's verify.py and docs/verify_case.py use the same limit)."""
HASHED_FIELDS = ("case_id", "version", "event_id", "type", "schema_version", "occurred_at",
                 "actor", "payload", "prev_hash")


class TooDeep(ValueError):
    """JSON nested deeper than MAX_NESTING levels: no verifier reads it, so it proves nothing."""

    def __init__(self) -> None:
        super().__init__(f"the payload is nested deeper than {MAX_NESTING} levels of objects "
                         "and arrays")


def format_time(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, the only form of time the hash sees."""
    if moment.tzinfo is None:
        raise ValueError("occurred_at must carry a timezone")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _containers(items: Any) -> Iterator[Any]:
    return (item for item in items if isinstance(item, dict | list))


def _keys_are_ascii(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if not all(key.isascii() for key in item):
                return False
            pending.extend(_containers(item.values()))
        elif isinstance(item, list):
            pending.extend(_containers(item))
    return True


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels deep in `value`."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, level = pending.pop()
        if level > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, level + 1) for child in _containers(children))
    return False


def _may_nest_deeper(text: str, limit: int) -> bool:
    """A cheap bound: nesting `limit` + 1 levels takes at least that many `[` or `{`."""
    return len(text) > limit and text.count("[") + text.count("{") > limit


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be")


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool):
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, int) and abs(value) <= MAX_SAFE_INTEGER:
        return str(value)
    return bytes(rfc8785.dumps(value)).decode("utf-8")  # floats, or refused (big integers)


def _jcs(value: Any, max_depth: int) -> bytes:
    """RFC 8785 bytes, written with an explicit stack; TooDeep past `max_depth` levels."""
    out: list[str] = []
    frames: list[tuple[Iterator[tuple[str | None, Any]], str]] = []
    item = value
    while True:
        if isinstance(item, dict | list):
            if len(frames) >= max_depth:
                raise TooDeep
            if isinstance(item, dict):
                out.append("{")
                members = [(key, item[key]) for key in sorted(item, key=_utf16)]
                frames.append((iter(members), "}"))
            else:
                out.append("[")
                frames.append((((None, element) for element in item), "]"))
        else:
            out.append(_scalar(item))
        while frames:
            members_left, closer = frames[-1]
            member = next(members_left, None)
            if member is None:
                out.append(closer)
                frames.pop()
                continue
            key, item = member
            if out[-1] not in ("{", "["):
                out.append(",")
            if key is not None:
                out.append(_scalar(key) + ":")
            break
        else:
            return "".join(out).encode("utf-8")


def canonical_json(value: Any, *, max_depth: int = MAX_NESTING) -> bytes:
    """RFC 8785 bytes for JSON made of objects, arrays, strings, integers, booleans and null.

    Raises TooDeep for objects and arrays nested more than `max_depth` levels (the value itself
    is level 1), and ValueError for what JSON cannot hold."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except RecursionError:  # deeper than this interpreter's stack: the explicit stack decides
        return _jcs(value, max_depth)
    if _may_nest_deeper(text, max_depth) and _deeper_than(value, max_depth):
        raise TooDeep
    if text.isascii() or _keys_are_ascii(value):  # all-ASCII text needs no walk of the keys
        return text.encode("utf-8")
    return _jcs(value, max_depth)


def _space(text: str, at: int) -> int:
    """The index of the first character at or after `at` that is not JSON whitespace."""
    while text[at:at + 1] in (" ", "\t", "\n", "\r"):
        at += 1
    return at


def _member_key(text: str, at: int, scalar: Callable[[str, int], tuple[Any, int]]
                ) -> tuple[str, int]:
    """An object's key and its colon at `at`; the index of the value after them."""
    if text[at:at + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
    key, at = scalar(text, at)
    at = _space(text, at)
    if text[at:at + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
    return key, _space(text, at + 1)


def parse_json(text: str, *, max_depth: int = MAX_NESTING) -> Any:
    """`json.loads(text)`, read with an explicit stack instead of recursion: TooDeep for
    objects and arrays nested more than `max_depth` levels, JSONDecodeError for what json
    refuses. Scalars are json's own reading of them (its decoder, one value at a time)."""
    scalar = json.JSONDecoder().raw_decode
    frames: list[tuple[list[Any], bool, list[str]]] = []  # (members, is object, keys)
    at = _space(text, 0)
    while True:
        opener = text[at:at + 1]
        value: Any
        if opener in ("{", "["):
            if len(frames) >= max_depth:
                raise TooDeep
            at = _space(text, at + 1)
            if text[at:at + 1] == ("}" if opener == "{" else "]"):
                value, at = ({} if opener == "{" else []), at + 1
            else:
                frames.append(([], opener == "{", []))
                if opener == "{":
                    key, at = _member_key(text, at, scalar)
                    frames[-1][2].append(key)
                continue
        else:
            value, at = scalar(text, at)
        while True:  # the value ends a member: close every object or array that ends here too
            if not frames:
                at = _space(text, at)
                if at != len(text):
                    raise json.JSONDecodeError("Extra data", text, at)
                return value
            members, is_object, keys = frames[-1]
            members.append(value)
            at = _space(text, at)
            if text[at:at + 1] == ",":
                at = _space(text, at + 1)
                if is_object:
                    key, at = _member_key(text, at, scalar)
                    keys.append(key)
                break
            if text[at:at + 1] != ("}" if is_object else "]"):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
            at += 1
            frames.pop()
            value = dict(zip(keys, members, strict=True)) if is_object else members


def row_hash(case_id: str, version: int, event_id: str, type: str, schema_version: int,
             occurred_at: str, actor: str, payload: str, prev_hash: str) -> str | None:
    """The hash of a row read raw: `occurred_at` already as the hash writes it, `payload` as
    stored JSON text. None if orjson cannot take it or it may nest too deep; the caller then
    reads the row the slow way.

    orjson's compact sorted output is RFC 8785's for JSON without floats (the store never
    holds one) whose keys are ASCII: both sort by code point then, escape only `"`, `\\` and
    controls, the same way, and write integers as digits. Every other column is serialised as
    whatever the driver returned, so a tampered row hashes as the original only if it reads
    back as the original.
    """
    try:
        value = orjson.loads(payload)  # refuses nesting past 1024 levels: never a RecursionError
        if (isinstance(payload, str) and _may_nest_deeper(payload, MAX_NESTING)
                and _deeper_than(value, MAX_NESTING)):
            return None
        hashed = {"actor": actor, "case_id": case_id, "event_id": event_id,
                  "occurred_at": occurred_at, "payload": value, "prev_hash": prev_hash,
                  "schema_version": schema_version, "type": type, "version": version}
        data = orjson.dumps(hashed, option=orjson.OPT_SORT_KEYS)
        # ASCII text without \u escapes has ASCII keys only; that spares walking the keys.
        if not (data.isascii() or (payload.isascii() and "\\u" not in payload)
                or _keys_are_ascii(value)):
            data = _jcs(hashed, MAX_NESTING + 1)
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
    """The `hash` column of an event with these fields (the keys of HASHED_FIELDS). TooDeep for
    a payload nested past MAX_NESTING (it sits one level down in the hashed object)."""
    return hashlib.sha256(canonical_json(hashed_object(**fields),
                                         max_depth=MAX_NESTING + 1)).hexdigest()
