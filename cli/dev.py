"""`cases dev`: the dev server and a worker in one process tree; Ctrl-C stops both cleanly."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from cli.dev_server import dev_server
from domain.policies import PolicyBook
from eventstore import open_store
from worker import build_worker

log = structlog.get_logger("dev")


async def run_dev(port: int, db_file: Path, ui: bool) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    store = open_store()
    store.migrate()
    async with dev_server(port, db_file, ui) as client, build_worker(client, store, policies=PolicyBook(demo_mode=True)):
        log.info("ready: dev server and worker running; Ctrl-C stops both",
                 address=f"127.0.0.1:{port}", ui=f"http://127.0.0.1:{port + 1000}" if ui
                 else None, database=store.engine.url.render_as_string(hide_password=True))
        await stopping.wait()
        log.info("stopping")
    store.dispose()
    log.info("stopped")
    return 0
