"""The comparison engine: one focused test per difference kind, the fast path, errors, paths,
ordering, `compare_async` and serialization of the verdict."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agentos_session.sessions_api import route_label
from comparator import (
    ABSENT,
    KINDS,
    RESULTS,
    Comparison,
    Difference,
    Request,
    Response,
    Rules,
    compare,
    compare_async,
)

JSON = {"content-type": "application/json"}


def resp(body: Any, status: int = 200, headers: dict[str, str] | None = None, **kw: Any) -> Response:
    """A response whose body is `body` as compact JSON (bytes are taken as they are)."""
    raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return Response(status, JSON if headers is None else headers, raw, **kw)


def diffs(a: Any, b: Any, rules: Rules | None = None) -> list[tuple[str, str, Any, Any]]:
    c = compare(resp(a), resp(b), rules)
    return [(d.path, d.kind, d.primary, d.shadow) for d in c.differences]


# ---- match and the fast path -----------------------------------------------------------------


def test_identical_bodies_match():
    """Equal answers are a match with no differences."""
    c = compare(resp({"a": [1, {"b": "x"}]}), resp({"a": [1, {"b": "x"}]}))
    assert c.result == "match"
    assert c.differences == ()
    assert c.ok


def test_byte_equal_bodies_are_not_parsed():
    """Equal bytes end the comparison without parsing: even invalid JSON matches itself."""
    assert compare(resp(b"not json at all"), resp(b"not json at all")).result == "match"
    assert compare(resp(b"", 204), resp(b"", 204)).result == "match"
    assert compare(resp(b"{\xff"), resp(b"{\xff")).result == "match"


def test_byte_equal_body_still_compares_status():
    """The fast path covers the body only; the status is still compared."""
    c = compare(resp(b"same", 200), resp(b"same", 201))
    assert c.result == "mismatch"
    assert [(d.path, d.kind) for d in c.differences] == [(":status", "status")]


# ---- one test per kind ------------------------------------------------------------------------


def test_status_difference():
    """Different status codes give one `status` difference at `:status`."""
    c = compare(resp({}, 200), resp({}, 404))
    assert c.result == "mismatch"
    assert c.differences == (Difference(":status", "status", 200, 404),)
    assert c.differences[0].template == ":status"


def test_header_difference():
    """A compared header that differs is a `header` difference at `:headers.<lowercased>`."""
    c = compare(
        resp({}, headers={"Content-Type": "application/json"}), resp({}, headers={"content-type": "text/plain"})
    )
    assert c.result == "mismatch"
    assert c.differences == (Difference(":headers.content-type", "header", "application/json", "text/plain"),)


def test_header_name_case_does_not_matter():
    """Header names compare case-insensitively."""
    c = compare(resp({}, headers={"CONTENT-TYPE": "a"}), resp({}, headers={"content-type": "a"}))
    assert c.result == "match"


def test_header_lookup_ignores_case_and_the_first_spelling_wins():
    r = Response(200, {"Content-Type": "a", "X-Seen": "1", "content-type": "b"})
    assert (r.header("CONTENT-TYPE"), r.header("x-seen"), r.header("absent")) == ("a", "1", None)


def test_header_absent_on_one_side():
    """A compared header missing on one side is reported with ABSENT on that side."""
    c = compare(resp({}, headers={"content-type": "a"}), resp({}, headers={}))
    assert c.differences == (Difference(":headers.content-type", "header", "a", ABSENT),)
    c = compare(resp({}, headers={}), resp({}, headers={"content-type": "a"}))
    assert c.differences == (Difference(":headers.content-type", "header", ABSENT, "a"),)


def test_header_absent_on_both_sides_matches():
    """No header on either side is agreement."""
    assert compare(resp({}, headers={}), resp({}, headers={})).result == "match"


def test_headers_outside_the_default_list_are_not_compared():
    """By default only content-type is compared; other headers (dates, ids) are not."""
    c = compare(resp({}, headers={**JSON, "date": "1", "x-id": "a"}), resp({}, headers={**JSON, "date": "2"}))
    assert c.result == "match"


def test_value_difference():
    """Same type, different value: `value` at the leaf."""
    assert diffs({"a": 1}, {"a": 2}) == [("a", "value", 1, 2)]
    assert diffs({"a": "x"}, {"a": "y"}) == [("a", "value", "x", "y")]
    assert diffs({"a": 1.5}, {"a": 2.5}) == [("a", "value", 1.5, 2.5)]
    assert diffs({"a": True}, {"a": False}) == [("a", "value", True, False)]


def test_value_difference_at_root():
    """A scalar body that differs is reported at `$`."""
    assert diffs(1, 2) == [("$", "value", 1, 2)]


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (1, 1.0),
        (1.0, 1),
        (None, 1),
        (1, None),
        (None, "x"),
        (True, 1),
        (0, False),
        (1, "1"),
        ({}, []),
        ([], "x"),
        ({"k": 1}, 1),
    ],
    ids=repr,
)
def test_type_difference(left, right):
    """JSON types differ: `type`, never `value` (1 vs 1.0, null vs a value, bool vs int...)."""
    assert diffs({"a": left}, {"a": right}) == [("a", "type", left, right)]


def test_missing_key():
    """A key only in primary is `missing`; the shadow side is ABSENT."""
    c = compare(resp({"a": 1, "b": 2}), resp({"a": 1}))
    assert c.differences == (Difference("b", "missing", 2, ABSENT),)


def test_extra_key():
    """A key only in shadow is `extra`; the primary side is ABSENT."""
    c = compare(resp({"a": 1}), resp({"a": 1, "b": {"c": 2}}))
    assert c.differences == (Difference("b", "extra", ABSENT, {"c": 2}),)


def test_key_order_difference():
    """Same keys and values, different key order: one `order` at the dict's path, with the key lists."""
    assert diffs({"x": {"a": 1, "b": 2}}, {"x": {"b": 2, "a": 1}}) == [("x", "order", ["a", "b"], ["b", "a"])]


def test_key_order_difference_at_root():
    """Key order of the top-level object is reported at `$`."""
    assert diffs({"a": 1, "b": 2}, {"b": 2, "a": 1}) == [("$", "order", ["a", "b"], ["b", "a"])]


def test_key_order_and_value_are_both_reported():
    """A reordered dict that also changes a value gives both differences."""
    assert diffs({"a": 1, "b": 2}, {"b": 3, "a": 1}) == [("$", "order", ["a", "b"], ["b", "a"]), ("b", "value", 2, 3)]


def test_removed_key_is_not_a_key_order_difference():
    """Dropping a key keeps the others' order: only `missing`, no `order`."""
    assert diffs({"a": 1, "b": 2, "c": 3}, {"a": 1, "c": 3}) == [("b", "missing", 2, ABSENT)]


def test_list_permutation_is_one_order_difference():
    """A list that is a permutation of the other: one `order` at the list's path, not one per index."""
    assert diffs({"x": [1, 2, 3]}, {"x": [3, 1, 2]}) == [("x", "order", [1, 2, 3], [3, 1, 2])]
    assert diffs([{"a": 1}, {"b": 2}], [{"b": 2}, {"a": 1}]) == [
        ("$", "order", [{"a": 1}, {"b": 2}], [{"b": 2}, {"a": 1}])
    ]


def test_whitespace_only_difference_is_order_at_root():
    """Bodies that parse identically (same key order) but differ in bytes: `order` at `$`."""
    c = compare(resp(b'{"a": [1, 2]}'), resp(b'{"a":[1,2]}'))
    assert c.result == "mismatch"
    assert [(d.path, d.kind) for d in c.differences] == [("$", "order")]


@pytest.mark.parametrize(
    ("left", "right"),
    [(b'{"a":"\\u00e9"}', '{"a":"é"}'.encode()), (b'{"a":1.0}', b'{"a":1.00}'), (b'{"a":1}\n', b'{"a":1}')],
    ids=["escape", "number-spelling", "trailing-newline"],
)
def test_serialization_differences_are_order_at_root(left, right):
    """Escapes and number spelling are serialization differences too."""
    c = compare(resp(left), resp(right))
    assert [(d.path, d.kind) for d in c.differences] == [("$", "order")]


@pytest.mark.parametrize(
    ("left", "right"), [(b'{"a":0.0}', b'{"a":-0.0}'), (b'{"a":[0.0]}', b'{"a":[-0.0]}'), (b"0.0", b"-0.0")]
)
def test_negative_zero_is_not_silently_equal(left, right):
    """Bodies that differ in bytes must never be a match under the default (strict) rules:
    -0.0 vs 0.0 is at least a number-spelling difference at `$` (or a value at the leaf)."""
    c = compare(resp(left), resp(right))
    assert c.result == "mismatch"
    assert c.differences


def test_list_grows():
    """A longer shadow list: `length` at the list with both lengths, and the added item as `extra`."""
    assert diffs({"x": [1, 2]}, {"x": [1, 2, 3]}) == [("x", "length", 2, 3), ("x[2]", "extra", ABSENT, 3)]


def test_list_shrinks():
    """A shorter shadow list: `length`, and the removed item as `missing` at its primary index."""
    assert diffs({"x": [1, 2, 3]}, {"x": [1, 2]}) == [("x", "length", 3, 2), ("x[2]", "missing", 3, ABSENT)]
    assert diffs({"x": [1, 2, 3, 4, 5]}, {"x": [1, 3, 4, 5]}) == [("x", "length", 5, 4), ("x[1]", "missing", 2, ABSENT)]


def test_list_prepended_item_is_extra_at_shadow_index():
    """An item inserted at the front is `extra` at the shadow's index 0; nothing else shifts."""
    assert diffs({"x": [1, 2, 3]}, {"x": [9, 1, 2, 3]}) == [("x", "length", 3, 4), ("x[0]", "extra", ABSENT, 9)]


def test_every_kind_is_covered():
    """KINDS and RESULTS are the documented vocabularies."""
    assert set(KINDS) == {"status", "header", "value", "type", "missing", "extra", "order", "length", "tie"}
    assert set(RESULTS) == {"match", "mismatch", "expected", "error"}


def test_object_with_few_shared_keys_reports_each_key():
    """Keys only on one side are `missing`/`extra` at the key, however many there are, and not
    one `value` for the whole object (which hides which keys differ and defeats ignore rules)."""
    assert diffs({"d": {"id": 1}}, {"d": {"id": 1, "x": 1, "y": 2, "z": 3}}) == [
        ("d.x", "extra", ABSENT, 1),
        ("d.y", "extra", ABSENT, 2),
        ("d.z", "extra", ABSENT, 3),
    ]
    assert diffs({"q": {"a": 2}}, {"q": {"c": 2}}) == [("q.a", "missing", 2, ABSENT), ("q.c", "extra", ABSENT, 2)]
    assert diffs({"q": {"a": 1, "b": 2}}, {"q": {}}) == [("q.a", "missing", 1, ABSENT), ("q.b", "missing", 2, ABSENT)]


# ---- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["primary", "shadow"])
def test_side_error_is_error(side):
    """A side that gave no HTTP answer makes the comparison an `error` that names it."""
    failed = Response.failed("connection refused")
    ok = resp({"a": 1})
    c = compare(failed, ok) if side == "primary" else compare(ok, failed)
    assert c.result == "error"
    assert c.differences == ()
    assert f"{side} failed" in c.reason and "connection refused" in c.reason
    assert not c.ok


def test_both_sides_failed_names_both():
    """Both failures are in the reason."""
    c = compare(Response.failed("timeout"), Response.failed("refused"))
    assert c.result == "error"
    assert "timeout" in c.reason and "refused" in c.reason


@pytest.mark.parametrize(
    ("left", "right", "who"),
    [(b"<html>", b"{}", "primary"), (b"{}", b"<html>", "shadow"), (b"", b"{}", "primary"), (b"{", b"{}", "primary")],
)
def test_non_json_body_is_error(left, right, who):
    """Differing bodies that do not parse are an `error` naming the side, not a mismatch."""
    c = compare(resp(left), resp(right))
    assert c.result == "error"
    assert who in c.reason


def test_non_json_error_keeps_status_difference():
    """The HTTP differences found before the parse failure are kept."""
    c = compare(resp(b"oops", 500), resp(b"{}", 200))
    assert c.result == "error"
    assert [d.kind for d in c.differences] == ["status"]


# ---- paths and templates ---------------------------------------------------------------------


def test_path_in_nested_lists_and_dicts():
    """A deep leaf is reported at its full concrete path."""
    a = {"d": [{"a": [1, {"b": 2}]}, {"a": []}]}
    b = {"d": [{"a": [1, {"b": 3}]}, {"a": []}]}
    assert diffs(a, b) == [("d[0].a[1].b", "value", 2, 3)]


def test_paths_of_several_differences_in_nested_containers():
    """Several differences in different subtrees each keep their own path."""
    a = {"x": [[1, 2], [3]], "y": {"z": [{"k": "a"}, {"k": "b"}]}}
    b = {"x": [[1], [3, 4]], "y": {"z": [{"k": "a"}, {"k": "c"}]}}
    assert diffs(a, b) == [
        ("x[0]", "length", 2, 1),
        ("x[0][1]", "missing", 2, ABSENT),
        ("x[1]", "length", 1, 2),
        ("x[1][1]", "extra", ABSENT, 4),
        ("y.z[1].k", "value", "b", "c"),
    ]


def test_top_level_list_paths():
    """Differences inside a top-level array start with an index."""
    assert diffs([{"a": 1}, {"b": 2}], [{"a": 1, "c": 1}, {"b": 3}]) == [
        ("[0].c", "extra", ABSENT, 1),
        ("[1].b", "value", 2, 3),
    ]


def test_paths_quote_non_identifier_keys():
    """Keys like "a.b" and "3" are quoted in the difference path."""
    assert diffs({"m": {"a.b": 1, "3": 2, "x y": 3}}, {"m": {"a.b": 0, "3": 0, "x y": 0}}) == [
        ('m["3"]', "value", 2, 0),
        ('m["a.b"]', "value", 1, 0),
        ('m["x y"]', "value", 3, 0),
    ]


def test_templates_replace_indices():
    """Each difference carries its template: indices as `[*]`, keys kept."""
    c = compare(resp({"d": [{"a": 1}, {"a.b": [0, 1]}]}), resp({"d": [{"a": 1}, {"a.b": [0, 2]}]}))
    (d,) = c.differences
    assert d.path == 'd[1]["a.b"][1]'
    assert d.template == 'd[*]["a.b"][*]'


def test_difference_template_defaults_from_path():
    """Difference() fills `template` from `path` when not given."""
    assert Difference("data[3].x", "value", 1, 2).template == "data[*].x"
    assert Difference(":status", "status", 1, 2).template == ":status"


# ---- ordering --------------------------------------------------------------------------------


def test_differences_are_sorted_http_first_then_by_path():
    """HTTP parts first, then body paths in path order, indices numerically ([2] before [10])."""
    a = {"z": 1, "a": [0] * 11, "m": {"b": 1, "a": 1}}
    b = {"z": 2, "a": [0, 0, 5] + [0] * 7 + [6], "m": {"b": 2, "a": 2}}
    c = compare(resp(a, 200, {"content-type": "x"}), resp(b, 500, {"content-type": "y"}))
    assert [d.path for d in c.differences] == [":headers.content-type", ":status", "a[2]", "a[10]", "m.a", "m.b", "z"]


def test_ordering_does_not_depend_on_document_order():
    """The same differences come out in the same order whatever the key order of the input."""
    a1 = {"b": {"y": 1, "x": 1}, "a": [1, 2]}
    b1 = {"b": {"y": 2, "x": 2}, "a": [1, 3]}
    a2 = {"a": [1, 2], "b": {"x": 1, "y": 1}}
    b2 = {"a": [1, 3], "b": {"x": 2, "y": 2}}
    first = compare(resp(a1), resp(b1)).differences
    assert [d.path for d in first] == ["a[1]", "b.x", "b.y"]
    assert [d.path for d in compare(resp(a2), resp(b2)).differences] == [d.path for d in first]
    assert compare(resp(a1), resp(b1)).differences == first  # and repeatable


def test_same_path_differences_sorted_by_kind():
    """A list's `length` precedes the item differences below it."""
    assert [d.kind for d in compare(resp({"x": [1, 2, 3]}), resp({"x": [1, 2, 4, 5]})).differences] == [
        "length",
        "value",
        "extra",
    ]


# ---- route -----------------------------------------------------------------------------------


def test_route_comes_from_the_request():
    """With a request the verdict carries its route template (named by the rules' labeller);
    without, none."""
    sessions = Rules(label=route_label)
    assert (
        compare(resp({}), resp({}), sessions, request=Request("GET", "/sessions/abc/runs")).route
        == "GET /sessions/{session_id}/runs"
    )
    assert compare(resp({}), resp({})).route is None


# ---- compare_async ---------------------------------------------------------------------------


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that records how many jobs it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.jobs = 0

    def submit(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        self.jobs += 1
        return super().submit(*args, **kwargs)


PAIRS = [
    (resp({"a": [1, 2, 3], "b": "x"}), resp({"a": [1, 2], "b": "y"})),
    (resp({"a": 1}), resp({"a": 1})),
    (resp(b"nope"), resp(b"{}")),
    (resp({"a": 1}, 200), resp({"a": 1.0}, 500)),
]


@pytest.mark.parametrize(("primary", "shadow"), PAIRS)
async def test_compare_async_below_offload_runs_inline(primary, shadow):
    """Small bodies are compared on the loop, with the same verdict as compare()."""
    with CountingExecutor() as pool:
        got = await compare_async(primary, shadow, executor=pool, offload_bytes=1 << 20)
        assert pool.jobs == 0
    assert got == compare(primary, shadow)


@pytest.mark.parametrize(("primary", "shadow"), PAIRS)
async def test_compare_async_above_offload_uses_executor(primary, shadow):
    """Differing bodies at or above offload_bytes go to the executor; the verdict equals compare()."""
    with CountingExecutor() as pool:
        got = await compare_async(primary, shadow, executor=pool, offload_bytes=1)
        assert pool.jobs == (0 if primary.body == shadow.body else 1)
    assert got == compare(primary, shadow)


async def test_compare_async_default_executor_and_rules():
    """With no executor the loop's default pool is used; rules and request are passed through."""
    rules = Rules.from_mapping({"defaults": {"ignore": ["b"]}}, label=route_label)
    req = Request("GET", "/sessions")
    p, s = resp({"a": 1, "b": 2}), resp({"a": 1, "b": 3})
    got = await compare_async(p, s, rules, request=req, offload_bytes=1)
    assert got == compare(p, s, rules, request=req)
    assert got.result == "match" and got.route == "GET /sessions"


async def test_compare_async_byte_equal_never_offloads():
    """Byte-equal bodies, however large, are decided on the loop."""
    big = resp({"x": "y" * 10_000})
    with CountingExecutor() as pool:
        got = await compare_async(big, big, executor=pool, offload_bytes=1)
        assert pool.jobs == 0
    assert got.result == "match"


# ---- serialization of the verdict ------------------------------------------------------------


def test_difference_to_dict_omits_absent_sides():
    """to_dict leaves out a side that is ABSENT, keeps None and falsy values."""
    assert Difference("b", "missing", 2, ABSENT).to_dict() == {
        "path": "b",
        "template": "b",
        "kind": "missing",
        "primary": 2,
    }
    assert Difference("d[1]", "extra", ABSENT, None).to_dict() == {
        "path": "d[1]",
        "template": "d[*]",
        "kind": "extra",
        "shadow": None,
    }
    assert Difference("a", "value", 0, False).to_dict() == {
        "path": "a",
        "template": "a",
        "kind": "value",
        "primary": 0,
        "shadow": False,
    }


def test_comparison_to_dict():
    """to_dict is JSON-ready: result, route, differences; known/reason/noise only when set."""
    c = compare(resp({"a": 1, "b": 2}), resp({"a": 1}), Rules(label=route_label), request=Request("GET", "/sessions"))
    out = c.to_dict()
    assert out == {
        "result": "mismatch",
        "route": "GET /sessions",
        "differences": [{"path": "b", "template": "b", "kind": "missing", "primary": 2}],
    }
    json.dumps(out)  # serializable: no ABSENT sentinel leaks
    assert compare(resp({}), resp({})).to_dict() == {"result": "match", "route": None, "differences": []}
    err = compare(Response.failed("x"), resp({})).to_dict()
    assert err["result"] == "error" and "reason" in err and "known" not in err
    full = Comparison(
        "expected", (), "GET /x", known="k", reason="r", noise=(Difference("a", "value", 1, 2),)
    ).to_dict()
    assert full["known"] == "k" and full["reason"] == "r"
    assert full["noise"] == [{"path": "a", "template": "a", "kind": "value", "primary": 1, "shadow": 2}]


def test_verdict_is_picklable():
    """Comparisons cross process boundaries; ABSENT stays the singleton."""
    c = compare(resp({"a": 1, "b": 2}), resp({"a": 1}))
    back = pickle.loads(pickle.dumps(c))
    assert back == c
    assert back.differences[0].shadow is ABSENT
