"""Unit tests of the protocol-agnostic core: JSON tensors, policies, batching, limits, manager."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.config import model_server_config_pb2

from embedder_server.config import (
    ServingSettings,
    SslConfig,
    options_from_args,
    parse_batching_file,
    parse_monitoring_file,
    parse_ssl_config_file,
)
from embedder_server.domain.batcher import QUEUE_FULL, Batcher, BatchingOptions
from embedder_server.domain.dataplane import DataPlane, Limits, ModelRef, check_image_pixels
from embedder_server.domain.manager import ModelManager, State, wanted_versions
from embedder_server.domain.model_config import parse_config_text
from embedder_server.errors import Code, ServingError, grpc_status
from embedder_server.transport.rest_json import parse_predict_body, render_outputs


def signature(**inputs: int) -> meta_graph_pb2.SignatureDef:
    sig = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for name, dtype in inputs.items():
        sig.inputs[name].dtype = dtype
    return sig


IMG_SIG = signature(images=types_pb2.DT_STRING)


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


# ---- REST JSON ---------------------------------------------------------------------------
def test_row_and_columnar_b64_parse_to_bytes() -> None:
    body = b'{"instances": [{"b64": "YWJj"}, {"b64": "eHl6"}]}'
    inputs, fmt = parse_predict_body(body, IMG_SIG)
    assert fmt == "row" and inputs["images"].tolist() == [b"abc", b"xyz"]
    inputs, fmt = parse_predict_body(b'{"inputs": {"images": [{"b64": "YWJj"}]}}', IMG_SIG)
    assert fmt == "columnar" and inputs["images"].tolist() == [b"abc"]


def test_numeric_inputs_take_the_signature_dtype() -> None:
    sig = signature(x=types_pb2.DT_FLOAT, n=types_pb2.DT_INT64)
    inputs, _ = parse_predict_body(b'{"instances": [{"x": [1, 2], "n": 3}]}', sig)
    assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (1, 2)
    assert inputs["n"].dtype == np.int64


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"[1", "JSON Parse error"),
        (b"{}", "Missing 'inputs' or 'instances' key"),
        (b'{"instances": [1], "inputs": [1]}', "Not both"),
        (b'{"instances": [{"b64": "!!"}]}', "base64"),
        (b'{"instances": [5]}', "expects strings"),
    ],
)
def test_bad_bodies_are_invalid_argument(body: bytes, text: str) -> None:
    with pytest.raises(ServingError) as info:
        parse_predict_body(body, IMG_SIG)
    assert info.value.code == Code.INVALID_ARGUMENT and text in info.value.message
    assert info.value.http_status == 400


def test_render_single_multi_and_bytes_outputs() -> None:
    emb = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert render_outputs({"embedding": emb}, "row") == {"predictions": [[1.0, 0.0], [0.0, 1.0]]}
    multi = render_outputs({"embedding": emb, "n": np.array([1, 2])}, "row")
    assert multi["predictions"][1] == {"embedding": [0.0, 1.0], "n": 2}
    cols = render_outputs({"s": np.array([b"ab"], dtype=object)}, "columnar")
    assert cols == {"outputs": [{"b64": "YWI="}]}


# ---- configuration -----------------------------------------------------------------------
def _config(text: str) -> model_server_config_pb2.ModelConfig:
    return parse_config_text(f"model_config_list {{ config {{ {text} }} }}")[0]


@pytest.mark.parametrize(
    ("policy", "wanted"),
    [
        ("", {5}),
        ("model_version_policy { latest { num_versions: 2 } }", {3, 5}),
        ("model_version_policy { all {} }", {1, 3, 5}),
        ("model_version_policy { specific { versions: 1 versions: 4 } }", {1}),
    ],
)
def test_version_policies(policy: str, wanted: set[int]) -> None:
    config = _config(f'name: "m" base_path: "/x" {policy}')
    assert wanted_versions(config, [1, 3, 5]) == wanted


def test_config_resolves_relative_paths_and_rejects_duplicates(tmp_path: Path) -> None:
    text = 'model_config_list { config { name: "a" base_path: "a" } }'
    assert parse_config_text(text, tmp_path)[0].base_path == str(tmp_path / "a")
    dup = 'model_config_list { config { name: "a" base_path: "/a" } config { name: "a" base_path: "/b" } }'  # noqa: E501
    with pytest.raises(ServingError, match="multiple times"):
        parse_config_text(dup)
    with pytest.raises(ServingError, match="Invalid model config"):
        parse_config_text("model_config_list { nonsense: 1 }")


def test_batching_and_monitoring_files() -> None:
    opts = parse_batching_file(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 5000 }\n"
        "num_batch_threads { value: 2 }\nmax_enqueued_batches { value: 7 }"
    )
    assert opts == BatchingOptions(16, 0.005, 2, 7)
    assert parse_monitoring_file('prometheus_config { enable: true, path: "/m" }') == "/m"
    assert parse_monitoring_file("prometheus_config { enable: false }") is None


def _ssl_config_message() -> type:
    """TF Serving's SSLConfig (tensorflow_serving/config/ssl_config.proto; the pip package
    lacks it), built from its fields so that protobuf's own text format writes the files."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    string, boolean = field.TYPE_STRING, field.TYPE_BOOL
    proto = descriptor_pb2.FileDescriptorProto(
        name="test_ssl_config.proto", package="test.serving", syntax="proto3"
    )
    message = proto.message_type.add(name="SSLConfig")
    for number, (name, kind) in enumerate(
        [("server_key", string), ("server_cert", string), ("custom_ca", string),
         ("client_verify", boolean)], start=1,
    ):  # fmt: skip
        message.field.add(name=name, number=number, type=kind, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("test.serving.SSLConfig"))


def test_ssl_config_file_reads_what_protobuf_writes() -> None:
    from google.protobuf import text_format

    key = '-----BEGIN PRIVATE KEY-----\nMIGH\tAg"q\\/+=\n-----END PRIVATE KEY-----\n'
    message = _ssl_config_message()(
        server_key=key, server_cert="CERT\n", custom_ca="CA\n", client_verify=True
    )
    written = text_format.MessageToString(message)
    assert "\\n" in written  # line breaks escaped, as TF Serving's docs show the file
    assert parse_ssl_config_file(written) == SslConfig(key, "CERT\n", "CA\n", True)
    # Hand-written variants: adjacent pieces concatenate, comments, server-only TLS.
    text = '# TLS for the gRPC port\nserver_key: "K1" "K2"\nserver_cert: "C"\n'
    assert parse_ssl_config_file(text) == SslConfig("K1K2", "C", "", False)
    assert "K1" not in repr(parse_ssl_config_file(text))  # the private key is never logged


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('server_cert: "C"', "server_key and server_cert"),
        ('server_key: "K" server_cert: "C" client_verify: true', "needs custom_ca"),
        ('server_key: "K" server_cert: "C" client_verify: maybe', "true or false"),
        ('server_key: "K" server_cert: "C" server_kye: "x"', "unknown SSLConfig field"),
    ],
)
def test_ssl_config_file_errors_name_the_problem(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_ssl_config_file(text)


def test_error_mapping_follows_tf_serving() -> None:
    assert ServingError(Code.NOT_FOUND, "x").http_status == 404
    assert ServingError(Code.RESOURCE_EXHAUSTED, "x").http_status == 429
    assert ServingError(Code.DEADLINE_EXCEEDED, "x").http_status == 504
    assert ServingError(Code.FAILED_PRECONDITION, "x").http_status == 400
    assert grpc_status(Code.NOT_FOUND).name == "NOT_FOUND"


# ---- batching ----------------------------------------------------------------------------
def _double(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if (inputs["x"] < 0).any():
        raise ServingError(Code.INVALID_ARGUMENT, "negative")
    return {"y": inputs["x"] * 2}


async def test_concurrent_requests_are_merged_into_one_batch() -> None:
    sizes: list[int] = []
    batcher = Batcher(_double, BatchingOptions(8, 0.05), lambda rows, q: sizes.append(rows))
    results = await asyncio.gather(*(batcher.submit({"x": np.array([i, i])}, 2) for i in range(3)))
    assert [r["y"].tolist() for r in results] == [[0, 0], [2, 2], [4, 4]]
    assert sizes == [6]
    batcher.close()


async def test_a_bad_request_does_not_fail_its_batch_mates() -> None:
    batcher = Batcher(_double, BatchingOptions(8, 0.05))
    good, bad = await asyncio.gather(
        batcher.submit({"x": np.array([1])}, 1),
        batcher.submit({"x": np.array([-1])}, 1),
        return_exceptions=True,
    )
    assert good["y"].tolist() == [2]
    assert isinstance(bad, ServingError) and bad.message == "negative"
    batcher.close()


async def test_full_queue_is_resource_exhausted() -> None:
    release = threading.Event()

    def slow(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        release.wait(5)
        return inputs

    batcher = Batcher(slow, BatchingOptions(1, 0.0, 1, max_enqueued_batches=2))
    first = asyncio.ensure_future(batcher.submit({"x": np.zeros(1)}, 1))
    await asyncio.sleep(0.05)  # the worker now holds the first task
    queued = [asyncio.ensure_future(batcher.submit({"x": np.zeros(1)}, 1)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(ServingError) as info:
        await batcher.submit({"x": np.zeros(1)}, 1)
    assert info.value.code == Code.RESOURCE_EXHAUSTED and info.value.message == QUEUE_FULL
    release.set()
    await asyncio.gather(first, *queued)
    batcher.close()


# ---- data plane and manager with fakes ---------------------------------------------------
@dataclass
class FakeServable:
    name: str
    version: int
    path: Path
    delay_s: float = 0.0

    def validate(self, sig: str, inputs: dict, output_filter: list[str]) -> list[str]:
        return ["y"]

    def run(self, sig: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.delay_s)
        return {"y": inputs["x"] + self.version}


def manager_with(tmp_path: Path, versions: list[int], extra: str = "", **kw) -> ModelManager:
    for v in versions:
        (tmp_path / "m" / str(v)).mkdir(parents=True, exist_ok=True)
        (tmp_path / "m" / str(v) / "saved_model.pb").write_bytes(b"")
    config = _config(f'name: "m" base_path: "{tmp_path / "m"}" {extra}')
    return ModelManager([config], loader=lambda n, v, p: FakeServable(n, v, p, **kw))


async def test_manager_swaps_latest_and_reports_states(tmp_path: Path) -> None:
    manager = manager_with(tmp_path, [1])
    await manager.sync()
    assert manager.get("m").version == 1
    manager_dir = tmp_path / "m" / "2"
    manager_dir.mkdir()
    (manager_dir / "saved_model.pb").write_bytes(b"")
    await manager.sync()
    assert manager.get("m").version == 2
    assert [(v, s.state) for v, s in manager.status("m")] == [(2, State.AVAILABLE), (1, State.END)]
    with pytest.raises(ServingError, match=r"Specific\(m, 1\)"):
        manager.get("m", 1)


async def test_manager_labels_and_failed_loads(tmp_path: Path) -> None:
    labels = 'model_version_policy { all {} } version_labels { key: "stable" value: 1 }'
    manager = manager_with(tmp_path, [1, 2], labels)
    await manager.sync()
    assert manager.get("m", label="stable").version == 1
    with pytest.raises(ServingError, match="Unrecognized servable version label: x"):
        manager.get("m", label="x")

    def broken(name: str, version: int, path: Path) -> FakeServable:
        raise OSError("disk on fire")

    failing = ModelManager([_config(f'name: "f" base_path: "{tmp_path / "m"}"')], loader=broken)
    await failing.sync()
    ((version, status),) = failing.status("f")
    assert (version, status.state) == (2, State.END) and "disk on fire" in status.error
    with pytest.raises(ServingError, match=r"Latest\(f\)"):
        failing.get("f")


async def test_deadline_and_inflight_limit(tmp_path: Path) -> None:
    manager = manager_with(tmp_path, [1], delay_s=0.3)
    await manager.sync()
    plane = DataPlane(manager, limits=Limits(max_inflight=1))
    with pytest.raises(ServingError) as info:
        await plane.predict(ModelRef("m"), {"x": np.zeros(1)}, timeout_s=0.05)
    assert info.value.code == Code.DEADLINE_EXCEEDED
    slow = asyncio.ensure_future(plane.predict(ModelRef("m"), {"x": np.zeros(1)}))
    await asyncio.sleep(0.05)
    with pytest.raises(ServingError) as info:
        await plane.predict(ModelRef("m"), {"x": np.zeros(1)})
    assert info.value.code == Code.RESOURCE_EXHAUSTED
    assert (await slow).outputs["y"].tolist() == [1.0]
    await asyncio.sleep(0.3)  # let the timed-out worker thread finish


def test_pixel_limit_reads_only_the_header() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buf, format="PNG")
    images = np.array([buf.getvalue()], dtype=object)
    check_image_pixels(images, 90_000)
    with pytest.raises(ServingError, match="90000 pixels exceeds the limit of 89999"):
        check_image_pixels(images, 89_999)
    check_image_pixels(np.array([b"not an image"], dtype=object), 10)  # left to the model


def test_thread_flags_reach_tensorflow_before_a_model_loads() -> None:
    """TF Serving's --tensorflow_*_op_parallelism flags; run in a fresh interpreter because
    TensorFlow fixes its thread pools on first use."""
    import subprocess
    import sys

    code = """
import tensorflow as tf
from embedder_server.adapters.servable import set_threads
from embedder_server.config import ServingSettings, options_from_args
opts = options_from_args(["--model_base_path=/m", "--tensorflow_intra_op_parallelism=1",
                          "--tensorflow_inter_op_parallelism=3"], ServingSettings())
set_threads(opts.intra_op_threads, opts.inter_op_threads)
print(tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["1", "3"]
    defaults = options_from_args(["--model_base_path=/m"], ServingSettings())
    assert (defaults.intra_op_threads, defaults.inter_op_threads) == (0, 0)  # TF's choice
