"""Keep the read models current beside a worker: a loop that applies new events as they come.

Every worker runs one. They poll the read models' position against the store's newest event
(one SELECT) every CASES_PROJECTION_INTERVAL seconds (default 0.2) and apply what is new in
batches; several workers' loops queue on the projection's lock and never apply an event twice
(eventstore/projections.py). A projection that stops on a gap or a broken link is logged once
and polled again slowly, so a rebuild after the store is mended picks it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping

import structlog
from sqlalchemy.exc import SQLAlchemyError

from domain.policies import PolicyBook
from eventstore import EventStore
from eventstore.config import failure_said
from eventstore.projections import ProjectionBroken, Projector, status

log = structlog.get_logger("projections")
DEFAULT_INTERVAL = 0.2
STOPPED_INTERVAL = 30.0
"""How often a stopped projection looks again, in seconds."""


def interval_from_environment(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    text = env.get("CASES_PROJECTION_INTERVAL", "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"CASES_PROJECTION_INTERVAL={text!r}: expected seconds, like 0.2"
                         ) from None
    if not 0.01 <= seconds <= 60:
        raise ValueError(f"CASES_PROJECTION_INTERVAL={text!r}: expected 0.01 to 60 seconds")
    return seconds


async def project(store: EventStore, stopping: asyncio.Event, *,
                  book: PolicyBook | None = None, interval: float | None = None) -> None:
    """Until `stopping` is set: apply the events the read models have not seen."""
    projector = Projector(store, book)
    every = interval_from_environment() if interval is None else interval
    said: str | None = None
    while not stopping.is_set():
        wait = every
        try:
            current = await asyncio.to_thread(status, store.engine)
            if current.problem is not None:
                raise ProjectionBroken(current.problem)
            if current.behind:
                applied = await asyncio.to_thread(projector.catch_up)
                if applied:
                    log.debug("read models caught up", events=applied)
            said = None
        except ProjectionBroken as broken:
            if said != str(broken):
                log.error("read models stopped: run `cases verify`, then `cases projections "
                          "rebuild`; nothing is served from them meanwhile", problem=str(broken))
                said = str(broken)
            wait = STOPPED_INTERVAL
        except SQLAlchemyError as failure:
            problem = failure_said(failure)
            if said != problem:
                log.warning("read models wait for the database", problem=problem)
                said = problem
            wait = max(every, 2.0)
        except Exception as failure:  # the loop outlives any one failure
            first_line = str(failure).splitlines()[0] if str(failure) else ""
            problem = f"{type(failure).__name__}: {first_line}"
            if said != problem:
                log.error("read models could not be projected; trying again", problem=problem)
                said = problem
            wait = STOPPED_INTERVAL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=wait)


@contextlib.asynccontextmanager
async def projecting(store: EventStore, book: PolicyBook | None = None,
                     interval: float | None = None) -> AsyncIterator[None]:
    """Run `project` beside the caller for the duration of the block."""
    stopping = asyncio.Event()
    task = asyncio.create_task(project(store, stopping, book=book, interval=interval))
    try:
        yield
    finally:
        stopping.set()
        await task
