"""``python -m vector_search --port P --data-dir D [--metrics-port M]`` (flags override env)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from fashionrec_common.grpc_server import serve_until_signal
from fashionrec_common.heap import freeze_startup_objects, gc_pause_histogram
from fashionrec_common.logging import configure_logging
from fashionrec_common.metrics import serve_metrics
from vector_search.config import VectorSearchSettings
from vector_search.transport.server import build_server


def parse_args(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="vector_search", description=__doc__)
    parser.add_argument("--port", type=int)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--fsync", choices=["always", "batch", "never"])
    parser.add_argument(
        "--native",
        choices=["auto", "on", "off"],
        help="the C++ Search front on the public port (auto: when built; see the README)",
    )
    args = parser.parse_args(argv)
    return {k: v for k, v in vars(args).items() if v is not None}


async def run(settings: VectorSearchSettings) -> None:
    app = build_server(settings)
    await app.start()
    freeze_startup_objects()  # imports and the indexes loaded from disk (fashionrec_common.heap)
    await serve_until_signal(app)  # the native front (if any) first, then grpcio
    await app.close()


def main(argv: list[str] | None = None) -> None:
    settings = VectorSearchSettings(**parse_args(argv))
    configure_logging("vector-search", settings.log_level, settings.log_json)
    if settings.metrics_port is not None:
        gc_pause_histogram()  # in the default registry, which serve_metrics exposes
        serve_metrics(settings.metrics_port, settings.host)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
