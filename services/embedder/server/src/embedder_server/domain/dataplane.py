"""Protocol-agnostic predict, metadata and status, shared by the gRPC and REST adapters."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from tensorflow_serving.config import model_server_config_pb2

from embedder_server.adapters.servable import DEFAULT_SIGNATURE, Servable
from embedder_server.domain.batcher import Batcher, BatchingOptions, Tensors
from embedder_server.domain.image_limits import check_image_pixels
from embedder_server.domain.manager import ModelManager
from embedder_server.errors import Code, ServingError, invalid
from embedder_server.metrics import ServingMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Request guards: body size and decoded image pixels (decompression bombs)."""

    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    max_inflight: int = 256


@dataclass(frozen=True)
class ModelRef:
    """A ModelSpec without the protocol: name plus optional version or label and signature."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass
class PredictResult:
    servable: Servable
    signature_name: str
    outputs: Tensors


def batch_rows(inputs: Tensors) -> int | None:
    """Rows shared by every input's 0th dimension, or None when they cannot be batched."""
    sizes = {v.shape[0] if v.ndim else None for v in inputs.values()}
    if len(sizes) != 1:
        return None
    return sizes.pop()


class DataPlane:
    """Looks up servables, validates, enforces limits, batches and records metrics."""

    def __init__(
        self,
        manager: ModelManager,
        *,
        batching: BatchingOptions | None = None,
        limits: Limits | None = None,
        metrics: ServingMetrics | None = None,
        allow_model_management: bool = False,
    ) -> None:
        self.manager = manager
        self.allow_model_management = allow_model_management
        self.batching = batching
        self.limits = limits or Limits()
        self.metrics = metrics or ServingMetrics()
        self._batchers: dict[tuple[str, int, str], Batcher] = {}
        self._inflight = 0
        manager.on_change = self._drop_stale_batchers

    async def predict(
        self,
        ref: ModelRef,
        inputs: Tensors,
        output_filter: list[str] | None = None,
        *,
        timeout_s: float | None = None,
        api: str = "grpc",
    ) -> PredictResult:
        """Run a Predict; errors are ServingError with TF Serving's codes and wording."""
        start = time.perf_counter()
        version_label = "-"
        try:
            servable = self.manager.get(ref.name, ref.version, ref.label)
            version_label = str(servable.version)
            result = await self._predict(servable, ref, inputs, output_filter or [], timeout_s)
        except ServingError as exc:
            self._observe(ref.name, version_label, api, exc.code.name, start)
            raise
        self._observe(ref.name, version_label, api, "OK", start)
        return result

    async def _predict(
        self,
        servable: Servable,
        ref: ModelRef,
        inputs: Tensors,
        output_filter: list[str],
        timeout_s: float | None,
    ) -> PredictResult:
        sig_name = ref.signature_name or DEFAULT_SIGNATURE
        outputs_wanted = servable.validate(sig_name, inputs, output_filter)
        inputs = {
            key: check_image_pixels(value, self.limits.max_image_pixels)
            if value.dtype.kind in "OS"
            else value
            for key, value in inputs.items()
        }
        if timeout_s is not None and timeout_s <= 0:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded")
        try:
            outputs = await asyncio.wait_for(self._run(servable, sig_name, inputs), timeout_s)
        except TimeoutError as exc:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from exc
        return PredictResult(servable, sig_name, {k: outputs[k] for k in outputs_wanted})

    async def _run(self, servable: Servable, sig_name: str, inputs: Tensors) -> Tensors:
        rows = batch_rows(inputs)
        if self.batching and rows:
            return await self._batcher(servable, sig_name).submit(inputs, rows)
        if self._inflight >= self.limits.max_inflight:
            raise ServingError(
                Code.RESOURCE_EXHAUSTED,
                f"Too many requests in flight (limit {self.limits.max_inflight})",
            )
        self._inflight += 1
        try:
            return await asyncio.to_thread(servable.run, sig_name, inputs)
        finally:
            self._inflight -= 1

    def _batcher(self, servable: Servable, sig_name: str) -> Batcher:
        key = (servable.name, servable.version, sig_name)
        batcher = self._batchers.get(key)
        if batcher is None:
            assert self.batching is not None
            sizes = self.metrics.batch_size.labels(servable.name, str(servable.version))
            depth = self.metrics.queue_depth.labels(servable.name, str(servable.version))

            def on_batch(rows: int, queued: int) -> None:
                sizes.observe(rows)
                depth.set(queued)

            batcher = Batcher(lambda x: servable.run(sig_name, x), self.batching, on_batch)
            self._batchers[key] = batcher
        return batcher

    def _drop_stale_batchers(self) -> None:
        for key in list(self._batchers):
            name, version, _ = key
            try:
                current = self.manager.get(name, version)
            except ServingError:
                current = None
            if current is None:
                self._batchers.pop(key).close()

    def _observe(self, model: str, version: str, api: str, status: str, start: float) -> None:
        self.metrics.observe(model, version, "predict", api, status, time.perf_counter() - start)

    def require_model_management(self) -> None:
        """PERMISSION_DENIED unless enabled: a config reload can unload every model."""
        if not self.allow_model_management:
            raise ServingError(
                Code.PERMISSION_DENIED,
                "Model management is disabled on this server "
                "(set EMBEDDER_SERVING_ALLOW_MODEL_MANAGEMENT=true to enable it)",
            )

    async def reload_config(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """HandleReloadConfigRequest's work, when model management is enabled."""
        self.require_model_management()
        if not configs:
            log.warning("model config reload with no models: every model is unloaded")
        await self.manager.reload_config(configs)

    def metadata(self, ref: ModelRef, fields: list[str]) -> Servable:
        """The servable whose signature_def the adapter renders (only that field exists)."""
        if not fields:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for name in fields:
            if name != "signature_def":
                raise invalid(f"Metadata field {name} is not supported")
        return self.manager.get(ref.name, ref.version, ref.label)
