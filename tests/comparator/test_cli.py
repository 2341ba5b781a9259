"""`agentos-session compare` and `agentos-session learn-noise`: exit codes, output, rules,
URL mode against real HTTP servers, and noise learning from a live side or recorded pairs.

Most tests parse arguments with the program's own parser (built from
`agentos_session.cli.PARTS`, as `main` builds it) and hand the command explicit streams; `main`
itself is checked for its exit codes, for printing to the current stdout, and once in a
subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from agentos_session.cli import main
from comparator import Request, Response
from comparator.noise import NoiseModel
from tests.commands import Run, run_command

REPO = Path(__file__).resolve().parents[2]
ANSI = "\x1b["


def cli(*argv: str, tty: bool = False) -> Run:
    """Run one `agentos-session` command in process, with the program's own argument parser."""
    return run_command(*argv, tty_out=tty)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- servers: aiohttp apps on free ports, in a thread with its own loop -----------------------
# `run_compare` and `run_learn_noise` call asyncio.run themselves, so the servers cannot share
# the test's loop.


@dataclass
class Seen:
    """What one app received."""

    requests: list[dict[str, Any]] = field(default_factory=list)


def echo_app(name: str, seen: Seen) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen.requests.append(
            {
                "method": request.method,
                "target": request.raw_path,
                "token": request.headers.get("X-Token"),
                "body": body,
            }
        )
        return web.json_response(
            {
                "method": request.method,
                "target": request.raw_path,
                "token": request.headers.get("X-Token"),
                "body": body.decode(),
            }
        )

    async def side(request: web.Request) -> web.Response:
        return web.json_response({"side": name, "same": True})

    async def gone(request: web.Request) -> web.Response:
        return web.json_response({"side": name, "same": True}, status=404 if name == "b" else 200)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.6)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/side", side)
    app.router.add_get("/gone", gone)
    app.router.add_get("/slow", slow)
    return app


def volatile_app(seen: Seen) -> web.Application:
    """One volatile field (`items[*].seq`, a counter) among stable ones."""
    counter = iter(range(1, 1_000_000))

    async def thing(request: web.Request) -> web.Response:
        seen.requests.append({"target": request.raw_path, "token": request.headers.get("X-Token")})
        return web.json_response(
            {
                "id": request.match_info["id"],
                "name": "stable",
                "tags": ["a", "b"],
                "items": [{"k": 1, "seq": next(counter)}],
            }
        )

    app = web.Application()
    app.router.add_get("/things/{id}", thing)
    return app


class ServerThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: list[web.AppRunner] = []

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def serve(self, app: web.Application) -> str:
        async def start() -> str:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.runners.append(runner)
            return f"http://127.0.0.1:{runner.addresses[0][1]}"

        return self._run(start())

    def stop(self) -> None:
        for runner in self.runners:
            self._run(runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Apps:
    a: str
    b: str
    noisy: str
    seen_a: Seen
    seen_b: Seen
    seen_noisy: Seen


@pytest.fixture(scope="module")
def apps() -> Iterator[Apps]:
    servers = ServerThread()
    seen_a, seen_b, seen_noisy = Seen(), Seen(), Seen()
    try:
        yield Apps(
            servers.serve(echo_app("a", seen_a)),
            servers.serve(echo_app("b", seen_b)),
            servers.serve(volatile_app(seen_noisy)),
            seen_a,
            seen_b,
            seen_noisy,
        )
    finally:
        servers.stop()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, Any], Path]:
    """write(name, content): a file in tmp_path; dicts and lists are written as JSON."""

    def _write(name: str, content: Any) -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return _write


# ---- compare: files --------------------------------------------------------------------------


def test_compare_files_match_exits_0(write):
    """Two equal bodies: exit 0 and a MATCH line."""
    r = cli("compare", write("a.json", {"x": 1}), write("b.json", {"x": 1}))
    assert r.code == 0
    assert r.out.startswith("MATCH")
    assert r.err == ""


def test_compare_files_mismatch_exits_1_with_readable_diff(write):
    """Differing bodies: exit 1, and the diff names kind, path and both values as A and B."""
    r = cli("compare", write("a.json", {"data": [{"name": "old"}]}), write("b.json", {"data": [{"name": "new"}]}))
    assert r.code == 1
    lines = r.out.splitlines()
    assert lines[0].startswith("MISMATCH") and "1 difference(s)" in lines[0]
    assert lines[1].split() == ["value", "data[0].name"]
    assert lines[2].split() == ["-", "A:", '"old"']
    assert lines[3].split() == ["+", "B:", '"new"']


@pytest.mark.parametrize(
    "case", ["not-json", "missing-file", "bad-rules", "missing-rules", "url-and-file", "bad-header"]
)
def test_compare_errors_exit_2(write, tmp_path, case: str):
    """Unusable input exits 2: non-JSON body, missing file, bad or missing rules, URL mixed with a file, bad -H."""
    a, b = write("a.json", {"x": 1}), write("b.json", {"x": 2})
    argv: list[Any] = ["compare", a, b]
    if case == "not-json":
        argv = ["compare", a, write("b.txt", "<html>oops</html>")]
    elif case == "missing-file":
        argv = ["compare", a, tmp_path / "nope.json"]
    elif case == "bad-rules":
        argv += ["--rules", write("rules.yaml", "defaults:\n  ignroe: [x]\n")]
    elif case == "missing-rules":
        argv += ["--rules", tmp_path / "nope.yaml"]
    elif case == "url-and-file":
        argv = ["compare", a, "http://127.0.0.1:9/x"]
    elif case == "bad-header":
        argv += ["-H", "no-colon-here"]
    r = cli(*argv)
    assert r.code == 2
    if case == "not-json":
        assert r.out.startswith("ERROR") and "shadow body is not JSON" in r.out
    else:
        assert r.out == ""
        assert r.err.startswith("agentos-session compare: ")
    if case == "bad-rules":
        assert "ignroe" in r.err
    if case == "url-and-file":
        assert "two URLs or two files" in r.err


def test_compare_json_output(write):
    """--json prints one JSON object with the result, the route, the request and every difference."""
    r = cli(
        "compare",
        write("a.json", {"n": 1, "k": "x"}),
        write("b.json", {"n": 2}),
        "--json",
        "--request",
        "GET /sessions?limit=2",
    )
    assert r.code == 1
    data = r.json()
    assert data["result"] == "mismatch"
    assert data["route"] == "GET /sessions"
    assert data["request"] == "GET /sessions?limit=2"
    assert data["differences"] == [
        {"path": "k", "template": "k", "kind": "missing", "primary": "x"},
        {"path": "n", "template": "n", "kind": "value", "primary": 1, "shadow": 2},
    ]


def test_compare_json_match(write):
    """--json on a match: result match, no differences, exit 0."""
    r = cli("compare", write("a.json", [1, 2]), write("b.json", [1, 2]), "--json")
    assert r.code == 0
    assert r.json() == {"result": "match", "route": None, "differences": []}


@pytest.mark.parametrize(
    "color, tty, no_color, painted",
    [
        ("auto", False, False, False),
        ("auto", True, False, True),
        ("auto", True, True, False),
        ("always", False, False, True),
        ("never", True, False, False),
    ],
)
def test_compare_color(write, monkeypatch, color: str, tty: bool, no_color: bool, painted: bool):
    """ANSI colours only on a terminal without NO_COLOR (auto), always with --color always, never with never."""
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    r = cli("compare", write("a.json", {"x": 1}), write("b.json", {"x": 2}), "--color", color, tty=tty)
    assert r.code == 1
    assert (ANSI in r.out) is painted
    assert "MISMATCH" in r.out


def test_compare_rules_ignore_turns_mismatch_into_match(write):
    """--rules with an ignore rule for the differing path makes the pair a match."""
    a, b = write("a.json", {"id": 1, "ts": 100}), write("b.json", {"id": 1, "ts": 200})
    assert cli("compare", a, b).code == 1
    r = cli("compare", a, b, "--rules", write("rules.yaml", "defaults:\n  ignore: [ts]\n"))
    assert r.code == 0
    assert r.out.startswith("MATCH")


def test_compare_request_selects_route_rules(write):
    """--request picks the route whose rules apply; other routes and no request keep the defaults."""
    a, b = write("a.json", {"id": 7, "ts": 1}), write("b.json", {"id": 7, "ts": 2})
    rules = write("rules.yaml", yaml.safe_dump({"routes": {"GET /items/{id}": {"ignore": ["ts"]}}}))
    matched = cli("compare", a, b, "--rules", rules, "--request", "GET /items/7", "--json")
    assert matched.code == 0
    assert matched.json()["route"] == "GET /items/{id}"
    assert cli("compare", a, b, "--rules", rules, "--request", "POST /items/7").code == 1
    assert cli("compare", a, b, "--rules", rules, "--request", "GET /items/7/parts").code == 1
    assert cli("compare", a, b, "--rules", rules).code == 1


def test_compare_known_difference_needs_the_statuses_files_cannot_give(write):
    """list-page-zero's two bodies compared as files are a mismatch, not expected.

    The entry says legacy answers 500 and native 422; a file is read as a 200 answer, so the
    known difference cannot hold and the comparator must not excuse the pair."""
    (entry,) = [
        e for e in yaml.safe_load((REPO / "config/known_differences.yaml").read_text()) if e["id"] == "list-page-zero"
    ]
    legacy, native = write("legacy.json", entry["legacy"]["body"]), write("native.json", entry["native"]["body"])
    for extra in ([], ["--primary-side", "native"]):
        r = cli(
            "compare",
            legacy,
            native,
            "--rules",
            REPO / "config/comparator.yaml",
            "--request",
            "GET /sessions?page=0",
            "--json",
            *extra,
        )
        assert r.code == 1
        data = r.json()
        assert data["result"] == "mismatch"
        assert data["route"] == "GET /sessions"
        assert "known" not in data


def test_compare_known_difference_in_file_mode_is_expected(write):
    """A known difference that holds for 200 answers makes the pair `expected` (exit 0), honouring --primary-side."""
    write(
        "known.yaml",
        yaml.safe_dump(
            [
                {
                    "id": "items-ts",
                    "route": "GET /items/{id}",
                    "match": {"query": {"v": "1"}},
                    "legacy": {"status": 200, "body": '{"id":1,"ts":"L"}'},
                    "native": {"status": 200},
                    "paths": ["ts"],
                }
            ]
        ),
    )
    rules = write("rules.yaml", yaml.safe_dump({"known_differences": "known.yaml", "routes": {"GET /items/{id}": {}}}))
    legacy, native = write("legacy.json", '{"id":1,"ts":"L"}'), write("native.json", '{"id":1,"ts":"N"}')
    r = cli("compare", legacy, native, "--rules", rules, "--request", "GET /items/1?v=1", "--json")
    assert r.code == 0
    assert r.json()["result"] == "expected" and r.json()["known"] == "items-ts"
    text = cli("compare", legacy, native, "--rules", rules, "--request", "GET /items/1?v=1")
    assert text.out.startswith("EXPECTED") and "known difference: items-ts" in text.out
    # The trigger is part of the request: without ?v=1 nothing explains the pair.
    assert cli("compare", legacy, native, "--rules", rules, "--request", "GET /items/1").code == 1
    # Swapped files: A is now the native answer, which only --primary-side native says.
    assert cli("compare", native, legacy, "--rules", rules, "--request", "GET /items/1?v=1").code == 1
    assert (
        cli(
            "compare", native, legacy, "--rules", rules, "--request", "GET /items/1?v=1", "--primary-side", "native"
        ).code
        == 0
    )


# ---- compare: URLs ---------------------------------------------------------------------------


def test_compare_urls_send_the_same_request_to_both(apps, write):
    """Method, -H headers and -d body reach both sides unchanged; equal echoes are a match."""
    apps.seen_a.requests.clear()
    apps.seen_b.requests.clear()
    r = cli(
        "compare",
        f"{apps.a}/echo?x=1&x=2",
        f"{apps.b}/echo?x=1&x=2",
        "-X",
        "put",
        "-H",
        "X-Token: abc",
        "-d",
        "payload ü",
        "--json",
    )
    assert r.code == 0, r.out + r.err
    assert r.json()["result"] == "match"
    assert r.json()["request"] == "PUT /echo?x=1&x=2"
    expected = [{"method": "PUT", "target": "/echo?x=1&x=2", "token": "abc", "body": "payload ü".encode()}]
    assert apps.seen_a.requests == expected
    assert apps.seen_b.requests == expected


def test_compare_urls_body_from_file(apps, write):
    """-d @FILE sends the file's bytes as the body to both sides."""
    apps.seen_a.requests.clear()
    apps.seen_b.requests.clear()
    body = write("body.json", {"k": [1, 2]})
    r = cli("compare", f"{apps.a}/echo", f"{apps.b}/echo", "-X", "POST", "-d", f"@{body}")
    assert r.code == 0, r.out + r.err
    assert [x["body"] for x in apps.seen_a.requests + apps.seen_b.requests] == [body.read_bytes()] * 2


def test_compare_urls_mismatch_exits_1(apps):
    """Different answers from the two URLs: exit 1 with the differing path and both values."""
    r = cli("compare", f"{apps.a}/side", f"{apps.b}/side", "--json")
    assert r.code == 1
    assert r.json()["differences"] == [
        {"path": "side", "template": "side", "kind": "value", "primary": "a", "shadow": "b"}
    ]


def test_compare_urls_status_difference(apps):
    """A 404 on one side and a 200 on the other is a status difference (exit 1)."""
    r = cli("compare", f"{apps.a}/gone", f"{apps.b}/gone", "--json")
    assert r.code == 1
    statuses = [d for d in r.json()["differences"] if d["kind"] == "status"]
    assert statuses == [{"path": ":status", "template": ":status", "kind": "status", "primary": 200, "shadow": 404}]


def test_compare_url_non_json_answer_exits_2(apps):
    """A side answering a non-JSON body (aiohttp's plain-text 404) makes the comparison an error."""
    r = cli("compare", f"{apps.a}/side", f"{apps.b}/missing", "--json")
    assert r.code == 2
    assert r.json()["reason"] == "shadow body is not JSON"


def test_compare_url_refusing_connections_exits_2(apps):
    """A side that refuses connections is an error (exit 2) naming the failed side."""
    r = cli("compare", f"{apps.a}/side", f"http://127.0.0.1:{free_port()}/side")
    assert r.code == 2
    assert r.out.startswith("ERROR")
    assert "shadow failed" in r.out and "primary failed" not in r.out


def test_compare_url_timeout_exits_2(apps):
    """--timeout bounds each request: a slower side is an error (exit 2)."""
    r = cli("compare", f"{apps.a}/slow", f"{apps.b}/slow", "--timeout", "0.2", "--json")
    assert r.code == 2  # without the timeout both would answer {} after 0.6 s: a match
    assert r.json()["result"] == "error"
    assert "primary failed" in r.json()["reason"] and "shadow failed" in r.json()["reason"]


# ---- main ------------------------------------------------------------------------------------


@pytest.mark.parametrize("b_body, code", [({"x": 1}, 0), ({"x": 2}, 1), ("nope", 2)])
def test_main_exit_codes(write, b_body: Any, code: int):
    """main() returns the command's exit status: 0 match, 1 mismatch, 2 error."""
    assert main(["compare", str(write("a.json", {"x": 1})), str(write("b.json", b_body))]) == code


def test_main_requires_a_command():
    """Without a command, argparse exits with status 2."""
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_main_prints_to_the_current_stdout(write):
    """main() writes to sys.stdout as it is when called (redirect_stdout, capsys)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["compare", str(write("a.json", {"x": 1})), str(write("b.json", {"x": 2}))])
    assert code == 1
    assert "MISMATCH" in buf.getvalue()


def test_module_entry_point_in_a_subprocess(write):
    """`python -m agentos_session.cli compare ... --json` prints the JSON verdict and exits 1 on a mismatch."""
    a, b = write("a.json", {"x": [1, 2]}), write("b.json", {"x": [1, 3]})
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.run(
        [sys.executable, "-m", "agentos_session.cli", "compare", str(a), str(b), "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["differences"][0]["path"] == "x[1]"
    plain = subprocess.run(
        [sys.executable, "-m", "agentos_session.cli", "compare", str(a), str(a)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode == 0
    assert plain.stdout == "MATCH\n"  # not a terminal: no colour


# ---- learn-noise -----------------------------------------------------------------------------

THINGS_RULES = {"routes": {"GET /things/{id}": {}}}
REQUESTS = "# two things\nGET /things/1\n\n" + json.dumps({"method": "GET", "target": "/things/2"}) + "\n"


def test_learn_noise_from_base_proposes_exactly_the_volatile_path(apps, write):
    """Against a live side, only the template that changes between two answers is proposed."""
    apps.seen_noisy.requests.clear()
    r = cli(
        "learn-noise",
        "--base",
        apps.noisy,
        "--requests",
        write("requests.txt", REQUESTS),
        "--repeat",
        "4",
        "--min-samples",
        "8",
        "--rules",
        write("rules.yaml", yaml.safe_dump(THINGS_RULES)),
        "-H",
        "X-Token: t",
    )
    assert r.code == 0, r.err
    assert yaml.safe_load(r.out) == {"routes": {"GET /things/{id}": {"ignore": ["items[*].seq"]}}}
    for stable in ("name", "tags", '"id"', "items[*].k"):
        assert stable not in r.out.split("routes:", 1)[1].replace("things/{id}", "")
    assert "8 pairs from" in r.out and "GET /things/{id}: 8" in r.err and "1 proposal(s)" in r.err
    # Every request was sent twice per pair, with the -H header.
    assert len(apps.seen_noisy.requests) == 16
    assert {x["token"] for x in apps.seen_noisy.requests} == {"t"}
    assert sorted({x["target"] for x in apps.seen_noisy.requests}) == ["/things/1", "/things/2"]


def test_learn_noise_model_file_is_written_and_extended(apps, write, tmp_path):
    """--model saves a loadable NoiseModel; a second run adds its pairs to the saved counts."""
    model_path = tmp_path / "noise.yaml"
    argv = [
        "learn-noise",
        "--base",
        apps.noisy,
        "--requests",
        write("requests.txt", "GET /things/1\n"),
        "--repeat",
        "3",
        "--min-samples",
        "3",
        "--rules",
        write("rules.yaml", yaml.safe_dump(THINGS_RULES)),
        "--model",
        model_path,
    ]
    assert cli(*argv).code == 0
    first = NoiseModel.load(model_path)
    assert first.noise["GET /things/{id}"].pairs == 3
    assert first.noise["GET /things/{id}"].differed == {"items[*].seq": 3}
    assert first.thresholds.min_samples == 3
    assert cli(*argv).code == 0
    second = NoiseModel.load(model_path)
    assert second.noise["GET /things/{id}"].pairs == 6
    assert second.noise["GET /things/{id}"].differed == {"items[*].seq": 6}
    assert second.noise_rate("GET /things/{id}", "items[*].seq") == 1.0


def test_learn_noise_out_file(apps, write, tmp_path):
    """--out writes the proposals to a file and nothing to stdout."""
    out = tmp_path / "proposed.yaml"
    r = cli(
        "learn-noise",
        "--base",
        apps.noisy,
        "--requests",
        write("requests.txt", "GET /things/3\n"),
        "--repeat",
        "2",
        "--min-samples",
        "2",
        "--rules",
        write("rules.yaml", yaml.safe_dump(THINGS_RULES)),
        "--out",
        out,
    )
    assert r.code == 0
    assert r.out == ""
    assert yaml.safe_load(out.read_text()) == {"routes": {"GET /things/{id}": {"ignore": ["items[*].seq"]}}}


def test_learn_noise_does_not_propose_what_rules_already_ignore(apps, write):
    """A path the rules file already ignores is not proposed again."""
    rules = {"routes": {"GET /things/{id}": {"ignore": ["items[*].seq"]}}}
    r = cli(
        "learn-noise",
        "--base",
        apps.noisy,
        "--requests",
        write("requests.txt", "GET /things/1\n"),
        "--repeat",
        "2",
        "--min-samples",
        "2",
        "--rules",
        write("rules.yaml", yaml.safe_dump(rules)),
    )
    assert r.code == 0
    assert yaml.safe_load(r.out) == {"routes": {}}
    assert "GET /things/{id}: 2" in r.err and "0 proposal(s)" in r.err


def write_pairs(path: Path, pairs: list[tuple[Any, Response, Response]]) -> Path:
    lines = []
    for request, a, b in pairs:
        req = request.to_dict() if isinstance(request, Request) else request
        lines.append(json.dumps({"request": req, "a": a.to_dict(), "b": b.to_dict()}))
    path.write_text("\n".join(lines) + "\n\n")
    return path


def body(at: int, status: int = 200) -> Response:
    return Response(
        status, {"content-type": "application/json"}, json.dumps({"name": "s", "updated_at": at}).encode(), "legacy"
    )


def test_learn_noise_from_recorded_pairs(write, tmp_path):
    """--pairs reads {request, a, b} lines; failed pairs are skipped; the volatile path is proposed."""
    request = Request("GET", "/sessions/abc", {"Authorization": "Bearer x"})
    pairs: list[tuple[Any, Response, Response]] = [(request, body(i), body(i + 1)) for i in range(4)]
    pairs.append(("GET /sessions/def", body(7), body(7)))  # the short request form
    pairs.append((request, body(1), Response.failed("ConnectionRefusedError", "legacy")))
    r = cli("learn-noise", "--pairs", write_pairs(tmp_path / "pairs.jsonl", pairs), "--min-samples", "5")
    assert r.code == 0, r.err
    assert yaml.safe_load(r.out) == {"routes": {"GET /sessions/{session_id}": {"ignore": ["updated_at"]}}}
    assert "(4/5)" in r.out  # differed in 4 of the 5 usable pairs
    assert "6 pairs from" in r.out and "GET /sessions/{session_id}: 5" in r.err


def test_learn_noise_min_rate(write, tmp_path):
    """--min-rate drops paths that differed in no more than that share of pairs."""
    pairs = [(Request("GET", "/sessions/abc"), body(i), body(i + (1 if i < 2 else 0))) for i in range(4)]
    path = write_pairs(tmp_path / "pairs.jsonl", pairs)
    assert yaml.safe_load(cli("learn-noise", "--pairs", path, "--min-samples", "4", "--min-rate", "0.5").out) == {
        "routes": {}
    }
    kept = yaml.safe_load(cli("learn-noise", "--pairs", path, "--min-samples", "4", "--min-rate", "0.4").out)
    assert kept == {"routes": {"GET /sessions/{session_id}": {"ignore": ["updated_at"]}}}


def test_learn_noise_min_samples_above_pair_count_proposes_nothing(write, tmp_path):
    """With fewer pairs than --min-samples there are no proposals, only the empty routes mapping."""
    pairs = [(Request("GET", "/sessions/abc"), body(i), body(i + 1)) for i in range(3)]
    path = write_pairs(tmp_path / "pairs.jsonl", pairs)
    r = cli("learn-noise", "--pairs", path, "--min-samples", "4")
    assert r.code == 0
    assert yaml.safe_load(r.out) == {"routes": {}}
    assert "0 proposal(s)" in r.err
    # The default (20) is also above three pairs.
    assert yaml.safe_load(cli("learn-noise", "--pairs", path).out) == {"routes": {}}
    assert yaml.safe_load(cli("learn-noise", "--pairs", path, "--min-samples", "3").out) != {"routes": {}}


def test_learn_noise_base_without_requests_exits_2(apps):
    """--base without --requests is an error (exit 2) that says what is missing."""
    r = cli("learn-noise", "--base", apps.noisy)
    assert r.code == 2
    assert "--requests" in r.err
    assert r.out == ""


def test_learn_noise_malformed_pairs_line_exits_2(write, tmp_path):
    """A pairs line that is not {request, a, b} is an error (exit 2) naming the file and line."""
    good = json.dumps({"request": "GET /sessions", "a": body(1).to_dict(), "b": body(1).to_dict()})
    path = write("pairs.jsonl", good + "\n" + json.dumps({"request": "GET /sessions", "a": {}}) + "\n")
    r = cli("learn-noise", "--pairs", path)
    assert r.code == 2
    assert f"{path}:2: not a pair" in r.err
    assert cli("learn-noise", "--pairs", write("junk.jsonl", "not json\n")).code == 2
    assert cli("learn-noise", "--pairs", tmp_path / "missing.jsonl").code == 2


def test_learn_noise_needs_exactly_one_source(write, apps):
    """--base and --pairs are mutually exclusive and one is required (argparse exits 2)."""
    for argv in (["learn-noise"], ["learn-noise", "--base", apps.noisy, "--pairs", str(write("p.jsonl", ""))]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2


def test_learn_noise_on_the_real_agentos_finds_no_noise_in_its_reads(legacy_url, tmp_path):
    """Calibration on real parts: agno's session reads are deterministic, so nothing is proposed."""
    requests = tmp_path / "requests.txt"
    requests.write_text(
        "GET /sessions\nGET /sessions/s-agent-1\nGET /sessions/s-team-2/runs\n# a comment\nGET /sessions?page=0\n"
    )
    run = cli("learn-noise", "--base", legacy_url, "--requests", requests, "--repeat", "5", "--min-samples", "5")
    assert run.code == 0, run.err
    assert "routes: {}" in run.out
    assert "GET /sessions: 10" in run.err  # /sessions and page=0: two requests, five pairs each
