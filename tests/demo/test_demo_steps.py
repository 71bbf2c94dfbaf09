"""scripts/demo.py's decisions that need no TensorFlow: newest checkpoint, export source,
baselines to serve, ports. (tests/e2e runs the demo's steps for real.)"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from fashionrec_testing.repo import load_demo
from fashionrec_testing.system import LocalSystem, default_ports

ALL = ["mobilenet", "mobilenet_v2", "efficientnet_lite0"]  # with weights in ../shared


@pytest.fixture(scope="module")
def demo() -> ModuleType:
    return load_demo()


def fake_run(run: Path, steps: list[int], newest: int | None = None) -> None:
    """A run folder as `embedder train` leaves it: checkpoints/ with TF's index file."""
    ckpts = run / "checkpoints"
    ckpts.mkdir(parents=True)
    for step in steps:
        (ckpts / f"ckpt-{step}.index").write_bytes(b"")
        (ckpts / f"ckpt-{step}.data-00000-of-00001").write_bytes(b"")
    newest = steps[-1] if newest is None else newest
    (ckpts / "checkpoint").write_text(
        f'model_checkpoint_path: "ckpt-{newest}"\n'
        + "".join(f'all_model_checkpoint_paths: "ckpt-{s}"\n' for s in steps)
    )
    (run / "split.json").write_text("{}")


def test_newest_checkpoint_comes_from_the_index_file(demo: ModuleType, tmp_path: Path) -> None:
    assert demo.newest_checkpoint(tmp_path) is None
    fake_run(tmp_path, [1100, 1200, 1300])
    assert demo.newest_checkpoint(tmp_path) == (1300, tmp_path / "checkpoints" / "ckpt-1300")


def test_a_half_written_checkpoint_is_not_taken(demo: ModuleType, tmp_path: Path) -> None:
    fake_run(tmp_path, [100], newest=200)  # index names ckpt-200, its files are not there
    assert demo.newest_checkpoint(tmp_path) is None


def test_checkpoint_view_points_export_at_the_checkpoint(demo: ModuleType, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "demo-infogan"
    fake_run(run, [200, 1300])
    summary = {"config": {"model": "infogan"}, "steps": 150, "checkpoint": "checkpoints/ckpt-150"}
    before = sorted(p.name for p in run.rglob("*"))
    view = demo.checkpoint_view(run, summary, 1300, run / "checkpoints" / "ckpt-1300")
    assert sorted(p.name for p in run.rglob("*")) == before, "nothing written into the run"
    chosen = json.loads((view / "run.json").read_text())
    assert chosen["steps"] == 1300 and chosen["config"] == summary["config"]
    # embedder.train.load_trained restores RUN / checkpoint: an absolute path wins.
    assert view / chosen["checkpoint"] == (run / "checkpoints" / "ckpt-1300").resolve()
    assert (view / "split.json").resolve() == (run / "split.json").resolve()


@pytest.mark.parametrize(
    ("wanted", "exported", "served"),
    [
        ("available", ["mobilenet", "efficientnet_lite0"], ALL),
        ("mobilenet", ["mobilenet"], ["mobilenet"]),
        ("none", [], []),
    ],
)
def test_baselines_served_are_those_with_weights(
    demo: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    wanted: str,
    exported: list[str],
    served: list[str],
) -> None:
    (tmp_path / "mobilenet_v2" / "1").mkdir(parents=True)  # exported by an earlier demo
    commands: list[list[str]] = []
    monkeypatch.setattr(demo, "run", lambda argv: commands.append([str(a) for a in argv]))
    monkeypatch.setattr(demo, "available_baselines", lambda: list(ALL))
    assert demo.export_baselines(tmp_path, wanted) == served
    assert [c[c.index("--name") + 1] for c in commands] == exported


def test_ports_default_to_the_description_and_move_one_by_one(
    demo: ModuleType, tmp_path: Path
) -> None:
    args = demo.parse_args(["--var", str(tmp_path), "--port", "gateway.http=9080"])
    system = demo.local_system(args, tmp_path / "catalog")
    assert system.port("gateway") == 9080
    assert system.port("annotation") == default_ports()["annotation"]["http"]
    assert system.state == tmp_path and system.models == tmp_path / "models"
    with pytest.raises(SystemExit, match="gateway.web"):
        demo.local_system(demo.parse_args(["--port", "gateway.web=1"]), tmp_path)


def test_milvus_store_wires_lite_and_skips_vector_search(
    demo: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make demo VECTOR_STORE=milvus`: the gateway and the ingest CLI get Milvus Lite in
    --var, vector-search never starts, and the ingest runs before the gateway opens the file."""
    monkeypatch.setenv("VECTOR_STORE", "milvus")
    args = demo.parse_args(["--var", str(tmp_path)])
    system = demo.local_system(args, tmp_path / "catalog")
    env = system.env("gateway")
    assert env["GATEWAY_VECTOR_STORE"] == "milvus"
    assert env["GATEWAY_MILVUS_URI"] == f"{tmp_path}/milvus.db"
    assert "GATEWAY_VECTOR_SEARCH_ADDRESS" not in env
    argv = demo.ingest_argv(system, ["infogan"])
    assert argv[1:4] == ["-m", "gateway", "ingest"] and "--vector-search" not in argv

    steps: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(
        LocalSystem, "start_all", lambda _, __, names: steps.append(("start", names))
    )
    monkeypatch.setattr(demo, "index_catalog", lambda *_: steps.append(("index", [])))
    demo.start_and_index(args, system, None, ["infogan"])
    assert steps == [("start", ["embedder", "annotation"]), ("index", []), ("start", ["gateway"])]

    monkeypatch.delenv("VECTOR_STORE")  # the default: our FAISS service, started first
    faiss = demo.local_system(demo.parse_args(["--var", str(tmp_path)]), tmp_path / "catalog")
    argv = demo.ingest_argv(faiss, ["infogan"])
    assert argv[argv.index("--vector-search") + 1] == faiss.address("vector-search")
    steps.clear()
    demo.start_and_index(args, faiss, None, ["infogan"])
    assert steps[0] == ("start", ["embedder", "vector-search", "annotation"])


def test_switching_the_store_indexes_again(
    demo: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingests: list[list[str]] = []
    monkeypatch.setattr(demo, "run", lambda argv, env: ingests.append(argv))
    monkeypatch.setattr(demo, "latest_version", lambda _: 3)
    for store in ("faiss", "faiss", "milvus", "milvus"):
        args = demo.parse_args(["--var", str(tmp_path), "--vector-store", store])
        demo.index_catalog(args, demo.local_system(args, tmp_path / "catalog"), ["infogan"])
    assert len(ingests) == 2, "each store indexed once, the second run of each reused"
    assert "--vector-search" in ingests[0] and "--vector-search" not in ingests[1]


def test_uploads_without_a_catalogue_are_routed_by_efficientnet_once_it_is_exported(
    demo: ModuleType, tmp_path: Path
) -> None:
    args = demo.parse_args(["--var", str(tmp_path)])
    assert demo.local_system(args, tmp_path).env("gateway")["GATEWAY_ROUTING_MODEL"] == ""
    (tmp_path / "models" / demo.ROUTING_MODEL / "1").mkdir(parents=True)
    assert demo.routing_model(args) == "efficientnet_lite0"
    env = demo.local_system(args, tmp_path).env("gateway")
    assert env["GATEWAY_ROUTING_MODEL"] == "efficientnet_lite0"
    chosen = demo.parse_args(["--var", str(tmp_path), "--routing-model", ""])
    assert demo.local_system(chosen, tmp_path).env("gateway")["GATEWAY_ROUTING_MODEL"] == ""


def test_the_first_short_run_is_bounded_by_steps_and_by_time(
    demo: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a slow CPU the first run stops at its time budget, so the demo still serves soon."""
    calls: list[list[str]] = []

    def record(argv: list[object], **_: object) -> None:
        calls.append([str(a) for a in argv])
        if "train" in calls[-1]:
            fake_run(tmp_path / "runs" / "demo-infogan", [40])
            (tmp_path / "runs" / "demo-infogan" / "run.json").write_text('{"steps": 40}')
        if "export" in calls[-1]:
            (tmp_path / "models" / "infogan").mkdir(parents=True)

    monkeypatch.setattr(demo, "run", record)
    monkeypatch.setenv("DEMO_TRAIN_SECONDS", "90")
    args = demo.parse_args(["--var", str(tmp_path), "--train-steps", "150"])
    demo.train_or_reuse(args, tmp_path / "catalog", tmp_path / "models")
    train = next(c for c in calls if "train" in c)
    assert train[train.index("--max-steps") + 1] == "150"
    assert train[train.index("--max-seconds") + 1] == "90"
    export = next(c for c in calls if "export" in c)
    assert (tmp_path / "models" / "infogan" / "exported_step.txt").read_text() == "40"
    assert export[export.index("--name") + 1] == "infogan"
