"""Conformance over gRPC, driven by the tensorflow-serving-api stubs, as any TF Serving client."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from grpc_health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from grpc_health.v1.health_pb2_grpc import HealthStub
from tensorflow_serving.apis.get_model_metadata_pb2 import GetModelMetadataRequest, SignatureDefMap
from tensorflow_serving.apis.get_model_status_pb2 import GetModelStatusRequest, ModelVersionStatus
from tensorflow_serving.apis.model_management_pb2 import ReloadConfigRequest
from tensorflow_serving.apis.model_service_pb2_grpc import ModelServiceStub
from tensorflow_serving.apis.predict_pb2 import PredictRequest
from tensorflow_serving.apis.prediction_service_pb2_grpc import PredictionServiceStub
from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

from fashionrec_testing.toy_model import png_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def channel(server):  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(server.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def predict_stub(channel):  # type: ignore[no-untyped-def]
    return PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_stub(channel):  # type: ignore[no-untyped-def]
    return ModelServiceStub(channel)


def request(
    name: str = "alpha",
    *,
    version: int | None = None,
    label: str | None = None,
    signature: str = "serving_default",
    images: list[bytes] | None = None,
) -> PredictRequest:
    req = PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = signature
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    data = images if images is not None else [png_bytes(1), png_bytes(2)]
    req.inputs["images"].CopyFrom(tf.make_tensor_proto(data))
    return req


def expect_error(call, req, code: grpc.StatusCode, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call(req, timeout=10)
    assert info.value.code() == code, info.value.details()
    assert text in info.value.details()


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_predict_latest_returns_normalised_embeddings(predict_stub, name) -> None:
    resp = predict_stub.Predict(request(name), timeout=10)
    emb = tf.make_ndarray(resp.outputs["embedding"])
    assert emb.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-4)
    assert resp.model_spec.name == name
    assert resp.model_spec.version.value == 2
    assert resp.model_spec.signature_name == "serving_default"


def test_versions_and_labels_select_different_servables(predict_stub) -> None:
    v1 = predict_stub.Predict(request(version=1), timeout=10)
    v2 = predict_stub.Predict(request(version=2), timeout=10)
    stable = predict_stub.Predict(request(label="stable"), timeout=10)
    canary = predict_stub.Predict(request(label="canary"), timeout=10)
    assert stable.model_spec.version.value == 1
    assert canary.model_spec.version.value == 2
    e1, e2 = (tf.make_ndarray(r.outputs["embedding"]) for r in (v1, v2))
    assert not np.allclose(e1, e2)
    np.testing.assert_allclose(tf.make_ndarray(stable.outputs["embedding"]), e1, rtol=1e-5)


def test_output_filter_returns_only_requested_outputs(predict_stub) -> None:
    req = PredictRequest()
    req.model_spec.name = "alpha"
    req.model_spec.signature_name = "pixels"
    req.inputs["pixels"].CopyFrom(tf.make_tensor_proto(np.full((3, 5, 5, 3), 2.0, np.float32)))
    full = predict_stub.Predict(req, timeout=10)
    assert set(full.outputs) == {"embedding", "mean"}
    req.output_filter.append("mean")
    only = predict_stub.Predict(req, timeout=10)
    assert set(only.outputs) == {"mean"}
    np.testing.assert_allclose(tf.make_ndarray(only.outputs["mean"]), [2.0, 2.0, 2.0])
    req.output_filter[:] = ["nope"]
    expect_error(
        predict_stub.Predict, req, grpc.StatusCode.INVALID_ARGUMENT,
        "output tensor alias not found in signature: nope",
    )  # fmt: skip


NOT_FOUND, INVALID = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT
NO_SIG = grpc.StatusCode.FAILED_PRECONDITION
MISSING = "Servable not found for request: "
ERRORS = [
    (request("nope"), NOT_FOUND, MISSING + "Latest(nope)"),
    (request(version=7), NOT_FOUND, MISSING + "Specific(alpha, 7)"),
    (request(label="nope"), INVALID, "Unrecognized servable version label: nope"),
    (request(signature="nope"), NO_SIG, 'Serving signature key "nope" not found.'),
    (request(images=[b"not an image"]), INVALID, ""),
]


@pytest.mark.parametrize(("req", "code", "text"), ERRORS)
def test_predict_errors_match_tf_serving(predict_stub, req, code, text) -> None:
    expect_error(predict_stub.Predict, req, code, text)


def test_bad_tensors_are_invalid_argument(predict_stub) -> None:
    wrong_alias = request()
    wrong_alias.inputs["pictures"].CopyFrom(wrong_alias.inputs.pop("images"))
    expect_error(
        predict_stub.Predict, wrong_alias, grpc.StatusCode.INVALID_ARGUMENT,
        "input tensor alias not found in signature: pictures. "
        "Inputs expected to be in the set {images}.",
    )  # fmt: skip
    wrong_dtype = request()
    wrong_dtype.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros(2, np.float32)))
    expect_error(predict_stub.Predict, wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "string")
    missing = request()
    del missing.inputs["images"]
    expect_error(
        predict_stub.Predict, missing, grpc.StatusCode.INVALID_ARGUMENT,
        "Missing but required: {images}",
    )  # fmt: skip


def test_image_pixel_limit(predict_stub) -> None:
    big = tf.io.encode_png(np.zeros((200, 200, 3), np.uint8)).numpy()
    expect_error(
        predict_stub.Predict, request(images=[big]), grpc.StatusCode.INVALID_ARGUMENT,
        "exceeds the limit of 10000 pixels",
    )  # fmt: skip


def test_deadline_exceeded(predict_stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        predict_stub.Predict(request(), timeout=0.0001)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_get_model_metadata_signature_def(predict_stub) -> None:
    req = GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "beta"
    resp = predict_stub.GetModelMetadata(req, timeout=10)
    assert resp.model_spec.version.value == 2
    sig_map = SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sig_map)
    default = sig_map.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert default.inputs["images"].dtype == tf.string.as_datatype_enum
    assert set(sig_map.signature_def) == {"serving_default", "pixels"}
    req.metadata_field[:] = ["nope"]
    expect_error(
        predict_stub.GetModelMetadata, req, grpc.StatusCode.INVALID_ARGUMENT,
        "Metadata field nope is not supported",
    )  # fmt: skip
    req.metadata_field[:] = ["signature_def"]
    req.model_spec.name = "nope"
    expect_error(predict_stub.GetModelMetadata, req, grpc.StatusCode.NOT_FOUND, "Latest(nope)")


def test_get_model_status(model_stub) -> None:
    req = GetModelStatusRequest()
    req.model_spec.name = "alpha"
    resp = model_stub.GetModelStatus(req, timeout=10)
    states = {s.version: s.state for s in resp.model_version_status}
    available = ModelVersionStatus.AVAILABLE
    assert states == {1: available, 2: available}
    req.model_spec.version.value = 9
    expect_error(
        model_stub.GetModelStatus, req, grpc.StatusCode.NOT_FOUND,
        "Could not find version 9 of model alpha",
    )  # fmt: skip
    req = GetModelStatusRequest()
    req.model_spec.name = "nope"
    expect_error(
        model_stub.GetModelStatus, req, grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    )  # fmt: skip


def test_handle_reload_config_request(model_stub, predict_stub, model_repo) -> None:
    original = ModelServerConfig()
    text_format.Parse((model_repo / "models.config").read_text(), original)
    narrowed = ModelServerConfig()
    narrowed.CopyFrom(original)
    del narrowed.model_config_list.config[1]  # drop beta
    alpha = narrowed.model_config_list.config[0]
    alpha.model_version_policy.specific.versions.append(1)
    del alpha.version_labels["canary"]
    try:
        resp = model_stub.HandleReloadConfigRequest(
            ReloadConfigRequest(config=narrowed), timeout=30
        )
        assert resp.status.error_code == 0, resp.status.error_message
        latest = predict_stub.Predict(request("alpha"), timeout=10)
        assert latest.model_spec.version.value == 1
        expect_error(predict_stub.Predict, request("beta"), grpc.StatusCode.NOT_FOUND, "beta")
    finally:
        resp = model_stub.HandleReloadConfigRequest(
            ReloadConfigRequest(config=original), timeout=60
        )
    assert resp.status.error_code == 0
    assert predict_stub.Predict(request("beta"), timeout=10).model_spec.version.value == 2


def test_health_service_reports_serving(channel) -> None:
    """SERVING once every model has a version (a config reload may flip it for a moment)."""
    stub = HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        deadline = time.monotonic() + 5
        while True:
            resp = stub.Check(HealthCheckRequest(service=service), timeout=5)
            if resp.status == HealthCheckResponse.SERVING or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert resp.status == HealthCheckResponse.SERVING
