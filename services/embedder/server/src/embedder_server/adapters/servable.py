"""One loaded model version: its SignatureDefs (for metadata and validation) and a run function."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from embedder_server.errors import Code, ServingError, invalid

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def read_signature_defs(version_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """Parse ``saved_model.pb`` for the serving tag's SignatureDefs (exact protos for metadata)."""
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    for meta in saved.meta_graphs:
        if "serve" in meta.meta_info_def.tags:
            return {k: v for k, v in meta.signature_def.items() if not k.startswith("__")}
    raise ValueError(f"no 'serve' MetaGraph in {version_dir}")


def set_threads(intra_op: int, inter_op: int) -> None:
    """TF Serving's --tensorflow_{intra,inter}_op_parallelism; 0 keeps TensorFlow's choice.
    Must run before the first model loads (TensorFlow fixes its pools on first use)."""
    if intra_op > 0:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    if inter_op > 0:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)


def dtype_name(dtype: int) -> str:
    return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()


@dataclass
class Servable:
    """A loaded SavedModel version. Thread-safe: TF concrete functions may run concurrently."""

    name: str
    version: int
    path: Path
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    _functions: dict[str, Any] = field(repr=False, default_factory=dict)
    _model: Any = field(repr=False, default=None)

    @classmethod
    def load(cls, name: str, version: int, path: Path) -> Servable:
        sig_defs = read_signature_defs(path)
        model = tf.saved_model.load(str(path), tags=["serve"])
        functions = {k: model.signatures[k] for k in sig_defs if k in model.signatures}
        return cls(name, version, path, sig_defs, functions, model)

    def signature(self, name: str, *, rest: bool = False) -> meta_graph_pb2.SignatureDef:
        """The SignatureDef, failing with TF Serving's gRPC or REST wording."""
        sig_name = name or DEFAULT_SIGNATURE
        if sig_name not in self.signature_defs:
            if rest:
                raise invalid(f'Serving signature name: "{sig_name}" not found in signature def')
            raise ServingError(
                Code.FAILED_PRECONDITION, f'Serving signature key "{sig_name}" not found.'
            )
        return self.signature_defs[sig_name]

    def validate(
        self, signature_name: str, inputs: dict[str, np.ndarray], output_filter: list[str]
    ) -> list[str]:
        """Check inputs/output_filter like TF Serving's PreProcessPrediction; returns outputs."""
        sig = self.signature(signature_name)
        sent, wanted = sorted(inputs), sorted(sig.inputs)
        if len(sent) != len(wanted):
            extra = sorted(set(sent) - set(wanted))
            missing = sorted(set(wanted) - set(sent))
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sent)}}}) != len({{{','.join(wanted)}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
            )
        for alias, value in inputs.items():
            if alias not in sig.inputs:
                raise invalid(
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {{{','.join(wanted)}}}."
                )
            expected = tf.dtypes.as_dtype(sig.inputs[alias].dtype)
            got = _numpy_tf_dtype(value)
            if got != expected:
                raise invalid(
                    f"Expects input '{alias}' to be {expected.name} but {got.name} is provided"
                )
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in sig.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to "
                    f"be in the set {{{','.join(sorted(sig.outputs))}}}."
                )
            if alias in seen:
                raise invalid(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return list(output_filter) or sorted(sig.outputs)

    def run(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature (blocking: call from a worker thread, never the event loop)."""
        fn = self._functions[signature_name or DEFAULT_SIGNATURE]
        sig = self.signature(signature_name)
        tensors = {
            k: tf.constant(v, dtype=tf.dtypes.as_dtype(sig.inputs[k].dtype))
            for k, v in inputs.items()
        }
        try:
            out = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise invalid(_tf_message(exc)) from exc
        except tf.errors.OpError as exc:
            raise ServingError(Code.INTERNAL, _tf_message(exc)) from exc
        return {k: v.numpy() for k, v in out.items()}


def _numpy_tf_dtype(value: np.ndarray) -> tf.dtypes.DType:
    if value.dtype.kind in "OSU":
        return tf.string
    return tf.dtypes.as_dtype(value.dtype)


def _tf_message(exc: Exception) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    return msg.split("\n")[0] if len(msg) > 500 else msg
