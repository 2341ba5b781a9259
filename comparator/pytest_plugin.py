"""pytest diff fixtures: `parity`, registered through the `pytest11` entry point.

    async def test_sessions_match(parity):
        await parity.check("GET /sessions?limit=5", primary="http://legacy:7777", shadow=native_app)

`primary` and `shadow` are base URLs, aiohttp applications or ASGI applications. A check fails
the test with the readable diff unless its result is in `expect` (default: match or expected).
`parity.verify(primary_response, shadow_response, request=...)` judges answers already in hand.

Options: `--parity-rules FILE` (or ini `parity_rules`) loads comparator rules for every check;
`--parity-report FILE` (or ini `parity_report`) writes every check of the session to FILE, as
Markdown when it ends in `.md`, else JSON. `--parity-route-label MODULE:FUNCTION` (or ini
`parity_route_label`) names the routes of requests the rules do not name (a function of
`(method, path)`, e.g. `agentos_session.sessions_api:route_label`); by default only the rules'
own route templates name routes, others are `METHOD unmatched`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from .engine import compare
from .fetch import Target, target_for
from .model import PASSING, Comparison, Request, Response
from .report import Check, render_text, report_json, report_markdown, summary
from .rules import Rules, import_labeller

_RECORDER = pytest.StashKey["Recorder"]()
RequestLike = str | Request


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "response parity (agentos-session comparator)")
    group.addoption("--parity-rules", default=None, metavar="FILE", help="comparator rules YAML for the parity fixture")
    group.addoption(
        "--parity-report", default=None, metavar="FILE", help="write every parity check to FILE (.md or .json)"
    )
    parser.addini("parity_rules", "comparator rules YAML for the parity fixture (relative to rootdir)", default="")
    parser.addini("parity_report", "parity report file (.md or .json, relative to rootdir)", default="")
    group.addoption(
        "--parity-route-label",
        default=None,
        metavar="MODULE:FUNCTION",
        help="labels the routes the parity rules do not name: a function of (method, path)",
    )
    parser.addini("parity_route_label", "MODULE:FUNCTION labelling routes the parity rules do not name", default="")


class Recorder:
    """Session-wide: the rules (read once) and every check made, for the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.checks: list[Check] = []
        self._rules: Rules | None = None

    def _path(self, name: str) -> Path | None:
        """The `--parity-x` option (relative to where pytest was started), else the ini value
        (relative to the rootdir, where the ini file is)."""
        option, ini = self.config.getoption(name), self.config.getini(name)
        if option:
            return Path(self.config.invocation_params.dir) / option
        return Path(self.config.rootpath) / ini if ini else None

    @property
    def rules(self) -> Rules:
        if self._rules is None:
            path = self._path("parity_rules")
            label = import_labeller(
                self.config.getoption("parity_route_label") or self.config.getini("parity_route_label")
            )
            self._rules = Rules.load(path, label=label) if path else Rules(label=label)
        return self._rules

    def write_report(self) -> Path | None:
        path = self._path("parity_report")
        if path is None:
            return None
        text = report_markdown(self.checks) if path.suffix.lower() in (".md", ".markdown") else report_json(self.checks)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RECORDER] = Recorder(config)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is None or not recorder.checks:
        return
    counts = summary(recorder.checks)["results"]
    line = f"parity: {len(recorder.checks)} checks (" + ", ".join(f"{n} {r}" for r, n in sorted(counts.items())) + ")"
    written = recorder.write_report()
    if written is not None:
        line += f"; report: {written}"
    terminalreporter.write_line(line)


class Parity:
    """What the `parity` fixture gives a test."""

    def __init__(self, recorder: Recorder, name: str) -> None:
        self._recorder = recorder
        self._name = name
        self._targets: dict[int, tuple[Any, Target]] = {}

    @property
    def rules(self) -> Rules:
        return self._recorder.rules

    def _target(self, side: Any) -> Target:
        key = id(side)
        if key not in self._targets:
            self._targets[key] = (side, target_for(side))  # keeps `side` alive, so its id stays its own
        return self._targets[key][1]

    async def send(self, request: RequestLike, side: Any) -> Response:
        """One request to one side (a base URL, an aiohttp app or an ASGI app)."""
        request = Request.parse(request) if isinstance(request, str) else request
        return await self._target(side).send(request)

    async def check(
        self,
        request: RequestLike,
        *,
        primary: Any,
        shadow: Any,
        expect: str | Iterable[str] = PASSING,
        rules: Rules | None = None,
        sides: tuple[str, str] = ("legacy", "native"),
    ) -> Comparison:
        """Send `request` to both sides, compare, record, and fail the test unless the result is
        in `expect`. `sides` says which side `primary` and `shadow` are (for known differences)."""
        request = Request.parse(request) if isinstance(request, str) else request
        first = await self._target(primary).send(request)
        second = await self._target(shadow).send(request)
        first, second = _label(first, sides[0]), _label(second, sides[1])
        return self.verify(first, second, request=request, expect=expect, rules=rules)

    def verify(
        self,
        primary: Response,
        shadow: Response,
        *,
        request: RequestLike | None = None,
        expect: str | Iterable[str] = PASSING,
        rules: Rules | None = None,
    ) -> Comparison:
        """Compare two answers already in hand, record, and fail unless the result is in `expect`."""
        request = Request.parse(request) if isinstance(request, str) else request
        comparison = compare(primary, shadow, rules or self.rules, request=request)
        self._recorder.checks.append(Check(self._name, request, comparison))
        allowed = (expect,) if isinstance(expect, str) else tuple(expect)
        if comparison.result not in allowed:
            pytest.fail(
                f"parity: expected {' or '.join(allowed)}, got:\n" + render_text(comparison, request), pytrace=False
            )
        return comparison

    async def aclose(self) -> None:
        for _, target in self._targets.values():
            await target.close()
        self._targets.clear()


def _label(response: Response, side: str) -> Response:
    if response.side == side:
        return response
    return Response(response.status, response.headers, response.body, side, response.error)  # type: ignore[arg-type]


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - a suite without pytest-asyncio can still use verify()

    @pytest.fixture(name="parity")
    def _parity_sync(request: pytest.FixtureRequest) -> Parity:
        """Compare responses with the project's comparator; see the module docstring."""
        return Parity(request.config.stash[_RECORDER], request.node.nodeid)

else:

    @pytest_asyncio.fixture(name="parity")
    async def _parity_async(request: pytest.FixtureRequest) -> AsyncIterator[Parity]:
        """Compare responses with the project's comparator; see the module docstring."""
        checker = Parity(request.config.stash[_RECORDER], request.node.nodeid)
        try:
            yield checker
        finally:
            await checker.aclose()
