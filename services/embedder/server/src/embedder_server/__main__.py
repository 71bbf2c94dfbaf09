"""``python -m embedder_server``: flags like tensorflow_model_server's."""

from __future__ import annotations

import asyncio
import sys

from embedder_server.config import ServingSettings, options_from_args
from embedder_server.transport.server import serve
from fashionrec_common.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    settings = ServingSettings()
    configure_logging("embedder-serving", settings.log_level, settings.log_json)
    opts = options_from_args(argv if argv is not None else sys.argv[1:], settings)
    asyncio.run(serve(opts))


if __name__ == "__main__":
    main()
