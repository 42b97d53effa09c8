"""The hash rule: the stdlib and orjson fast paths must produce exactly RFC 8785's bytes."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.chain import (
    GENESIS_HASH,
    MAX_NESTING,
    MAX_SAFE_INTEGER,
    TooDeep,
    canonical_json,
    event_hash,
    format_time,
    parse_json,
    row_hash,
)

json_scalars = (st.none() | st.booleans()
                | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
                | st.text(st.characters(exclude_categories=["Cs"])))


def json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(json_values(st.text(st.characters(codec="ascii"), max_size=8)))
def test_ascii_keyed_json_is_canonical_by_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(json_values(st.text(st.characters(exclude_categories=["Cs"]), max_size=6)))
def test_any_keyed_json_is_canonical_by_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_keys_beyond_the_basic_plane_sort_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\uff61": 2}
    assert canonical_json(value) == rfc8785.dumps(value)
    text = canonical_json(value).decode()
    assert text.index("\U0001f600") < text.index("\uff61")


def test_times_are_written_in_utc_with_microseconds() -> None:
    london_summer = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 7, 1, 10, 0, tzinfo=london_summer)) == (
        "2026-07-01T09:00:00.000000Z")
    assert format_time(datetime(2026, 3, 2, 9, 30, 0, 5, tzinfo=UTC)) == (
        "2026-03-02T09:30:00.000005Z")
    with pytest.raises(ValueError, match="timezone"):
        format_time(datetime(2026, 3, 2))


# --- row_hash: the raw-row path that verify_all takes ----------------------------------------

ascii_keyed = json_values(st.text(st.characters(codec="ascii"), max_size=8))
any_keyed = json_values(st.text(st.characters(exclude_categories=["Cs"]), max_size=6))
tricky_text = st.sampled_from(["\u2028\u2029", "\x7f", "a/b", "\x00\x1f\x08\x0c", "\ufeff",
                               "\U0001f600", "\\u00e9", '"\\'])


@settings(max_examples=400, deadline=None)
@given(ascii_keyed)
def test_orjson_sorted_output_is_rfc8785_for_ascii_keys(value: Any) -> None:
    """The fact row_hash stands on: no floats, ASCII keys => orjson's bytes are JCS's."""
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == rfc8785.dumps(value)


@given(tricky_text)
def test_orjson_escapes_strings_as_rfc8785_does(text: str) -> None:
    assert orjson.dumps({text: text}) == rfc8785.dumps({text: text})


def stored_forms(payload: dict[str, Any]) -> list[str]:
    """The payload text as SQLAlchemy writes it (ASCII escapes), and as another writer might."""
    return [json.dumps(payload), json.dumps(payload, ensure_ascii=False),
            canonical_json(payload).decode()]


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
                               any_keyed, max_size=4),
       actor=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10),
       case_id=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10),
       version=st.integers(1, 10**6), schema_version=st.integers(1, 5))
def test_row_hash_equals_event_hash(payload: dict[str, Any], actor: str, case_id: str,
                                    version: int, schema_version: int) -> None:
    moment = datetime(2026, 3, 2, 9, 30, 0, 5, tzinfo=UTC)
    expected = event_hash(case_id=case_id, version=version, event_id="e", type="T",
                          schema_version=schema_version, occurred_at=moment, actor=actor,
                          payload=payload, prev_hash=GENESIS_HASH)
    for text in stored_forms(payload):
        assert row_hash(case_id, version, "e", "T", schema_version, format_time(moment), actor,
                        text, GENESIS_HASH) == expected


def test_row_hash_gives_the_brief_test_vector() -> None:
    payload = ('{"budget_gap_pence": 420000000, "council": "E06000001", '
               '"kind": "corporate_peer_challenge", "reason": "Budget gap of \\u00a34.2m '
               '\\"flagged\\" by the s151 officer\\n", "scope": ["finance", "governance"]}')
    assert row_hash("cpc-E06000001-2026", 1, "3f6f0c1e-6a3e-5c2a-9a57-1a0f4c6f2b10",
                    "CaseRequested", 1, "2026-03-02T09:30:00.000000Z", "officer:siân.jones",
                    payload, GENESIS_HASH) == (
        "a4225a32fce5148c2884b499ab1d9451f7dccf636a826fec0d06aaa9bc9d0774")


@pytest.mark.parametrize("payload", ["{", '{"n": NaN}', '{"n": 1e400}', '"\\ud800"', None, 3],
                         ids=["truncated", "nan", "infinite", "lone-surrogate", "null", "int"])
def test_row_hash_declines_what_orjson_cannot_read(payload: Any) -> None:
    assert row_hash("c", 1, "e", "T", 1, "2026-03-02T09:30:00.000000Z", "a", payload,
                    GENESIS_HASH) is None


def test_row_hash_serialises_a_column_as_what_it_holds() -> None:
    """A version stored as text (SQLite lets a tamperer) cannot hash as the integer did."""
    as_text: Any = "1"
    when = "2026-03-02T09:30:00.000000Z"
    assert (row_hash("c", 1, "e", "T", 1, when, "a", "{}", GENESIS_HASH)
            != row_hash("c", as_text, "e", "T", 1, when, "a", "{}", GENESIS_HASH))


# --- nesting: read and written with an explicit stack, never by recursion -------------------

def nested(levels: int) -> str:
    """A payload whose objects and arrays nest `levels` deep (the payload itself is level 1)."""
    return '{"a": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


@settings(max_examples=300, deadline=None)
@given(any_keyed, st.sampled_from([None, 0, 2]), st.booleans())
def test_parse_json_reads_what_json_reads(value: Any, indent: int | None, ascii_only: bool) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    assert parse_json(text) == json.loads(text)
    assert parse_json(f" \n\t{text}\r ") == json.loads(f" \n\t{text}\r ")


@pytest.mark.parametrize("text", ["", "{", "[1,]", '{"a":1,}', "[1 2]", '{"a" 1}', "{1: 2}",
                                  "[] []", '{"a":}', '"\\x"', "[01]", "nul", "[", '{"a"'])
def test_parse_json_refuses_what_json_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        parse_json(text)


def test_a_repeated_key_reads_as_json_reads_it() -> None:
    assert parse_json('{"a": 1, "a": 2}') == json.loads('{"a": 1, "a": 2}') == {"a": 2}


def test_nesting_up_to_the_limit_is_read_hashed_and_written_as_rfc8785_says() -> None:
    """1,000 levels: beyond the standard library's recursion here, within the explicit stack."""
    payload = parse_json(nested(MAX_NESTING))
    text = nested(MAX_NESTING).replace(" ", "").encode()
    assert canonical_json(payload) == text
    moment = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    fields = {"case_id": "c", "version": 1, "event_id": "e", "type": "T", "schema_version": 1,
              "actor": "a", "prev_hash": GENESIS_HASH}
    line = ('{"actor":"a","case_id":"c","event_id":"e","occurred_at":"2026-03-02T09:30:00.000000Z",'
            f'"payload":{text.decode()},"prev_hash":"{GENESIS_HASH}","schema_version":1,'
            '"type":"T","version":1}')
    assert event_hash(**fields, occurred_at=moment, payload=payload) == (
        hashlib.sha256(line.encode()).hexdigest())
    assert row_hash("c", 1, "e", "T", 1, format_time(moment), "a", nested(MAX_NESTING),
                    GENESIS_HASH) is None  # too deep for the fast path: read the slow way


@pytest.mark.parametrize("levels", [MAX_NESTING + 1, 5000, 100_000])
def test_nesting_past_the_limit_is_too_deep_not_a_recursion_error(levels: int) -> None:
    with pytest.raises(TooDeep, match=f"nested deeper than {MAX_NESTING} levels"):
        parse_json(nested(levels))
    deep: Any = []
    for _ in range(levels - 2):
        deep = [deep]
    payload = {"a": deep}
    with pytest.raises(TooDeep):
        canonical_json(payload)
    with pytest.raises(TooDeep):
        event_hash(case_id="c", version=1, event_id="e", type="T", schema_version=1,
                   occurred_at=datetime(2026, 3, 2, tzinfo=UTC), actor="a", payload=payload,
                   prev_hash=GENESIS_HASH)
    assert row_hash("c", 1, "e", "T", 1, "2026-03-02T00:00:00.000000Z", "a", nested(levels),
                    GENESIS_HASH) is None
