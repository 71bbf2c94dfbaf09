"""The limits this gateway enforces, written into its OpenAPI schema from its settings.

A client generated from /openapi.json (or schemathesis) then never builds a request that
looks valid and is refused: ``k`` has its maximum (``GATEWAY_MAX_K``), ``catalogue`` lists
the configured catalogues, and compare's ``models`` says "2 to 8 names" as a pattern.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from gateway.config import GatewaySettings

MODEL = r"[A-Za-z0-9_.-]{1,64}"
COMPARE_MODELS = rf"^\s*{MODEL}\s*(,\s*{MODEL}\s*){{1,7}}$"
AUTOMATIC = ["auto", "automatic", ""]


def _limit(schema: dict[str, Any], name: str, settings: GatewaySettings, optional: bool) -> None:
    """Tighten one parameter's or property's schema (a string member of anyOf included);
    an optional ``catalogue`` may also be left to automatic routing."""
    for member in [schema, *schema.get("anyOf", [])]:
        if name == "k" and member.get("type") == "integer":
            member["maximum"] = min(member.get("maximum", settings.max_k), settings.max_k)
        elif name == "catalogue" and member.get("type") == "string":
            member["enum"] = [*settings.catalogues, *(AUTOMATIC if optional else [])]


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
                node["schema"]["pattern"] = COMPARE_MODELS
        for value in node.values():
            _walk(value, settings)
    elif isinstance(node, list):
        for value in node:
            _walk(value, settings)


def document_limits(app: FastAPI, settings: GatewaySettings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = copy.deepcopy(build())  # openapi_extra dicts are shared module constants
            _walk(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
