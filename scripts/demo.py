"""`make demo`: run the whole system locally on a sample catalogue.

Steps: pick the catalogue (CATALOG_DIR), take a stratified sample, train a short
InfoGAN run or reuse the one trained before (exporting a newer checkpoint as a new
version), export the ImageNet baselines that have real weights, start every
service under one supervisor, index the sample, print the URLs, and keep training
in the background so the next `make demo` serves a better model. Ctrl-C stops all.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from fashionrec_common.supervisor import Supervisor, http_ok, tcp_open

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DEFAULT_CATALOG = ROOT.parent / "shared" / "data" / "fashion-product-images-small"


def parse_args() -> argparse.Namespace:
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
    parser.add_argument(
        "--sample",
        type=int,
        default=int(env("DEMO_SAMPLE", "3000")),
        help="images in the demo catalogue, stratified by class (env DEMO_SAMPLE; 0 = all)",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=int(env("DEMO_TRAIN_STEPS", "150")),
        help="steps of the first, short InfoGAN run (env DEMO_TRAIN_STEPS)",
    )
    parser.add_argument(
        "--background-epochs",
        type=int,
        default=int(env("DEMO_BACKGROUND_EPOCHS", "10")),
        help="keep training in the background up to this many epochs; 0 = off",
    )
    parser.add_argument("--gateway-port", type=int, default=int(env("GATEWAY_PORT", "8080")))
    parser.add_argument("--annotation-port", type=int, default=int(env("ANNOTATION_PORT", "8090")))
    parser.add_argument("--embedder-rest-port", type=int, default=8501)
    parser.add_argument("--embedder-grpc-port", type=int, default=8500)
    parser.add_argument("--vector-search-port", type=int, default=50051)
    parser.add_argument(
        "--check", action="store_true", help="start, index, check every health endpoint, then exit"
    )
    return parser.parse_args()


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


def latest_version(model_dir: Path) -> int | None:
    versions = [int(p.name) for p in model_dir.glob("*") if p.name.isdigit()]
    return max(versions) if versions else None


def run_dir(args: argparse.Namespace) -> Path:
    return args.var / "runs" / "demo-infogan"


def train_or_reuse(args: argparse.Namespace, catalog: Path, models: Path) -> None:
    """Reuse the exported InfoGAN; export a newer finished run as a new version; else train."""
    rdir = run_dir(args)
    exported = models / "infogan"
    run_json = rdir / "run.json"
    state = json.loads(run_json.read_text()) if run_json.exists() else {}
    marker = exported / "exported_step.txt"
    exported_step = int(marker.read_text()) if marker.exists() else -1
    if latest_version(exported) is not None and state.get("steps", -1) <= exported_step:
        say(f"reusing InfoGAN version {latest_version(exported)} (step {exported_step})")
        return
    if not state:
        say(f"no trained InfoGAN yet: a SHORT run of {args.train_steps} steps (minutes) first;")
        say("training continues in the background and the next `make demo` serves the better model")
        run([PY, "-m", "embedder", "train", "--catalog", catalog, "--out", rdir,
             "--max-steps", args.train_steps, "--image-size", "64"])  # fmt: skip
        state = json.loads(run_json.read_text())
    # The default head (pooled conv5 + PCA-whitening, label-free) won in docs/evaluation.md.
    run([PY, "-m", "embedder.improve", "export", "--run", rdir, "--head", "pool5-pca",
         "--model-base", models, "--name", "infogan"])  # fmt: skip
    marker.write_text(str(state.get("steps", 0)))


def export_baselines(models: Path) -> list[str]:
    """Export the ImageNet baselines that have real weights here (MobileNetV2 first)."""
    weights = ROOT.parent / "shared" / "weights" / "imagenet"
    names = []
    for name in ("mobilenet_v2",):
        if latest_version(models / name) is None:
            if not weights.exists():
                say(f"skipping {name}: no ImageNet weights at {weights}")
                continue
            run([PY, "-m", "embedder.baselines", "export", "--name", name,
                 "--model-base", models, "--weights-dir", weights])  # fmt: skip
        names.append(name)
    return names


def main() -> int:
    args = parse_args()
    args.var.mkdir(parents=True, exist_ok=True)
    if not (args.catalog / "labels.csv").exists():
        say(f"no catalogue at {args.catalog}: point CATALOG_DIR at a folder with images/ and a")
        say("labels.csv (columns path, category, class, product_id, ...), e.g.")
        say("  make demo CATALOG_DIR=/data/my-shop  (see README, 'Your own catalogue')")
        return 2
    models = args.var / "models"
    models.mkdir(parents=True, exist_ok=True)
    catalog = sample_catalog(args.catalog, args.var / "demo-catalog", args.sample)
    train_or_reuse(args, args.catalog, models)  # train on the whole catalogue
    model_names = ["infogan", *export_baselines(models)]
    secret = os.environ.get("FASHIONREC_VOTE_TOKEN_SECRET", "demo-only-vote-token-secret")
    api_key = os.environ.get("GATEWAY_API_KEYS", "demo-key")
    gateway_url = f"http://127.0.0.1:{args.gateway_port}"
    env = {
        "GATEWAY_EMBEDDER_URL": f"http://127.0.0.1:{args.embedder_rest_port}",
        "GATEWAY_VECTOR_SEARCH_SHARDS": f"127.0.0.1:{args.vector_search_port}",
        "GATEWAY_ANNOTATION_URL": f"http://127.0.0.1:{args.annotation_port}",
        "GATEWAY_CATALOG_DIR": str(catalog),
        "GATEWAY_API_KEYS": api_key,
        "GATEWAY_VOTE_TOKEN_SECRET": secret,
        "GATEWAY_PORT": str(args.gateway_port),
        "GATEWAY_CORS_ORIGINS": f"http://127.0.0.1:{args.annotation_port}",
        "ANNOTATION_VOTE_TOKEN_SECRET": secret,
        "ANNOTATION_DATABASE_URL": f"sqlite:///{args.var / 'annotation.db'}",
        "ANNOTATION_GATEWAY_PUBLIC_URL": gateway_url,
        "ANNOTATION_ADMIN_KEY": os.environ.get("ANNOTATION_ADMIN_KEY", "demo-admin"),
        "ANNOTATION_PORT": str(args.annotation_port),
    }
    os.environ.update(env)
    with Supervisor() as sup:
        embedder = sup.start("embedder", [PY, "-m", "embedder.serving",
                             "--port", str(args.embedder_grpc_port),
                             "--rest_api_port", str(args.embedder_rest_port),
                             "--model_config_file", str(models / "models.config"),
                             "--enable_batching"])  # fmt: skip
        vsearch = sup.start("vector-search", [PY, "-m", "vector_search",
                            "--port", str(args.vector_search_port),
                            "--data-dir", str(args.var / "vector-search")])  # fmt: skip
        annotation = sup.start("annotation", [PY, "-m", "annotation"])
        gateway = sup.start("gateway", [PY, "-m", "gateway"])
        rest = f"http://127.0.0.1:{args.embedder_rest_port}"
        sup.wait_until(embedder, lambda: all(http_ok(f"{rest}/v1/models/{m}") for m in model_names))
        sup.wait_until(vsearch, lambda: tcp_open("127.0.0.1", args.vector_search_port))
        sup.wait_until(
            annotation, lambda: http_ok(f"http://127.0.0.1:{args.annotation_port}/healthz")
        )
        sup.wait_until(gateway, lambda: http_ok(f"{gateway_url}/healthz"))
        index_catalog(args, catalog, model_names)
        say(f"shop and annotation UI:  http://127.0.0.1:{args.annotation_port}/")
        say(f"gateway REST + OpenAPI:  {gateway_url}/docs")
        say(f"annotator token for /annotate: {demo_annotator(args)}")
        say("more annotators: .venv/bin/python -m annotation add-annotator NAME")
        if args.check:
            return check_health(args, gateway_url)
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


def demo_annotator(args: argparse.Namespace) -> str:
    """A sign-in token for the annotator page, created once and kept in var/."""
    saved = args.var / "demo-annotator-token.txt"
    if not saved.exists():
        made = subprocess.run(  # noqa: S603
            [PY, "-m", "annotation", "add-annotator", f"demo-{int(time.time())}"],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        saved.write_text(made.stdout.strip().splitlines()[-1])
    return saved.read_text().strip()


def index_catalog(args: argparse.Namespace, catalog: Path, model_names: list[str]) -> None:
    """Embed and upsert the sample with each model, unless that exact state is indexed."""
    marker = args.var / "indexed.json"
    versions = {m: latest_version(args.var / "models" / m) for m in model_names}
    wanted = {"catalog": str(catalog), "sample": args.sample, "versions": versions}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        say("index is up to date with the exported models; not re-indexing")
        return
    run([PY, "-m", "gateway", "ingest", "--catalog", catalog, "--models", ",".join(model_names),
         "--embedder-url", os.environ["GATEWAY_EMBEDDER_URL"],
         "--shards", os.environ["GATEWAY_VECTOR_SEARCH_SHARDS"]])  # fmt: skip
    marker.write_text(json.dumps(wanted))


def check_health(args: argparse.Namespace, gateway_url: str) -> int:
    urls = {
        "embedder": f"http://127.0.0.1:{args.embedder_rest_port}/v1/models/infogan",
        "gateway": f"{gateway_url}/healthz",
        "gateway ready": f"{gateway_url}/readyz",
        "annotation": f"http://127.0.0.1:{args.annotation_port}/healthz",
    }
    bad = [name for name, url in urls.items() if not http_ok(url, timeout_s=5)]
    if not tcp_open("127.0.0.1", args.vector_search_port):
        bad.append("vector-search")
    say("health: " + ("all ok" if not bad else "FAILED: " + ", ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
