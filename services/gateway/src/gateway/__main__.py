"""`python -m gateway [serve] [--dev]` runs REST + gRPC; `python -m gateway ingest ...` indexes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from fashionrec_common.logging import configure_logging
from gateway import ingest_cli, workers
from gateway.config import GatewaySettings
from gateway.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve_p = sub.add_parser("serve", help="run the REST and gRPC servers (default)")
    serve_p.add_argument("--dev", action="store_true", help="generate missing secrets")
    serve_p.add_argument(
        "--workers",
        type=int,
        help="REST worker processes on one port (GATEWAY_WORKERS, default 1; 0 = one per "
        "usable core, at most 4, when REDIS_URL is set)",
    )
    ingest_p = sub.add_parser("ingest", help="embed a catalogue folder and index it")
    ingest_cli.add_arguments(ingest_p)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["serve", *argv]
    args = parser.parse_args(argv)
    if args.command == "ingest":
        configure_logging("gateway-ingest", "INFO", json_lines=False)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per batch is noise
        return ingest_cli.main(args)
    overrides: dict[str, object] = {"dev": True} if args.dev else {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    settings = GatewaySettings(**overrides)
    configure_logging("gateway", settings.log_level, settings.log_json)
    count = settings.worker_count(workers.available_cores())
    if count > 1:
        return workers.run(settings, count)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
