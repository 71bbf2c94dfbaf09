"""Reading TF Serving's Predict reply, and which client an embedder URL gets."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from fashionrec.tfserving.v1 import tfserving_pb2 as pb
from gateway.adapters.embedder import EmbedderClient
from gateway.adapters.embedder_grpc import EmbedderGrpcClient, grpc_target, vectors
from gateway.adapters.resilience import CallPolicy
from gateway.config import GatewaySettings
from gateway.errors import DependencyUnavailable
from gateway.wiring import build_embedder


def tensor(rows: int, dim: int, *, packed: bool) -> pb.TensorProto:
    values = np.arange(rows * dim, dtype=np.float32) / 7
    out = pb.TensorProto(dtype=pb.DT_FLOAT)
    for size in (rows, dim):
        out.tensor_shape.dim.add(size=size)
    if packed:
        out.tensor_content = values.astype("<f4").tobytes()  # what tf.make_tensor_proto makes
    else:
        out.float_val.extend(values.tolist())
    return out


@pytest.mark.parametrize("packed", [True, False])
def test_vectors_read_either_encoding(packed: bool) -> None:
    got = vectors(tensor(2, 3, packed=packed), rows=2)
    np.testing.assert_allclose(got, np.arange(6, dtype=np.float32).reshape(2, 3) / 7)


def test_a_reply_of_the_wrong_shape_or_type_is_the_embedders_fault() -> None:
    with pytest.raises(DependencyUnavailable, match="shape"):
        vectors(tensor(2, 3, packed=True), rows=1)
    truncated = tensor(2, 3, packed=True)
    truncated.tensor_content = truncated.tensor_content[:-4]
    with pytest.raises(DependencyUnavailable, match="shape"):
        vectors(truncated, rows=2)
    wrong = tensor(1, 3, packed=True)
    wrong.dtype = pb.DT_STRING
    with pytest.raises(DependencyUnavailable, match="DT_FLOAT"):
        vectors(wrong, rows=1)


async def test_the_url_scheme_picks_the_api() -> None:
    policy = CallPolicy()
    rest = build_embedder("http://embedder:8501", policy)
    over_grpc = build_embedder("grpc://embedder:8500", policy)
    assert isinstance(rest, EmbedderClient) and isinstance(over_grpc, EmbedderGrpcClient)
    assert grpc_target("grpc://embedder:8500/") == "embedder:8500"
    with pytest.raises(ValueError, match="grpc://host:port"):
        grpc_target("grpc://embedder:8500/v1")
    await rest.close()
    await over_grpc.close()


@pytest.mark.parametrize("url", ["embedder:8500", "ftp://embedder", "grpc://"])
def test_an_embedder_url_without_a_known_scheme_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="embedder_url"):
        GatewaySettings(embedder_url=url, dev=True)
