"""`agentos-session <command>`: gathers the commands of each part (the service, the
comparator, the gateway) under one program. It lives outside the parts so that none of them has to import
another to appear here."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

import comparator.cli
import session_service.cli
import shadow_proxy.cli

PARTS = (session_service.cli, comparator.cli, shadow_proxy.cli)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="agentos-session", description="agno /sessions: native service and parity tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for part in PARTS:
        part.add_commands(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
