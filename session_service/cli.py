"""`agentos-session serve [--host H] [--port P]`: the service's command line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from agentos_session.logs import configure_logging

from .config import ConfigError, settings_from_env

log = logging.getLogger("session_service")


def serve(host: str | None, port: int | None) -> int:
    """Serve the /sessions API (on the embedded Postgres when no DSN is configured)."""
    from .app import create_app

    try:
        settings = settings_from_env()
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    settings = dataclasses.replace(settings, host=host or settings.host, port=port or settings.port)
    app = create_app(settings)

    async def announce(_: web.Application) -> None:
        log.info("session service listening on %s:%d", settings.host, settings.port)

    app.on_startup.append(announce)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        handle_signals=True,
        max_line_size=HEAD_LIMIT,
        max_field_size=HEAD_LIMIT,
    )
    return 0


# uvicorn's h11 parser refuses a request head only when 16 KiB of it (max_incomplete_event_size)
# arrive without its end; uvicorn reads 64 KiB at a time, so a head that arrives whole is
# routed up to about that size. aiohttp's defaults (8,190 bytes a line) would answer a long
# query string with a plain-text 400 that agno routes and answers in JSON.
HEAD_LIMIT = 64 * 1024


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve_p = sub.add_parser("serve", help="serve the /sessions API", description=serve.__doc__)
    serve_p.add_argument("--host", default=None, help="listen address (default AGNO_SERVICE_HOST or 0.0.0.0)")
    serve_p.add_argument("--port", type=int, default=None, help="listen port (default AGNO_SERVICE_PORT or 8080)")
    serve_p.add_argument(
        "--log-level",
        default=os.environ.get("AGNO_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default: $AGNO_LOG_LEVEL or INFO)",
    )
    serve_p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    try:
        configure_logging(args.log_level)
    except ValueError as exc:  # before logging exists: said plainly, as argparse says its errors
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    return serve(args.host, args.port)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m session_service`: the service's own commands only."""
    parser = argparse.ArgumentParser(prog="session_service", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
