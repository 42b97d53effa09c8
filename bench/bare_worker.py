"""The baseline's worker as a process of its own, as `cases-worker` is the engine's.

bench/journey.py starts one of these beside a `cases-worker`, so that neither side's worker
shares a process (and its one interpreter lock) with the clients that drive the cases.
Runs until SIGTERM or SIGINT, then finishes the tasks in hand.

    .venv/bin/python bench/bare_worker.py --address 127.0.0.1:7233 --task-queue Q \\
        --database-url sqlite:///cases.db
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from bare_workflow import build_bare_worker, create_table
from temporalio.client import Client

from eventstore import open_store
from runtime.converter import DATA_CONVERTER


async def serve(address: str, namespace: str, task_queue: str, database_url: str) -> None:
    store = open_store(database_url)  # its engine, as the engine's appends get it (pragmas)
    engine = store.engine
    create_table(engine)
    client = await Client.connect(address, namespace=namespace, data_converter=DATA_CONVERTER)
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stopping.set)
    async with build_bare_worker(client, engine, task_queue):
        await stopping.wait()
    store.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--address", required=True, help="the Temporal frontend, host:port")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.address, args.namespace, args.task_queue, args.database_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
