"""Serving the API with uvicorn inside our own event loop, beside a worker (`cases dev`) or
alone (`cases serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI


class PortInUse(RuntimeError):
    pass


def check_port_free(host: str, port: int, option: str = "--web-port") -> None:
    """Refuse at once, naming the port and the option that chooses it, rather than report
    ready and serve nothing."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(f"port {port} on {host} is in use: stop what holds it, or choose "
                            f"another with {option}") from None


@contextlib.asynccontextmanager
async def serving(app: FastAPI, host: str, port: int) -> AsyncIterator[str]:
    """Serve `app` for the duration of the block; yields its base URL once it listens."""
    check_port_free(host, port)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it stopped
                raise PortInUse(f"the API could not listen on {host}:{port}")
            await asyncio.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
