"""Conformance over REST: plain JSON on TF Serving's paths, as its REST examples send it."""

from __future__ import annotations

import base64
import re

import httpx
import numpy as np
import pytest
import tensorflow as tf

from fashionrec_testing.toy_model import png_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http(server):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.rest_url, timeout=30) as client:
        yield client


def b64(data: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(data).decode()}


IMAGES = [b64(png_bytes(1)), b64(png_bytes(2))]


@pytest.mark.parametrize("model", ["alpha", "beta"])
def test_model_status(http, model) -> None:
    r = http.get(f"/v1/models/{model}")
    assert r.status_code == 200
    statuses = r.json()["model_version_status"]
    assert {(s["version"], s["state"]) for s in statuses} == {
        ("1", "AVAILABLE"),
        ("2", "AVAILABLE"),
    }
    assert statuses[0]["status"]["error_code"] == "OK"


def test_status_by_version_and_label(http) -> None:
    assert [
        s["version"] for s in http.get("/v1/models/alpha/versions/1").json()["model_version_status"]
    ] == ["1"]
    assert [
        s["version"]
        for s in http.get("/v1/models/alpha/labels/canary").json()["model_version_status"]
    ] == ["2"]


def test_metadata(http) -> None:
    doc = http.get("/v1/models/alpha/versions/1/metadata").json()
    assert doc["model_spec"]["name"] == "alpha"
    assert doc["model_spec"]["version"] == "1"
    sigs = doc["metadata"]["signature_def"]["signature_def"]
    assert sigs["serving_default"]["inputs"]["images"]["dtype"] == "DT_STRING"
    assert sigs["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert http.get("/v1/models/alpha/metadata").json()["model_spec"]["version"] == "2"


def test_predict_row_format(http) -> None:
    r = http.post(
        "/v1/models/alpha:predict", json={"signature_name": "serving_default", "instances": IMAGES}
    )
    assert r.status_code == 200, r.text
    preds = np.array(r.json()["predictions"])
    assert preds.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(preds, axis=1), 1.0, rtol=1e-4)


def test_predict_columnar_format_matches_row(http) -> None:
    rows = http.post("/v1/models/beta:predict", json={"instances": IMAGES}).json()["predictions"]
    cols = http.post("/v1/models/beta:predict", json={"inputs": {"images": IMAGES}}).json()[
        "outputs"
    ]
    bare = http.post("/v1/models/beta:predict", json={"inputs": IMAGES}).json()["outputs"]
    np.testing.assert_allclose(rows, cols, rtol=1e-5)
    np.testing.assert_allclose(rows, bare, rtol=1e-5)


def test_predict_versions_and_labels(http) -> None:
    v1 = http.post("/v1/models/alpha/versions/1:predict", json={"instances": IMAGES}).json()
    stable = http.post("/v1/models/alpha/labels/stable:predict", json={"instances": IMAGES}).json()
    v2 = http.post("/v1/models/alpha/versions/2:predict", json={"instances": IMAGES}).json()
    np.testing.assert_allclose(v1["predictions"], stable["predictions"], rtol=1e-5)
    assert not np.allclose(v1["predictions"], v2["predictions"])


def test_multi_output_signature_rows_are_objects(http) -> None:
    pixels = np.full((2, 4, 4, 3), 3.0).tolist()
    r = http.post(
        "/v1/models/alpha:predict", json={"signature_name": "pixels", "instances": pixels}
    )
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2 and set(preds[0]) == {"embedding", "mean"}
    assert preds[0]["mean"] == pytest.approx(3.0)
    cols = http.post(
        "/v1/models/alpha:predict", json={"signature_name": "pixels", "inputs": {"pixels": pixels}}
    )
    assert cols.json()["outputs"]["mean"] == pytest.approx([3.0, 3.0])


ROWS = {"instances": IMAGES}
PREDICT = "/v1/models/alpha:predict"
NOT_FOUND = "Servable not found for request: "
ERRORS = [
    ("/v1/models/nope:predict", ROWS, 404, NOT_FOUND + "Latest(nope)"),
    ("/v1/models/alpha/versions/7:predict", ROWS, 404, NOT_FOUND + "Specific(alpha, 7)"),
    (
        "/v1/models/alpha/labels/nope:predict",
        ROWS,
        400,
        "Unrecognized servable version label: nope",
    ),
    (PREDICT, {**ROWS, "signature_name": "nope"}, 400, 'Serving signature name: "nope" not found'),
    (PREDICT, {**ROWS, "signature_name": 5}, 400, "'signature_name' key must be a string value."),
    (PREDICT, {"foo": 1}, 400, "Missing 'inputs' or 'instances' key"),
    (PREDICT, {"instances": [b64(b"not an image")]}, 400, ""),
    (PREDICT, {"inputs": {"pictures": IMAGES}}, 400, "input tensor alias not found in signature"),
    (PREDICT, {"instances": [{"b64": "%%%"}]}, 400, "base64"),
]


@pytest.mark.parametrize(("path", "body", "status", "text"), ERRORS)
def test_predict_errors(http, path, body, status, text) -> None:
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    assert text in r.json()["error"]


def test_get_errors(http) -> None:
    r = http.get("/v1/models/nope")
    assert (r.status_code, r.json()["error"]) == (404, "Could not find any versions of model nope")
    r = http.get("/v1/models/alpha/versions/9")
    assert (r.status_code, r.json()["error"]) == (404, "Could not find version 9 of model alpha")
    r = http.get("/v1/models/nope/metadata")
    assert r.status_code == 404 and "Latest(nope)" in r.json()["error"]
    r = http.get("/v1/nothing/here")
    assert r.status_code == 400 and r.json()["error"].startswith("Malformed request: GET")


def test_bad_json_and_limits(http) -> None:
    r = http.post("/v1/models/alpha:predict", content=b"{not json")
    assert r.status_code == 400 and "JSON Parse error" in r.json()["error"]
    big = tf.io.encode_png(np.zeros((200, 200, 3), np.uint8)).numpy()
    r = http.post("/v1/models/alpha:predict", json={"instances": [b64(big)]})
    assert r.status_code == 400 and "exceeds the limit of 10000 pixels" in r.json()["error"]
    r = http.post("/v1/models/alpha:predict", json={"instances": [b64(b"x" * 300_000)]})
    assert r.status_code == 400 and "exceeds the limit of 200000 bytes" in r.json()["error"]


def test_prometheus_metrics(http) -> None:
    http.post("/v1/models/beta/versions/1:predict", json={"instances": IMAGES})
    text = http.get("/monitoring/prometheus/metrics").text
    prefix = ":tensorflow:serving:"
    labels = 'API="predict",entrypoint="rest",model_name="beta",model_version="1"'
    assert f'{prefix}request_count_total{{{labels},status="OK"}}' in text
    version = 'model_name="beta",model_version="1"'
    assert re.search(r'request_latency_bucket\{API="predict",[^}]*model_version="1"\} [1-9]', text)
    assert f"{prefix}batching_session:processed_batch_size_count{{{version}}}" in text
