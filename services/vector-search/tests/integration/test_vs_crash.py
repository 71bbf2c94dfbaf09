"""Crash test: SIGKILL the server at random moments while a client writes; nothing acked is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from fashionrec.vectorsearch.v1 import vector_search_pb2 as pb
from fashionrec.vectorsearch.v1 import vector_search_pb2_grpc as pb_grpc
from fashionrec_testing.supervisor import free_port

pytestmark = pytest.mark.integration
INDEX, DIM, ROUNDS = "shoes/crash", 8, 10

# A restart replays the WAL before it listens: on shared CI cores that can take a while.
READY_S = 120


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "VECTOR_SEARCH_SNAPSHOT_INTERVAL_S": "0.4",
        "VECTOR_SEARCH_SNAPSHOT_MIN_FRACTION": "0",  # a snapshot after any write, as often
        "VECTOR_SEARCH_FSYNC": "always",
        "VECTOR_SEARCH_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "vector_search", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
    )


def _vec(key: str, version: int) -> list[float]:
    rnd = random.Random(f"{key}:{version}")
    return [rnd.uniform(-1, 1) for _ in range(DIM)]


class Writer(threading.Thread):
    """Sequential upserts/deletes; records the last acknowledged state of every id."""

    def __init__(self, stub: pb_grpc.VectorSearchStub, state: dict[str, int | None], seed: int):
        super().__init__(daemon=True)
        self.stub, self.state, self.rnd = stub, state, random.Random(seed)
        self.in_flight: str | None = None
        self.acked = 0

    def run(self) -> None:
        version = int(time.time() * 1000)
        while True:
            version += 1
            keys = [f"p{self.rnd.randrange(300)}" for _ in range(self.rnd.randint(1, 5))]
            self.in_flight = keys[0] if len(keys) == 1 else ",".join(keys)
            try:
                if self.rnd.random() < 0.3:
                    self.stub.Delete(pb.DeleteRequest(index=INDEX, ids=keys), timeout=5)
                    new: dict[str, int | None] = dict.fromkeys(keys)
                else:
                    items = [
                        pb.Item(id=k, vector=_vec(k, version), metadata={"v": str(version)})
                        for k in keys
                    ]
                    self.stub.Upsert(pb.UpsertRequest(index=INDEX, items=items), timeout=5)
                    new = dict.fromkeys(keys, version)
            except grpc.RpcError:
                return  # killed mid-call: this write may or may not have been applied
            self.state.update(new)
            self.in_flight = None
            self.acked += 1


def _check(stub: pb_grpc.VectorSearchStub, state: dict[str, int | None], unsure: set[str]) -> None:
    got = stub.Get(pb.GetRequest(index=INDEX, ids=sorted(state), with_vectors=True), timeout=10)
    present = {i.id: i for i in got.items}
    for key, version in state.items():
        if key in unsure:
            continue
        if version is None:
            assert key not in present, f"acknowledged delete of {key} was lost"
        else:
            assert key in present, f"acknowledged upsert of {key} was lost"
            assert present[key].metadata["v"] == str(version), f"stale version of {key}"
            assert list(present[key].vector) == pytest.approx(_vec(key, version), abs=1e-6)


def test_vs_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    rnd = random.Random(1234)
    state: dict[str, int | None] = {}
    total_acked = 0
    for round_no in range(ROUNDS):
        port = free_port()
        proc = _start(tmp_path, port)
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=READY_S)
            stub = pb_grpc.VectorSearchStub(channel)
            if round_no == 0:
                spec = pb.IndexSpec(name=INDEX, dimension=DIM, kind="HNSW")
                stub.CreateIndex(pb.CreateIndexRequest(spec=spec, exist_ok=True), timeout=10)
            _check(stub, state, set())  # everything acknowledged before the last kill is here
            writer = Writer(stub, state, seed=round_no)
            writer.start()
            time.sleep(rnd.uniform(0.3, 1.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            writer.join(timeout=10)
            total_acked += writer.acked
            channel.close()
            if writer.in_flight:  # unknown outcome: accept either, then forget the old belief
                for key in writer.in_flight.split(","):
                    state.pop(key, None)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=READY_S)
        _check(pb_grpc.VectorSearchStub(channel), state, set())
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert list(tmp_path.glob("indexes/*/snap-*")), "no snapshot was ever written"
    assert total_acked > ROUNDS * 5, f"too few writes exercised ({total_acked})"
    assert any(v is None for v in state.values()) and any(v for v in state.values())
