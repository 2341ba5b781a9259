"""`agentos-session serve [--host H] [--port P]`: the service's command line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence

from aiohttp import web

from agentos_session.logs import add_log_level_argument, start_logging

from . import serving
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
    # web.run_app, with bounds on slow, idle and too many clients (serving.py).
    serving.run(app, settings)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve_p = sub.add_parser("serve", help="serve the /sessions API", description=serve.__doc__)
    serve_p.add_argument("--host", default=None, help="listen address (default AGNO_SERVICE_HOST or 0.0.0.0)")
    serve_p.add_argument("--port", type=int, default=None, help="listen port (default AGNO_SERVICE_PORT or 8080)")
    add_log_level_argument(serve_p)
    serve_p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    if not start_logging("serve", args.log_level):
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
