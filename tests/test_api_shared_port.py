"""`cases serve --processes N`: each process listens on the same port (SO_REUSEPORT), and its
connections send each small write at once (TCP_NODELAY), as a single server's do: without
it, an answer's body waited about 40 ms behind its headers (Nagle and delayed ACK)."""

from __future__ import annotations

import asyncio
import socket

from api.server import shared_socket


async def test_two_listeners_share_a_port_and_send_without_delay() -> None:
    first = shared_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = shared_socket("127.0.0.1", port)  # a second process's, on the same port
    nodelay: asyncio.Queue[int] = asyncio.Queue()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await nodelay.put(writer.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    servers = [await asyncio.start_server(answer, sock=s) for s in (first, second)]
    try:
        for _ in range(4):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(nodelay.get(), 5) == 1
            writer.close()
    finally:
        for server in servers:
            server.close()
