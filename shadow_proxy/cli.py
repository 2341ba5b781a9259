"""`agentos-session gateway --config FILE` (and `replay`, from shadow_proxy.replay)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from aiohttp import web

from agentos_session.logs import add_log_level_argument, start_logging
from agentos_session.loop import new_event_loop
from session_service.serving import HEAD_LIMIT

from . import replay
from .config import GatewayConfigError, load_config

log = logging.getLogger("shadow_proxy")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gateway",
        help="run the shadow gateway in front of legacy and native",
        description="Run the shadow gateway (config/gateway.yaml documents every key).",
    )
    p.add_argument(
        "--config",
        default=os.environ.get("AGNO_GATEWAY_CONFIG"),
        metavar="FILE",
        help="gateway YAML; paths in it are relative to it (default: $AGNO_GATEWAY_CONFIG, else the "
        "shipped gateway.yaml: %(default)s)",
    )
    p.add_argument(
        "--host", default=None, help="listen address (default: $AGNO_GATEWAY_HOST, else listen.host of --config)"
    )
    p.add_argument(
        "--port", type=int, default=None, help="listen port (default: $AGNO_GATEWAY_PORT, else listen.port of --config)"
    )
    add_log_level_argument(p)
    p.set_defaults(run=run_gateway)
    replay.add_commands(sub)


def run_gateway(args: argparse.Namespace) -> int:
    from .app import create_app

    if not start_logging("gateway", args.log_level):
        return 2
    try:
        config = load_config(args.config)
    except GatewayConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    listen = dataclasses.replace(
        config.listen, host=args.host or config.listen.host, port=args.port or config.listen.port
    )
    config = dataclasses.replace(config, listen=listen)
    app = create_app(config)

    async def announce(_: web.Application) -> None:
        log.info("gateway listening on %s:%d", listen.host, listen.port)

    app.on_startup.append(announce)
    # The request-head limits of the native service (uvicorn's, so a long query string is routed
    # through the gateway as the AgentOS routes it, not refused with aiohttp's plain-text 400).
    # The native service's loop (agentos_session/loop.py: asyncio's, uvloop with
    # AGNO_EVENT_LOOP=uvloop), so both servers are chosen and measured alike.
    web.run_app(
        app,
        host=listen.host,
        port=listen.port,
        loop=new_event_loop(),
        print=None,
        access_log=None,
        max_line_size=HEAD_LIMIT,
        max_field_size=HEAD_LIMIT,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shadow_proxy")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.run(args))
