"""The limits this gateway enforces, written into its OpenAPI schema from its settings.

A client generated from /openapi.json (or schemathesis) then never builds a request that
looks valid and is refused: ``k`` has its maximum (``GATEWAY_MAX_K``), ``catalogue`` lists
the configured catalogues, and compare's ``models`` says "2 to 8 names" as a pattern.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from fashionrec_common.index_names import PART
from gateway.config import GatewaySettings

MODEL = PART
COMPARE_MODELS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "pattern": f"^{MODEL}$"},
    "minItems": 2,
    "maxItems": 8,
    "uniqueItems": True,
}
AUTOMATIC = ["auto", "automatic", ""]
VALUE: dict[str, Any] = {"type": "string", "maxLength": 40}
# What ``filters`` accepts everywhere (domain/types.py): key -> value or non-empty list of
# values, bounded so the JSON text stays under its size limit.
FILTERS: dict[str, Any] = {
    "type": "object",
    "maxProperties": 8,
    "propertyNames": {"minLength": 1, "maxLength": 40},
    "additionalProperties": {
        "anyOf": [VALUE, {"type": "array", "minItems": 1, "maxItems": 8, "items": VALUE}]
    },
}


def _limit(schema: dict[str, Any], name: str, settings: GatewaySettings, optional: bool) -> None:
    """Tighten one parameter's or property's schema (a string member of anyOf included);
    an optional ``catalogue`` may also be left to automatic routing."""
    for member in [schema, *schema.get("anyOf", [])]:
        if name == "k" and member.get("type") == "integer":
            member["maximum"] = min(member.get("maximum", settings.max_k), settings.max_k)
        elif name == "catalogue" and member.get("type") == "string":
            member["enum"] = [*settings.catalogues, *(AUTOMATIC if optional else [])]
        elif name == "model" and member.get("type") == "string":
            member["pattern"] = f"^{MODEL}$"
        elif name == "models" and member.get("type") == "array":
            member["items"] = {"type": "string", "pattern": f"^{MODEL}$"}
        elif name == "image_b64" and member.get("type") == "string":
            member["format"] = "byte"  # base64; the bytes must also be an image (else 415)
            member["minLength"] = 4


def _walk(node: Any, settings: GatewaySettings) -> None:
    if isinstance(node, dict):
        required = node.get("required")
        for name, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict):
                optional = not (isinstance(required, list) and name in required)
                _limit(prop, name, settings, optional)
        if isinstance(node.get("name"), str) and isinstance(node.get("schema"), dict):
            _limit(node["schema"], node["name"], settings, required is not True)  # a parameter
            if node["name"] == "models" and node.get("in") == "query":
                # "a,b": a form-style array, so "distinct" can be said (uniqueItems).
                node["schema"] = COMPARE_MODELS
                node.update(style="form", explode=False)
            if node["name"] == "filters" and node.get("in") == "query":
                # JSON text in a query parameter: described as what it encodes.
                del node["schema"]
                node["content"] = {"application/json": {"schema": FILTERS}}
        for value in node.values():
            _walk(value, settings)
    elif isinstance(node, list):
        for value in node:
            _walk(value, settings)


def _search_multipart(schema: dict[str, Any]) -> None:
    """The multipart ``filters`` field is JSON text: described as the object it encodes."""
    body = schema["paths"]["/v1/search"]["post"]["requestBody"]["content"]["multipart/form-data"]
    body["schema"]["properties"]["filters"] = FILTERS
    body["schema"]["properties"]["image"]["minLength"] = 8  # an empty file is no image
    body["schema"]["additionalProperties"] = False
    body["encoding"] = {"filters": {"contentType": "application/json"}}


def _search_json(schema: dict[str, Any], settings: GatewaySettings) -> None:
    """The JSON search body needs a non-empty image_b64 or image_url; while no host may be
    fetched from (the default), image_url is not offered at all."""
    body = schema["paths"]["/v1/search"]["post"]["requestBody"]["content"]["application/json"]
    props = body["schema"]["properties"]
    sources = ["image_b64", "image_url"]
    if not settings.fetch_allow_hosts:
        props.pop("image_url", None)
        sources = ["image_b64"]
    props["filters"] = {"anyOf": [FILTERS, {"type": "null"}]}
    body["schema"]["anyOf"] = [
        {"required": [s], "properties": {s: {"type": "string", "minLength": 1}}} for s in sources
    ]


def document_limits(app: FastAPI, settings: GatewaySettings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = copy.deepcopy(build())  # openapi_extra dicts are shared module constants
            _walk(schema, settings)
            _search_json(schema, settings)
            _search_multipart(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
