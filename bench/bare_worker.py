"""The baseline's worker as a process of its own, as `cases-worker` is the engine's.

bench/journey.py starts one of these beside a `cases-worker`, so that neither side's worker
shares a process (and its one interpreter lock) with the clients that drive the cases. Configured
from the environment as `cases-worker` is (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, …, and
CASES_DATABASE_URL for the database of its table). Runs until SIGTERM or SIGINT, then finishes
the tasks in hand.

    TEMPORAL_ADDRESS=127.0.0.1:7233 CASES_DATABASE_URL=sqlite:///cases.db \\
        .venv/bin/python bench/bare_worker.py --task-queue Q
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from bare_workflow import build_bare_worker, create_table

from eventstore import open_store
from runtime.temporal import connect


async def serve(task_queue: str) -> None:
    store = open_store()  # its engine, as the engine's appends get theirs (pragmas)
    create_table(store.engine)
    client = await connect()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    async with build_bare_worker(client, store.engine, task_queue):
        await stopping.wait()
    store.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.task_queue))
    return 0


if __name__ == "__main__":
    sys.exit(main())
