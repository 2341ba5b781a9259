"""Paths, templates and rule globs (comparator.paths): the names differences and rules share."""

from __future__ import annotations

import pytest

from comparator import format_path, format_template, parse_path, template_of
from comparator.paths import ANY_INDEX, compile_glob, glob_matches

# Segment lists whose formatting must survive a round trip, including keys that need quoting.
ROUND_TRIPS = [
    [],
    ["data"],
    ["data", 3, "session_name"],
    [0],
    [0, "a"],
    [0, 1, 2],
    ["metadata", "a.b"],
    ["3"],
    ["x y"],
    [""],
    ["é"],
    ['q"u'],
    ["a\\b"],
    ["a]b"],
    ["new\nline"],
    ["-x"],
    ["_y", "a-b", "A9"],
    ["1a"],
    ["$"],
    ["*"],
    ["data", 10, "runs", 0, "tools", 2, "a.b", "c"],
]


# ---- format_path / format_template -----------------------------------------------------------


@pytest.mark.parametrize(
    ("segments", "path"),
    [
        ([], "$"),
        (["data"], "data"),
        (["data", 3, "session_name"], "data[3].session_name"),
        ([0, "a"], "[0].a"),
        ([0, 1], "[0][1]"),
        (["metadata", "a.b"], 'metadata["a.b"]'),
        (["3"], '["3"]'),
        (["data", "3"], 'data["3"]'),
        (["x y"], '["x y"]'),
        ([""], '[""]'),
        (["a-b", "_c"], "a-b._c"),
        (["é"], '["é"]'),
    ],
)
def test_format_path(segments, path):
    """The readable form: dotted names, `[i]` indices, non-identifier keys quoted as JSON."""
    assert format_path(segments) == path


def test_numeric_string_key_is_not_an_index():
    """Key "3" and index 3 must never print the same: `["3"]` vs `[3]`."""
    assert format_path(["3"]) != format_path([3])
    assert parse_path(format_path(["3"])) == ["3"]
    assert parse_path(format_path([3])) == [3]


@pytest.mark.parametrize(
    ("segments", "template"),
    [
        ([], "$"),
        (["data", 3, "session_name"], "data[*].session_name"),
        ([0, 12, "a"], "[*][*].a"),
        (["data", 0, "a.b"], 'data[*]["a.b"]'),
        (["3", 4], '["3"][*]'),
    ],
)
def test_format_template(segments, template):
    """Every index becomes `[*]`; keys (quoted or not) are kept."""
    assert format_template(segments) == template


# ---- parse_path ------------------------------------------------------------------------------


@pytest.mark.parametrize("segments", ROUND_TRIPS, ids=repr)
def test_parse_path_inverts_format_path(segments):
    """parse_path(format_path(s)) == s for any segments, quoted keys included."""
    assert parse_path(format_path(segments)) == segments


@pytest.mark.parametrize("segments", ROUND_TRIPS, ids=repr)
def test_format_path_inverts_parse_path(segments):
    """The formatted path is canonical: parsing and re-formatting gives the same text."""
    path = format_path(segments)
    assert format_path(parse_path(path)) == path


def test_parse_path_of_a_template_keeps_star():
    """`[*]` parses to ANY_INDEX (never a concrete index, never the key "*"), so a template is
    as parseable as a concrete path."""
    assert parse_path("data[*].runs[*].id") == ["data", ANY_INDEX, "runs", ANY_INDEX, "id"]
    assert parse_path('data[*]["a.b"]') == ["data", ANY_INDEX, "a.b"]
    assert parse_path('["*"]') == ["*"]


def test_parse_path_root():
    """`$` and the empty string are the body itself."""
    assert parse_path("$") == []
    assert parse_path("") == []


@pytest.mark.parametrize("bad", ["a b", "a[", "[x]", "a..b", "a[1", '["unterminated]', "data[-1]"])
def test_parse_path_rejects_garbage(bad):
    """A string no format_path could produce is an error, not a silent partial parse."""
    with pytest.raises(ValueError):
        parse_path(bad)


# ---- template_of -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("data[3].session_name", "data[*].session_name"),
        ("[0][1].a", "[*][*].a"),
        ('metadata["a.b"]', 'metadata["a.b"]'),
        ('data[7]["3"]', 'data[*]["3"]'),
        ("data[*].x", "data[*].x"),
        ("$", "$"),
        (":status", ":status"),
        (":headers.content-type", ":headers.content-type"),
    ],
)
def test_template_of(path, template):
    """Concrete path -> template; templates, `$` and the HTTP paths are their own template."""
    assert template_of(path) == template


@pytest.mark.parametrize("segments", [s for s in ROUND_TRIPS if s != ["*"]], ids=repr)
def test_template_of_agrees_with_format_template(segments):
    """template_of(format_path(s)) == format_template(s): the engine uses both."""
    assert template_of(format_path(segments)) == format_template(segments)


def test_template_of_keeps_a_key_named_star():
    """A JSON key "*" is a key: its template is `["*"]`, as format_template says, not `[*]`."""
    assert template_of(format_path(["*"])) == format_template(["*"]) == '["*"]'


# ---- globs -----------------------------------------------------------------------------------


def _m(pattern: str, path: str, below: bool = True) -> bool:
    return glob_matches([pattern], path, template_of(path), below)


def test_index_star_matches_any_index():
    """`[*]` matches every index, in a concrete path or in a template."""
    assert _m("data[*].x", "data[0].x")
    assert _m("data[*].x", "data[123].x")
    assert compile_glob("data[*].x").match("data[*].x")
    assert not _m("data[*].x", "data.y.x")
    assert not _m("data[*].x", "data[0].y")


def test_concrete_index_matches_only_that_index():
    """A concrete pattern names one element; it is not widened to the template."""
    assert _m("data[2].x", "data[2].x")
    assert not _m("data[2].x", "data[3].x")
    assert not _m("data[2].x", "data[22].x")


def test_key_star_matches_exactly_one_key():
    """`*` is one key: not an index, not several segments (unless via 'covers below')."""
    assert _m("a.*", "a.b")
    assert _m("a.*.c", "a.b.c")
    assert not _m("a.*.c", "a.b.d.c")
    assert not _m("a.*", "a[0]")
    assert not _m("a.*", "a.b.c", below=False)
    assert _m("*", "anything")
    assert _m("*.id", "x.id")
    assert not _m("*.id", "x.y.id")


def test_key_star_matches_a_quoted_key():
    """`*` is documented as any one key; keys that need quoting are keys too."""
    assert _m("x.*", 'x["a.b"]')
    assert _m("x.*", 'x["3"]')


@pytest.mark.parametrize("path", ["x", "a.x", "a.b.x", "a[0].x", "[0].x", "data[3].runs[1].x", "x.y", "a.x[0]"])
def test_double_star_dot_matches_at_any_depth(path):
    """`**.x` names x at any depth, the top level included (and what lies below it)."""
    assert _m("**.x", path)


@pytest.mark.parametrize("path", ["ax", "a.xy", "a.bx", "xy", "a.x_y", "a.x-y", 'a["x y"]'])
def test_double_star_dot_matches_whole_keys_only(path):
    """`**.x` must not match a key that merely ends or starts with x."""
    assert not _m("**.x", path)


def test_double_star_dot_does_not_match_inside_quoted_key():
    """The key "q.x.z" has no segment x; `**.x` must not reach into the quoted text."""
    assert not _m("**.x", 'a["q.x.z"]')


def test_double_star_matches_everything():
    """A bare `**` covers every path."""
    for path in ["a", "a.b", "[0]", "a[1].b", 'a["q"]']:
        assert _m("**", path)


@pytest.mark.parametrize(
    "path", ["data[3].metadata", "data[3].metadata.k", "data[3].metadata[0]", "data[3].metadata.k.z"]
)
def test_pattern_covers_everything_below(path):
    """A rule also covers the subtree below what it names."""
    assert _m("data[*].metadata", path)


def test_below_false_matches_only_the_named_node():
    """With below=False (unordered rules) the pattern names exactly one node."""
    assert _m("data", "data", below=False)
    assert not _m("data", "data[0]", below=False)
    assert not _m("data", "data.x", below=False)
    assert _m("**.tools", "a[0].tools", below=False)
    assert not _m("**.tools", "a[0].tools[1]", below=False)


@pytest.mark.parametrize("path", ["database", "data_x", "data-x", "data2", "dat", 'data2["x"]'])
def test_prefix_of_a_key_is_not_a_match(path):
    """`data` names the key data, never `database` or another key it is a prefix of."""
    assert not _m("data", path)


@pytest.mark.parametrize("path", ["data", "data.x", "data[0]", 'data["a.b"]'])
def test_plain_name_matches_itself_and_below(path):
    """`data` covers data and everything under it."""
    assert _m("data", path)


def test_quoted_key_pattern_is_literal():
    """A pattern with a quoted key matches that key only; its dot is not a separator."""
    assert _m('metadata["a.b"]', 'metadata["a.b"]')
    assert _m('metadata["a.b"]', 'metadata["a.b"].c')
    assert not _m('metadata["a.b"]', "metadata.a.b")
    assert not _m("metadata.a.b", 'metadata["a.b"]')


def test_glob_matches_template_or_path():
    """glob_matches accepts a match on either the concrete path or its template."""
    assert glob_matches(["data[*].x"], "data[4].x", "data[*].x")
    assert glob_matches(["data[4].x"], "data[4].x", "data[*].x")
    assert not glob_matches(["data[5].x"], "data[4].x", "data[*].x")
    assert glob_matches(["nope", "data[*].x"], "data[4].x", "data[*].x")
    assert not glob_matches([], "data[4].x", "data[*].x")


def test_http_paths_are_matchable():
    """Rules may name `:status` and `:headers.<name>`; neither matches a body path."""
    assert _m(":status", ":status")
    assert _m(":headers.x-request-id", ":headers.x-request-id")
    assert not _m(":headers.x-request-id", ":headers.x-request-idx")
    assert not _m(":status", "status")
