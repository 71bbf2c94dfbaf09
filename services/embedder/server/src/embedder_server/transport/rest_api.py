"""Thin REST adapter on TF Serving's paths (``/v1/models/...``), plus its Prometheus path."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from embedder_server.domain.dataplane import DataPlane, ModelRef
from embedder_server.errors import Code, ServingError, invalid
from embedder_server.transport.grpc_api import metadata_response, status_response
from embedder_server.transport.rest_json import parse_predict_body, render_outputs

log = logging.getLogger(__name__)

MODEL_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<method>classify|regress|predict)|/(?P<sub>metadata))?"
)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type="application/json")


def _error(exc: ServingError) -> Response:
    return _json({"error": exc.message}, exc.http_status)


def _proto_json(message: Any) -> Response:
    doc = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _json(doc)


def create_app(
    plane: DataPlane, *, metrics_path: str | None, timeout_s: float | None = None
) -> Starlette:
    """The REST app; ``metrics_path`` None disables the Prometheus endpoint."""

    async def dispatch(request: Request) -> Response:
        path, method = request.url.path, request.method
        try:
            match = MODEL_PATH.fullmatch(path)
            if match is None or method not in ("GET", "POST"):
                raise invalid(f"Malformed request: {method} {path}")
            ref = ModelRef(
                name=match["name"],
                version=int(match["version"]) if match["version"] else None,
                label=match["label"],
            )
            if method == "POST" and match["method"] == "predict":
                return await _predict(request, ref)
            if method == "GET" and not match["method"]:
                if match["sub"] == "metadata":
                    return _metadata(ref)
                return _proto_json(status_response(plane, ref))
            if method == "POST" and match["method"] in ("classify", "regress"):
                raise ServingError(Code.UNIMPLEMENTED, f"{match['method']} is not supported")
            raise invalid(f"Malformed request: {method} {path}")
        except ServingError as exc:
            return _error(exc)

    async def _predict(request: Request, ref: ModelRef) -> Response:
        declared = int(request.headers.get("content-length") or 0)
        limit = plane.limits.max_request_bytes
        if declared > limit:
            raise invalid(f"Request body of {declared} bytes exceeds the limit of {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            raise invalid(f"Request body of {len(body)} bytes exceeds the limit of {limit} bytes")
        servable = plane.manager.get(ref.name, ref.version, ref.label)
        sig_name = _signature_name(body)
        signature = servable.signature(sig_name, rest=True)
        inputs, fmt = parse_predict_body(body, signature)
        ref = ModelRef(ref.name, servable.version, None, sig_name)
        result = await plane.predict(ref, inputs, timeout_s=timeout_s, api="rest")
        return _json(render_outputs(result.outputs, fmt))

    def _metadata(ref: ModelRef) -> Response:
        return _proto_json(metadata_response(plane.metadata(ref, ["signature_def"])))

    routes: list[Any] = [Route("/v1/{rest:path}", dispatch, methods=["GET", "POST"])]
    if metrics_path:

        async def metrics(request: Request) -> Response:
            # An exact path (TF Serving's), which a Mount of the ASGI app would redirect.
            data = generate_latest(plane.metrics.registry)
            return Response(data, media_type=CONTENT_TYPE_LATEST)

        routes.insert(0, Route(metrics_path, metrics, methods=["GET"]))
    return Starlette(routes=routes)


def _signature_name(body: bytes) -> str:
    """Read ``signature_name`` first: the signature decides how to type the inputs."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(f"JSON Parse error: {exc}") from exc
    name = doc.get("signature_name", "") if isinstance(doc, dict) else ""
    if not isinstance(name, str):
        raise invalid("'signature_name' key must be a string value.")
    return name
