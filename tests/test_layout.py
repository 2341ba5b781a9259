"""Which part of the tree may import which, read from the source (every `import` statement,
wherever it stands, so a lazy import inside a function counts too):

- nothing outside tests/ imports `tests` (the benchmarks and `make demo` use `harness`);
- the shipped packages import neither the harness nor the benchmarks (they are not in the wheel);
- `session_service` and `comparator` never import `shadow_proxy` (the gateway builds on them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("agentos_session", "session_service", "comparator", "shadow_proxy")
OUTSIDE_TESTS = (*SHIPPED, "harness", "benchmarks", "scripts")


def imported(path: Path) -> set[str]:
    """The top-level names of the absolute imports in one file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def importers(parts: tuple[str, ...], forbidden: set[str]) -> dict[str, set[str]]:
    """{file: the forbidden names it imports} over every .py file of `parts`."""
    found = {}
    for part in parts:
        for path in sorted((REPO / part).rglob("*.py")):
            if "__pycache__" not in path.parts and (bad := imported(path) & forbidden):
                found[str(path.relative_to(REPO))] = bad
    return found


def test_the_reader_sees_imports_of_every_kind(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import tests.legacy.fixtures\nfrom harness.seed import seed\nfrom . import sibling\n"
        "def lazy():\n    from benchmarks import quick_rps\n"
    )
    assert imported(source) == {"tests", "harness", "benchmarks"}


def test_nothing_outside_tests_imports_tests() -> None:
    assert importers(OUTSIDE_TESTS, {"tests"}) == {}


@pytest.mark.parametrize("part", SHIPPED)
def test_the_shipped_packages_import_no_development_code(part: str) -> None:
    assert importers((part,), {"harness", "benchmarks", "tests"}) == {}


@pytest.mark.parametrize("part", ["session_service", "comparator"])
def test_the_gateway_is_built_on_the_service_and_the_comparator_not_under_them(part: str) -> None:
    assert importers((part,), {"shadow_proxy"}) == {}
