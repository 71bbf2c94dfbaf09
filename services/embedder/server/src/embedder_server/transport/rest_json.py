"""TF Serving's REST JSON tensors: row (``instances``) and columnar (``inputs``) formats, b64."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from embedder_server.errors import invalid

Tensors = dict[str, np.ndarray]


def _decode_b64(value: Any) -> Any:
    """Replace every ``{"b64": "..."}`` by its bytes, recursively."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, TypeError) as exc:
                raise invalid(f"Unable to base64 decode: {exc}") from exc
        return {k: _decode_b64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def _to_array(value: Any, dtype: int, alias: str) -> np.ndarray:
    tf_dtype = tf.dtypes.as_dtype(dtype)
    if tf_dtype == tf.string:
        arr = np.array(value, dtype=object)
        flat = [v.encode() if isinstance(v, str) else v for v in arr.reshape(-1)]
        if not all(isinstance(v, bytes) for v in flat):
            raise invalid(f"Input '{alias}' expects strings or {{\"b64\": ...}} objects")
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(arr.shape)
    try:
        return np.asarray(value, dtype=tf_dtype.as_numpy_dtype)
    except (TypeError, ValueError) as exc:
        raise invalid(f"Input '{alias}' cannot be converted to {tf_dtype.name}: {exc}") from exc


def parse_predict_body(body: bytes, signature: meta_graph_pb2.SignatureDef) -> tuple[Tensors, str]:
    """Body -> (inputs, format) where format is ``row`` or ``columnar``."""
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(f"JSON Parse error: {exc}") from exc
    if not isinstance(doc, dict):
        raise invalid("JSON Value not an object")
    has_rows, has_cols = "instances" in doc, "inputs" in doc
    if has_rows and has_cols:
        raise invalid("Not both of 'instances' and 'inputs' can be specified")
    if not has_rows and not has_cols:
        raise invalid("Missing 'inputs' or 'instances' key")
    names = sorted(signature.inputs)
    if has_rows:
        rows = _decode_b64(doc["instances"])
        if not isinstance(rows, list) or not rows:
            raise invalid("'instances' must be a non-empty list")
        return _rows_to_tensors(rows, names, signature), "row"
    cols = _decode_b64(doc["inputs"])
    if isinstance(cols, dict):
        named = cols
    elif len(names) == 1:
        named = {names[0]: cols}
    else:
        raise invalid(f"'inputs' must name every input of the signature: {{{','.join(names)}}}")
    return {k: _typed(v, signature, k) for k, v in named.items()}, "columnar"


def _rows_to_tensors(
    rows: list[Any], names: list[str], signature: meta_graph_pb2.SignatureDef
) -> Tensors:
    named_rows = all(isinstance(r, dict) for r in rows)
    if not named_rows:
        if len(names) != 1:
            raise invalid("Expecting an object with the input names in every instance")
        return {names[0]: _to_array(rows, signature.inputs[names[0]].dtype, names[0])}
    keys = set(rows[0])
    if any(set(r) != keys for r in rows):
        raise invalid("All instances must have the same named inputs")
    return {k: _typed([r[k] for r in rows], signature, k) for k in keys}


def _typed(value: Any, signature: meta_graph_pb2.SignatureDef, alias: str) -> np.ndarray:
    """Typed by the signature; unknown aliases pass untyped so validation names them."""
    if alias not in signature.inputs:
        return np.asarray(value, dtype=object)
    return _to_array(value, signature.inputs[alias].dtype, alias)


def _jsonable(value: np.ndarray) -> Any:
    if value.dtype.kind in "OS":
        return (
            np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(
                value
            ).tolist()
            if value.size
            else value.tolist()
        )
    return value.tolist()


def render_outputs(outputs: Tensors, fmt: str) -> dict[str, Any]:
    """``predictions`` (row) or ``outputs`` (columnar); single outputs are unnamed, as in TF."""
    if fmt == "columnar":
        if len(outputs) == 1:
            return {"outputs": _jsonable(next(iter(outputs.values())))}
        return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}
    if len(outputs) == 1:
        return {"predictions": _jsonable(next(iter(outputs.values())))}
    sizes = {v.shape[0] if v.ndim else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise invalid("Tensors in a row format response must have the same 0th dimension")
    lists = {k: _jsonable(v) for k, v in outputs.items()}
    return {"predictions": [{k: lists[k][i] for k in lists} for i in range(sizes.pop())]}
