"""The known-difference trigger language: literal query values, `{pattern: REGEX}` query
values, `target` (the decoded path and query) and `body_text` (the body as sent)."""

from __future__ import annotations

import pytest

from comparator import Request, Response, Rules, RulesError, compare, load_known_differences

ENTRY = """
- id: p
  route: GET /items/{id}
  match: {query: {page: {pattern: '^-?0$'}}}
  legacy: {status: 500}
  native: {status: 422}
- id: t
  route: GET /things/{id}
  match: {target: '\\x00'}
  legacy: {status: 500}
  native: {status: 404}
- id: b
  route: POST /items
  match: {body_text: 'NaN|Infinity'}
  legacy: {status: 500}
  native: {status: 422}
"""


@pytest.fixture
def rules(tmp_path) -> Rules:
    (tmp_path / "known.yaml").write_text(ENTRY)
    return Rules.from_mapping({"known_differences": "known.yaml"}, base_dir=tmp_path)


def verdict(
    rules: Rules, request: Request, legacy: int, native: int, legacy_body: bytes = b'{"detail":"x"}'
) -> tuple[str, str | None]:
    c = compare(
        Response(legacy, {"content-type": "application/json"}, legacy_body, "legacy"),
        Response(native, {"content-type": "application/json"}, b'{"detail":"y"}', "native"),
        rules,
        request=request,
    )
    return c.result, c.known


@pytest.mark.parametrize(
    "request_,expected",
    [
        (Request("GET", "/items/1?page=0"), ("expected", "p")),
        (Request("GET", "/items/1?page=-0&x=1"), ("expected", "p")),
        (Request("GET", "/items/1?page=1"), ("mismatch", None)),
        (Request("GET", "/items/1"), ("mismatch", None)),
        (Request("GET", "/things/a%00b"), ("expected", "t")),
        (Request("GET", "/things/a?user=%00"), ("expected", "t")),
        (Request("GET", "/things/a%2500"), ("mismatch", None)),  # a literal "%00", not a NUL
        (Request("POST", "/items", body=b'{"x":NaN}'), ("expected", "b")),
        (Request("POST", "/items", body=b'{"x":-Infinity}'), ("expected", "b")),
        (Request("POST", "/items", body=b'{"x":1}'), ("mismatch", None)),
    ],
)
def test_trigger_recognises_every_request_of_its_kind(rules: Rules, request_: Request, expected) -> None:
    status = {"p": (500, 422), "t": (500, 404), "b": (500, 422)}
    entry = {"/items/1": "p", "/things/": "t", "/items": "b"}
    kind = next(v for k, v in entry.items() if request_.path.startswith(k))
    assert verdict(rules, request_, *status[kind]) == expected


def test_trigger_still_needs_the_statuses(rules: Rules) -> None:
    assert verdict(rules, Request("GET", "/things/%00"), 500, 200) == ("mismatch", None)


def test_a_bad_regex_is_refused_naming_its_key(tmp_path) -> None:
    kd = tmp_path / "kd.yaml"
    kd.write_text("- {id: x, route: GET /a, match: {target: '('}, legacy: {status: 500}, native: {status: 200}}\n")
    with pytest.raises(RulesError, match=r"x: match.target: not a regular expression"):
        load_known_differences(kd)


def test_project_entries_recognise_hostile_requests() -> None:
    from agentos_session.sessions_api import route_label

    rules = Rules.load("config/comparator.yaml", label=route_label)
    nul = Request("GET", "/sessions/%00")
    data_error = b'{"detail":"Internal server error (DataError)"}'
    assert verdict(rules, nul, 500, 404, data_error) == ("expected", "nul-in-session-id")
    assert verdict(rules, Request("GET", "/sessions/%2500"), 500, 404, data_error) == ("mismatch", None)
    nan = Request("POST", "/sessions", body=b'{"session_state":{"x":NaN}}')
    assert verdict(rules, nan, 500, 422) == ("expected", "create-non-finite-number")
    surrogate = Request("POST", "/sessions", body=b'{"session_id":"a\\uD800"}')
    assert verdict(rules, surrogate, 500, 422) == ("expected", "create-unstorable-text")
