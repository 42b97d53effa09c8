"""Small builders shared by the tests."""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from eventstore import NewEvent

T = TypeVar("T")
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1d7a52-0000-4000-8000-000000000000")


def event_id(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


def new_event(case_id: str, n: int, *, type: str = "CaseScoped",
              payload: dict[str, Any] | None = None, actor: str = "officer:siân.jones",
              schema_version: int = 1,
              at: datetime | None = None) -> NewEvent:
    """The n-th test event of a case: deterministic id, one minute apart."""
    return NewEvent(
        event_id=event_id(case_id, n, type),
        type=type,
        schema_version=schema_version,
        occurred_at=at or T0 + timedelta(minutes=n),
        actor=actor,
        payload=payload if payload is not None else {"scope": ["finance"], "n": n,
                                                     "note": "£4.2m \"gap\"\n"},
    )


def run_cli(argv: list[str]) -> int:
    """`cases …` in-process, on a thread of its own: `asyncio.run` there cannot disturb the
    event loop that pytest-asyncio keeps for the session's async fixtures."""
    from cli.main import run

    return in_thread(lambda: run(argv))


def in_thread(function: Callable[[], T]) -> T:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


def register_path() -> Path:
    """The real council register: CASES_REGISTER_CSV, else ../shared/data/ beside the project
    (the project does not commit a copy)."""
    configured = os.environ.get("CASES_REGISTER_CSV")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / (
        "uk_local_authorities_current.csv")
