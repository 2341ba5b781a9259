"""Properties of `compare` over random JSON: a body matches itself, a single mutation is
reported exactly where it happened, and an ignore rule removes exactly what it names."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from comparator import Response, Rules, compare
from comparator.paths import Segment, format_path, parse_path

JSON = {"content-type": "application/json"}

# Keys include ones that must be quoted in a path ("a.b", "3", "x y", "", "é").
KEYS = ["a", "b", "id", "data", "a.b", "3", "x y", "", "é"]

scalars = st.one_of(
    st.text(max_size=6),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    max_leaves=16,
)

SETTINGS = settings(max_examples=150, deadline=None)


def resp(value: Any, **dumps: Any) -> Response:
    return Response(200, JSON, json.dumps(value, **dumps).encode())


# ---- mutation helpers -------------------------------------------------------------------------


def leaves(value: Any, at: tuple[Segment, ...] = ()) -> list[tuple[Segment, ...]]:
    """Paths of the scalars in `value`."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, at + (k,))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, at + (i,))]
    return [at]


def dicts(value: Any, at: tuple[Segment, ...] = ()) -> list[tuple[Segment, ...]]:
    """Paths of the objects in `value`."""
    out = [at] if isinstance(value, dict) else []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in children:
        out.extend(dicts(v, at + (k,)))
    return out


def get(value: Any, path: tuple[Segment, ...]) -> Any:
    for s in path:
        value = value[s]
    return value


def put(value: Any, path: tuple[Segment, ...], new: Any) -> Any:
    """`value` with the node at `path` replaced (the root itself when path is empty)."""
    if not path:
        return new
    get(value, path[:-1])[path[-1]] = new
    return value


def _differ(old: Any, new: Any) -> Any:
    """`new`, nudged when it happens to equal `old` (-0.0 == 0.0 counts as equal here)."""
    if new != old:
        return new
    if isinstance(old, str):
        return old + "x"
    if isinstance(old, int):
        return old + 1
    return -old if old else 1.0


def same_type(value: Any) -> st.SearchStrategy[Any]:
    """Another value of the leaf's JSON type."""
    base = {str: st.text(max_size=6), int: st.integers(), float: st.floats(allow_nan=False, allow_infinity=False)}[
        type(value)
    ]
    return base.map(lambda v: _differ(value, v))


OTHER_TYPES: dict[type, st.SearchStrategy[Any]] = {
    str: st.text(max_size=3),
    int: st.integers(min_value=-5, max_value=5),
    float: st.floats(-5, 5),
    type(None): st.none(),
    bool: st.booleans(),
    list: st.lists(st.integers(0, 3), max_size=2),
    dict: st.just({}),
}


def other_type(value: Any) -> st.SearchStrategy[Any]:
    """A value of another JSON type (int vs float counts as a type change)."""
    return st.one_of([s for t, s in OTHER_TYPES.items() if t is not type(value)])


def draw_mutation(data: st.DataObject, value: Any) -> tuple[str, tuple[Segment, ...], Any]:
    """(kind of difference expected, path of the mutation, new node or None for a delete)."""
    choices = ["value", "type"] if leaves(value) else []
    objects = dicts(value)
    if any(get(value, p) for p in objects):
        choices.append("missing")
    if any(len(get(value, p)) < len(KEYS) for p in objects):
        choices.append("extra")
    assume(choices)  # e.g. [] or [[]]: nothing to mutate
    kind = data.draw(st.sampled_from(choices), label="mutation")
    if kind in ("value", "type"):
        site = data.draw(st.sampled_from(leaves(value)), label="leaf")
        old = get(value, site)
        new = data.draw(same_type(old) if kind == "value" else other_type(old), label="new")
        return kind, site, new
    if kind == "missing":
        parent = data.draw(st.sampled_from([p for p in objects if get(value, p)]), label="object")
        key = data.draw(st.sampled_from(list(get(value, parent))), label="key")
        return kind, parent + (key,), None
    parent = data.draw(st.sampled_from([p for p in objects if len(get(value, p)) < len(KEYS)]), label="object")
    key = data.draw(st.sampled_from([k for k in KEYS if k not in get(value, parent)]), label="key")
    return kind, parent + (key,), data.draw(json_values, label="added")


def apply(value: Any, mutation: tuple[str, tuple[Segment, ...], Any]) -> Any:
    kind, path, new = mutation
    if kind == "missing":
        del get(value, path[:-1])[path[-1]]
        return value
    if kind == "extra":
        get(value, path[:-1])[path[-1]] = new  # a new key goes last: no key-order change
        return value
    return put(value, path, new)


def nested(a: tuple[Segment, ...], b: tuple[Segment, ...]) -> bool:
    """Whether one path is the other or lies below it."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def is_permutation(a: Any, b: Any) -> bool:
    enc = lambda x: json.dumps(x, sort_keys=False)  # noqa: E731
    return isinstance(a, list) and isinstance(b, list) and a != b and sorted(map(enc, a)) == sorted(map(enc, b))


# ---- (a) a body matches itself ---------------------------------------------------------------


@SETTINGS
@given(json_values)
def test_a_body_matches_itself(value):
    """compare(x, x) is a match: identical bytes, and bytes re-encoded from the parsed body."""
    assert compare(resp(value), resp(value)).result == "match"
    again = json.loads(json.dumps(value))
    c = compare(resp(value), resp(again))
    assert c.result == "match" and c.differences == ()


@SETTINGS
@given(json_values)
def test_reserialization_is_at_most_one_order_difference(value):
    """The same value in other spacing/escaping is one `order` at `$` (or byte-equal), and
    nothing at all once key_order is off."""
    pretty = resp(value, indent=1, ensure_ascii=False)
    compact = resp(value, separators=(",", ":"))
    c = compare(pretty, compact)
    if pretty.body == compact.body:
        assert c.result == "match"
    else:
        assert [(d.path, d.kind) for d in c.differences] == [("$", "order")]
    assert compare(pretty, compact, Rules.from_mapping({"defaults": {"key_order": False}})).result == "match"


# ---- (b) one mutation, reported where it happened ----------------------------------------------


@SETTINGS
@given(json_values, st.data())
def test_single_mutation_is_reported_at_its_path(value, data):
    """Changing a leaf's value or type, deleting or adding a key gives differences all at exactly
    that path, of the matching kind, and at least one."""
    mutation = draw_mutation(data, value)
    kind, path, _ = mutation
    mutated = apply(copy.deepcopy(value), mutation)
    c = compare(resp(value), resp(mutated))
    assert c.result == "mismatch"
    assert c.differences
    expected_path = format_path(list(path))
    assert [(d.path, d.kind) for d in c.differences] == [(expected_path, kind)]
    assert parse_path(c.differences[0].path) == list(path)


@SETTINGS
@given(json_values, st.data())
def test_single_mutation_swapped_sides(value, data):
    """Swapping primary and shadow swaps missing/extra and keeps the path."""
    mutation = draw_mutation(data, value)
    kind, path, _ = mutation
    mutated = apply(copy.deepcopy(value), mutation)
    swapped = {"missing": "extra", "extra": "missing"}.get(kind, kind)
    c = compare(resp(mutated), resp(value))
    assert [(d.path, d.kind) for d in c.differences] == [(format_path(list(path)), swapped)]


# ---- (c) ignore removes exactly what it names ------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(json_values, st.data())
def test_ignore_removes_exactly_the_named_path(value, data):
    """Two mutations at distinct, non-nested paths; ignoring one concrete path leaves exactly the
    other's differences (and without the rule both are reported)."""
    first = draw_mutation(data, value)
    second = draw_mutation(data, value)
    assume(not nested(first[1], second[1]))
    mutated = apply(apply(copy.deepcopy(value), first), second)
    for path in (first[1], second[1]):
        assume(not (path and is_permutation(get(value, path[:-1]), get(mutated, path[:-1]))))

    ignored, kept = (first, second) if data.draw(st.booleans(), label="ignore first") else (second, first)
    ignored_path, kept_path = format_path(list(ignored[1])), format_path(list(kept[1]))

    plain = compare(resp(value), resp(mutated))
    assert {d.path for d in plain.differences} == {ignored_path, kept_path}

    rules = Rules.from_mapping({"defaults": {"ignore": [ignored_path]}})
    c = compare(resp(value), resp(mutated), rules)
    assert c.result == "mismatch"
    assert [(d.path, d.kind) for d in c.differences] == [(kept_path, kept[0])]
