"""Comparison rules (ignore, unordered, float_tolerance, headers, key_order), their per-route
merge and loading, and the real config with its known differences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentos_session.sessions_api import route_label
from comparator import (
    ABSENT,
    Request,
    Response,
    RouteRules,
    Rules,
    RulesError,
    Unordered,
    compare,
    load_known_differences,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "comparator.yaml"
JSON = {"content-type": "application/json"}


def resp(body: Any, status: int = 200, headers: dict[str, str] | None = None, side: Any = None) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return Response(status, JSON if headers is None else headers, raw, side)


def rules(**defaults: Any) -> Rules:
    return Rules.from_mapping({"defaults": defaults})


def diffs(a: Any, b: Any, r: Rules, request: Request | None = None) -> list[tuple[str, str, Any, Any]]:
    c = compare(resp(a), resp(b), r, request=request)
    return [(d.path, d.kind, d.primary, d.shadow) for d in c.differences]


# ---- ignore ----------------------------------------------------------------------------------


def test_ignore_exact_path():
    """An ignored key's differences do not count; the others still do."""
    r = rules(ignore=["a"])
    assert compare(resp({"a": 1, "b": 2}), resp({"a": 2, "b": 2}), r).result == "match"
    assert diffs({"a": 1, "b": 2}, {"a": 2, "b": 3}, r) == [("b", "value", 2, 3)]


def test_ignore_covers_missing_and_extra():
    """An ignored key may be absent on either side."""
    r = rules(ignore=["a"])
    assert compare(resp({"a": 1, "b": 2}), resp({"b": 2}), r).result == "match"
    assert compare(resp({"b": 2}), resp({"b": 2, "a": 1}), r).result == "match"


def test_ignore_template_glob():
    """`data[*].t` ignores t in every element, and nothing else in them."""
    r = rules(ignore=["data[*].t"])
    a = {"data": [{"t": 1, "u": 1}, {"t": 2}]}
    assert compare(resp(a), resp({"data": [{"t": 3, "u": 1}, {"t": 4}]}), r).result == "match"
    assert diffs(a, {"data": [{"t": 3, "u": 2}, {"t": 4}]}, r) == [("data[0].u", "value", 1, 2)]


def test_ignore_concrete_index_only():
    """`data[1].t` ignores t in element 1 only."""
    r = rules(ignore=["data[1].t"])
    assert diffs({"data": [{"t": 1}, {"t": 1}]}, {"data": [{"t": 2}, {"t": 2}]}, r) == [("data[0].t", "value", 1, 2)]


def test_ignore_subtree():
    """A rule covers everything below what it names."""
    r = rules(ignore=["x"])
    a = {"t": 1, "x": {"t": 2, "y": [{"t": 3}]}}
    assert compare(resp(a), resp({"t": 1, "x": {"t": 0, "y": [{"t": 0}, 5]}}), r).result == "match"
    assert compare(resp(a), resp({"t": 1, "x": [1]}), r).result == "match"  # even a type change


def test_ignore_does_not_cover_a_longer_key():
    """Ignoring `x` does not ignore `xy`."""
    assert diffs({"xy": 1}, {"xy": 2}, rules(ignore=["x"])) == [("xy", "value", 1, 2)]


def test_ignore_double_star_at_any_depth():
    """`**.t` ignores t at the top level and at every depth."""
    r = rules(ignore=["**.t"])
    a = {"t": 1, "x": {"t": 2, "y": [{"t": 3, "k": 1}]}}
    assert compare(resp(a), resp({"t": 0, "x": {"t": 0, "y": [{"t": 0, "k": 1}]}}), r).result == "match"
    assert diffs(a, {"t": 0, "x": {"t": 0, "y": [{"t": 0, "k": 2}]}}, r) == [("x.y[0].k", "value", 1, 2)]


def test_ignore_status_and_headers():
    """HTTP parts can be ignored by their paths too."""
    r = rules(ignore=[":status", ":headers.content-type"])
    assert compare(resp({}, 200), resp({}, 201, {"content-type": "text/plain"}), r).result == "match"


def test_ignore_with_whitespace_difference_elsewhere():
    """When ignore explains the value differences, byte-level noise is not reported on top."""
    r = rules(ignore=["a"])
    assert compare(resp(b'{"a": 1, "b": 2}'), resp(b'{"a":2,"b":2}'), r).result == "match"


def test_ignore_all_added_keys_matches():
    """Ignoring every key that differs leaves nothing, however many keys were added."""
    r = rules(ignore=["**.x", "**.y", "**.z"])
    assert compare(resp({"d": {"id": 1}}), resp({"d": {"id": 1, "x": 1, "y": 1, "z": 1}}), r).result == "match"


# ---- unordered -------------------------------------------------------------------------------


def test_unordered_permutation_matches():
    """An unordered array compares as a multiset."""
    r = rules(unordered=["data"])
    assert compare(resp({"data": [1, 2, 3]}), resp({"data": [3, 1, 2]}), r).result == "match"
    assert compare(resp({"data": [{"a": 1}, {"b": 2}]}), resp({"data": [{"b": 2}, {"a": 1}]}), r).result == "match"


def test_unordered_is_only_where_named():
    """Other arrays keep their order."""
    r = rules(unordered=["data"])
    assert diffs({"other": [1, 2]}, {"other": [2, 1]}, r) == [("other", "order", [1, 2], [2, 1])]


def test_unordered_changed_element_is_still_reported():
    """A multiset that differs is still a difference, at the primary's element."""
    r = rules(unordered=["data"])
    assert diffs({"data": [1, 2, 3]}, {"data": [3, 1, 4]}, r) == [("data[1]", "value", 2, 4)]


def test_unordered_length_still_reported():
    """An unordered array that grows is a `length` and an `extra`."""
    r = rules(unordered=["data"])
    assert diffs({"data": [1, 2, 3]}, {"data": [3, 1, 2, 5]}, r) == [
        ("data", "length", 3, 4),
        ("data[3]", "extra", ABSENT, 5),
    ]


def test_unordered_keeps_types_strict():
    """A multiset of 1 is not a multiset of 1.0 or true."""
    r = rules(unordered=["data"])
    assert compare(resp({"data": [1, 2]}), resp({"data": [2.0, 1]}), r).result == "mismatch"
    assert compare(resp({"data": [1]}), resp({"data": [True]}), r).result == "mismatch"


def test_unordered_elements_keep_key_order():
    """Unordered relaxes the array's order, not the key order of its elements (key_order is on)."""
    r = rules(unordered=["data"])
    c = compare(resp({"data": [{"a": 1, "b": 2}, 3]}), resp({"data": [3, {"b": 2, "a": 1}]}), r)
    assert c.result == "mismatch"
    assert [d.kind for d in c.differences] == ["order"]


def test_unordered_with_key_pairs_elements_by_key():
    """With `key`, elements pair by that field: a changed field is reported at the primary's index."""
    r = rules(unordered=[{"path": "data", "key": "id"}])
    a = {"data": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}
    assert compare(resp(a), resp({"data": [{"id": 2, "v": "b"}, {"id": 1, "v": "a"}]}), r).result == "match"
    assert diffs(a, {"data": [{"id": 2, "v": "b"}, {"id": 1, "v": "c"}]}, r) == [("data[0].v", "value", "a", "c")]
    assert diffs(a, {"data": [{"id": 2, "v": "x"}, {"id": 1, "v": "a"}]}, r) == [("data[1].v", "value", "b", "x")]


def test_unordered_with_key_extra_element():
    """A keyed element only in shadow is `extra` (with the `length`)."""
    r = rules(unordered=[{"path": "data", "key": "id"}])
    a = {"data": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}
    b = {"data": [{"id": 2, "v": "b"}, {"id": 1, "v": "a"}, {"id": 3, "v": "z"}]}
    assert diffs(a, b, r) == [("data", "length", 2, 3), ("data[2]", "extra", ABSENT, {"id": 3, "v": "z"})]


def test_unordered_with_key_missing_element():
    """A keyed element only in primary is `missing` at its primary index."""
    r = rules(unordered=[{"path": "data", "key": "id"}])
    a = {"data": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}
    assert diffs(a, {"data": [{"id": 2, "v": "b"}]}, r) == [
        ("data", "length", 2, 1),
        ("data[0]", "missing", {"id": 1, "v": "a"}, ABSENT),
    ]


def test_unordered_with_key_nested_glob():
    """An unordered rule with a glob path applies at every depth it names."""
    r = rules(unordered=[{"path": "**.tools", "key": "tool_call_id"}])
    a = {"runs": [{"tools": [{"tool_call_id": "t1", "r": 1}, {"tool_call_id": "t2", "r": 2}]}]}
    b = {"runs": [{"tools": [{"tool_call_id": "t2", "r": 2}, {"tool_call_id": "t1", "r": 9}]}]}
    assert diffs(a, b, r) == [("runs[0].tools[0].r", "value", 1, 9)]


# ---- float_tolerance -------------------------------------------------------------------------


def test_float_tolerance_within_matches():
    """Numbers closer than the tolerance are equal, int vs float included."""
    r = rules(float_tolerance=0.1)
    assert compare(resp({"a": 1.0}), resp({"a": 1.05}), r).result == "match"
    assert compare(resp({"a": [1.0, 2.0]}), resp({"a": [1.05, 1.95]}), r).result == "match"
    assert compare(resp({"a": 1}), resp({"a": 1.0}), r).result == "match"
    assert compare(resp({"a": 1}), resp({"a": 1.05}), r).result == "match"


def test_float_tolerance_beyond_is_value():
    """Beyond the tolerance: a `value` difference."""
    r = rules(float_tolerance=0.1)
    assert diffs({"a": 1.0}, {"a": 1.2}, r) == [("a", "value", 1.0, 1.2)]
    assert diffs({"a": 1.0, "b": [1]}, {"a": 1.05, "b": [2]}, r) == [("b[0]", "value", 1, 2)]


def test_float_tolerance_keeps_other_types_strict():
    """A string is not a number, tolerance or not."""
    assert diffs({"a": "1"}, {"a": 1}, rules(float_tolerance=0.1)) == [("a", "type", "1", 1)]


def test_without_tolerance_floats_are_exact():
    """The default tolerance is 0: the smallest difference counts."""
    assert diffs({"a": 1.0}, {"a": 1.0000000000000002}, rules()) == [("a", "value", 1.0, 1.0000000000000002)]


@pytest.mark.parametrize(("left", "right"), [(True, 1), (False, 0), (True, 1.0), (1, True)])
def test_float_tolerance_does_not_make_bool_a_number(left, right):
    """JSON true is not the number 1: with a tolerance it is still a `type` difference."""
    assert diffs({"a": left}, {"a": right}, rules(float_tolerance=0.1)) == [("a", "type", left, right)]


# ---- headers ---------------------------------------------------------------------------------


def test_header_outside_the_list_is_not_compared():
    """Only the headers a route lists are compared; content-type too is dropped when not listed."""
    r = rules(headers=["x-api"])
    c = compare(
        resp({}, headers={"content-type": "a", "date": "1"}), resp({}, headers={"content-type": "b", "date": "2"}), r
    )
    assert c.result == "match"


def test_header_inside_the_list_is_compared():
    """A listed header (named in any case) is compared case-insensitively, reported lowercased."""
    r = rules(headers=["X-Api"])
    c = compare(resp({}, headers={"X-API": "1"}), resp({}, headers={"x-api": "2"}), r)
    assert [(d.path, d.kind, d.primary, d.shadow) for d in c.differences] == [(":headers.x-api", "header", "1", "2")]
    c = compare(resp({}, headers={"X-API": "1"}), resp({}, headers={}), r)
    assert [(d.path, d.shadow) for d in c.differences] == [(":headers.x-api", ABSENT)]


def test_empty_header_list_compares_no_headers():
    """`headers: []` turns header comparison off."""
    assert compare(resp({}, headers={"content-type": "a"}), resp({}, headers={}), rules(headers=[])).result == "match"


# ---- key_order -------------------------------------------------------------------------------


def test_key_order_false_ignores_key_order():
    """With key_order false, reordered keys match, at any depth."""
    r = rules(key_order=False)
    assert compare(resp({"a": 1, "b": {"x": 1, "y": 2}}), resp({"b": {"y": 2, "x": 1}, "a": 1}), r).result == "match"


def test_key_order_false_ignores_serialization():
    """With key_order false, whitespace and escapes no longer count."""
    r = rules(key_order=False)
    assert compare(resp(b'{"a": 1, "b": [1, 2]}'), resp(b'{"a":1,"b":[1,2]}'), r).result == "match"
    assert compare(resp(b'{"a":"\\u00e9"}'), resp('{"a":"é"}'.encode()), r).result == "match"


def test_key_order_false_keeps_everything_else():
    """key_order false does not relax values or array order."""
    r = rules(key_order=False)
    assert diffs({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 2, "x": 1}, "b": 2}, r) == [("b", "value", 1, 2)]
    assert diffs({"b": [1, 2]}, {"b": [2, 1]}, r) == [("b", "order", [1, 2], [2, 1])]


# ---- per-route rules -------------------------------------------------------------------------


ROUTED = {
    "defaults": {
        "ignore": ["d_ign"],
        "unordered": ["d_list"],
        "float_tolerance": 0.5,
        "headers": ["content-type", "allow"],
        "key_order": False,
    },
    "routes": {
        "GET /things/{thing_id}": {
            "ignore": ["r_ign"],
            "unordered": [{"path": "r_list", "key": "id"}],
            "float_tolerance": 0,
            "headers": ["x-r"],
            "key_order": True,
        },
        "GET /bare/{x}": None,
    },
}


def test_route_entry_merges_with_defaults():
    """`ignore` and `unordered` add to the defaults; the other keys replace them."""
    r = Rules.from_mapping(ROUTED)
    route = r.for_route("GET /things/{thing_id}")
    assert route.ignore == ("d_ign", "r_ign")
    assert route.unordered == (Unordered("d_list"), Unordered("r_list", "id"))
    assert route.float_tolerance == 0.0
    assert route.headers == ("x-r",)
    assert route.key_order is True
    assert r.for_route("GET /bare/{x}") == r.defaults
    assert r.for_route("GET /elsewhere") == r.defaults
    assert r.for_route(None) == r.defaults


def test_route_rules_apply_by_request():
    """The request selects the route's rules; other requests get the defaults."""
    r = Rules.from_mapping(ROUTED)
    a = {"d_ign": 1, "r_ign": 1, "n": 1.0, "d_list": [1, 2], "r_list": [{"id": 1}, {"id": 2}]}
    b = {"d_ign": 2, "r_ign": 2, "n": 1.2, "d_list": [2, 1], "r_list": [{"id": 2}, {"id": 1}]}
    on_route = compare(resp(a), resp(b), r, request=Request("GET", "/things/7"))
    assert on_route.route == "GET /things/{thing_id}"
    assert [(d.path, d.kind) for d in on_route.differences] == [("n", "value")]  # tolerance replaced by 0
    elsewhere = compare(resp(a), resp(b), r, request=Request("GET", "/other"))
    assert [(d.path, d.kind) for d in elsewhere.differences] == [("r_ign", "value"), ("r_list", "order")]


def test_route_headers_replace_default_headers():
    """On the route only x-r is compared; elsewhere content-type and allow are."""
    r = Rules.from_mapping(ROUTED)
    p = resp({}, headers={"content-type": "a", "x-r": "1"})
    s = resp({}, headers={"content-type": "b", "x-r": "2"})
    assert [d.path for d in compare(p, s, r, request=Request("GET", "/things/1")).differences] == [":headers.x-r"]
    assert [d.path for d in compare(p, s, r, request=Request("GET", "/x")).differences] == [":headers.content-type"]


def test_route_templates_from_rules_keys():
    """Rules' own route keys name routes of any API, query and trailing slash aside."""
    r = Rules.from_mapping({"routes": {"GET /things/{id}": {}, "GET /sessions/{sid}": {}}}, label=route_label)
    assert r.route_of(Request("GET", "/things/5?x=1")) == "GET /things/{id}"
    assert r.route_of(Request("GET", "/things/5/")) == "GET /things/{id}"
    assert r.route_of(Request("POST", "/things/5")) == "POST unmatched"
    assert r.route_of(Request("GET", "/things/5/6")) == "GET unmatched"
    # the rules' own key wins over the labeller (here the sessions route table)
    assert r.route_of(Request("GET", "/sessions/abc")) == "GET /sessions/{sid}"
    assert r.route_of(Request("GET", "/sessions/abc/runs")) == "GET /sessions/{session_id}/runs"
    assert r.route_of(None) is None


def test_route_of_sessions_table():
    """Without rules' routes, the labeller (here the sessions route table) names the route."""
    r = Rules(label=route_label)
    assert r.route_of(Request("GET", "/sessions/abc/runs")) == "GET /sessions/{session_id}/runs"
    assert r.route_of(Request("GET", "/sessions?page=2")) == "GET /sessions"
    assert r.route_of(Request.parse("patch /sessions/abc")) == "PATCH /sessions/{session_id}"


# ---- loading errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"bogus": 1},
        {"defaults": {"ignores": []}},
        {"defaults": 3},
        {"routes": {"/no-method": {}}},
        {"routes": {"GET /a": {"z": 1}}},
        {"routes": {"GET /a": 5}},
        {"defaults": {"unordered": [{"path": "a", "k": 1}]}},
        {"defaults": {"unordered": [{"key": "id"}]}},
        {"defaults": {"unordered": [3]}},
        {"defaults": {"float_tolerance": "abc"}},
        {"defaults": {"float_tolerance": None}},
        {"defaults": {"headers": "content-type"}},
        "not a mapping",
    ],
    ids=repr,
)
def test_rules_error_on_unknown_keys_and_bad_values(data):
    """A rules file that cannot mean what it says is rejected with RulesError, naming the place."""
    with pytest.raises(RulesError):
        Rules.from_mapping(data)


@pytest.mark.parametrize("data", [{"ignore": "**.request_id"}, {"unordered": "data"}], ids=repr)
def test_rules_error_on_string_instead_of_list(data):
    """`ignore: "**.x"` must not become the globs "*", "*", ".", "x" (which ignore every key)."""
    with pytest.raises(RulesError):
        Rules.from_mapping({"defaults": data})


def test_rules_error_on_non_boolean_key_order():
    """`key_order: "false"` is not true; a non-boolean must be an error."""
    with pytest.raises(RulesError):
        Rules.from_mapping({"defaults": {"key_order": "false"}})


def test_rules_load_errors(tmp_path):
    """A missing or unparsable file is a RulesError naming the file."""
    with pytest.raises(RulesError, match="nope.yaml"):
        Rules.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: [unclosed\n")
    with pytest.raises(RulesError, match="bad.yaml"):
        Rules.load(bad)
    missing_kd = tmp_path / "r.yaml"
    missing_kd.write_text("known_differences: not-there.yaml\n")
    with pytest.raises(RulesError, match="not-there.yaml"):
        Rules.load(missing_kd)


def test_malformed_known_difference(tmp_path):
    """A known difference without its required fields is a RulesError."""
    kd = tmp_path / "kd.yaml"
    kd.write_text("- id: x\n  route: GET /a\n  legacy: {status: 500}\n")  # no native
    with pytest.raises(RulesError, match="x"):
        load_known_differences(kd)


def test_empty_rules_are_the_defaults(tmp_path):
    """An empty file gives the documented defaults."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert Rules.load(empty) == Rules()
    assert Rules().defaults == RouteRules(headers=("content-type",))


# ---- the real config -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Rules:
    return Rules.load(CONFIG)


LEGACY_VALUE_ERROR = b'{"detail":"Internal server error (ValueError)"}'
NATIVE_PAGE_ZERO = (
    b'{"detail":[{"type":"greater_than_equal","loc":["query","page"],"msg":"Input should be greater than or equal to 1",'
    b'"input":"0","ctx":{"ge":1}}]}'
)
LEGACY_ATTRIBUTE_ERROR = b'{"detail":"Internal server error (AttributeError)"}'
LEGACY_DATA_ERROR = b'{"detail":"Internal server error (DataError)"}'
LEGACY_TYPE_ERROR = b'{"detail":"Internal server error (TypeError)"}'
LIST_PAGE = b'{"data":[],"meta":{"page":1,"limit":20,"total_pages":0,"total_count":0}}'


def test_real_config_loads(real):
    """The shipped config: strict defaults, content-type, allow and the CORS headers compared,
    the known differences in their order (the first five, then the fuzzer's finds)."""
    assert real.defaults == RouteRules(
        headers=(
            "content-type",
            "allow",
            "vary",
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-expose-headers",
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-max-age",
        )
    )
    assert list(real.routes) == ["GET /sessions"] and real.routes["GET /sessions"].sorted is not None
    assert [k.id for k in real.known] == [
        "list-page-zero",
        "list-page-zero-spelled",
        "list-limit-or-offset-out-of-range",
        "list-sort-by-collection-attribute",
        "rename-json-null-session-data",
        "rename-sql-null-session-data",
        "patch-malformed-summary",
        "nul-in-session-id",
        "nul-in-session-id-runs",
        "nul-in-session-id-run-previews",
        "nul-in-session-id-run",
        "nul-in-session-id-patch",
        "nul-in-session-id-rename",
        "nul-in-session-id-delete",
        "nul-in-list-filter",
        "bulk-delete-unstorable-ids",
        "bulk-delete-nul-user-id",
        "create-unstorable-text",
        "patch-unstorable-text",
        "rename-unstorable-name",
        "create-non-finite-number",
        "patch-non-finite-number",
        "create-unrenderable-nesting",
        "patch-unrenderable-nesting",
        "database-away-list",
        "database-away-read",
        "database-away-runs",
        "database-away-run-previews",
        "database-away-run",
        "database-away-create",
        "database-away-rename",
        "database-away-patch",
        "database-away-delete",
        "database-away-bulk-delete",
        "create-with-runs",
        "create-with-summary",
        "create-with-malformed-runs",
        "create-with-malformed-summary",
        "list-unrenderable-row",
        "read-unrenderable-row",
        "rename-unrenderable-row",
        "patch-unrenderable-row",
    ]
    assert load_known_differences(REPO / "config" / "known_differences.yaml") == real.known


def _known(real: Rules, legacy: Response, native: Response, request: Request) -> tuple[str, str | None]:
    c = compare(legacy, native, real, request=request)
    return c.result, c.known


EXPLAINED = {
    "list-page-zero": (
        resp(LEGACY_VALUE_ERROR, 500),
        resp(NATIVE_PAGE_ZERO, 422),
        Request.parse("GET /sessions?page=0"),
    ),
    "list-sort-by-collection-attribute": (
        resp(LEGACY_ATTRIBUTE_ERROR, 500),
        resp(LIST_PAGE, 200),
        Request.parse("GET /sessions?sort_by=keys&limit=5"),
    ),
    "rename-json-null-session-data": (
        resp(LEGACY_DATA_ERROR, 500),
        resp({"session_id": "s1", "session_name": "new"}, 200),
        Request("POST", "/sessions/s1/rename", JSON, b'{"session_name":"new"}'),
    ),
    "rename-sql-null-session-data": (
        resp({"session_id": "s1", "session_name": "derived"}, 200),
        resp({"session_id": "s1", "session_name": "new"}, 200),
        Request("POST", "/sessions/s1/rename", JSON, b'{"session_name":"new"}'),
    ),
    "patch-malformed-summary": (
        resp(LEGACY_TYPE_ERROR, 500),
        resp({"detail": "summary: missing key 'summary'"}, 422),
        Request("PATCH", "/sessions/s1", JSON, b'{"summary":{"topics":[]}}'),
    ),
    "database-away-list": (
        resp(b'{"detail":"Internal server error (OperationalError)"}', 500),
        resp({"detail": "Database unavailable (ConnectionRefusedError)"}, 503),
        Request.parse("GET /sessions?limit=5"),
    ),
    "database-away-bulk-delete": (
        resp(b'{"detail":"Internal server error (OperationalError)"}', 500),
        resp({"detail": "Database unavailable (ConnectionRefusedError)"}, 503),
        Request("DELETE", "/sessions", JSON, b'{"session_ids":["s1"],"session_types":["agent"]}'),
    ),
}


@pytest.mark.parametrize("entry", list(EXPLAINED))
def test_known_difference_is_expected(real, entry):
    """Each entry of known_differences.yaml turns the pair it describes into `expected` with its id."""
    legacy, native, request = EXPLAINED[entry]
    c = compare(legacy, native, real, request=request)
    assert c.result == "expected"
    assert c.known == entry
    assert c.ok
    assert c.differences  # still reported, only classified
    assert c.to_dict()["known"] == entry


@pytest.mark.parametrize("entry", list(EXPLAINED))
def test_known_difference_with_explicit_sides(real, entry):
    """With Response.side set, the order of primary and shadow does not matter."""
    legacy, native, request = EXPLAINED[entry]
    legacy = Response(legacy.status, legacy.headers, legacy.body, "legacy")
    native = Response(native.status, native.headers, native.body, "native")
    assert _known(real, native, legacy, request) == ("expected", entry)
    assert _known(real, legacy, native, request) == ("expected", entry)


@pytest.mark.parametrize("entry", [e for e in EXPLAINED if e != "rename-sql-null-session-data"])
def test_known_difference_with_swapped_sides_is_mismatch(real, entry):
    """Legacy answering what native should (and vice versa) is not the known difference."""
    legacy, native, request = EXPLAINED[entry]
    as_native = Response(legacy.status, legacy.headers, legacy.body, "native")
    as_legacy = Response(native.status, native.headers, native.body, "legacy")
    assert _known(real, as_native, as_legacy, request) == ("mismatch", None)
    # unset sides: primary is taken as legacy
    assert _known(real, native, legacy, request) == ("mismatch", None)


@pytest.mark.parametrize(
    ("entry", "request_line"),
    [
        ("list-page-zero", "GET /sessions?page=1"),
        ("list-page-zero", "GET /sessions"),
        ("list-page-zero", "GET /sessions?limit=0"),
        ("list-sort-by-collection-attribute", "GET /sessions?sort_by=created_at"),
        ("list-sort-by-collection-attribute", "GET /sessions?sort_by=KEYS"),
    ],
)
def test_known_difference_wrong_query_is_mismatch(real, entry, request_line):
    """The trigger is the exact query value; another value is a real mismatch."""
    legacy, native, _ = EXPLAINED[entry]
    assert _known(real, legacy, native, Request.parse(request_line)) == ("mismatch", None)


@pytest.mark.parametrize(
    ("entry", "req"),
    [
        ("list-page-zero", Request.parse("GET /sessions/abc?page=0")),
        ("list-page-zero", Request.parse("DELETE /sessions?page=0")),
        ("list-sort-by-collection-attribute", Request.parse("GET /sessions/abc/runs?sort_by=keys")),
        ("rename-json-null-session-data", Request("POST", "/sessions/s1", JSON, b"{}")),
        ("patch-malformed-summary", Request("PATCH", "/sessions", JSON, b'{"summary":{}}')),
    ],
)
def test_known_difference_wrong_route_is_mismatch(real, entry, req):
    """Same answers on another route are not explained."""
    legacy, native, _ = EXPLAINED[entry]
    assert _known(real, legacy, native, req) == ("mismatch", None)


def test_known_difference_needs_the_request(real):
    """Without a request there is no route and no trigger: a mismatch stays a mismatch."""
    legacy, native, _ = EXPLAINED["list-page-zero"]
    assert _known(real, legacy, native, None) == ("mismatch", None)


def test_known_difference_wrong_body_trigger_is_mismatch(real):
    """patch-malformed-summary needs the request body to carry `summary`."""
    legacy, native, _ = EXPLAINED["patch-malformed-summary"]
    for body in (b'{"session_name":"x"}', b"", b"[]", b"not json"):
        assert _known(real, legacy, native, Request("PATCH", "/sessions/s1", JSON, body)) == ("mismatch", None)


@pytest.mark.parametrize(
    "body,entry",
    [
        ('{"session_state":{"x":1e400}}', "create-non-finite-number"),
        ('{"metadata":{"x":[-1E+400]}}', "create-non-finite-number"),
        ("1e400", "create-non-finite-number"),
        ('{"session_state":{"x":NaN}}', "create-non-finite-number"),
        # Digits and an "e" inside a string (a hex id) are no number: the nesting explains it.
        ('{"session_id":"L-deep-6b27e025","metadata":' + '{"a":' * 300 + "1" + "}" * 300 + "}", None),
        ('{"session_id":"a-27e025","metadata":' + '{"a":' * 300 + "1" + "}" * 300 + "}", None),
    ],
)
def test_non_finite_trigger_is_a_number_token(real, body, entry):
    legacy = resp(b'{"detail":"Internal server error (PydanticSerializationError)"}', 500)
    native = resp({"detail": [{"type": "value_error", "loc": ["body", "metadata"], "msg": "x"}]}, 422)
    known = _known(real, legacy, native, Request("POST", "/sessions", JSON, body.encode()))
    assert known == ("expected", entry or "create-unrenderable-nesting")


def test_known_difference_fixed_body_must_match(real):
    """Where the entry fixes a side's body, another body on that side is a mismatch."""
    _, native, request = EXPLAINED["list-page-zero"]
    other_500 = resp(b'{"detail":"Internal server error (KeyError)"}', 500)
    assert _known(real, other_500, native, request) == ("mismatch", None)
    legacy, _, _ = EXPLAINED["list-page-zero"]
    assert _known(real, legacy, resp({"detail": []}, 422), request) == ("mismatch", None)


def test_known_difference_wrong_status_is_mismatch(real):
    """Native answering another status than promised is not the known difference."""
    legacy, _, request = EXPLAINED["patch-malformed-summary"]
    assert _known(real, legacy, resp({"detail": "x"}, 400), request) == ("mismatch", None)
    legacy, _, request = EXPLAINED["rename-json-null-session-data"]
    assert _known(real, legacy, resp({"detail": "x"}, 500), request) == ("mismatch", None)


def test_equal_answers_are_a_match_not_expected(real):
    """A trigger with no difference is a plain match."""
    _, native, request = EXPLAINED["list-page-zero"]
    assert _known(real, native, native, request) == ("match", None)


def test_sql_null_rename_within_paths_is_expected(real):
    """rename-sql-null-session-data allows the name and `metrics` (null -> {}) to differ."""
    request = Request("POST", "/sessions/s1/rename", JSON, b'{"session_name":"new"}')
    legacy = resp({"session_id": "s1", "session_name": "derived", "metrics": None}, 200)
    native = resp({"session_id": "s1", "session_name": "new", "metrics": {}}, 200)
    assert _known(real, legacy, native, request) == ("expected", "rename-sql-null-session-data")


def test_sql_null_rename_outside_paths_is_mismatch(real):
    """Both sides answer 200 there, so the entry is bounded by its paths: a rename whose answers
    also differ elsewhere (here created_at) is a real mismatch."""
    request = Request("POST", "/sessions/s1/rename", JSON, b'{"session_name":"new"}')
    legacy = resp({"session_id": "s1", "session_name": "derived", "created_at": 1}, 200)
    native = resp({"session_id": "s1", "session_name": "new", "created_at": 2}, 200)
    assert _known(real, legacy, native, request) == ("mismatch", None)
    only_elsewhere = resp({"session_id": "s1", "session_name": "derived", "created_at": 2}, 200)
    assert _known(real, legacy, only_elsewhere, request) == ("mismatch", None)


# ---- known differences with `paths` (synthetic file, independent of the shipped entries) --


@pytest.fixture
def with_paths(tmp_path) -> Rules:
    (tmp_path / "kd.yaml").write_text(
        "- id: name-differs\n"
        "  route: POST /sessions/{session_id}/rename\n"
        "  match: {data: some_tag}\n"
        "  legacy: {status: 200}\n"
        "  native: {status: 200}\n"
        "  paths: [session_name, 'session_data.session_name']\n"
    )
    (tmp_path / "rules.yaml").write_text("known_differences: kd.yaml\n")
    return Rules.load(tmp_path / "rules.yaml")


RENAME = Request("POST", "/sessions/s1/rename", JSON, b'{"session_name":"new"}')


def test_known_difference_within_paths_is_expected(with_paths):
    """Differences all inside the entry's paths (and below them) are explained."""
    legacy = resp({"session_name": "old", "session_data": {"session_name": "old"}, "x": 1})
    native = resp({"session_name": "new", "session_data": {"session_name": "new"}, "x": 1})
    assert _known(with_paths, legacy, native, RENAME) == ("expected", "name-differs")


def test_known_difference_outside_paths_is_mismatch(with_paths):
    """One difference outside the entry's paths makes the whole pair a mismatch."""
    legacy = resp({"session_name": "old", "x": 1})
    native = resp({"session_name": "new", "x": 2})
    assert _known(with_paths, legacy, native, RENAME) == ("mismatch", None)


def test_known_difference_paths_ignore_http_parts(with_paths):
    """`paths` bound the body; a header difference alone does not defeat the entry."""
    legacy = resp({"session_name": "old"}, headers={"content-type": "application/json"})
    native = resp({"session_name": "new"}, headers={"content-type": "application/json; charset=utf-8"})
    assert _known(with_paths, legacy, native, RENAME) == ("expected", "name-differs")


def test_ignored_keys_do_not_count_for_key_order() -> None:
    """Ignoring a key ignores where it sits too: only the other keys' order counts."""
    r = Rules.from_mapping({"defaults": {"ignore": ["a"]}})
    assert compare(resp({"a": 1, "b": 2, "c": 3}), resp({"b": 2, "a": 9, "c": 3}), r).result == "match"
    moved = compare(resp({"a": 1, "b": 2, "c": 3}), resp({"c": 3, "a": 1, "b": 2}), r)
    assert [(d.path, d.kind) for d in moved.differences] == [("$", "order")]


@pytest.mark.parametrize(
    "data",
    [
        {"defaults": []},
        {"routes": ["GET /x"]},
        {"routes": {"GET /x": "ignore"}},
        {"defaults": {"float_tolerance": -1}},
        {"defaults": {"headers": "content-type"}},
    ],
)
def test_rules_error_on_wrong_shapes(data: dict) -> None:  # type: ignore[type-arg]
    """A section of the wrong shape is an error naming it, never silently empty rules."""
    with pytest.raises(RulesError):
        Rules.from_mapping(data)


# ---- every bad value is refused with its key -------------------------------------------------

BAD_RULES = [
    ({"defaults": {"float_tolerance": -0.1}}, "defaults.float_tolerance: Input should be greater than or equal to 0"),
    ({"defaults": {"float_tolerance": "0.1"}}, "defaults.float_tolerance: Input should be a valid number"),
    ({"defaults": {"float_tolerance": True}}, "defaults.float_tolerance: Input should be a valid number"),
    ({"defaults": {"key_order": 1}}, "defaults.key_order: Input should be a valid boolean"),
    ({"defaults": {"ignore": ["a", 3]}}, "defaults.ignore[1]: Input should be a valid string"),
    ({"defaults": {"ignore": [""]}}, "defaults.ignore[0]: String should have at least 1 character"),
    ({"defaults": {"headers": "content-type"}}, "defaults.headers: Input should be a valid tuple"),
    (
        {"defaults": {"unordered": [{"path": "a", "k": 1}]}},
        "defaults.unordered[0]: unknown key(s) ['k']; allowed: ['key', 'path']",
    ),
    ({"defaults": {"unordered": [{"key": "id"}]}}, "defaults.unordered[0].path: Field required"),
    ({"defaults": {"ignroe": []}}, "defaults: unknown key(s) ['ignroe']"),
    ({"routes": {"GET /a": {"z": 1}}}, "routes['GET /a']: unknown key(s) ['z']"),
    (
        {"routes": {"GET /a": {"float_tolerance": 1.5, "key_order": "no"}}},
        "routes['GET /a'].key_order: Input should be a valid boolean",
    ),
    ({"routes": {"/no-method": {}}}, "routes['/no-method']: Input should be a route template"),
    ({"routes": {"get /a": {}}}, "routes['get /a']: Input should be a route template"),
    ({"known_differences": 3}, "known_differences: Input should be a valid string"),
    ({"bogus": 1}, "unknown key(s) ['bogus']; allowed: ['defaults', 'known_differences', 'routes']"),
]


@pytest.mark.parametrize("data,message", BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_bad_rules_are_refused_with_their_key(data, message):
    with pytest.raises(RulesError) as raised:
        Rules.from_mapping(data, source="r.yaml")
    assert f"r.yaml: {message}" in str(raised.value)


BAD_KNOWN = [
    ("- {id: x, route: GET /a, legacy: {status: 500}}", "x: native: Field required"),
    (
        "- {id: x, route: GET /a, legacy: {status: 500.5}, native: {status: 200}}",
        "x: legacy.status: Input should be a valid integer",
    ),
    (
        "- {id: x, route: GET /a, legacy: {status: 99}, native: {status: 200}}",
        "x: legacy.status: Input should be greater than or equal to 100",
    ),
    (
        "- {id: x, route: /a, legacy: {status: 500}, native: {status: 200}}",
        "x: route: Input should be a route template",
    ),
    ("- {id: x, route: GET /a, legacy: {status: 500}, native: {status: 200}, wat: 1}", "x: unknown key(s) ['wat']"),
    (
        "- {id: x, route: GET /a, legacy: {status: 500}, native: {status: 200}, match: {qurey: {}}}",
        "x: match: unknown key(s) ['qurey']",
    ),
    ("- {route: GET /a, legacy: {status: 500}, native: {status: 200}}", "[0]: id: Field required"),
    ("- 5", "[0]: (top level): Input should be a dictionary"),
    ("a: mapping", "should be a list of known differences"),
    (
        "- {id: x, route: GET /a, legacy: {status: 500}, native: {status: 200}}\n- {id: x, route: GET /b, legacy: {status: 500}, native: {status: 200}}",
        "ids must be unique",
    ),
]


@pytest.mark.parametrize("text,message", BAD_KNOWN, ids=[m for _, m in BAD_KNOWN])
def test_bad_known_differences_are_refused_with_their_key(tmp_path, text, message):
    kd = tmp_path / "kd.yaml"
    kd.write_text(text + "\n")
    with pytest.raises(RulesError) as raised:
        load_known_differences(kd)
    assert f"{kd}: {message}" in str(raised.value)


def test_rules_file_null_lists_and_omitted_keys(tmp_path):
    """A list given as null is empty (`headers: null` compares no header); a key left out keeps
    the defaults' value."""
    r = Rules.from_mapping(
        {"defaults": {"headers": ["x-a"], "ignore": None}, "routes": {"GET /a": {"headers": None}, "GET /b": None}}
    )
    assert r.defaults.headers == ("x-a",) and r.defaults.ignore == ()
    assert r.for_route("GET /a").headers == () and r.for_route("GET /b") == r.defaults


def test_database_away_needs_legacys_500(real):
    """Native's 503 beside a legacy that answered (its own database up) is not explained: only
    the pair of both databases away is `database-away-*`."""
    native = resp({"detail": "Database unavailable (ConnectionRefusedError)"}, 503)
    assert _known(real, resp(LIST_PAGE, 200), native, Request.parse("GET /sessions")) == ("mismatch", None)
    other_500 = resp(LEGACY_DATA_ERROR, 500)
    assert _known(real, other_500, native, Request.parse("GET /sessions")) == ("mismatch", None)
