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


def shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket on a port that other processes of the same service also listen on
    (SO_REUSEPORT: the kernel shares the incoming connections out among them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, as asyncio's own listening sockets are: it sets TCP_NODELAY only on sockets
    # whose protocol says TCP, and without it each answer's body waits ~40 ms behind its headers
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listening.bind((host, port))
    listening.listen(2048)
    listening.setblocking(False)
    return listening


@contextlib.asynccontextmanager
async def serving(app: FastAPI, host: str, port: int, *,
                  shared: bool = False) -> AsyncIterator[str]:
    """Serve `app` for the duration of the block; yields its base URL once it listens.
    `shared`: one of several processes on the port (`cases serve --processes`), whose parent
    has checked that the port was free."""
    if not shared:
        check_port_free(host, port)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[shared_socket(host, port)] if shared
                                            else None))
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
