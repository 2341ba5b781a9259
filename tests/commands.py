"""Running an `agentos-session` command in process, with the program's own parser and output
streams the test can read (and mark as a terminal or not)."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from typing import Any

import agentos_session.cli


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Stream(io.StringIO):
    """A text stream that says whether it is a terminal."""

    def __init__(self, tty: bool = False) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run_command(*argv: Any, tty_out: bool = False, tty_err: bool = False) -> Run:
    parser = argparse.ArgumentParser(prog="agentos-session")
    sub = parser.add_subparsers(dest="command", required=True)
    for part in agentos_session.cli.PARTS:
        part.add_commands(sub)
    args = parser.parse_args([str(a) for a in argv])
    out, err = Stream(tty_out), Stream(tty_err)
    code = args.run(args, stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())
