"""The listening sockets of GATEWAY_WORKERS > 1 and how many workers the machine allows."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from gateway.workers import available_cores, bind


async def test_connections_accepted_on_a_worker_socket_have_nodelay() -> None:
    """Without TCP_NODELAY every reply waited for the client's delayed ACK (+~45 ms at p50):
    asyncio sets it only where the listening socket's proto is IPPROTO_TCP."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    reserved = bind("127.0.0.1", 0, listen=False)  # as the parent holds the port
    port = reserved.getsockname()[1]
    first = bind("127.0.0.1", port)  # the same port again (SO_REUSEPORT), as a worker does
    server = await asyncio.get_running_loop().create_server(Probe, sock=first)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(seen, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
        reserved.close()


def test_available_cores_reads_the_cgroup_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    affinity = len(os.sched_getaffinity(0))
    cpu_max.write_text("max 100000\n")
    assert available_cores(cpu_max) == affinity
    cpu_max.write_text("50000 100000\n")  # half a core (a Kubernetes limit of 500m): one
    assert available_cores(cpu_max) == 1
    cpu_max.write_text(f"{(affinity + 3) * 100000} 100000\n")  # a quota above the affinity
    assert available_cores(cpu_max) == affinity
    assert available_cores(tmp_path / "missing") == affinity
