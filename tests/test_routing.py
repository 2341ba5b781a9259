"""Pure tests of the neutral route table (`agentos_session.routing`), the sessions API as data
(`agentos_session.sessions_api`), and how the comparator is given a route labeller."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agentos_session import sessions_api
from agentos_session.routing import SAFE_METHODS, Route, RouteTable
from comparator import Request, Response, Rules, RulesError, compare, import_labeller
from session_service import routes

# A table of another API: the matcher knows no sessions.
ITEMS = RouteTable(
    [
        Route("GET", "/items", "list"),
        Route("GET", "/items/{item_id}", "get"),
        Route("DELETE", "/items/{item_id}", "delete"),
        Route("GET", "/items/{item_id}/parts/{part}", "part"),
    ]
)


@pytest.mark.parametrize(
    "method,path,status,label,params,allow",
    [
        ("GET", "/items", 200, "GET /items", {}, ()),
        ("GET", "/items/", 200, "GET /items", {}, ()),
        ("GET", "/items/7", 200, "GET /items/{item_id}", {"item_id": "7"}, ()),
        ("DELETE", "/items/7//", 200, "DELETE /items/{item_id}", {"item_id": "7"}, ()),
        ("GET", "/items/7/parts/a b", 200, "GET /items/{item_id}/parts/{part}", {"item_id": "7", "part": "a b"}, ()),
        ("POST", "/items/7", 405, "POST method_not_allowed", {}, ("GET",)),  # the first path match's method
        ("HEAD", "/items", 405, "HEAD method_not_allowed", {}, ("GET",)),  # no HEAD for GET, as FastAPI
        ("get", "/items", 405, "get method_not_allowed", {}, ("GET",)),  # methods are case-sensitive
        ("GET", "/items//parts/x", 404, "GET unmatched", {}, ()),  # an empty segment is no parameter
        ("GET", "/other", 404, "GET unmatched", {}, ()),
    ],
)
def test_route_table_follows_starlette(method, path, status, label, params, allow) -> None:
    found = ITEMS.match(method, path)
    assert (found.status, found.label(method), found.params, found.allow) == (status, label, params, allow)
    assert ITEMS.label(method, path) == label


def test_first_declared_route_wins() -> None:
    table = RouteTable([Route("GET", "/a/{x}", "param"), Route("GET", "/a/literal", "literal")])
    assert table.match("GET", "/a/literal").route == Route("GET", "/a/{x}", "param")


def test_labels_in_declaration_order() -> None:
    assert ITEMS.labels() == (
        "GET /items",
        "GET /items/{item_id}",
        "DELETE /items/{item_id}",
        "GET /items/{item_id}/parts/{part}",
    )
    assert ITEMS.labels(frozenset({"DELETE"})) == ("DELETE /items/{item_id}",)


def test_safe_methods_are_rfc_9110s() -> None:
    """§9.2.1: GET, HEAD, OPTIONS (and TRACE, never routed here). PUT and DELETE are idempotent, not safe."""
    assert SAFE_METHODS == {"GET", "HEAD", "OPTIONS"}
    assert not SAFE_METHODS & {"PUT", "DELETE", "POST", "PATCH"}


def test_sessions_api_is_agnos_table() -> None:
    """The ten routes of agno 3.1.10's sessions router, in its order; the service's names bind it."""
    assert len(sessions_api.SESSION_ROUTES) == 10
    assert routes.SESSION_ROUTES is sessions_api.SESSION_ROUTES
    assert sessions_api.route_label("GET", "/sessions/abc/runs/r1") == "GET /sessions/{session_id}/runs/{run_id}"
    assert sessions_api.route_label("PUT", "/sessions") == "PUT method_not_allowed"
    assert sessions_api.route_label("GET", "/elsewhere") == "GET unmatched"
    assert routes.route_template("PATCH", "/sessions/x/") == "PATCH /sessions/{session_id}"
    assert routes.match("GET", "/sessions/x").route.handler_name == "get_session"  # type: ignore[union-attr]


def test_routing_module_is_pure() -> None:
    """The neutral modules import nothing of the three packages (and no aiohttp)."""
    code = (
        "import sys, agentos_session.routing, agentos_session.sessions_api; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'session_service', 'comparator', 'shadow_proxy', 'pydantic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_comparator_does_not_import_the_sessions_service() -> None:
    code = "import sys, comparator, comparator.pytest_plugin; print(sorted(m for m in sys.modules if m.startswith(('session_service', 'shadow_proxy'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the comparator's labeller ---------------------------------------------------------------

JSON = {"content-type": "application/json"}


def test_rules_without_labeller_name_only_their_own_routes() -> None:
    """Own routes: the `routes:` keys and the known differences' routes; the rest `METHOD unmatched`."""
    rules = Rules.from_mapping({"routes": {"GET /items/{id}": {}}})
    assert rules.route_of(Request("GET", "/items/3")) == "GET /items/{id}"
    assert rules.route_of(Request("GET", "/sessions/abc")) == "GET unmatched"
    shipped = Rules.load("config/comparator.yaml")  # routes: {} but known differences on each route
    assert shipped.route_of(Request("GET", "/sessions?page=0")) == "GET /sessions"
    assert shipped.route_of(Request("PUT", "/sessions/abc")) == "PUT unmatched"


def test_labeller_names_the_rest_and_is_not_part_of_equality() -> None:
    labelled = Rules.load("config/comparator.yaml", label=sessions_api.route_label)
    assert labelled.route_of(Request("GET", "/sessions/abc/runs")) == "GET /sessions/{session_id}/runs"
    assert labelled == Rules.load("config/comparator.yaml")
    ok = Response(200, JSON, b"{}")
    assert (
        compare(ok, ok, Rules(label=ITEMS.label), request=Request("DELETE", "/items/9")).route
        == "DELETE /items/{item_id}"
    )


def test_import_labeller() -> None:
    assert import_labeller("agentos_session.sessions_api:route_label") is sessions_api.route_label
    assert import_labeller("") is None and import_labeller("none") is None
    with pytest.raises(RulesError, match="nowhere"):
        import_labeller("nowhere.at_all:f")
    with pytest.raises(RulesError, match="not a function"):
        import_labeller("agentos_session.sessions_api:SESSION_ROUTES")


def test_compare_cli_takes_the_labeller(tmp_path) -> None:
    """`compare --route-label`: the sessions table by default, `none` for the rules' routes only."""
    (tmp_path / "a.json").write_text("{}")

    def route(*extra: str) -> str:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "agentos_session.cli",
                "compare",
                str(tmp_path / "a.json"),
                str(tmp_path / "a.json"),
                "--json",
                "--request",
                "PUT /sessions/x",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        return __import__("json").loads(run.stdout)["route"]

    assert route() == "PUT method_not_allowed"  # no known difference names it: the labeller does
    assert route("--route-label", "none") == "PUT unmatched"
    assert route("--route-label", "tests.test_routing:ITEMS_LABEL") == "PUT items-api"


def ITEMS_LABEL(method: str, path: str) -> str:  # noqa: N802 - the name a test passes on the command line
    return f"{method} items-api"
