"""The hash rule: the stdlib fast path must produce exactly RFC 8785's bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.chain import MAX_SAFE_INTEGER, canonical_json, format_time

json_scalars = (st.none() | st.booleans()
                | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
                | st.text(st.characters(exclude_categories=["Cs"])))


def json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=20)


@settings(max_examples=400)
@given(json_values(st.text(st.characters(codec="ascii"), max_size=8)))
def test_ascii_keyed_json_is_canonical_by_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=200)
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
