"""Which environment variables a piece of source really reads, from its syntax tree.

A hand-kept list of "the variables the service reads" drifts from the code; this reads the
string literals of `os.environ[...]`, `os.environ.get(...)`, `os.getenv(...)`, `env[...]`,
`env.get(...)`, `"X" in env`, of config fields declared with `Env("X")`, and of helpers handed the mapping and a name (`_int(env, "X", 1)`)
straight from the source (`env` being the mapping the config loaders take, os.environ by default)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

# Names a mapping of environment variables goes by in this project's code.
ENV_MAPPINGS = {"os.environ", "environ", "env"}
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def names_in_source(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        found: str | None = None
        if isinstance(node, ast.Call) and any(_dotted(arg) in ENV_MAPPINGS for arg in node.args):
            # A helper reading the mapping for a name it is given: _int(env, "AGNO_SERVICE_PORT", 8080).
            names |= {v for arg in node.args if (v := _literal(arg)) and VARIABLE.match(v)}
        if isinstance(node, ast.Call) and node.args:
            func = _dotted(node.func)
            if func == "os.getenv" or (
                func.rsplit(".", 1)[-1] in ("get", "setdefault", "pop") and func.rsplit(".", 1)[0] in ENV_MAPPINGS
            ):
                found = _literal(node.args[0])
            elif func == "Env":
                # A config field declared with the variable that overrides it: Annotated[Port, Env("AGNO_GATEWAY_PORT")].
                found = _literal(node.args[0])
        elif isinstance(node, ast.Subscript) and _dotted(node.value) in ENV_MAPPINGS:
            found = _literal(node.slice)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            if _dotted(node.comparators[0]) in ENV_MAPPINGS:
                found = _literal(node.left)
        if found:
            names.add(found)
    return names


def names_read(paths: Iterable[Path]) -> set[str]:
    """Every variable read by the .py files under `paths` (files or package directories)."""
    names: set[str] = set()
    for path in paths:
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            names |= names_in_source(file.read_text())
    return names


def agno_settings_names() -> set[str]:
    """The variables agno's AgentOS reads through its pydantic settings (e.g. OS_SECURITY_KEY):
    pydantic-settings maps each field to an environment variable of the same name (plus prefix)."""
    from agno.os.settings import AgnoAPISettings

    prefix = str(AgnoAPISettings.model_config.get("env_prefix") or "")
    return {(prefix + name).upper() for name in AgnoAPISettings.model_fields}
