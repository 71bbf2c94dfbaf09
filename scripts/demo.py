"""`make demo`: run the whole system locally on a sample catalogue.

Steps: pick the catalogue (CATALOG_DIR), take a stratified sample, train a short
InfoGAN run or reuse the one trained before (exporting a newer checkpoint, also one of a
background run stopped with Ctrl-C, as a new version), export the ImageNet baselines that
have real weights, start the services of fashionrec_testing.system under one supervisor,
index the sample, start the gateway, print the URLs, and keep training in the background so the next
`make demo` serves a better model. Ctrl-C stops all. The end-to-end tests run these same
steps (prepare, local_system, index_catalog) on a tiny catalogue.

VECTOR_STORE=milvus (`make demo VECTOR_STORE=milvus`) serves the shop from Milvus Lite
(a file in --var) instead of the FAISS service, which then does not start.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from embedder.evaluation.routing import SERVED_ROUTER
from embedder.repository import latest_version
from fashionrec_testing.supervisor import Supervisor
from fashionrec_testing.system import LocalSystem, default_ports

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DEFAULT_CATALOG = ROOT.parent / "shared" / "data" / "fashion-product-images-small"
WEIGHTS = ROOT.parent / "shared" / "weights" / "imagenet"
# Routes uploads without a catalogue when exported; make eval checks the same model's routing
# on the unseen Berg set (docs/evaluation.md).
ROUTING_MODEL = SERVED_ROUTER
AVAILABLE_BASELINES = """
import json, sys
from embedder.baselines.registry import available
print(json.dumps([name for name, row in available(sys.argv[1]).items() if row.available]))
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    env = os.environ.get
    parser.add_argument(
        "--catalog",
        type=Path,
        default=Path(env("CATALOG_DIR", str(DEFAULT_CATALOG))),
        help="folder with images/ and labels.csv (env CATALOG_DIR)",
    )
    parser.add_argument(
        "--var", type=Path, default=ROOT / "var", help="state folder (models, indexes, votes)"
    )
    # The sizes of the demo, each with its default from the environment as DEMO_<OPTION>.
    for flag, default, text in (
        ("--sample", 3000, "images in the demo catalogue, stratified by class; 0 = all"),
        ("--train-steps", 150, "steps of the first, short InfoGAN run"),
        ("--train-seconds", 150, "time budget of that run (a slow CPU stops before the steps)"),
        ("--background-epochs", 10, "train in the background up to this many epochs; 0 = off"),
    ):
        var = "DEMO_" + flag.removeprefix("--").replace("-", "_").upper()
        parser.add_argument(
            flag, type=int, default=int(env(var, default)), help=f"{text} (env {var})"
        )
    parser.add_argument(
        "--baselines",
        default=env("DEMO_BASELINES", "available"),
        help="ImageNet baselines to serve beside the InfoGAN: 'available' (every one whose "
        "weights are here, see `python -m embedder baselines list`), a comma list, or 'none' "
        "(env DEMO_BASELINES)",
    )
    parser.add_argument(
        "--routing-model",
        default=env("DEMO_ROUTING_MODEL", "auto"),
        help="GATEWAY_ROUTING_MODEL: the model whose indexes route uploads without a "
        f"catalogue; 'auto' = {ROUTING_MODEL} when it is exported, else the requested model "
        "(docs/evaluation.md, routing; env DEMO_ROUTING_MODEL)",
    )
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="SERVICE.NAME=N",
        help="move one port, e.g. --port gateway.http=9080 (default: the ports of "
        "fashionrec_testing.system, the same as deploy/)",
    )
    parser.add_argument(
        "--vector-store",
        choices=["faiss", "milvus"],
        default=env("VECTOR_STORE", "faiss"),
        help="faiss: our vector-search service; milvus: Milvus Lite in the gateway, a file "
        "in --var (env VECTOR_STORE)",
    )
    parser.add_argument(
        "--check", action="store_true", help="start, index, check every service is ready, then exit"
    )
    args = parser.parse_args(argv)
    args.catalog, args.var = args.catalog.resolve(), args.var.resolve()
    return args


def say(message: str) -> None:
    print(f"\033[1mdemo\033[0m  {message}" if sys.stdout.isatty() else f"demo  {message}")
    sys.stdout.flush()


def run(argv: list[str], **kwargs: object) -> None:
    say("$ " + " ".join(str(a) for a in argv))
    subprocess.run([str(a) for a in argv], check=True, cwd=ROOT, **kwargs)  # noqa: S603


def sample_catalog(catalog: Path, out: Path, size: int, seed: int = 0) -> Path:
    """Write a stratified sample of ``catalog`` to ``out`` (labels.csv + images symlink)."""
    labels = catalog / "labels.csv"
    out.mkdir(parents=True, exist_ok=True)
    link = out / "images"
    if not link.exists():
        link.symlink_to((catalog / "images").resolve())
    with labels.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if 0 < size < len(rows):
        by_class: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            by_class[row["class"]].append(row)
        rng = random.Random(seed)
        picked: list[dict[str, str]] = []
        for members in by_class.values():
            take = max(1, round(size * len(members) / len(rows)))
            picked += rng.sample(members, min(take, len(members)))
        rows = sorted(picked, key=lambda r: r["path"])
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    say(f"sample catalogue: {len(rows)} images from {catalog} -> {out}")
    return out


def run_dir(args: argparse.Namespace) -> Path:
    return args.var / "runs" / "demo-infogan"


def newest_checkpoint(run: Path) -> tuple[int, Path] | None:
    """Step and path of the run's newest checkpoint, from TensorFlow's ``checkpoints/checkpoint``
    index (rewritten after every save, so it also covers a run stopped before run.json)."""
    index = run / "checkpoints" / "checkpoint"
    if not index.exists():
        return None
    found = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', index.read_text(), re.MULTILINE)
    if found is None:
        return None
    path = run / "checkpoints" / found.group(1)  # an absolute path stays absolute
    step = re.search(r"-(\d+)$", path.name)
    if step is None or not path.with_name(path.name + ".index").exists():
        return None
    return int(step.group(1)), path


def checkpoint_view(run: Path, summary: dict[str, object], step: int, checkpoint: Path) -> Path:
    """A folder beside ``run`` that `python -m embedder export --run` reads as a run whose chosen
    checkpoint is ``checkpoint``, for a run.json older than the newest checkpoint: runs trained
    before run.json was rewritten at every checkpoint, or stopped between a save and that
    rewrite (export takes the checkpoint run.json names). Nothing is written into ``run``."""
    view = run.with_name(f"{run.name}@{checkpoint.name}")
    view.mkdir(exist_ok=True)
    chosen = {**summary, "steps": step, "checkpoint": str(checkpoint.resolve())}
    (view / "run.json").write_text(json.dumps(chosen, indent=2))
    split = view / "split.json"
    if not split.exists():
        split.symlink_to((run / "split.json").resolve())
    return view


def train_or_reuse(args: argparse.Namespace, catalog: Path, models: Path) -> None:
    """Reuse the exported InfoGAN; export a newer checkpoint (of a finished run, or of a
    background run stopped with Ctrl-C) as a new version; with no run yet, train first."""
    rdir = run_dir(args)
    exported = models / "infogan"
    run_json = rdir / "run.json"
    state = json.loads(run_json.read_text()) if run_json.exists() else {}
    marker = exported / "exported_step.txt"
    exported_step = int(marker.read_text()) if marker.exists() else -1
    newest = newest_checkpoint(rdir) if state else None
    trained = max(state.get("steps", -1), newest[0] if newest else -1)
    if latest_version(exported) is not None and trained <= exported_step:
        say(f"reusing InfoGAN version {latest_version(exported)} (step {exported_step})")
        return
    if not state:
        say(f"no InfoGAN yet: a SHORT run ({args.train_steps} steps or {args.train_seconds} s);")
        say("training continues in the background and the next `make demo` serves the better model")
        run([PY, "-m", "embedder", "train", "--catalog", catalog, "--out", rdir,
             "--max-steps", args.train_steps, "--max-seconds", args.train_seconds,
             "--image-size", "64"])  # fmt: skip
        state = json.loads(run_json.read_text())
        newest = newest_checkpoint(rdir)
    source, step = rdir, int(state.get("steps", 0))
    if newest is not None and newest[0] > step:
        say(f"the background run got to step {newest[0]} (its run.json says step {step});")
        say(f"exporting its newest checkpoint {newest[1].name}")
        source, step = checkpoint_view(rdir, state, *newest), newest[0]
    # The default head (pooled conv5 + PCA-whitening, label-free) won in docs/evaluation.md.
    run([PY, "-m", "embedder", "export", "--run", source, "--head", "pool5-pca",
         "--model-base", models, "--name", "infogan"])  # fmt: skip
    marker.write_text(str(step))


def available_baselines() -> list[str]:
    """Baselines with real ImageNet weights here (a child process: it imports TensorFlow)."""
    out = subprocess.run(  # noqa: S603
        [PY, "-c", AVAILABLE_BASELINES, str(WEIGHTS)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout  # fmt: skip
    return list(json.loads(out.strip().splitlines()[-1]))


def export_baselines(models: Path, wanted: str) -> list[str]:
    """Export the baselines to serve (``--baselines``) that are not exported yet."""
    if wanted == "none":
        return []
    if wanted == "available":
        names = available_baselines()
        say(f"ImageNet baselines with weights here: {', '.join(names) or 'none'}")
    else:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
    for name in names:
        if latest_version(models / name) is None:
            run([PY, "-m", "embedder", "baselines", "export", "--name", name,
                 "--model-base", models, "--weights-dir", WEIGHTS])  # fmt: skip
    return names


def prepare(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """Sample the catalogue, train or reuse the InfoGAN, export the baselines: (the catalogue
    to serve, the model names to index)."""
    models = args.var / "models"
    models.mkdir(parents=True, exist_ok=True)
    catalog = sample_catalog(args.catalog, args.var / "demo-catalog", args.sample)
    train_or_reuse(args, args.catalog, models)  # train on the whole catalogue
    return catalog, ["infogan", *export_baselines(models, args.baselines)]


def routing_model(args: argparse.Namespace) -> str:
    """What routes uploads without a catalogue (empty: the requested model's own vote)."""
    if args.routing_model != "auto":
        return args.routing_model
    exported = latest_version(args.var / "models" / ROUTING_MODEL) is not None
    return ROUTING_MODEL if exported else ""


def local_system(
    args: argparse.Namespace, catalog: Path, ports: dict[str, dict[str, int]] | None = None
) -> LocalSystem:
    """The demo's system: state in ``--var``, the ports of the description (or ``--port``)."""
    if ports is None:
        ports = default_ports()
        for move in args.port:
            where, _, number = move.partition("=")
            service, _, name = where.partition(".")
            if name not in ports.get(service, {}):
                raise SystemExit(f"--port {move}: no port {where} in fashionrec_testing.system")
            ports[service][name] = int(number)
    env = os.environ.get
    return LocalSystem(
        models=args.var / "models",
        catalog=catalog,
        state=args.var,
        ports=ports,
        api_key=env("GATEWAY_API_KEYS", "demo-key"),
        vote_secret=env("FASHIONREC_VOTE_TOKEN_SECRET", "demo-only-vote-token-secret"),
        admin_key=env("ANNOTATION_ADMIN_KEY", "demo-admin"),
        # Internal gRPC tokens: fresh each run, since every run starts its own services.
        vector_search_token=secrets.token_urlsafe(24),
        gateway_grpc_token=secrets.token_urlsafe(24),
        vector_store=args.vector_store,
        routing_model=routing_model(args),
    )


def main() -> int:
    args = parse_args()
    args.var.mkdir(parents=True, exist_ok=True)
    if not (args.catalog / "labels.csv").exists():
        say(f"no catalogue at {args.catalog}: point CATALOG_DIR at a folder with images/ and a")
        say("labels.csv (columns path, category, class, product_id, ...), e.g.")
        say("  make demo CATALOG_DIR=/data/my-shop  (see README, 'Your own catalogue')")
        return 2
    catalog, model_names = prepare(args)
    system = local_system(args, catalog)
    with Supervisor() as sup:
        start_and_index(args, system, sup, model_names)
        say(f"shop and annotation UI:  {system.url('annotation')}/")
        say(f"gateway REST + OpenAPI:  {system.url('gateway')}/docs")
        say(f"gateway gRPC: {system.address('gateway')} (Bearer {system.gateway_grpc_token})")
        say(f"annotator token for /annotate: {demo_annotator(args, system)}")
        say("more annotators: .venv/bin/python -m annotation add-annotator NAME")
        if args.check:
            return check_ready(system)
        if args.background_epochs:
            sup.start("trainer", ["nice", "-n", "10", PY, "-m", "embedder", "train",
                      "--catalog", str(args.catalog), "--out", str(run_dir(args)),
                      "--epochs", str(args.background_epochs), "--image-size", "64"])  # fmt: skip
        say("serving; Ctrl-C stops everything")
        try:
            while (dead := sup.first_exited()) is None or dead.name == "trainer":
                time.sleep(1)
            say(f"{dead.name} exited with code {dead.process.returncode}; stopping")
            return 1
        except KeyboardInterrupt:
            say("stopping")
            return 0


def demo_annotator(args: argparse.Namespace, system: LocalSystem) -> str:
    """A sign-in token for the annotator page, created once and kept in var/."""
    saved = args.var / "demo-annotator-token.txt"
    if not saved.exists():
        made = subprocess.run(  # noqa: S603
            [PY, "-m", "annotation", "add-annotator", f"demo-{int(time.time())}"],
            check=True, capture_output=True, text=True, cwd=ROOT,
            env=system.environ("annotation"),
        )  # fmt: skip
        saved.write_text(made.stdout.strip().splitlines()[-1])
    return saved.read_text().strip()


def start_and_index(
    args: argparse.Namespace, system: LocalSystem, sup: Supervisor, model_names: list[str]
) -> None:
    """Every service but the gateway, the index, then the gateway: the ingest CLI is a
    process of its own, and Milvus Lite lets one process at a time open its file."""
    system.start_all(sup, [name for name in system.services() if name != "gateway"])
    index_catalog(args, system, model_names)
    system.start_all(sup, ["gateway"])


def ingest_argv(system: LocalSystem, model_names: list[str]) -> list[str]:
    """`python -m gateway ingest` into the system's vector store (its env says which)."""
    argv = [PY, "-m", "gateway", "ingest", "--catalog", str(system.catalog)]
    argv += ["--models", ",".join(model_names), "--embedder-url", system.embedder_url()]
    if system.vector_store == "faiss":
        argv += ["--vector-search", system.address("vector-search")]
    return argv


def index_catalog(args: argparse.Namespace, system: LocalSystem, model_names: list[str]) -> None:
    """Embed and upsert the sample with each model, unless that exact state is indexed."""
    marker = args.var / "indexed.json"
    versions = {m: latest_version(system.models / m) for m in model_names}
    wanted = {
        "catalog": str(system.catalog),
        "sample": args.sample,
        "versions": versions,
        "store": system.vector_store,
    }
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        say("index is up to date with the exported models; not re-indexing")
        return
    run(ingest_argv(system, model_names), env=system.environ("gateway"))
    marker.write_text(json.dumps(wanted))


def check_ready(system: LocalSystem) -> int:
    """Every service's readiness probe, as the description defines it."""
    bad = [name for name in system.services() if not system.ready(name)]
    say("ready: " + ("all" if not bad else "NOT " + ", ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
