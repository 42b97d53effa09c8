"""What the store refuses before writing: the contract's shape, checked once, at the door."""

from __future__ import annotations

import uuid
from typing import Any

from eventstore.chain import MAX_SAFE_INTEGER
from eventstore.errors import InvalidEvent
from eventstore.records import NewEvent


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidEvent(f"{where}: integer {value} is outside ±(2**53-1)")
        return
    if isinstance(value, float):
        raise InvalidEvent(f"{where}: floats are not allowed (store money in pence)")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidEvent(f"{where}: text is not valid Unicode") from error
        if "\x00" in value:
            raise InvalidEvent(f"{where}: text contains a NUL character")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEvent(f"{where}: object key {key!r} is not text")
            _check_json(key, f"{where} key")
            _check_json(item, f"{where}.{key}")
        return
    raise InvalidEvent(f"{where}: {type(value).__name__} is not JSON")


def check_case_id(case_id: str) -> None:
    if not case_id or len(case_id) > 100 or not case_id.isprintable() or case_id.strip() != case_id:
        raise InvalidEvent(f"case id {case_id!r} must be 1 to 100 printable characters")


def check_new_event(event: NewEvent) -> None:
    try:
        canonical = str(uuid.UUID(event.event_id))
    except (ValueError, AttributeError, TypeError) as error:
        raise InvalidEvent(f"event id {event.event_id!r} is not a UUID") from error
    if canonical != event.event_id:
        raise InvalidEvent(f"event id {event.event_id!r} must be a lowercase hyphenated UUID")
    if event.occurred_at.tzinfo is None:
        raise InvalidEvent(f"event {event.event_id}: occurred_at must carry a timezone")
    if not event.type or len(event.type) > 100:
        raise InvalidEvent(f"event {event.event_id}: type must be 1 to 100 characters")
    if not event.actor or len(event.actor) > 200:
        raise InvalidEvent(f"event {event.event_id}: actor must be 1 to 200 characters")
    if event.schema_version < 1:
        raise InvalidEvent(f"event {event.event_id}: schema_version must be 1 or more")
    if not isinstance(event.payload, dict):
        raise InvalidEvent(f"event {event.event_id}: payload must be a JSON object")
    _check_json(event.payload, f"event {event.event_id} payload")
