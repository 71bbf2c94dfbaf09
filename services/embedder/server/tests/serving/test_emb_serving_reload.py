"""Hot reload: version 2 appears on disk while clients hammer the model; no request may fail."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from fashionrec_testing.toy_model import export_toy_model, png_bytes

from .conftest import start_server, stop_server

pytestmark = pytest.mark.integration


def _hammer(target: str, stop: threading.Event, versions: Counter[int], errors: list[str]) -> None:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "hot"
    req.inputs["images"].CopyFrom(tf.make_tensor_proto([png_bytes(3)]))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not stop.is_set():
            try:
                resp = stub.Predict(req, timeout=10)
                versions[resp.model_spec.version.value] += 1
            except grpc.RpcError as exc:
                errors.append(f"{exc.code()}: {exc.details()}")


def test_new_version_replaces_old_without_failed_requests(tmp_path: Path) -> None:
    base = tmp_path / "models"
    export_toy_model(base, "hot", 1)
    args = ["--model_base_path", str(base / "hot"), "--model_name", "hot"]
    args += ["--file_system_poll_wait_seconds", "0.2", "--enable_batching"]
    server = start_server(args, tmp_path / "server.log", "hot")
    stop, versions, errors = threading.Event(), Counter[int](), []
    threads = [
        threading.Thread(target=_hammer, args=(server.grpc_target, stop, versions, errors))
        for _ in range(4)
    ]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        assert versions[1] > 0, server.log()
        staging = export_toy_model(tmp_path / "staging", "hot", 2)
        os.rename(staging, base / "hot" / "2")  # atomic: the poller never sees half a version
        deadline = time.monotonic() + 30
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            doc = httpx.get(f"{server.rest_url}/v1/models/hot", timeout=5).json()
            states = {s["version"]: s["state"] for s in doc["model_version_status"]}
            if states == {"1": "END", "2": "AVAILABLE"} and versions[2] > 20:
                break
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        stop_server(server)
    assert errors == [], errors[:5]
    assert states == {"1": "END", "2": "AVAILABLE"}, server.log()
    assert versions[1] > 0 and versions[2] > 20, versions
