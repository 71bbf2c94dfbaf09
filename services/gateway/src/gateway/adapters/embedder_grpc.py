"""The embedder through TF Serving's gRPC API (real TF Serving or our server, port 8500).

Why beside the REST client: REST wraps every upload in base64 inside JSON and brings the
vector back as JSON numbers, which costs the gateway about 2 ms of CPU per search here
(docs/benchmarks.md); gRPC carries the JPEG bytes in a DT_STRING tensor and the vector as
packed float32. The messages are a wire-compatible subset of TF Serving's
(proto/fashionrec/tfserving/v1), so the gateway needs no tensorflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from fashionrec.tfserving.v1 import tfserving_pb2 as pb
from fashionrec_common.grpc_auth import ClientTls
from gateway.adapters.embedder import DEFAULT_POLICY, VERSION_TTL_S, TfServingClient
from gateway.adapters.grpc_channel import channel
from gateway.adapters.grpc_errors import raise_for_status
from gateway.adapters.resilience import CallPolicy, call
from gateway.errors import DependencyUnavailable

PREDICT = "/tensorflow.serving.PredictionService/Predict"
MODEL_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"
# The export contract of every servable (embedder.servable INPUT_KEY / OUTPUT_KEY).
INPUT, OUTPUT, SIGNATURE = "images", "embedding", "serving_default"


def grpc_target(url: str) -> str:
    """``grpc://host:port`` -> ``host:port``."""
    target = url.removeprefix("grpc://").rstrip("/")
    if not target or "/" in target:
        raise ValueError(f"expected grpc://host:port, got {url!r}")
    return target


def vectors(tensor: pb.TensorProto, rows: int) -> list[list[float]]:
    """A DT_FLOAT [rows, dim] tensor, in ``tensor_content`` (what TF makes) or ``float_val``."""
    if tensor.dtype != pb.DT_FLOAT:
        raise DependencyUnavailable("embedder", f"embedding dtype {tensor.dtype}, not DT_FLOAT")
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.tensor_content:
        flat = np.frombuffer(tensor.tensor_content, dtype="<f4")
    else:
        flat = np.asarray(tensor.float_val, dtype=np.float32)
    if len(shape) != 2 or shape[0] != rows or flat.size != shape[0] * shape[1]:
        raise DependencyUnavailable("embedder", f"malformed embedding of shape {shape}")
    return flat.reshape(shape).tolist()


def predict_request(model: str, images: Sequence[bytes]) -> pb.PredictRequest:
    """The encoded images as one DT_STRING tensor [len(images)]; only the embedding back."""
    request = pb.PredictRequest(
        model_spec=pb.ModelSpec(name=model, signature_name=SIGNATURE), output_filter=[OUTPUT]
    )
    tensor = request.inputs[INPUT]
    tensor.dtype = pb.DT_STRING
    tensor.tensor_shape.dim.add(size=len(images))
    tensor.string_val.extend(images)
    return request


class EmbedderGrpcClient(TfServingClient):
    """TF Serving's gRPC API; the same contract as the REST ``EmbedderClient``. With ``tls``
    the channel is TLS (TF Serving's ``--ssl_config_file``; mTLS with a client certificate)."""

    def __init__(
        self,
        url: str,
        *,
        policy: CallPolicy = DEFAULT_POLICY,
        version_ttl_s: float = VERSION_TTL_S,
        tls: ClientTls | None = None,
    ) -> None:
        self.channel = channel(grpc_target(url), tls)
        self._predict_rpc = self.channel.unary_unary(
            PREDICT,
            request_serializer=pb.PredictRequest.SerializeToString,
            response_deserializer=pb.PredictResponse.FromString,
        )
        self._status = self.channel.unary_unary(
            MODEL_STATUS,
            request_serializer=pb.GetModelStatusRequest.SerializeToString,
            response_deserializer=pb.GetModelStatusResponse.FromString,
        )
        super().__init__(policy, version_ttl_s)

    async def close(self) -> None:
        await self._stop_refreshes()
        await self.channel.close()

    async def _rpc(self, method: Any, request: Any, deadline_s: float) -> Any:
        async def attempt(left: float) -> Any:
            try:
                return await method(request, timeout=left)
            except grpc.aio.AioRpcError as exc:
                raise_for_status(
                    exc,
                    "embedder",
                    not_found_prefix="embedder: ",
                    invalid_prefix="embedder rejected the input: ",
                )

        return await call(self.breaker, attempt, deadline_s=deadline_s, retries=self.retries)

    async def _available_versions(self, model: str) -> list[int]:
        request = pb.GetModelStatusRequest(model_spec=pb.ModelSpec(name=model))
        reply = await self._rpc(self._status, request, min(self.timeout_s, 2.0))
        available = pb.ModelVersionStatus.AVAILABLE
        return [s.version for s in reply.model_version_status if s.state == available]

    async def _predict(self, model: str, images: Sequence[bytes]) -> list[list[float]]:
        reply = await self._rpc(self._predict_rpc, predict_request(model, images), self.timeout_s)
        if OUTPUT not in reply.outputs:
            raise DependencyUnavailable("embedder", f"no {OUTPUT!r} output in the reply")
        return vectors(reply.outputs[OUTPUT], len(images))
