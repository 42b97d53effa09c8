"""Events are read by the rules they were recorded under: text that today's input rules
refuse (a carriage return in a reason, a newline in a short field) still reads back from the
store, so no case recorded before a rule tightened becomes unreadable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain import events as ev
from domain.upcasting import parse_event


def test_a_stored_reason_with_a_carriage_return_still_reads() -> None:
    stored = parse_event("CaseWithdrawn", 1, {"reason": "Intervention\r\nfrom today"})
    assert isinstance(stored, ev.CaseWithdrawn)
    assert stored.reason == "Intervention\r\nfrom today"


def test_a_stored_short_field_with_a_newline_still_reads() -> None:
    stored = parse_event("PeerObjectedTo", 1, {"peer_id": "p1\n", "reason": "Conflict"})
    assert isinstance(stored, ev.PeerObjectedTo) and stored.peer_id == "p1\n"


def test_new_input_with_those_characters_is_refused() -> None:
    with pytest.raises(ValidationError, match="control character"):
        ev.CaseWithdrawn(reason="Intervention\rfrom today")
    with pytest.raises(ValidationError, match="control character"):
        ev.PeerObjectedTo(peer_id="p1\n", reason="Conflict")


def test_what_was_refused_then_is_refused_when_read_too() -> None:
    with pytest.raises(ValidationError, match="control character"):
        parse_event("CaseWithdrawn", 1, {"reason": "bell\x07"})
