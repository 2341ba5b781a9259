"""Pure tests: `config.load_settings` from explicit env mappings, and `routes.match`."""

from __future__ import annotations

import ipaddress
import json
import uuid

import pytest

from session_service import routes
from session_service.config import ConfigError, Tables, agno_default_db_id, load_settings, needs_embedded_postgres

DSN = "postgresql://u:pw@db.example:5432/agno"
DSN2 = "postgresql://u:pw@db2.example:5432/agno"


# --------------------------------------------------------------------------------------------
# databases
# --------------------------------------------------------------------------------------------


def test_single_dsn_with_explicit_db_id() -> None:
    s = load_settings({"AGNO_PG_DSN": DSN, "AGNO_DEFAULT_DB_ID": "main-db"})
    assert [(d.db_id, d.dsn) for d in s.databases] == [("main-db", DSN)]
    assert s.default_db_id == s.route_default_db_id == "main-db"


def test_single_dsn_gets_agno_default_id() -> None:
    s = load_settings({"AGNO_PG_DSN": DSN})
    expected = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{DSN}#ai"))
    assert s.default_db_id == s.route_default_db_id == expected == agno_default_db_id(DSN, "ai")
    # The schema is part of the hash.
    assert load_settings({"AGNO_PG_DSN": DSN, "AGNO_DB_SCHEMA": "other"}).default_db_id == agno_default_db_id(
        DSN, "other"
    )
    assert agno_default_db_id(DSN, "other") != expected


def test_database_url_is_the_fallback() -> None:
    assert load_settings({"DATABASE_URL": DSN2}).databases[0].dsn == DSN2
    # AGNO_PG_DSN wins over DATABASE_URL.
    assert load_settings({"AGNO_PG_DSN": DSN, "DATABASE_URL": DSN2}).databases[0].dsn == DSN


def test_no_dsn_is_an_error_unless_embedded() -> None:
    with pytest.raises(ConfigError, match="AGNO_PG_DSN"):
        load_settings({})
    s = load_settings({}, embedded_dsn=DSN2)
    assert s.databases[0].dsn == DSN2
    # A configured DSN is not "embedded" even when an embedded one is offered.
    assert load_settings({"AGNO_PG_DSN": DSN}, embedded_dsn=DSN2).databases[0].dsn == DSN


@pytest.mark.parametrize(
    "env, needed",
    [
        ({}, True),
        ({"AGNO_PG_DSN": DSN}, False),
        ({"DATABASE_URL": DSN}, False),
        ({"AGNO_SESSION_DSN_MAP": "{}"}, False),
    ],
)
def test_needs_embedded_postgres(env: dict[str, str], needed: bool) -> None:
    assert needs_embedded_postgres(env) is needed


def test_dsn_map_without_default_requires_db_id_per_request() -> None:
    s = load_settings({"AGNO_SESSION_DSN_MAP": json.dumps({"main-db": DSN, "second-db": DSN2})})
    assert [(d.db_id, d.dsn) for d in s.databases] == [("main-db", DSN), ("second-db", DSN2)]
    assert s.default_db_id == "main-db"
    assert s.route_default_db_id is None  # agno answers 400 without db_id


def test_dsn_map_with_default_routes_to_it() -> None:
    env = {"AGNO_SESSION_DSN_MAP": json.dumps({"main-db": DSN, "second-db": DSN2}), "AGNO_DEFAULT_DB_ID": "second-db"}
    s = load_settings(env)
    assert s.default_db_id == s.route_default_db_id == "second-db"


def test_dsn_map_with_one_database_routes_to_it() -> None:
    s = load_settings({"AGNO_SESSION_DSN_MAP": json.dumps({"only": DSN})})
    assert s.route_default_db_id == "only"


def test_dsn_map_wins_over_single_dsn() -> None:
    s = load_settings({"AGNO_SESSION_DSN_MAP": json.dumps({"m": DSN2}), "AGNO_PG_DSN": DSN})
    assert [(d.db_id, d.dsn) for d in s.databases] == [("m", DSN2)]


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "not valid JSON"),
        ("{}", "non-empty JSON object"),
        ("[]", "non-empty JSON object"),
        ('["main-db"]', "non-empty JSON object"),
        ('{"main-db": 5}', "non-empty JSON object"),
        ('{"main-db": ""}', "non-empty JSON object"),
    ],
)
def test_bad_dsn_map(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"AGNO_SESSION_DSN_MAP": raw})


def test_unknown_default_db_id_with_map() -> None:
    with pytest.raises(ConfigError, match="'nope' is not a key"):
        load_settings({"AGNO_SESSION_DSN_MAP": json.dumps({"main-db": DSN}), "AGNO_DEFAULT_DB_ID": "nope"})


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def test_default_tables() -> None:
    assert load_settings({"AGNO_PG_DSN": DSN}).databases[0].tables == Tables("ai", "agno_sessions", "agno_runs")


def test_custom_session_table_moves_runs_table() -> None:
    tables = load_settings({"AGNO_PG_DSN": DSN, "AGNO_SESSION_TABLE": "my_sessions"}).databases[0].tables
    assert tables == Tables("ai", "my_sessions", "my_sessions_runs")


def test_explicit_table_options() -> None:
    env = {"AGNO_PG_DSN": DSN, "AGNO_DB_SCHEMA": "s", "AGNO_SESSION_TABLE": "sess", "AGNO_RUNS_TABLE": "r"}
    assert load_settings(env).databases[0].tables == Tables("s", "sess", "r")
    # Every database of a map gets the same table options.
    env = {"AGNO_SESSION_DSN_MAP": json.dumps({"a": DSN, "b": DSN2}), "AGNO_SESSION_TABLE": "sess"}
    assert {d.tables for d in load_settings(env).databases} == {Tables("ai", "sess", "sess_runs")}


def test_empty_table_options_mean_defaults() -> None:
    env = {"AGNO_PG_DSN": DSN, "AGNO_DB_SCHEMA": "", "AGNO_SESSION_TABLE": "", "AGNO_RUNS_TABLE": ""}
    assert load_settings(env).databases[0].tables == Tables()


# --------------------------------------------------------------------------------------------
# service options
# --------------------------------------------------------------------------------------------


def test_service_defaults() -> None:
    s = load_settings({"AGNO_PG_DSN": DSN})
    assert (s.host, s.port, s.security_key) == ("0.0.0.0", 8080, None)
    assert (s.pool_min_size, s.pool_max_size) == (2, 10)
    assert s.request_timeout_s == 60.0 and s.max_body_bytes == 1024 * 1024
    assert s.trusted_proxies == ()


def test_service_options() -> None:
    s = load_settings(
        {
            "AGNO_PG_DSN": DSN,
            "AGNO_SERVICE_PORT": "9123",
            "AGNO_SERVICE_HOST": "127.0.0.1",
            "OS_SECURITY_KEY": "k3y",
            "AGNO_POOL_MIN_SIZE": "0",
            "AGNO_POOL_MAX_SIZE": "3",
            "AGNO_REQUEST_TIMEOUT_S": "5",
            "AGNO_MAX_BODY_BYTES": "100",
        }
    )
    assert (s.host, s.port, s.security_key) == ("127.0.0.1", 9123, "k3y")
    assert (s.pool_min_size, s.pool_max_size) == (0, 3)
    assert (s.request_timeout_s, s.max_body_bytes) == (5.0, 100)


def test_empty_security_key_means_open() -> None:
    assert load_settings({"AGNO_PG_DSN": DSN, "OS_SECURITY_KEY": ""}).security_key is None


def test_empty_integer_means_default() -> None:
    assert load_settings({"AGNO_PG_DSN": DSN, "AGNO_SERVICE_PORT": ""}).port == 8080


@pytest.mark.parametrize(
    "name", ["AGNO_SERVICE_PORT", "AGNO_POOL_MIN_SIZE", "AGNO_POOL_MAX_SIZE", "AGNO_MAX_BODY_BYTES"]
)
def test_non_integer_is_an_error(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be an integer, got 'ten'"):
        load_settings({"AGNO_PG_DSN": DSN, name: "ten"})


@pytest.mark.parametrize("min_size, max_size", [("-1", "10"), ("2", "0"), ("5", "4")])
def test_bad_pool_sizes(min_size: str, max_size: str) -> None:
    with pytest.raises(ConfigError, match="pool sizes"):
        load_settings({"AGNO_PG_DSN": DSN, "AGNO_POOL_MIN_SIZE": min_size, "AGNO_POOL_MAX_SIZE": max_size})


def test_equal_pool_sizes_are_fine() -> None:
    s = load_settings({"AGNO_PG_DSN": DSN, "AGNO_POOL_MIN_SIZE": "4", "AGNO_POOL_MAX_SIZE": "4"})
    assert (s.pool_min_size, s.pool_max_size) == (4, 4)


def test_trusted_proxies() -> None:
    s = load_settings({"AGNO_PG_DSN": DSN, "AGNO_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,,::1, 172.16.5.4/12"})
    assert s.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("172.16.0.0/12"),  # host bits allowed (strict=False)
    )


@pytest.mark.parametrize("raw", ["10.0.0.0/8,not-an-ip", "300.1.1.1", "10.0.0.0/33"])
def test_bad_trusted_proxies(raw: str) -> None:
    with pytest.raises(ConfigError, match="AGNO_TRUSTED_PROXIES"):
        load_settings({"AGNO_PG_DSN": DSN, "AGNO_TRUSTED_PROXIES": raw})


# --------------------------------------------------------------------------------------------
# routes.match
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, handler, params",
    [
        ("GET", "/sessions", "list_sessions", {}),
        ("POST", "/sessions", "create_session", {}),
        ("DELETE", "/sessions", "delete_sessions", {}),
        ("GET", "/sessions/abc", "get_session", {"session_id": "abc"}),
        ("PATCH", "/sessions/abc", "update_session", {"session_id": "abc"}),
        ("DELETE", "/sessions/abc", "delete_session", {"session_id": "abc"}),
        ("GET", "/sessions/abc/runs", "get_session_runs", {"session_id": "abc"}),
        ("GET", "/sessions/abc/run-previews", "get_session_run_previews", {"session_id": "abc"}),
        ("GET", "/sessions/abc/runs/r1", "get_session_run", {"session_id": "abc", "run_id": "r1"}),
        ("POST", "/sessions/abc/rename", "rename_session", {"session_id": "abc"}),
        # `{param}` is one segment and may hold anything but a slash.
        ("GET", "/sessions/a b:c@d%", "get_session", {"session_id": "a b:c@d%"}),
    ],
)
def test_match_routes(method: str, path: str, handler: str, params: dict[str, str]) -> None:
    found = routes.match(method, path)
    assert found.status == 200
    assert found.route is not None and found.route.handler_name == handler
    assert found.params == params
    assert found.template == found.route.template


@pytest.mark.parametrize(
    "path, template, params",
    [
        ("/sessions/", "/sessions", {}),
        ("/sessions//", "/sessions", {}),
        ("/sessions/abc/", "/sessions/{session_id}", {"session_id": "abc"}),
        ("/sessions/abc/runs///", "/sessions/{session_id}/runs", {"session_id": "abc"}),
    ],
)
def test_trailing_slashes_are_stripped(path: str, template: str, params: dict[str, str]) -> None:
    found = routes.match("GET", path)
    assert (found.status, found.template, found.params) == (200, template, params)


def test_strip_trailing_slashes() -> None:
    assert routes.strip_trailing_slashes("/") == "/"
    assert routes.strip_trailing_slashes("//") == "/"
    assert routes.strip_trailing_slashes("/sessions///") == "/sessions"
    assert routes.strip_trailing_slashes("/sessions") == "/sessions"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/session"),
        ("GET", "/sessions/a/b"),
        ("GET", "/sessions/a/runs/r/x"),
        ("POST", "/sessions/a/b/rename"),
        ("GET", "/sessions//x"),  # an empty segment is no session id
        ("PUT", "/nope"),
    ],
)
def test_no_path_match_is_404(method: str, path: str) -> None:
    found = routes.match(method, path)
    assert (found.status, found.route, found.allow, found.template) == (404, None, (), "unmatched")


@pytest.mark.parametrize(
    "method, path",
    [
        ("PUT", "/sessions"),
        ("PATCH", "/sessions"),
        ("PUT", "/sessions/x"),
        ("POST", "/sessions/x/runs"),
        ("GET", "/sessions/x/rename"),
    ],
)
def test_path_match_with_other_method_is_405(method: str, path: str) -> None:
    found = routes.match(method, path)
    assert (found.status, found.route, found.template) == (405, None, "method_not_allowed")
    assert found.allow  # an Allow header is always possible
    assert method not in found.allow


def test_405_allow_names_methods_of_the_path() -> None:
    assert routes.match("GET", "/sessions/x/rename").allow == ("POST",)
    assert routes.match("DELETE", "/sessions/x/runs/r").allow == ("GET",)
    assert "GET" in routes.match("PUT", "/sessions").allow
    assert "PATCH" not in routes.match("PUT", "/sessions").allow  # PATCH exists only on /sessions/{id}


# agno 3.1.10 (FastAPI 0.165 / Starlette 1.10), checked against the real AgentOS:
#   HEAD /sessions            -> 405, Allow: GET     (FastAPI's APIRoute adds no HEAD)
#   PUT|PATCH|OPTIONS /sessions -> 405, Allow: GET  (Starlette reports only the *first* route
#   PUT /sessions/x           -> 405, Allow: GET     whose path matched, not the union)


@pytest.mark.parametrize("path", ["/sessions", "/sessions/x", "/sessions/x/runs"])
def test_head_is_405_like_agno(path: str) -> None:
    found = routes.match("HEAD", path)
    assert (found.status, found.allow) == (405, ("GET",))


@pytest.mark.parametrize("method, path", [("PUT", "/sessions"), ("OPTIONS", "/sessions"), ("PUT", "/sessions/x")])
def test_allow_is_first_path_match_like_agno(method: str, path: str) -> None:
    assert routes.match(method, path).allow == ("GET",)


def test_head_never_reaches_a_route_without_get() -> None:
    found = routes.match("HEAD", "/sessions/x/rename")
    assert (found.status, found.allow) == (405, ("POST",))


def test_method_is_case_sensitive() -> None:
    assert routes.match("get", "/sessions").status == 405


def test_first_declared_route_wins() -> None:
    # `/sessions/{session_id}/runs` is declared before `/sessions/{session_id}/runs/{run_id}`; a
    # session literally named "runs" still reaches get_session.
    assert routes.match("GET", "/sessions/runs").route.handler_name == "get_session"  # type: ignore[union-attr]
