"""The gateway's two embedder clients (TF Serving REST and gRPC) against our embedder server:
same vectors, same version, same errors, so ``GATEWAY_EMBEDDER_URL`` may name either."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from fashionrec_testing.supervisor import free_port
from fashionrec_testing.system import LocalSystem
from gateway.adapters.resilience import CallPolicy
from gateway.errors import DependencyUnavailable, InvalidInput, NotFound
from gateway.wiring import build_embedder

from .conftest import image

pytestmark = pytest.mark.integration


@pytest.fixture
async def clients(embedder_url: str, system: LocalSystem) -> AsyncIterator[dict]:
    policy = CallPolicy(timeout_s=30.0, retries=0)
    made = {
        "rest": build_embedder(embedder_url, policy),
        "grpc": build_embedder(f"grpc://{system.address('embedder')}", policy),
    }
    yield made
    for client in made.values():
        await client.close()


async def test_rest_and_grpc_give_the_same_vectors_and_version(clients) -> None:
    images = [image(1), image(2), image(3)]
    rest = np.asarray(await clients["rest"].embed("infogan", images))
    over_grpc = np.asarray(await clients["grpc"].embed("infogan", images))
    assert rest.shape == over_grpc.shape == (3, 16)
    np.testing.assert_allclose(over_grpc, rest, rtol=1e-6, atol=1e-6)
    assert not np.allclose(over_grpc[0], over_grpc[1])  # three photos, three vectors
    assert await clients["grpc"].model_version("infogan") == "1"
    assert await clients["grpc"].model_version("mobilenet_v2") == "1"
    assert len((await clients["grpc"].embed("mobilenet_v2", images[:1]))[0]) == 12


@pytest.mark.parametrize("transport", ["rest", "grpc"])
async def test_errors_map_the_same_way(clients, transport: str) -> None:
    client = clients[transport]
    with pytest.raises(NotFound, match="^embedder: .*nope"):
        await client.embed("nope", [image(1)])
    with pytest.raises(NotFound):
        await client.check("nope")
    with pytest.raises(InvalidInput, match="^embedder rejected the input"):
        await client.embed("infogan", [b"not an image at all"])
    assert len(await client.embed("infogan", [image(4)])) == 1  # still serving


async def test_grpc_embedder_down_is_a_dependency_error() -> None:
    policy = CallPolicy(timeout_s=2.0, retries=1)
    client = build_embedder(f"grpc://127.0.0.1:{free_port()}", policy)
    with pytest.raises(DependencyUnavailable, match="embedder"):
        await client.embed("infogan", [image(1)])
    with pytest.raises(DependencyUnavailable, match="embedder"):
        await client.check("infogan")
    await client.close()
