"""Thin gRPC adapter: TF Serving's PredictionService and ModelService over the DataPlane."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from embedder_server.adapters.servable import Servable
from embedder_server.domain.dataplane import DataPlane, ModelRef
from embedder_server.domain.model_config import configs_from_server_config
from embedder_server.errors import Code, ServingError, grpc_status, invalid

log = logging.getLogger(__name__)

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


def model_ref(spec: Any, *, required: bool = True) -> ModelRef:
    """ModelSpec -> ModelRef (version and version_label are a oneof)."""
    choice = spec.WhichOneof("version_choice")
    return ModelRef(
        name=spec.name,
        version=spec.version.value if choice == "version" else None,
        label=spec.version_label if choice == "version_label" else None,
        signature_name=spec.signature_name,
    )


def _aborting(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Turn ServingError into the matching gRPC status, once for every method."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except ServingError as exc:
            await context.abort(grpc_status(exc.code), exc.message)

    return wrapper


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, plane: DataPlane) -> None:
        self._plane = plane

    @_aborting
    async def Predict(self, request, context):  # noqa: N802 - gRPC method name
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        ref = model_ref(request.model_spec)
        inputs: dict[str, np.ndarray] = {}
        for alias, proto in request.inputs.items():
            try:
                inputs[alias] = np.asarray(tf.make_ndarray(proto))
            except Exception as exc:  # noqa: BLE001 - any parse failure is the client's
                raise invalid(f"tensor parsing error: {alias}") from exc
        result = await self._plane.predict(
            ref,
            inputs,
            list(request.output_filter),
            timeout_s=context.time_remaining(),
            api="grpc",
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = ref.name
        response.model_spec.version.value = result.servable.version
        response.model_spec.signature_name = result.signature_name
        for alias, value in result.outputs.items():
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    @_aborting
    async def GetModelMetadata(self, request, context):  # noqa: N802
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        ref = model_ref(request.model_spec)
        return metadata_response(self._plane.metadata(ref, list(request.metadata_field)))


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, plane: DataPlane) -> None:
        self._plane = plane

    @_aborting
    async def GetModelStatus(self, request, context):  # noqa: N802
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        return status_response(self._plane, model_ref(request.model_spec))

    @_aborting
    async def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        response = model_management_pb2.ReloadConfigResponse()
        self._plane.require_model_management()  # a gRPC status, not a response status
        try:
            configs = configs_from_server_config(request.config)
            await self._plane.reload_config(configs)
        except ServingError as exc:
            response.status.error_code = int(exc.code)
            response.status.error_message = exc.message
        return response


def metadata_response(servable: Servable) -> Any:
    """GetModelMetadataResponse with the ``signature_def`` field (the only one TF Serving has)."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    for key, sig in servable.signature_defs.items():
        sig_map.signature_def[key].CopyFrom(sig)
    response.metadata["signature_def"].Pack(sig_map)
    return response


def status_response(plane: DataPlane, ref: ModelRef) -> Any:
    """GetModelStatusResponse for a ref (shared with REST, which renders it as JSON)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, status in plane.manager.status(ref.name, ref.version, ref.label):
        entry = response.model_version_status.add()
        entry.version = version
        entry.state = int(status.state)
        entry.status.SetInParent()  # TF Serving always reports the status, OK included
        if status.error:
            entry.status.error_code = int(Code.UNKNOWN)
            entry.status.error_message = status.error
    return response


def add_servicers(server: grpc.aio.Server, plane: DataPlane) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(plane), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(plane), server)
