"""The program's surface as an operator meets it: every argument documented, `--version`, and the
installed tool's default files (the shipped rules and gateway.yaml, not "no rules")."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from agentos_session.cli import PACKAGED_DEFAULTS, build_parser
from agentos_session.defaults import default_file
from comparator import Rules

# Actions argparse documents itself (-h, --version) or that only group subcommands.
SELF_DOCUMENTED = (argparse._HelpAction, argparse._VersionAction)


def walk(parser: argparse.ArgumentParser, path: str = "agentos-session") -> Iterator[tuple[str, argparse.Action]]:
    """(command path, action) for every argument of the parser and of every subcommand below it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:  # the one-line help each subcommand shows
                yield f"{path} {choice.dest}", choice
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_argument_of_every_command_has_help() -> None:
    seen = list(walk(build_parser()))
    commands = {path for path, _ in seen}
    assert {
        f"agentos-session {c}" for c in ("serve", "gateway", "compare", "replay", "learn-noise", "probe")
    } <= commands
    missing = [
        f"{path}: {'/'.join(a.option_strings) or a.dest}"
        for path, a in seen
        if not isinstance(a, SELF_DOCUMENTED) and not (a.help or "").strip()
    ]
    assert missing == []


def test_the_walk_finds_an_argument_without_help() -> None:
    """The check above can fail: a parser with one undocumented option is reported."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers().add_parser("x", help="x")
    sub.add_argument("--quiet", action="store_true")
    assert [a.dest for _, a in walk(parser) if not isinstance(a, SELF_DOCUMENTED) and not a.help] == ["quiet"]


def test_version_is_the_installed_distributions() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "agentos_session.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"agentos-session {metadata.version('agentos-session')}"


def command(name: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


@pytest.mark.parametrize("name", ["compare", "replay", "learn-noise"])
def test_commands_default_to_the_shipped_rules(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = command(name).get_default("rules")
    assert rules == str(default_file("comparator.yaml"))
    # ... which carry the known differences, so `page=0` is `expected`, not a mismatch.
    assert "list-page-zero" in {k.id for k in Rules.load(rules).known}


def test_gateway_defaults_to_the_shipped_config_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AGNO_GATEWAY_CONFIG", raising=False)
    assert command("gateway").get_default("config") == str(default_file("gateway.yaml"))
    mine = tmp_path / "gateway.yaml"
    monkeypatch.setenv("AGNO_GATEWAY_CONFIG", str(mine))
    assert command("gateway").get_default("config") == str(mine)


def test_shipped_files_name_each_other_inside_the_package() -> None:
    from shadow_proxy.config import load_config

    config = load_config(default_file("gateway.yaml"), env={})
    assert config.rules == str(default_file("comparator.yaml"))
    assert set(PACKAGED_DEFAULTS.values()) == {"comparator.yaml", "gateway.yaml"}
    assert default_file("known_differences.yaml").is_file()
