"""The `parity` pytest fixture, run as a user would: an inner test suite in a pytester
directory, in a subprocess (the plugin is loaded through its pytest11 entry point), comparing
aiohttp apps, ASGI apps and base URLs, with rules from the command line or the ini file and
session reports as JSON and Markdown."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

# Shared by the inner test modules: small apps that answer `GET /items/{id}` with JSON.
APPS = """
from __future__ import annotations

from aiohttp import web
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


def aiohttp_app(name="alpha", ts=0, status=200):
    async def item(request):
        return web.json_response({"id": request.match_info["id"], "name": name, "ts": ts}, status=status)

    app = web.Application()
    app.router.add_get("/items/{id}", item)
    return app


def asgi_app(name="alpha"):
    async def item(request):
        return JSONResponse({"id": request.path_params["id"], "name": name})

    return Starlette(routes=[Route("/items/{id}", item)])
"""

SUITE = """
from __future__ import annotations

from aiohttp.test_utils import TestServer

from comparator import Response
from apps import aiohttp_app, asgi_app


async def test_aiohttp_match(parity):
    c = await parity.check("GET /items/1", primary=aiohttp_app(), shadow=aiohttp_app())
    assert c.result == "match"


async def test_aiohttp_differ(parity):
    await parity.check("GET /items/2", primary=aiohttp_app("alpha"), shadow=aiohttp_app("beta"))


async def test_aiohttp_differ_expected_mismatch(parity):
    c = await parity.check("GET /items/3", primary=aiohttp_app("alpha"), shadow=aiohttp_app("beta"), expect="mismatch")
    assert [(d.path, d.kind, d.primary, d.shadow) for d in c.differences] == [("name", "value", "alpha", "beta")]


async def test_asgi_match(parity):
    c = await parity.check("GET /items/4", primary=asgi_app(), shadow=asgi_app())
    assert c.result == "match"


async def test_asgi_differ(parity):
    await parity.check("GET /items/5", primary=asgi_app("alpha"), shadow=asgi_app("gamma"))


async def test_urls(parity):
    servers = [TestServer(aiohttp_app()), TestServer(aiohttp_app()), TestServer(aiohttp_app(status=404))]
    for server in servers:
        await server.start_server()
    try:
        a, b, c = (str(s.make_url("")) for s in servers)
        assert (await parity.check("GET /items/6", primary=a, shadow=b)).result == "match"
        sent = await parity.send("GET /items/6", a)
        assert sent.status == 200
        mismatch = await parity.check("GET /items/6", primary=a, shadow=c, expect="mismatch")
        assert mismatch.differences[0].kind == "status"
    finally:
        for server in servers:
            await server.close()


def test_verify_sync(parity):
    json_ = {"content-type": "application/json"}
    c = parity.verify(Response(200, json_, b'{"a":1}'), Response(200, json_, b'{"a":1}'), request="GET /items/7")
    assert c.result == "match"
    parity.verify(Response(200, json_, b'{"a":1}'), Response(200, json_, b'{"a":2}'), request="GET /items/8")
"""

RESULTS = {"match": 4, "mismatch": 5}  # what SUITE's checks come to (test_urls and test_verify_sync make two each)


def outcome(result: Any) -> dict[str, str]:
    """nodeid -> outcome, from the inner run's -rA short summary."""
    out = {}
    for line in result.outlines:
        m = re.match(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) (\S+)", line)
        if m:
            out[m.group(2).split("::")[-1]] = m.group(1)
    return out


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(apps=APPS, test_suite=SUITE)
    return pytester


def failure_section(result: Any, test: str) -> str:
    text = result.stdout.str()
    start = text.index(f"_ {test} _")
    end = text.find("\n___", start + 1)
    return text[start:] if end == -1 else text[start:end]


def test_checks_pass_and_fail_with_a_readable_diff_and_json_report(suite):
    """Apps, ASGI apps, URLs, sync verify: mismatches fail with kind/path/values; the JSON report counts every check."""
    result = suite.runpytest_subprocess("-rA", "-p", "no:cacheprovider", "--parity-report", "reports/out.json")
    assert outcome(result) == {
        "test_aiohttp_match": "PASSED",
        "test_aiohttp_differ": "FAILED",
        "test_aiohttp_differ_expected_mismatch": "PASSED",
        "test_asgi_match": "PASSED",
        "test_asgi_differ": "FAILED",
        "test_urls": "PASSED",
        "test_verify_sync": "FAILED",
    }, result.stdout.str()
    result.assert_outcomes(passed=4, failed=3)

    section = failure_section(result, "test_aiohttp_differ")
    assert "parity: expected match or expected, got:" in section
    assert re.search(r"MISMATCH\s+GET unmatched\s+\(GET /items/2\)\s+1 difference\(s\)", section)
    assert re.search(r"value\s+name\n\s+- primary: \"alpha\"\n\s+\+ shadow:\s+\"beta\"", section)
    assert re.search(
        r"value\s+name\n\s+- primary: \"alpha\"\n\s+\+ shadow:\s+\"gamma\"", failure_section(result, "test_asgi_differ")
    )
    assert re.search(r"value\s+a\n\s+- primary: 1\n\s+\+ shadow:\s+2", failure_section(result, "test_verify_sync"))
    assert "pytest_plugin.py" not in section  # the failure is the diff, not a traceback into the plugin
    assert re.search(r"parity: 9 checks \(4 match, 5 mismatch\); report: \S*out\.json", result.stdout.str())

    data = json.loads((suite.path / "reports" / "out.json").read_text())
    assert data["summary"]["results"] == RESULTS
    assert len(data["checks"]) == sum(RESULTS.values())
    by_name: dict[str, list[dict[str, Any]]] = {}
    for check in data["checks"]:
        by_name.setdefault(check["name"].split("::")[-1], []).append(check)
    assert [c["result"] for c in by_name["test_urls"]] == ["match", "mismatch"]
    (differ,) = by_name["test_aiohttp_differ"]
    assert differ["name"] == "test_suite.py::test_aiohttp_differ"
    assert differ["request"] == "GET /items/2"
    assert differ["result"] == "mismatch"
    assert differ["differences"] == [
        {"path": "name", "template": "name", "kind": "value", "primary": "alpha", "shadow": "beta"}
    ]


KNOWN = [
    {
        "id": "items-v1-legacy-500",
        "route": "GET /items/{id}",
        "match": {"query": {"v": "1"}},
        "legacy": {"status": 500, "body": '{"detail":"boom"}'},
        "native": {"status": 422},
    }
]

RULES_SUITE = """
from __future__ import annotations

from aiohttp import web


def app(status, body):
    async def item(request):
        return web.Response(status=status, body=body, content_type="application/json")

    application = web.Application()
    application.router.add_get("/items/{id}", item)
    return application


# Apps are made per test: an aiohttp app runs on one event loop, and each test has its own.
def legacy():
    return app(500, b'{"detail":"boom"}')


def native():
    return app(422, b'{"detail":[{"msg":"bad v"}]}')


async def test_known_difference_is_expected(parity):
    c = await parity.check("GET /items/1?v=1", primary=legacy(), shadow=native(), expect="expected")
    assert c.known == "items-v1-legacy-500"
    assert c.route == "GET /items/{id}"


async def test_known_difference_needs_its_trigger(parity):
    await parity.check("GET /items/1?v=2", primary=legacy(), shadow=native(), expect="expected")


async def test_sides_swapped(parity):
    c = await parity.check("GET /items/1?v=1", primary=native(), shadow=legacy(), sides=("native", "legacy"))
    assert c.result == "expected"


def ts_app(ts):
    async def item(request):
        return web.json_response({"id": 1, "ts": ts})

    application = web.Application()
    application.router.add_get("/items/{id}", item)
    return application


async def test_route_ignore(parity):
    c = await parity.check("GET /items/9", primary=ts_app(1), shadow=ts_app(2))
    assert c.result == "match"
"""


@pytest.fixture
def rules_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_rules_suite=RULES_SUITE)
    conf = pytester.mkdir("conf")
    (conf / "known.yaml").write_text(yaml.safe_dump(KNOWN))
    rules = {"known_differences": "known.yaml", "routes": {"GET /items/{id}": {"ignore": ["ts"]}}}
    (conf / "rules.yaml").write_text(yaml.safe_dump(rules))
    return pytester


def test_parity_rules_option_and_markdown_report(rules_suite):
    """--parity-rules (over ini) gives expected and route rules; ini parity_report writes Markdown with table and diffs."""
    rules_suite.makeini(INI + "parity_rules = conf/missing.yaml\nparity_report = out/report.md\n")
    result = rules_suite.runpytest_subprocess("-rA", "-p", "no:cacheprovider", "--parity-rules", "conf/rules.yaml")
    assert outcome(result) == {
        "test_known_difference_is_expected": "PASSED",
        "test_known_difference_needs_its_trigger": "FAILED",
        "test_sides_swapped": "PASSED",
        "test_route_ignore": "PASSED",
    }, result.stdout.str()
    section = failure_section(result, "test_known_difference_needs_its_trigger")
    assert "parity: expected expected, got:" in section
    assert re.search(r"status\s+:status\n\s+- primary: 500\n\s+\+ shadow:\s+422", section)

    text = (rules_suite.path / "out" / "report.md").read_text()
    assert text.startswith("# Parity report\n")
    assert "4 checks: 2 expected, 1 match, 1 mismatch" in text
    assert "| route | match | expected | mismatch | error |" in text
    assert "| `GET /items/{id}` | 1 | 2 | 1 | 0 |" in text
    assert "- `GET /items/{id} :status`: 1" in text
    failing = text[text.index("### test_rules_suite.py::test_known_difference_needs_its_trigger\n") :]
    failing = failing[: failing.index("```\n\n")]
    assert "MISMATCH  GET /items/{id}  (GET /items/1?v=2)" in failing
    assert re.search(r"status\s+:status\n\s+- primary: 500\n\s+\+ shadow:\s+422", failing)
    assert "known difference: items-v1-legacy-500" in text  # expected checks are listed with their reason
    assert "### test_rules_suite.py::test_route_ignore" not in text  # matches are counted, not listed


def test_parity_rules_ini_option(rules_suite):
    """The ini option parity_rules (relative to rootdir) loads the rules when no option is given."""
    rules_suite.makeini(INI + "parity_rules = conf/rules.yaml\n")
    result = rules_suite.runpytest_subprocess("-rA", "-p", "no:cacheprovider")
    assert outcome(result) == {
        "test_known_difference_is_expected": "PASSED",
        "test_known_difference_needs_its_trigger": "FAILED",
        "test_sides_swapped": "PASSED",
        "test_route_ignore": "PASSED",
    }, result.stdout.str()
    assert not (rules_suite.path / "out").exists()  # no report asked for, none written


def test_bad_rules_file_fails_the_checks_with_its_reason(rules_suite):
    """An unusable rules file makes the checks error with a message naming the file."""
    rules_suite.makeini(INI)
    (rules_suite.path / "conf" / "bad.yaml").write_text("defaults:\n  ignroe: [x]\n")
    result = rules_suite.runpytest_subprocess("-p", "no:cacheprovider", "--parity-rules", "conf/bad.yaml")
    result.assert_outcomes(failed=4)
    text = result.stdout.str()
    assert re.search(r"RulesError: \S*conf/bad\.yaml: defaults: unknown key\(s\) \['ignroe'\]", text)


def test_help_lists_the_options(pytester: pytest.Pytester):
    """The plugin registers --parity-rules and --parity-report (it is loaded by entry point)."""
    pytester.makeini(INI)
    result = pytester.runpytest_subprocess("--help")
    text = result.stdout.str()
    assert "--parity-rules=FILE" in text and "--parity-report=FILE" in text
    assert "parity_rules" in text and "parity_report" in text
