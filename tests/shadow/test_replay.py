"""`agentos-session replay` against real sides: the agno AgentOS (`legacy_url`, and its secured
twin `legacy_secured_url`, which answers 401 without the bearer key) and the native service
(`native_url`), all over the seeded database. Recordings are written with the real `Recorder`;
the gateway of `--from-mismatches` is a small aiohttp app serving real `Sample`s.

Each command runs in process with a parser built from `replay.add_commands` and explicit
streams (`run_replay` calls `asyncio.run`, so servers the test starts run in their own thread).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from comparator import Request, Response, Rules, compare
from comparator.fetch import UrlTarget
from shadow_proxy.model import Sample
from shadow_proxy.recorder import Recorder
from tests.commands import Run, run_command
from tests.legacy.fixtures import SECURITY_KEY, free_port

REPO = Path(__file__).resolve().parents[2]
RULES = str(REPO / "config" / "comparator.yaml")
AUTH = f"Authorization: Bearer {SECURITY_KEY}"

# The lists are sorted by a unique key: other tests create sessions within one second, and a tie
# at a page's edge may hold other sessions on each side (`page-edge-tie`, expected, not a match).
READS = [
    "/sessions?sort_by=session_id",
    "/sessions?limit=2&sort_by=session_id",
    "/sessions?type=team&sort_by=session_id",
    "/sessions?user_id=user-1&sort_order=asc",
    "/sessions?page=0",  # known difference `list-page-zero`: legacy 500, native 422
    "/sessions/s-agent-1",
    "/sessions/s-agent-2?type=agent",
    "/sessions/s-team-1?type=team",
    "/sessions/s-wf-1?type=workflow",
    "/sessions/s-agent-meta",
    "/sessions/legacy-1",
    "/sessions/s-team-2/runs?type=team",
    "/sessions/s-agent-1/runs",
    "/sessions/s-agent-1/runs/run-s-agent-1-a",
    "/sessions/no-such-session",  # 404 on both
]


def cli(*argv: Any, tty: bool = False) -> Run:
    """`agentos-session replay ...` in process, with the program's own parser."""
    return run_command("replay", *argv, tty_err=tty)


def record(path: Path, requests: list[Request]) -> Path:
    """A recording as the gateway writes it (credentials redacted)."""
    recorder = Recorder(path, max_bytes=1_000_000)
    for i, request in enumerate(requests):
        assert recorder.write(time.time(), f"req-{i}", "-", request)
    recorder.close()
    return path


async def _answers(request: Request, legacy: str, native: str) -> tuple[Response, Response]:
    """One request's answers from two base URLs, labelled legacy and native."""
    targets = [UrlTarget(legacy, side="legacy"), UrlTarget(native, side="native")]
    try:
        return await targets[0].send(request), await targets[1].send(request)
    finally:
        for target in targets:
            await target.close()


@pytest.fixture
def reads(tmp_path: Path) -> Path:
    # A recorded bearer token: redacted by the recorder, so left out unless -H gives one.
    return record(
        tmp_path / "reads.jsonl",
        [Request("GET", t, {"Authorization": "Bearer x", "Accept": "application/json"}) for t in READS],
    )


def test_recorded_reads_replay_to_parity(reads: Path, tmp_path: Path, legacy_url: str, native_url: str) -> None:
    report = tmp_path / "parity.json"
    run = cli(reads, "--legacy", legacy_url, "--native", native_url, "--rules", RULES, "--report", report)
    assert run.code == 0, run.out + run.err
    assert f"Replayed {len(READS)} request(s) from {reads}: {len(READS) - 1} match, 1 expected" in run.out
    assert "known difference: list-page-zero" in run.out  # non-matches are shown with their diff
    assert "--- 5: GET /sessions?page=0" in run.out
    assert "redacted header(s) authorization left out" in run.err

    data = json.loads(report.read_text())
    assert data["summary"]["results"] == {"match": len(READS) - 1, "expected": 1}
    assert data["summary"]["routes"]["GET /sessions"] == {"match": 4, "expected": 1}
    assert data["summary"]["routes"]["GET /sessions/{session_id}/runs"] == {"match": 2}
    assert [c["name"] for c in data["checks"]][:2] == [
        "1: GET /sessions?sort_by=session_id",
        "2: GET /sessions?limit=2&sort_by=session_id",
    ]
    assert data["replay"]["primary"] == "legacy" and data["replay"]["skipped"] == []


def test_native_as_primary_and_a_markdown_report(reads: Path, tmp_path: Path, legacy_url: str, native_url: str) -> None:
    report = tmp_path / "parity.md"
    run = cli(
        reads,
        "--legacy",
        legacy_url,
        "--native",
        native_url,
        "--rules",
        RULES,
        "--primary",
        "native",
        "--limit",
        5,
        "--concurrency",
        2,
        "--report",
        report,
    )
    assert run.code == 0, run.out + run.err
    assert "4 match, 1 expected" in run.out  # known differences apply with the sides swapped
    assert "primary native" in run.out
    text = report.read_text()
    assert text.startswith("# Parity report") and "5 checks: 1 expected, 4 match" in text
    assert "| `GET /sessions` | 4 | 1 | 0 | 0 |" in text


def test_differing_sides_are_a_mismatch(reads: Path, legacy_url: str, legacy_secured_url: str) -> None:
    run = cli(reads, "--legacy", legacy_url, "--native", legacy_secured_url, "--limit", 4)
    assert run.code == 1, run.out + run.err
    assert "4 mismatch" in run.out
    row = next(line for line in run.out.splitlines() if line.startswith("GET /sessions "))
    assert row.split()[-4:] == ["0", "0", "4", "0"]  # match expected mismatch error
    assert "GET /sessions :status" in run.out  # among the most frequent differing paths
    assert "- legacy: 200" in run.out and "+ native: 401" in run.out


def test_header_option_replaces_the_redacted_credential(reads: Path, legacy_url: str, legacy_secured_url: str) -> None:
    run = cli(reads, "--legacy", legacy_url, "--native", legacy_secured_url, "--limit", 4, "-H", AUTH)
    assert run.code == 0, run.out + run.err
    assert "4 match" in run.out and "redacted" not in run.err


def test_an_unreachable_side_is_an_error(reads: Path, legacy_url: str) -> None:
    run = cli(
        reads, "--legacy", legacy_url, "--native", f"http://127.0.0.1:{free_port()}", "--limit", 3, "--timeout", 5
    )
    assert run.code == 2
    assert "3 error" in run.out and "shadow failed: ClientConnectorError" in run.out


def test_reads_only_skips_writes(tmp_path: Path, legacy_url: str, native_url: str) -> None:
    create = Request(
        "POST",
        "/sessions?type=agent",
        {"Content-Type": "application/json"},
        b'{"session_id": "replay-must-not-create"}',
    )
    path = record(
        tmp_path / "mixed.jsonl", [Request("GET", "/sessions/s-agent-1"), create, Request("GET", "/sessions")]
    )
    report = tmp_path / "mixed.json"
    run = cli(path, "--legacy", legacy_url, "--native", native_url, "--reads-only", "--report", report)
    assert run.code == 0, run.out + run.err
    assert "Replayed 2 request(s)" in run.out and "1 skipped (--reads-only: not GET/HEAD/OPTIONS)" in run.out
    data = json.loads(report.read_text())
    assert data["replay"]["skipped"] == [
        {"name": "2: POST /sessions?type=agent", "request": "POST /sessions?type=agent"}
    ]
    assert data["summary"]["results"] == {"match": 2}
    not_created = asyncio.run(_answers(Request("GET", "/sessions/replay-must-not-create"), legacy_url, native_url))
    assert [r.status for r in not_created] == [404, 404]


def test_progress_lines_without_a_terminal(reads: Path, legacy_url: str, native_url: str) -> None:
    run = cli(reads, "--legacy", legacy_url, "--native", native_url, "--rules", RULES)
    lines = [line for line in run.err.splitlines() if line.startswith("[")]
    assert 1 <= len(lines) <= 10 and "\r" not in run.err
    assert lines[-1] == f"[{'#' * 20}] {len(READS)}/{len(READS)} match {len(READS) - 1} expected 1 mismatch 0 error 0"


def test_progress_on_a_terminal_redraws_one_line(reads: Path, legacy_url: str, native_url: str) -> None:
    run = cli(reads, "--legacy", legacy_url, "--native", native_url, "--limit", 3, tty=True)
    assert run.err.count("\r") == 3 and run.err.endswith("3/3 match 3 expected 0 mismatch 0 error 0\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.jsonl"], "missing.jsonl"),
        (["{reads}", "--legacy", "localhost:1"], "--legacy: not an http(s) base URL"),
        (["{reads}", "-H", "no colon"], "is not 'NAME: VALUE'"),
        (["{reads}", "--rules", "missing.yaml"], "missing.yaml"),
        (["{reads}", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["{reads}", "--route", "GET /sessions"], "--route needs --from-mismatches"),
        (["{bad}"], "bad.jsonl:2: not a recorded request"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(reads: Path, tmp_path: Path, argv: list[str], message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(reads.read_text().splitlines()[0] + "\nGET /sessions\n")
    argv = [a.format(reads=reads, bad=bad) for a in argv]
    run = (
        cli(*argv, "--legacy", "http://127.0.0.1:9", "--native", "http://127.0.0.1:9")
        if "--legacy" not in argv
        else cli(*argv, "--native", "http://127.0.0.1:9")
    )
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and message in run.err and run.err.startswith("agentos-session replay: ")


# ---- --from-mismatches: a gateway serving stored samples ---------------------------------------


@dataclass
class Gateway:
    """An aiohttp app serving `GET /shadow/mismatches`, on its own loop in a thread."""

    samples: list[dict[str, Any]]
    seen: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        async def mismatches(request: web.Request) -> web.Response:
            self.seen.append({"query": dict(request.query), "authorization": request.headers.get("Authorization")})
            return web.json_response({"mismatches": self.samples})

        app = web.Application()
        app.router.add_get("/shadow/mismatches", mismatches)
        return app


@pytest.fixture
def serve() -> Iterator[Any]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    def start(app: web.Application) -> str:
        async def go() -> str:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            runners.append(runner)
            return f"http://127.0.0.1:{runner.addresses[0][1]}"

        return asyncio.run_coroutine_threadsafe(go(), loop).result(10)

    yield start
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def stored_sample(number: int, target: str, legacy: str, secured: str) -> dict[str, Any]:
    """A stored sample as the gateway keeps it, from real answers taken while the 'native' side
    (here the secured AgentOS) still refused the request with a 401."""
    request = Request("GET", target, {"Authorization": "<redacted>"})
    primary, shadow = asyncio.run(_answers(Request("GET", target), legacy, secured))
    comparison = compare(primary, shadow, Rules.load(RULES), request=request)
    assert comparison.result == "mismatch"
    sample = Sample(
        f"req-{number}",
        time.time(),
        comparison.route or "-",
        "reads",
        "shadow",
        "mirror",
        request,
        primary,
        shadow,
        comparison,
    )
    return {"id": number, **sample.to_dict()}


def test_from_mismatches_confirms_the_fix(
    serve: Any, legacy_url: str, native_url: str, legacy_secured_url: str
) -> None:
    gateway = Gateway(
        [
            stored_sample(41, "/sessions/s-agent-1", legacy_url, legacy_secured_url),
            stored_sample(42, "/sessions/s-team-2/runs?type=team", legacy_url, legacy_secured_url),
        ]
    )
    url = serve(gateway.app())
    run = cli(
        "--from-mismatches",
        url,
        "--route",
        "GET /sessions/{session_id}",
        "--admin-token",
        "adm",
        "--legacy",
        legacy_url,
        "--native",
        native_url,
        "--rules",
        RULES,
    )
    assert run.code == 0, run.out + run.err
    assert f"Replayed 2 request(s) from {url} mismatches: 2 match" in run.out
    assert gateway.seen == [
        {"query": {"limit": "1000", "route": "GET /sessions/{session_id}"}, "authorization": "Bearer adm"}
    ]


def test_from_mismatches_names_checks_by_id(
    serve: Any, tmp_path: Path, legacy_url: str, legacy_secured_url: str
) -> None:
    gateway = Gateway([stored_sample(7, "/sessions/s-agent-2", legacy_url, legacy_secured_url)])
    report = tmp_path / "still.json"
    run = cli(
        "--from-mismatches",
        serve(gateway.app()),
        "--legacy",
        legacy_url,
        "--native",
        legacy_secured_url,
        "--report",
        report,
    )
    assert run.code == 1  # not fixed: the shadow still refuses
    assert [c["name"] for c in json.loads(report.read_text())["checks"]] == ["mismatch 7: GET /sessions/s-agent-2"]


def test_an_unreachable_gateway_is_exit_2(legacy_url: str) -> None:
    run = cli("--from-mismatches", f"http://127.0.0.1:{free_port()}", "--legacy", legacy_url, "--native", legacy_url)
    assert run.code == 2 and run.out == "" and run.err.count("\n") == 1
    assert "cannot reach the gateway at http://127.0.0.1:" in run.err


def test_a_gateway_without_mismatches_json_is_exit_2(serve: Any, legacy_url: str) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"detail": "admin token required"}, status=403)

    app = web.Application()
    app.router.add_get("/shadow/mismatches", refuse)
    run = cli("--from-mismatches", serve(app), "--legacy", legacy_url, "--native", legacy_url)
    assert run.code == 2 and "answered 403" in run.err
