"""cases-worker: runs the case workflow and its activities. Configuration from the environment:
Temporal's own variables (TEMPORAL_ADDRESS, …) and CASES_DATABASE_URL for the store."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import signal
from collections.abc import Sequence

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.store_activities import StoreActivities
from eventstore import EventStore, open_store
from runtime import logging as case_logging
from runtime.process import exit_now
from runtime.temporal import connect
from workflows.checkpoints import RecordCheckpoint
from workflows.improvement_case import ImprovementCase
from workflows.messages import TASK_QUEUE

log = structlog.get_logger("worker")


def build_worker(client: Client, store: EventStore, task_queue: str = TASK_QUEUE) -> Worker:
    """The worker for `task_queue`, appending to `store`."""
    activities = StoreActivities(store)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ImprovementCase, RecordCheckpoint],
        activities=[activities.append_events, activities.record_checkpoint],
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
    )


async def run(task_queue: str = TASK_QUEUE) -> None:
    store = open_store()
    store.migrate()
    client = await connect()
    log.info("worker starting", task_queue=task_queue, namespace=client.namespace,
             database=store.engine.url.render_as_string(hide_password=True))
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    async with build_worker(client, store, task_queue):
        await stopping.wait()
        log.info("worker stopping: finishing the tasks in hand")
    store.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cases-worker", description=__doc__)
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args(argv)
    case_logging.configure(args.log_format)
    try:
        asyncio.run(run(args.task_queue))
    except KeyboardInterrupt:
        log.info("worker stopped")
    exit_now(0)


if __name__ == "__main__":
    main()
