"""`python -m gateway ingest`: embed a catalogue folder through the embedder and index it."""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from tqdm import tqdm

from gateway.adapters.resilience import CallPolicy
from gateway.config import EmbedderTlsSettings, VectorStoreSettings
from gateway.domain.images import check_image
from gateway.domain.ports import Embedder
from gateway.domain.types import StoredItem, index_name
from gateway.errors import GatewayError, InvalidInput
from gateway.wiring import build_embedder, build_vector_store

log = logging.getLogger(__name__)
MAX_BYTES = 16 * 1024 * 1024


class IngestSettings(BaseSettings, VectorStoreSettings, EmbedderTlsSettings):
    """How to reach the vector store (FAISS service or Milvus) and the embedder securely: the
    gateway's own variables, read from the environment so tokens never show on a command line."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, required=True, help="folder with labels.csv")
    parser.add_argument("--labels", type=Path, help="default: CATALOG/labels.csv")
    parser.add_argument("--models", default="infogan", help="comma-separated model names")
    parser.add_argument(
        "--embedder-url",
        default="grpc://127.0.0.1:8500",
        help="TF Serving's REST API (http://host:8501) or its gRPC API (grpc://host:8500)",
    )
    parser.add_argument(
        "--vector-search",
        default="127.0.0.1:50051",
        help="the FAISS service, host:port (unused with GATEWAY_VECTOR_STORE=milvus)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=0, help="first N rows only (0 = all)")


def read_labels(path: Path, limit: int = 0) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"path", "category", "product_id"} - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"{path}: missing columns {sorted(missing)}")
    return rows[:limit] if limit else rows


def metadata(row: dict[str, str]) -> dict[str, str]:
    """The contract's metadata keys, from labels.csv columns."""
    return {
        "category": row["category"],
        "class": row.get("class", ""),
        "colour": row.get("base_colour", ""),
        "title": row.get("product_title", ""),
        "image": row["path"],
        "in_stock": "true",
    }


async def _embed(
    embedder: Embedder, model: str, images: Sequence[bytes], ids: Sequence[str]
) -> list[tuple[str, list[float]]]:
    """The whole batch, or item by item when the embedder rejects it (to skip the bad one)."""
    try:
        vectors = await embedder.embed(model, images)
        return list(zip(ids, vectors, strict=True))
    except InvalidInput:
        if len(images) == 1:
            log.warning("embedder rejected %s; skipped", ids[0])
            return []
    out = []
    for item_id, image in zip(ids, images, strict=True):
        out.extend(await _embed(embedder, model, [image], [item_id]))
    return out


async def ingest(args: argparse.Namespace, settings: IngestSettings | None = None) -> int:
    catalog: Path = args.catalog
    rows = read_labels(args.labels or catalog / "labels.csv", args.limit)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    settings = settings or IngestSettings()
    embedder = build_embedder(
        args.embedder_url, CallPolicy(timeout_s=120.0), tls=settings.embedder_tls
    )
    store = build_vector_store(settings, args.vector_search, CallPolicy(timeout_s=60.0))
    loaded: list[tuple[dict[str, str], bytes]] = []
    skipped = 0
    for row in tqdm(rows, desc="reading", unit="img"):
        try:
            data = check_image((catalog / row["path"]).read_bytes(), MAX_BYTES, 50_000_000)
        except (OSError, GatewayError) as exc:
            log.warning("skipping %s: %s", row["path"], exc)
            skipped += 1
            continue
        loaded.append((row, data))
    by_category: dict[str, list[tuple[dict[str, str], bytes]]] = defaultdict(list)
    for row, data in loaded:
        by_category[row["category"]].append((row, data))
    written = 0
    try:
        for model in models:
            for category, items in by_category.items():
                index = index_name(category, model)
                created = False
                bar = tqdm(total=len(items), desc=index, unit="img")
                for i in range(0, len(items), args.batch_size):
                    chunk = items[i : i + args.batch_size]
                    ids = [r["product_id"] for r, _ in chunk]
                    pairs = await _embed(embedder, model, [d for _, d in chunk], ids)
                    skipped += len(chunk) - len(pairs)
                    if pairs and not created:
                        await store.ensure_index(index, len(pairs[0][1]))
                        created = True
                    meta = {r["product_id"]: metadata(r) for r, _ in chunk}
                    await store.upsert(index, [StoredItem(i, meta[i], v) for i, v in pairs])
                    written += len(pairs)
                    bar.update(len(chunk))
                bar.close()
    finally:
        await embedder.close()
        await store.close()
    log.info("indexed %d vectors (%d models); skipped %d images", written, len(models), skipped)
    return 0 if written else 1


def main(args: argparse.Namespace) -> int:
    return asyncio.run(ingest(args, IngestSettings()))
