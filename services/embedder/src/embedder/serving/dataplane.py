"""Protocol-agnostic predict, metadata and status, shared by the gRPC and REST adapters."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from embedder.serving.batcher import Batcher, BatchingOptions, Tensors
from embedder.serving.errors import Code, ServingError, invalid
from embedder.serving.manager import ModelManager
from embedder.serving.metrics import ServingMetrics
from embedder.serving.servable import DEFAULT_SIGNATURE, Servable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Request guards: body size and decoded image pixels (decompression bombs)."""

    max_request_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 40_000_000
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


def check_image_pixels(values: np.ndarray, max_pixels: int) -> None:
    """Reject encoded images whose header promises more than ``max_pixels`` (no full decode)."""
    for item in values.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode()
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except Image.DecompressionBombError as exc:
            raise invalid(f"Image rejected as a decompression bomb: {exc}") from exc
        except Exception:  # noqa: BLE001 - not an image PIL knows: the model's decoder judges it
            continue
        if width * height > max_pixels:
            raise invalid(
                f"Image of {width}x{height} = {width * height} pixels exceeds the limit of "
                f"{max_pixels} pixels"
            )


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
    ) -> None:
        self.manager = manager
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
        for value in inputs.values():
            if value.dtype.kind in "OS":
                check_image_pixels(value, self.limits.max_image_pixels)
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

    def metadata(self, ref: ModelRef, fields: list[str]) -> Servable:
        """The servable whose signature_def the adapter renders (only that field exists)."""
        if not fields:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for name in fields:
            if name != "signature_def":
                raise invalid(f"Metadata field {name} is not supported")
        return self.manager.get(ref.name, ref.version, ref.label)
