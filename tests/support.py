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


# --- the test server's terms ----------------------------------------------------------------

def _test_policies() -> Any:
    from datetime import timedelta as days_or_hours

    from domain.deadlines import DeadlinePolicy, DeadlineRules
    from domain.peers import SelectionRules
    from domain.policies import STANDARD, PolicyBook
    from domain.vocabulary import CaseKind

    short = DeadlineRules(
        factual_accuracy_check=days_or_hours(hours=2), report_publication=days_or_hours(days=1),
        action_plan_publication=days_or_hours(days=10), progress_review=days_or_hours(days=20),
        progress_review_publication=days_or_hours(days=30),
        escalation_interval=days_or_hours(hours=6))
    return PolicyBook(
        named={STANDARD: DeadlinePolicy(),
               "short-hours": DeadlinePolicy(by_kind={CaseKind.CORPORATE_PEER_CHALLENGE: short}),
               "far-peers": DeadlinePolicy(),
               "short-reminded": DeadlinePolicy(by_kind={CaseKind.CORPORATE_PEER_CHALLENGE: (
                   short.model_copy(update={"reminders": (days_or_hours(hours=12),
                                                          days_or_hours(hours=2))}))})},
        selection_rules={"far-peers": SelectionRules(min_distance_km=2000)},
        demo_mode=True)


TEST_POLICIES = _test_policies()
"""The policies of the tests' workers: the standard one, demo deadlines, and a few of the
tests' own (a server's named policies are its operator's to choose)."""


def register_council(store: Any, gss_code: str) -> str:
    """Put a made-up council in the store's register (a case opens only for a council in
    it); returns its code."""
    from domain.councils import Council
    from eventstore.councils import import_councils, known_councils

    if gss_code not in known_councils(store):
        import_councils(store, [Council(gss_code=gss_code, code="TST", name=f"Test {gss_code}",
                                        short_name=f"Test {gss_code}", type="UA",
                                        nation="England")])
    return gss_code
