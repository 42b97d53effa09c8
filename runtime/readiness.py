"""Waiting for what a process needs (the database, Temporal) instead of failing at start-up.

A worker started while its database or Temporal is down waits with backoff, one log line per
attempt, and serves once they are back: nobody has to restart it by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

T = TypeVar("T")

BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Waits between attempts; the last repeats for as long as the outage lasts."""

log = structlog.get_logger("readiness")


def _one_line(failure: BaseException) -> str:
    said = str(failure).strip()
    return said.splitlines()[0] if said else type(failure).__name__


async def until_ready(what: str, attempt: Callable[[], Awaitable[T]],
                      transient: tuple[type[BaseException], ...],
                      backoff: tuple[float, ...] = BACKOFF_SECONDS,
                      shown: Callable[[BaseException], str] = _one_line) -> T:
    """`attempt()` until it succeeds; a `transient` failure waits and tries again, logging one
    line (`shown` says it without secrets); any other failure is raised at once."""
    tries = 0
    while True:
        try:
            result = await attempt()
        except transient as failure:
            wait = backoff[min(tries, len(backoff) - 1)]
            tries += 1
            log.warning(f"waiting for {what}", attempt=tries, retry_in_seconds=wait,
                        reason=shown(failure))
            await asyncio.sleep(wait)
            continue
        if tries:
            log.info(f"{what} is back", after_attempts=tries)
        return result
