"""`agentos-session <command>`: gathers the commands of each part (the service, the
comparator, the gateway) under one program. It lives outside the parts so that none of them has to import
another to appear here.

It is also where the installed tool's default files are chosen: a part leaves an option such as
`--rules` unset (None: no rules) because it knows nothing of how it was installed; this program
fills in the files shipped in the package (agentos_session.defaults), so `pip install .` without
a checkout still compares with the project's rules and known differences."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata

import comparator.cli
import session_service.cli
import session_service.migrate
import session_service.transfer
import shadow_proxy.cli

from . import probe
from .defaults import default_file

PARTS = (
    session_service.cli,
    session_service.transfer,
    session_service.migrate,
    comparator.cli,
    shadow_proxy.cli,
    probe,
)

# Option destination -> shipped file it defaults to, wherever a command leaves it unset.
# comparator.yaml names known_differences.yaml, and gateway.yaml names comparator.yaml, both by a
# path relative to the file, so every default resolves inside the package.
PACKAGED_DEFAULTS = {"rules": "comparator.yaml", "config": "gateway.yaml"}


def version() -> str:
    """The installed distribution's version (its metadata, so it is the one pip installed)."""
    try:
        return metadata.version("agentos-session")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "unknown (not installed)"


def use_packaged_defaults(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give every command's unset `--rules`/`--config` the shipped file. An option that already
    has a default (e.g. `gateway --config` from $AGNO_GATEWAY_CONFIG) keeps it."""
    for parser in sub.choices.values():
        unset = {action.dest for action in parser._actions if action.default is None}
        defaults = {dest: str(default_file(name)) for dest, name in PACKAGED_DEFAULTS.items() if dest in unset}
        if defaults:
            parser.set_defaults(**defaults)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentos-session", description="agno /sessions: native service and parity tools"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for part in PARTS:
        part.add_commands(sub)
    use_packaged_defaults(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
