"""Ties in sorted lists (`sorted` rules, comparator/ties.py): tied items compare as a multiset,
a tie cut by the page edge is a `tie` difference (`expected`, `page-edge-tie`), and every
other order difference is still a mismatch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comparator import PAGE_EDGE_TIE, Comparison, Request, Response, Rules, RulesError, compare

REPO = Path(__file__).resolve().parents[2]
JSON = {"content-type": "application/json"}
ROUTE = "GET /items"

SORTED: dict[str, Any] = {
    "items": "data",
    "key_param": "sort_by",
    "default_key": "created_at",
    "keys": {
        "created_at": "created_at",
        "updated_at": ["updated_at", "created_at"],
        "user_id": "user_id",
        "blob": None,
    },
    "other_keys": "unsorted",
    "identity": "id",
    "page_param": "page",
    "first_page": 1,
    "limit_param": "limit",
    "default_limit": 20,
}


def rules(**changes: Any) -> Rules:
    rule = {k: v for k, v in {**SORTED, **changes}.items() if v is not ...}
    return Rules.from_mapping({"routes": {ROUTE: {"sorted": rule}}})


RULES = rules()
RAW = Rules.from_mapping({"routes": {ROUTE: {}}})


def item(ident: str, created: int, **extra: Any) -> dict[str, Any]:
    return {"id": ident, "created_at": f"2026-12-01T00:00:{created:02d}Z", **extra}


def page(*items: dict[str, Any]) -> Response:
    body = {"data": list(items), "meta": {"total_count": 99}}
    return Response(200, JSON, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def check(primary: list[dict[str, Any]], shadow: list[dict[str, Any]], query: str = "", r: Rules = RULES) -> Comparison:
    return compare(page(*primary), page(*shadow), r, request=Request.parse(f"GET /items{query}"))


def kinds(c: Comparison) -> list[tuple[str, str]]:
    return [(d.path, d.kind) for d in c.differences]


# A desc page: 9, then a tie of three at 5, then 1.
A, B, C, D, E = item("a", 9), item("b", 5), item("c", 5), item("d", 5), item("e", 1)


def test_reordered_tie_in_the_middle_is_a_match_with_a_reason():
    """The raw rules call it an order mismatch; with the rule it is a match that says why."""
    assert kinds(check([A, B, C, D, E], [A, D, B, C, E], r=RAW)) == [("data", "order")]
    c = check([A, B, C, D, E], [A, D, B, C, E])
    assert (c.result, c.differences, c.known) == ("match", (), None)
    assert c.reason and "created_at" in c.reason and "another order" in c.reason


def test_identical_pages_have_no_reason():
    c = check([A, B, C, D, E], [A, B, C, D, E])
    assert (c.result, c.reason) == ("match", None)


def test_order_bug_outside_the_run_is_still_a_mismatch():
    """A swap of two items with different keys, next to a reordered tie: the swap is reported,
    the tie is not."""
    c = check([A, B, C, D, E], [E, D, B, C, A])
    assert c.result == "mismatch" and kinds(c) == [("data", "order")]
    assert [i["id"] for i in c.differences[0].shadow] == ["e", "b", "c", "d", "a"]  # the tie in place


def test_item_moved_out_of_its_run_is_a_mismatch():
    """An item of the tie swapped with its neighbour of another key: keys differ at those
    positions, so nothing there is rearranged."""
    c = check([A, B, C, D, E], [A, B, C, E, D])
    assert c.result == "mismatch" and kinds(c) == [("data", "order")]
    assert [i["id"] for i in c.differences[0].shadow] == ["a", "b", "c", "e", "d"]


def test_changed_item_in_a_tie_is_reported_at_the_primarys_position():
    """The changed item is paired by identity, its field reported; the reordering is not."""
    changed = {**C, "name": "other"}
    c = check([A, B, {**C, "name": "x"}, D, E], [A, D, changed, B, E])
    assert c.result == "mismatch"
    assert [(d.path, d.kind, d.primary, d.shadow) for d in c.differences] == [("data[2].name", "value", "x", "other")]


def test_tie_cut_by_the_end_of_a_full_page_is_expected_and_counted_apart():
    """limit=4: the page ends inside the tie; each side took another member of it."""
    c = check([A, B, C, D], [A, D, B, E | {"created_at": B["created_at"], "id": "z"}], "?limit=4")
    assert (c.result, c.known) == ("expected", PAGE_EDGE_TIE)
    assert [(d.path, d.kind, d.primary, d.shadow) for d in c.differences] == [("data[1]", "tie", ["c"], ["z"])]
    assert c.reason and "page cut" in c.reason and "data[1]" in c.reason


def test_tie_cut_by_the_start_of_a_later_page_is_expected():
    c = check([B, C, E], [B, D, E], "?page=2&limit=3")
    assert (c.result, c.known, kinds(c)) == ("expected", PAGE_EDGE_TIE, [("data[0]", "tie")])


def test_a_tie_with_one_member_on_the_page_is_cut_too():
    """The page's last (or a later page's first) item may be the only member of its tie the page
    shows, the rest past the cut: each side may show another one (found by the fuzzer in CI)."""
    end = check([A, B, C, E], [A, B, C, item("z", 1)], "?limit=4")
    assert (end.result, end.known, kinds(end)) == ("expected", PAGE_EDGE_TIE, [("data[3]", "tie")])
    assert (end.differences[0].primary, end.differences[0].shadow) == (["e"], ["z"])
    start = check([A, B, C], [item("z", 9), B, C], "?page=2&limit=3")
    assert (start.result, start.known, kinds(start)) == ("expected", PAGE_EDGE_TIE, [("data[0]", "tie")])
    # Where no cut can be, a lone item of its key is compared as written.
    short = check([A, B, C, E], [A, B, C, item("z", 1)], "?limit=20")
    assert short.result == "mismatch" and ("data[3].id", "value") in kinds(short)
    first = check([A, B, C], [item("z", 9), B, C], "?page=1&limit=3")
    assert first.result == "mismatch" and ("data[0].id", "value") in kinds(first)


def test_other_members_where_no_cut_can_be_are_a_mismatch():
    """Page 1 starts at the first item and a short page is the last one: a tie touching those
    edges has no other members to show, so other members there are a real difference."""
    first_page = check([B, C, E], [B, D, E], "?page=1&limit=3")
    assert first_page.result == "mismatch" and ("data[1].id", "value") in kinds(first_page)
    short_page = check([A, B, C], [A, B, D], "?limit=20")
    assert short_page.result == "mismatch" and ("data[2].id", "value") in kinds(short_page)
    middle = check([A, B, C, D, E], [A, B, item("z", 5), D, E], "?limit=5")
    assert middle.result == "mismatch" and kinds(middle) == [("data[2].id", "value")]


def test_an_item_of_another_key_at_a_cut_edge_is_a_mismatch():
    """Only items of the tie's own key can be other members of it: a shadow item with another
    key at the page's end is a difference, cut or not."""
    c = check([A, B, C, D], [A, B, C, E], "?limit=4")
    assert c.result == "mismatch" and ("data[3].created_at", "value") in kinds(c)
    c = check([B, C, E], [D, A, E], "?page=2&limit=3")
    assert c.result == "mismatch" and ("data[1].created_at", "value") in kinds(c)


def test_unreadable_page_parameters_take_the_edges_as_cut():
    c = check([B, C, E], [B, D, E], "?page=two&limit=3")
    assert (c.result, c.known) == ("expected", PAGE_EDGE_TIE)
    no_page_params = rules(page_param=..., limit_param=..., default_limit=...)
    c = check([A, B, C], [A, B, D], "", no_page_params)
    assert (c.result, c.known) == ("expected", PAGE_EDGE_TIE)


def test_same_identity_at_a_cut_edge_is_compared():
    """A member both sides hold is compared even at a cut edge: a changed item is never taken
    for another member of the tie."""
    c = check([A, B, C, D], [A, D, B, {**C, "name": "changed"}], "?limit=4")
    assert c.result == "mismatch" and kinds(c) == [("data[2].name", "extra")]


def test_without_identity_a_changed_item_at_a_cut_edge_is_a_tie():
    """Documented: without `identity` a changed member cannot be told from another one."""
    c = check([A, B, C, D], [A, D, B, {**C, "name": "changed"}], "?limit=4", rules(identity=...))
    assert (c.result, kinds(c)) == ("expected", [("data[1]", "tie")])


def test_a_tie_difference_with_another_difference_is_a_mismatch():
    c = check([{**A, "n": 1}, B, C, D], [{**A, "n": 2}, D, B, item("z", 5)], "?limit=4")
    assert c.result == "mismatch" and c.known is None
    assert kinds(c) == [("data[0].n", "value"), ("data[1]", "tie")]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_both_directions(order: str):
    """The direction is not read: a tie is a run of equal keys either way."""
    listed = [A, B, C, D, E] if order == "desc" else [E, B, C, D, A]
    shuffled = [listed[0], listed[3], listed[1], listed[2], listed[4]]
    assert check(listed, shuffled, f"?sort_order={order}").result == "match"
    swapped = [listed[4], *listed[1:4], listed[0]]
    assert check(listed, swapped, f"?sort_order={order}").result == "mismatch"


def test_unknown_sort_key_is_an_unsorted_page():
    """A key not listed (agno: not a column, no ORDER BY at all): the whole page is one tie."""
    mixed = [A, E, B]
    assert check([A, B, E], mixed, "?sort_by=nonsense").result == "match"
    assert check([A, B, E], mixed, "?sort_by=").result == "match"
    full = check([A, B, E], [A, B, C], "?sort_by=nonsense&limit=3")
    assert (full.result, kinds(full)) == ("expected", [("data[0]", "tie")])
    as_written = rules(other_keys="as_written")
    assert check([A, B, E], mixed, "?sort_by=nonsense", as_written).result == "mismatch"


def test_key_the_items_do_not_show_is_compared_as_written():
    assert kinds(check([A, B, C, D, E], [A, D, B, C, E], "?sort_by=blob")) == [("data", "order")]


def test_listed_sort_key_and_the_last_value_of_a_repeated_parameter():
    """sort_by=user_id: items with another user_id are not tied even at equal created_at."""
    u = [item("p", 5, user_id="u1"), item("q", 5, user_id="u2")]
    assert check(u, u[::-1], "?sort_by=user_id").result == "mismatch"
    assert check(u, u[::-1], "?sort_by=user_id&sort_by=created_at").result == "match"
    assert check(u, u[::-1], "?sort_by=created_at&sort_by=user_id").result == "mismatch"


def test_null_keys_are_one_value():
    """An absent field and a null one are both NULL, and NULLs are tied with each other."""
    n1, n2, n3 = item("p", 1), item("q", 2, user_id=None), item("r", 3)
    keyed = item("s", 4, user_id="u")
    c = check([n1, n2, n3, keyed], [n3, n1, n2, keyed], "?sort_by=user_id")
    assert c.result == "match" and c.reason
    assert check([keyed, n1, n2], [n1, keyed, n2], "?sort_by=user_id").result == "mismatch"


def test_coalesced_key():
    """sort_by=updated_at: an item without updated_at is keyed by its created_at."""
    x = item("x", 7, updated_at="2026-12-01T00:00:30Z")
    y = item("y", 30)  # no updated_at: its key is created_at, equal to x's updated_at
    z = item("z", 1, updated_at="2026-12-01T00:00:20Z")
    assert check([x, y, z], [y, x, z], "?sort_by=updated_at").result == "match"
    assert check([x, y, z], [y, x, z], "?sort_by=created_at").result == "mismatch"


def test_keys_are_compared_exactly_as_rendered():
    """`5` and `"5"`, or two spellings of one instant, are different keys: not a tie."""
    p, q = {"id": "p", "created_at": 5}, {"id": "q", "created_at": "5"}
    assert check([p, q], [q, p]).result == "mismatch"
    r, s = {"id": "r", "created_at": "2026-12-01T00:00:05Z"}, {"id": "s", "created_at": "2026-12-01T00:00:05+00:00"}
    assert check([r, s], [s, r]).result == "mismatch"


def test_spelling_differences_in_reordered_ties_are_still_reported():
    """Reordered items keep their bytes; an escape spelled otherwise changes them."""
    b, c = {**B, "name": "é"}, {**C, "name": "ü"}
    primary = page(A, b, c)
    shadow = Response(200, JSON, page(A, c, b).body.replace("é".encode(), b"\\u00e9"))
    verdict = compare(primary, shadow, RULES, request=Request.parse("GET /items"))
    assert verdict.result == "mismatch" and kinds(verdict) == [("$", "order")]


def test_the_rule_needs_lists_of_objects_of_one_length():
    assert check([A, B, C], [A, C], "").result == "mismatch"
    bare = compare(
        Response(200, JSON, b'{"data":[1,1,2]}'),
        Response(200, JSON, b'{"data":[2,1,1]}'),
        RULES,
        request=Request.parse("GET /items"),
    )
    assert bare.result == "mismatch"
    no_request = compare(page(A, B, C), page(A, C, B), RULES)
    assert no_request.result == "mismatch"  # without the request there is no route, no rule


def test_known_difference_still_explains_the_other_differences(tmp_path: Path):
    known = tmp_path / "known.yaml"
    known.write_text(
        "- id: n-differs\n  route: GET /items\n  legacy: {status: 200}\n  native: {status: 200}\n  paths: ['data[*].n']\n"
    )
    r = Rules.from_mapping({"routes": {ROUTE: {"sorted": SORTED}}, "known_differences": str(known)})
    legacy = page({**A, "n": 1}, B, C, D)
    native = Response(200, JSON, page({**A, "n": 2}, D, B, item("z", 5)).body, "native")
    c = compare(Response(200, JSON, legacy.body, "legacy"), native, r, request=Request.parse("GET /items?limit=4"))
    assert (c.result, c.known) == ("expected", "n-differs")


# ---- the rule's schema ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"items": "data[*]"}, "sorted.items: 'data[*]' should name one list"),
        ({"items": "da ta"}, "sorted.items: not a JSON path"),
        ({"other_keys": "sometimes"}, "sorted.other_keys: Input should be 'unsorted' or 'as_written'"),
        ({"default_limit": 0}, "sorted.default_limit: Input should be greater than or equal to 1"),
        ({"first_page": "1"}, "sorted.first_page: Input should be a valid integer"),
        ({"keys": {"a": []}}, "sorted.keys.a: Value should have at least 1 item"),
        ({"wat": 1}, "unknown key(s) ['wat']"),
        ({"default_key": ...}, "sorted.default_key: Field required"),
    ],
)
def test_bad_sorted_rules_are_refused(change: dict[str, Any], message: str):
    rule = {k: v for k, v in {**SORTED, **change}.items() if v is not ...}
    with pytest.raises(RulesError, match="GET /items") as error:
        Rules.from_mapping({"routes": {ROUTE: {"sorted": rule}}})
    assert message in str(error.value)


def test_the_comparators_own_id_is_reserved(tmp_path: Path):
    known = tmp_path / "known.yaml"
    known.write_text(
        f"- id: {PAGE_EDGE_TIE}\n  route: GET /items\n  legacy: {{status: 200}}\n  native: {{status: 500}}\n"
    )
    with pytest.raises(RulesError, match="comparator's own"):
        Rules.from_mapping({"known_differences": str(known)})


def test_a_route_entry_replaces_the_defaults_rule():
    r = Rules.from_mapping({"defaults": {"sorted": SORTED}, "routes": {"GET /other": {}, ROUTE: {"sorted": None}}})
    assert r.for_route("GET /other").sorted == r.defaults.sorted is not None
    assert r.for_route(ROUTE).sorted == r.defaults.sorted  # null: not given, the defaults' rule


# ---- the shipped rule ----------------------------------------------------------------------


def _session(ident: str, created: int, **extra: Any) -> dict[str, Any]:
    at = f"2026-12-01T00:00:{created:02d}Z"
    return {"session_id": ident, "session_name": ident, "created_at": at, "updated_at": at, **extra}


def test_the_shipped_sessions_rule():
    """config/comparator.yaml: GET /sessions sorted by created_at desc unless told otherwise,
    paired by session_id, cut edges known from page and limit (default 20)."""
    shipped = Rules.load(REPO / "config" / "comparator.yaml")
    s = [_session("a", 9), _session("b", 5), _session("c", 5), _session("d", 1)]
    swapped = [s[0], s[2], s[1], s[3]]

    def verdict(query: str, primary: list[Any], shadow: list[Any]) -> Comparison:
        return compare(page(*primary), page(*shadow), shipped, request=Request.parse(f"GET /sessions{query}"))

    assert verdict("", s, swapped).result == "match"
    assert verdict("/", s, swapped).result == "match"  # trailing slash: the same route
    assert verdict("?sort_by=session_id", s, swapped).result == "mismatch"
    assert verdict("?sort_by=session_data", s, swapped).result == "mismatch"
    assert verdict("?sort_by=not_a_column", s, [s[3], s[1], s[0], s[2]]).result == "match"
    cut = verdict("?limit=3", s[:3], [s[0], s[2], _session("z", 5)])
    assert (cut.result, cut.known, [(d.path, d.primary, d.shadow) for d in cut.differences]) == (
        "expected",
        PAGE_EDGE_TIE,
        [("data[1]", ["b"], ["z"])],
    )
    assert verdict("?limit=20", s[:3], [s[0], s[2], _session("z", 5)]).result == "mismatch"
    assert verdict("", [s[3], s[1], s[2], s[0]], s).result == "mismatch"


def test_top_level_list():
    r = Rules.from_mapping({"routes": {ROUTE: {"sorted": {**SORTED, "items": "$"}}}})
    primary, shadow = [A, B, C, E], [A, C, B, E]
    verdict = compare(
        Response(200, JSON, json.dumps(primary).encode()),
        Response(200, JSON, json.dumps(shadow).encode()),
        r,
        request=Request.parse("GET /items"),
    )
    assert verdict.result == "match" and verdict.reason


# ---- properties ----------------------------------------------------------------------------

_keys = st.lists(st.integers(min_value=0, max_value=3), min_size=2, max_size=12)


@settings(max_examples=150, deadline=None)
@given(keys=_keys, seed=st.randoms(use_true_random=False))
def test_property_shuffled_ties_match_and_key_swaps_do_not(keys: list[int], seed: Any):
    """Any shuffle inside runs of equal keys is a match; swapping two items whose keys differ
    never is (on a short page, where no cut is possible)."""
    keys = sorted(keys, reverse=True)
    items = [item(f"i{n}", k) for n, k in enumerate(keys)]
    shuffled: list[dict[str, Any]] = []
    start = 0
    for end in range(1, len(items) + 1):
        if end == len(items) or keys[end] != keys[start]:
            run = items[start:end]
            seed.shuffle(run)
            shuffled.extend(run)
            start = end
    assert check(items, shuffled, "?limit=20").result == "match"
    different = [(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys)) if keys[i] != keys[j]]
    if different:
        i, j = seed.choice(different)
        swapped = list(shuffled)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        assert check(items, swapped, "?limit=20").result == "mismatch"
