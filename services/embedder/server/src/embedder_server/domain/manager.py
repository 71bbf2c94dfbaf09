"""The model repository: which versions to serve, loading, warm-up, hot reload, labels and states.

Follows TF Serving's availability-preserving policy: a new version is loaded and warmed up
before the versions it replaces are unloaded, so requests never see a gap.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from embedder_server.adapters.servable import WARMUP_FILE, Servable
from embedder_server.errors import invalid, not_found, servable_not_found

log = logging.getLogger(__name__)

MAX_LOAD_ATTEMPTS = 5


class State(enum.IntEnum):
    """ModelVersionStatus.State numbers."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass
class VersionStatus:
    state: State
    error: str = ""
    attempts: int = 0


@dataclass
class _Model:
    config: model_server_config_pb2.ModelConfig
    servables: dict[int, Servable] = field(default_factory=dict)
    status: dict[int, VersionStatus] = field(default_factory=dict)


def wanted_versions(config: model_server_config_pb2.ModelConfig, on_disk: list[int]) -> set[int]:
    """Apply the version policy (latest N by default, all, or specific) to the versions on disk."""
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return set(on_disk)
    if kind == "specific":
        return set(policy.specific.versions) & set(on_disk)
    n = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return set(sorted(on_disk)[-n:])


def versions_on_disk(base_path: Path) -> list[int]:
    """Numeric subdirectories holding a ``saved_model.pb``."""
    if not base_path.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in base_path.iterdir()
        if p.name.isdigit() and (p / "saved_model.pb").is_file()
    )


def run_warmup(servable: Servable, limit: int = 1000) -> int:
    """Replay ``assets.extra/tf_serving_warmup_requests`` (PredictionLog TFRecords)."""
    path = servable.path / WARMUP_FILE
    if not path.is_file():
        return 0
    count = 0
    for record in tf.data.TFRecordDataset(str(path)).take(limit):
        entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if entry.WhichOneof("log_type") != "predict_log":
            continue
        request = entry.predict_log.request
        inputs = {k: np.asarray(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        servable.run(request.model_spec.signature_name, inputs)
        count += 1
    return count


class ModelManager:
    """Holds every model's servables and states; ``sync`` reconciles them with the file system."""

    def __init__(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        loader: Callable[[str, int, Path], Servable] = Servable.load,
    ) -> None:
        self._models: dict[str, _Model] = {c.name: _Model(c) for c in configs}
        self._loader = loader
        self._lock = asyncio.Lock()
        self.on_change: Callable[[], None] | None = None

    # ---- queries (event loop, non-blocking) ---------------------------------------------
    def model_names(self) -> list[str]:
        return sorted(self._models)

    def get(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a ModelSpec, with TF Serving's errors for unknown ones."""
        model = self._models.get(name)
        version = _labelled(model, version, label)
        if model is None or not model.servables:
            raise servable_not_found(name, version)
        if version is None:
            return model.servables[max(model.servables)]
        if version not in model.servables:
            raise servable_not_found(name, version)
        return model.servables[version]

    def status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[tuple[int, VersionStatus]]:
        """Versions and states for GetModelStatus, with TF Serving's NotFound wording."""
        model = self._models.get(name)
        version = _labelled(model, version, label)
        if version is not None:
            if model is None or version not in model.status:
                raise not_found(f"Could not find version {version} of model {name}")
            return [(version, model.status[version])]
        if model is None or not model.status:
            raise not_found(f"Could not find any versions of model {name}")
        return sorted(model.status.items(), reverse=True)

    def ready(self) -> bool:
        return all(m.servables for m in self._models.values())

    # ---- changes -------------------------------------------------------------------------
    async def reload_config(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """Swap the model list (HandleReloadConfigRequest); removed models are unloaded."""
        async with self._lock:
            new = {c.name: self._models.get(c.name) or _Model(c) for c in configs}
            for name, model in new.items():
                model.config = next(c for c in configs if c.name == name)
            removed = [m for n, m in self._models.items() if n not in new]
            self._models = new
            for model in removed:
                for version in list(model.servables):
                    self._unload(model, version)
        await self.sync()

    async def sync(self) -> None:
        """Load wanted versions, then unload unwanted ones (one poll of the file system)."""
        async with self._lock:
            for model in list(self._models.values()):
                await self._sync_model(model)

    async def _sync_model(self, model: _Model) -> None:
        base = Path(model.config.base_path)
        on_disk = await asyncio.to_thread(versions_on_disk, base)
        wanted = wanted_versions(model.config, on_disk)
        for version in sorted(wanted - set(model.servables)):
            status = model.status.get(version)
            if status and status.state == State.END and status.attempts >= MAX_LOAD_ATTEMPTS:
                continue
            await self._load(model, version, base / str(version))
        if not wanted and not on_disk and model.servables:
            log.warning("no versions on disk any more; keeping the loaded ones", extra={})
            return
        for version in sorted(set(model.servables) - wanted):
            self._unload(model, version)

    async def _load(self, model: _Model, version: int, path: Path) -> None:
        name = model.config.name
        prev = model.status.get(version)
        status = VersionStatus(State.LOADING, attempts=(prev.attempts if prev else 0) + 1)
        model.status[version] = status
        log.info("loading servable", extra={"model": name, "version": version})
        try:
            servable = await asyncio.to_thread(self._loader, name, version, path)
            warmed = await asyncio.to_thread(run_warmup, servable)
        except Exception as exc:  # noqa: BLE001 - a bad version must not stop the server
            log.exception("loading failed", extra={"model": name, "version": version})
            status.state, status.error = State.END, f"{type(exc).__name__}: {exc}"
            return
        model.servables[version] = servable
        status.state = State.AVAILABLE
        log.info("servable available", extra={"model": name, "version": version, "warmup": warmed})
        self._changed()

    def _unload(self, model: _Model, version: int) -> None:
        """Drop our reference; in-flight requests keep theirs, so nothing fails mid-call."""
        model.status[version] = VersionStatus(State.UNLOADING)
        model.servables.pop(version, None)
        model.status[version] = VersionStatus(State.END)
        log.info("servable unloaded", extra={"model": model.config.name, "version": version})
        self._changed()

    def _changed(self) -> None:
        if self.on_change:
            self.on_change()

    async def poll_forever(self, interval_s: float) -> None:
        """TF Serving's --file_system_poll_wait_seconds loop (interval <= 0: load once only)."""
        if interval_s <= 0:
            return
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - keep polling whatever happened
                log.exception("model repository poll failed")


def _labelled(model: _Model | None, version: int | None, label: str | None) -> int | None:
    """The version a ModelSpec's label names (TF Serving's wording when it names none)."""
    if not label:
        return version
    labels = model.config.version_labels if model else {}
    if label not in labels:
        raise invalid(f"Unrecognized servable version label: {label}")
    return labels[label]
