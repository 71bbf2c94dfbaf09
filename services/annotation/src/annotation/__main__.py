"""``python -m annotation [serve | migrate | add-annotator NAME]``; serve is the default."""

from __future__ import annotations

import argparse
import logging
import sys

from annotation.config import AnnotationSettings

log = logging.getLogger("annotation")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m annotation", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run migrations, then the HTTP server (default)")
    serve.add_argument("--port", type=int, default=None, help="overrides ANNOTATION_PORT")
    sub.add_parser("migrate", help="alembic upgrade head, then exit")
    add = sub.add_parser("add-annotator", help="create an annotator and print its token")
    add.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = AnnotationSettings()
    from fashionrec_common.logging import configure_logging

    configure_logging("annotation", settings.log_level, settings.log_json)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    command = args.command or "serve"
    if command == "serve":
        import uvicorn

        from annotation.transport.rest.app import create_app
        from fashionrec_common.heap import freeze_startup_objects

        port = args.port if getattr(args, "port", None) is not None else settings.port
        app = create_app(settings)
        freeze_startup_objects()  # imports and the app: out of every full GC's walk, as elsewhere
        uvicorn.run(app, host=settings.host, port=port, log_config=None, access_log=False)
        return 0

    from annotation.adapters.db.migrate import upgrade
    from annotation.adapters.db.repository import SqlVoteRepository
    from annotation.adapters.db.session import make_engine
    from annotation.domain.votes import VoteService
    from annotation.errors import AnnotatorExists

    engine = make_engine(settings.database_url)
    upgrade(engine)
    if command == "migrate":
        log.info("database at head")
        return 0
    service = VoteService(SqlVoteRepository(engine), token_secret="", token_max_age_s=1)
    try:
        annotator, token = service.register(args.name)
    except AnnotatorExists as exc:
        log.error("%s", exc)
        return 1
    log.info("annotator %s created (id %d); the token below is shown once", annotator.name,
             annotator.id)  # fmt: skip
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
