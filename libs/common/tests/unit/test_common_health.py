import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fashionrec_common.grpc_server import build_server
from fashionrec_common.health import NOT_SERVING, SERVING, Readiness


async def test_readiness_reports_each_failing_check():
    async def ok() -> None:
        return None

    async def down() -> None:
        raise ConnectionError("refused")

    async def slow() -> None:
        await asyncio.sleep(5)

    readiness = Readiness(timeout_s=0.05)
    readiness.add("cache", ok)
    readiness.add("db", down)
    readiness.add("embedder", slow)
    ready, report = await readiness.run()
    assert not ready
    assert report == {"cache": "ok", "db": "ConnectionError: refused", "embedder": "TimeoutError"}


async def test_readiness_all_ok():
    async def ok() -> None:
        return None

    readiness = Readiness()
    readiness.add("a", ok)
    assert await readiness.run() == (True, {"a": "ok"})


@pytest.mark.integration
async def test_grpc_server_has_health_and_reflection():
    server, health = build_server(["demo.Service"])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await health.set("demo.Service", NOT_SERVING)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service="demo.Service"))
            assert reply.status == NOT_SERVING
            await health.set("demo.Service", SERVING)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service="demo.Service"))
            assert reply.status == SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Check(health_pb2.HealthCheckRequest(service="unknown"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await server.stop(0)
