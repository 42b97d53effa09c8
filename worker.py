"""cases-worker: runs the case workflow and its activities. Configuration from the environment:
Temporal's own variables (TEMPORAL_ADDRESS, …) and CASES_DATABASE_URL for the store.

Sizing, also from the environment (see BENCHMARKS.md, "Deadline lapses under load"):
CASES_MAX_CACHED_WORKFLOWS (default 10,000) must exceed the open cases one worker carries, or
every deadline lapse becomes a cache miss that replays the whole history and lapses queue for
minutes; CASES_WORKFLOW_TASK_POLLERS (default 5) helps bursts of lapses due at one instant.

Observability (runtime/telemetry.py, docs/observability.md): CASES_METRICS_PORT serves
Prometheus metrics, the SDK's and the engine's; CASES_TRACING switches on OpenTelemetry spans.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import structlog
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.worker import Worker

from activities.opening_activities import OpeningActivities
from activities.peer_activities import PeerSelectionActivities
from activities.store_activities import StoreActivities
from application.setup import NamespaceNotReady, require_search_attributes
from domain.policies import PolicyBook
from eventstore import EventStore, open_store
from eventstore.config import failure_said
from eventstore.errors import UnsupportedDatabase
from eventstore.migrate import SchemaNotCurrent
from notices.relay import lease_from_environment, relaying
from notices.settings import MailSettings, MailSettingsError
from runtime import logging as case_logging
from runtime import telemetry
from runtime.process import exit_now
from runtime.projecting import interval_from_environment, projecting
from runtime.readiness import until_ready
from runtime.temporal import TemporalUnreachable, connect, connect_options
from runtime.workflow_code import compile_once
from workflows.checkpoints import RecordCheckpoint
from workflows.improvement_case import ImprovementCase
from workflows.messages import TASK_QUEUE

log = structlog.get_logger("worker")

DEFAULT_MAX_CACHED_WORKFLOWS = 10_000
DEFAULT_WORKFLOW_TASK_POLLERS = 5


class WorkerSizing(NamedTuple):
    """How many cases a worker keeps in memory, and how many workflow-task polls it keeps open."""

    max_cached_workflows: int = DEFAULT_MAX_CACHED_WORKFLOWS
    workflow_task_pollers: int = DEFAULT_WORKFLOW_TASK_POLLERS

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WorkerSizing:
        """Read CASES_MAX_CACHED_WORKFLOWS and CASES_WORKFLOW_TASK_POLLERS; a bad value is a
        clear ValueError naming the variable, never a silent default."""
        env = os.environ if environ is None else environ
        return cls(_positive(env, "CASES_MAX_CACHED_WORKFLOWS", DEFAULT_MAX_CACHED_WORKFLOWS),
                   _positive(env, "CASES_WORKFLOW_TASK_POLLERS", DEFAULT_WORKFLOW_TASK_POLLERS))


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise ValueError(f"{name}={raw!r}: must be 1 or more")
    return value


def policies_from_environment(environ: Mapping[str, str] | None = None) -> PolicyBook:
    """The standard policy; demo deadlines too when CASES_DEMO_MODE=1 (never in production)."""
    env = os.environ if environ is None else environ
    return PolicyBook(demo_mode=env.get("CASES_DEMO_MODE", "").strip() == "1")


def build_worker(client: Client, store: EventStore, task_queue: str = TASK_QUEUE,
                 sizing: WorkerSizing | None = None,
                 policies: PolicyBook | None = None) -> Worker:
    """The worker for `task_queue`, appending to `store`, sized from the environment unless
    `sizing` is given, opening cases by `policies` (from the environment unless given)."""
    activities = StoreActivities(store)
    selection = PeerSelectionActivities(store)
    opening = OpeningActivities(store, policies or policies_from_environment())
    sizing = WorkerSizing.from_environment() if sizing is None else sizing
    compile_once(ImprovementCase.__module__, RecordCheckpoint.__module__)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ImprovementCase, RecordCheckpoint],
        activities=[activities.append_events, activities.load_case, activities.record_checkpoint,
                    selection.select_peer_team, opening.check_opening],
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
        max_cached_workflows=sizing.max_cached_workflows,
        max_concurrent_workflow_task_polls=sizing.workflow_task_pollers,
    )


async def ready() -> tuple[EventStore, Client]:
    """The store and a Temporal client, waiting for each while it is down; refused at once
    (NotReady) when the schema is not the newest or the namespace lacks the search
    attributes: those wait for an operator, not for time."""
    store = open_store()

    async def schema_checked() -> None:
        await asyncio.to_thread(store.require_newest_schema)

    await until_ready("the database", schema_checked, (SQLAlchemyError,), shown=failure_said)
    client = await until_ready("Temporal", connect, (TemporalUnreachable,))
    await require_search_attributes(client, str(connect_options().get("target_host")))
    return store, client


async def run(task_queue: str = TASK_QUEUE, sizing: WorkerSizing | None = None,
              mail: MailSettings | None = None) -> None:
    """Serve the task queue, and relay the outbox's notices to `mail`'s server, until
    SIGINT or SIGTERM."""
    sizing = WorkerSizing.from_environment() if sizing is None else sizing
    store, client = await ready()
    log.info("worker starting", task_queue=task_queue, namespace=client.namespace,
             database=store.engine.url.render_as_string(hide_password=True),
             **sizing._asdict())
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    async with (build_worker(client, store, task_queue, sizing), relaying(store, mail),
                projecting(store, policies_from_environment()), telemetry.observing(store)):
        await stopping.wait()
        log.info("worker stopping: finishing the tasks in hand")
    store.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cases-worker", description=__doc__)
    parser.add_argument("--log-format", choices=["console", "json"], default="console")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args(argv)
    try:
        sizing = WorkerSizing.from_environment()
        mail = MailSettings.from_environment()
        lease_from_environment()
        interval_from_environment()
        telemetry.start_telemetry(telemetry.telemetry_from_environment())  # binds the port
    except (ValueError, MailSettingsError) as bad:
        print(f"cases-worker: {bad}; nothing was started", file=sys.stderr)
        exit_now(2)
    case_logging.configure(args.log_format)
    try:
        asyncio.run(run(args.task_queue, sizing, mail))
    except KeyboardInterrupt:
        log.info("worker stopped")
    except (SchemaNotCurrent, NamespaceNotReady, UnsupportedDatabase) as not_ready:
        print(f"cases-worker: {not_ready}", file=sys.stderr)
        exit_now(1)
    exit_now(0)


if __name__ == "__main__":
    main()
