"""All indexes of one data directory: ``indexes/<quoted name>/{spec.json, wal-*.log, snap-*}``."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from pathlib import Path
from urllib.parse import quote

from vector_search.errors import IndexExists, IndexNotFound
from vector_search.index.managed import (
    ANY_WRITE,
    DEFAULT_OPTIONS,
    IndexOptions,
    ManagedIndex,
    SnapshotPolicy,
    write_spec,
)
from vector_search.index.spec import IndexSpec
from vector_search.index.wal import fsync_dir

log = logging.getLogger(__name__)


class IndexRegistry:
    """Create/open/drop indexes; the data directory is the only state."""

    def __init__(self, data_dir: Path, options: IndexOptions = DEFAULT_OPTIONS) -> None:
        self.root = data_dir / "indexes"
        self.trash = data_dir / "trash"
        self.options = options
        self._indexes: dict[str, ManagedIndex] = {}
        self._lock = threading.Lock()

    def _new(self, directory: Path, spec: IndexSpec) -> ManagedIndex:
        return ManagedIndex(directory, spec, self.options)

    def open_all(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.trash, ignore_errors=True)
        for directory in sorted(self.root.iterdir()):
            spec_path = directory / "spec.json"
            if not spec_path.exists():  # creation never acknowledged
                shutil.rmtree(directory, ignore_errors=True)
                continue
            spec = IndexSpec.from_json(json.loads(spec_path.read_text()))
            index = self._new(directory, spec)
            index.open()
            self._indexes[spec.name] = index

    def create(self, spec: IndexSpec, exist_ok: bool = False) -> tuple[ManagedIndex, bool]:
        spec.validate()
        with self._lock:
            existing = self._indexes.get(spec.name)
            if existing is not None:
                if exist_ok and existing.spec == spec:
                    return existing, False
                raise IndexExists(f"index {spec.name} already exists with spec {existing.spec}")
            directory = self.root / quote(spec.name, safe="")
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            fsync_dir(self.root)
            write_spec(directory, spec)
            index = self._new(directory, spec)
            index.open()
            self._indexes[spec.name] = index
            log.info("created index", extra={"index": spec.name, "kind": spec.kind})
            return index, True

    def get(self, name: str) -> ManagedIndex:
        index = self._indexes.get(name)
        if index is None:
            raise IndexNotFound(f"no index {name!r}")
        return index

    def find(self, name: str) -> ManagedIndex | None:
        return self._indexes.get(name)

    def list(self) -> list[ManagedIndex]:
        return sorted(self._indexes.values(), key=lambda i: i.spec.name)

    def drop(self, name: str) -> None:
        with self._lock:
            index = self.get(name)
            with index.lock.write():
                index.dropped = True
                index.mirror.detach()
                index.close()
                self.trash.mkdir(parents=True, exist_ok=True)
                target = self.trash / uuid.uuid4().hex
                index.directory.rename(target)  # atomic: the drop is durable from here
                fsync_dir(self.root)
                del self._indexes[name]
        shutil.rmtree(target, ignore_errors=True)
        log.info("dropped index", extra={"index": name})

    def snapshot_all(self, policy: SnapshotPolicy = ANY_WRITE) -> None:
        for index in self.list():
            try:
                index.snapshot(policy)
            except OSError:
                log.exception("snapshot failed", extra={"index": index.spec.name})

    def sync_all(self) -> None:
        for index in self.list():
            index.sync()

    def close(self) -> None:
        self.snapshot_all()
        for index in self.list():
            index.close()
