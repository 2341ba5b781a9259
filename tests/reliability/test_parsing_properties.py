"""Property tests (Hypothesis) of the native service's query and body parsing
(session_service/validation.py), pure: no server, no database.

Where agno's own code exists it is the oracle, called directly:

- `sanitize_string` / `sanitize_strings` against agno's `sanitize_postgres_string(s)`;
- `parse_query` against FastAPI's own query validation (`request_params_to_args`) of agno's
  session router's real endpoints (their `Query(...)` declarations, taken from the router);
- `parse_model` against FastAPI's own body validation (`request_body_to_args`) of the same
  endpoints' body parameters (agno's pydantic request models);

and for the rest the property is stated: `decode_body` raises nothing but `RequestInvalid` (422)
or `BodyUnreadable` (400) and round-trips any JSON document; `storable` is exactly what Postgres
text can hold (no NUL, encodable as UTF-8).
"""

from __future__ import annotations

import asyncio
import json
import string
from enum import Enum
from typing import Any

import pytest
from agno.os.routers.session.session import get_session_router
from agno.utils.string import sanitize_postgres_string, sanitize_postgres_strings
from fastapi._compat import Undefined
from fastapi.dependencies.utils import _should_embed_body_fields, request_body_to_args, request_params_to_args
from fastapi.encoders import jsonable_encoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from session_service import validation as v

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# The oracle comparisons, per route (10 query routes, 3 body routes): fewer examples each.
PER_ROUTE = settings(PROPERTY, max_examples=100)

# agno's session router, built without databases: only its declarations are used.
ROUTES = {(sorted(r.methods)[0], r.path): r for r in get_session_router(dbs={}).routes}
QUERY_PARAMS = {
    ("GET", "/sessions"): v.LIST_PARAMS,
    ("POST", "/sessions"): v.CREATE_PARAMS,
    ("GET", "/sessions/{session_id}"): v.DETAIL_PARAMS,
    ("GET", "/sessions/{session_id}/runs"): v.RUNS_PARAMS,
    ("GET", "/sessions/{session_id}/run-previews"): v.RUNS_PARAMS,
    ("GET", "/sessions/{session_id}/runs/{run_id}"): v.RUN_PARAMS,
    ("DELETE", "/sessions/{session_id}"): v.DELETE_PARAMS,
    ("DELETE", "/sessions"): v.DELETE_PARAMS,
    ("POST", "/sessions/{session_id}/rename"): v.RENAME_PARAMS,
    ("PATCH", "/sessions/{session_id}"): v.UPDATE_PARAMS,
}
BODY_MODELS = {
    ("POST", "/sessions"): (v.CreateSessionRequest, False),
    ("PATCH", "/sessions/{session_id}"): (v.UpdateSessionRequest, True),
    ("DELETE", "/sessions"): (v.DeleteSessionRequest, True),
}

# Text with what matters here: control characters, NUL, lone surrogates, U+FFFE/U+FFFF, digits
# of other scripts, whitespace and signs around numbers.
special = st.sampled_from(
    ["\x00", "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", "\x7f", "\ufffe", "\uffff", "\ud800", "\udfff"]
)
texts = st.text(st.one_of(st.characters(), special), max_size=20)
numbers = st.sampled_from(["0", "-0", "+0", "00", " 1", "1 ", "-1", "20", "1e3", "1.0", "٣", "9" * 20, "", "true"])
words = st.sampled_from(["agent", "team", "workflow", "AGENT", "asc", "desc", "created_at", "true", "false", "1", "no"])
values = st.one_of(texts, numbers, words)


def _names(route: tuple[str, str]) -> list[str]:
    return [p.name for p in QUERY_PARAMS[route]]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


# ---------------------------------------------------------------------------------------------
# sanitize_string, sanitize_strings, storable
# ---------------------------------------------------------------------------------------------


@PROPERTY
@given(texts)
def test_sanitize_string_is_agnos(text: str) -> None:
    assert v.sanitize_string(text) == sanitize_postgres_string(text)


@PROPERTY
@given(texts)
def test_sanitize_string_removes_exactly_agnos_set_and_is_idempotent(text: str) -> None:
    removed = set(map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF]))
    once = v.sanitize_string(text)
    assert once == "".join(c for c in text if c not in removed)
    assert v.sanitize_string(once) == once


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(json_values)
def test_sanitize_strings_is_agnos(value: Any) -> None:
    expected = sanitize_postgres_strings(json.loads(json.dumps(value)))  # agno may work in place
    assert v.sanitize_strings(value) == expected


@PROPERTY
@given(texts)
def test_storable_is_what_postgres_text_holds(text: str) -> None:
    try:
        text.encode("utf-8")
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    assert v.storable(text) == (encodable and "\x00" not in text)


# ---------------------------------------------------------------------------------------------
# parse_query against FastAPI's validation of agno's declarations
# ---------------------------------------------------------------------------------------------


def _fastapi_query(route: tuple[str, str], pairs: list[tuple[str, str]]) -> tuple[dict[str, Any], list[Any]]:
    fields = ROUTES[route].dependant.query_params
    found, errors = request_params_to_args(fields, QueryParams(pairs))
    alias = {f.name: f.alias for f in fields}  # FastAPI keys values by the argument's name
    return {alias[k]: _plain(x) for k, x in found.items()}, jsonable_encoder(errors)


def _native_query(route: tuple[str, str], pairs: list[tuple[str, str]]) -> tuple[dict[str, Any], list[Any]]:
    query: dict[str, list[str]] = {}
    for key, value in pairs:
        query.setdefault(key, []).append(value)
    try:
        return v.parse_query(query, QUERY_PARAMS[route]), []
    except v.RequestInvalid as exc:  # the only exception it may raise
        return {}, exc.errors


@st.composite
def query_pairs(draw: st.DrawFn, route: tuple[str, str]) -> list[tuple[str, str]]:
    name = st.one_of(st.sampled_from(_names(route)), st.text(string.ascii_lowercase, max_size=6))
    return draw(st.lists(st.tuples(name, values), max_size=6))


@pytest.mark.parametrize("route", list(QUERY_PARAMS), ids=" ".join)
@PER_ROUTE
@given(data=st.data())
def test_parse_query_is_fastapis(route: tuple[str, str], data: st.DataObject) -> None:
    assert [f.alias for f in ROUTES[route].dependant.query_params] == _names(route)  # agno's order
    pairs = data.draw(query_pairs(route))
    want_values, want_errors = _fastapi_query(route, pairs)
    got_values, got_errors = _native_query(route, pairs)
    assert got_errors == want_errors
    if not want_errors:
        assert got_values == want_values


# ---------------------------------------------------------------------------------------------
# decode_body and parse_model
# ---------------------------------------------------------------------------------------------

content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.api+json",
        "APPLICATION/JSON",
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "garbage",
        "application/json; charset=latin-1",
    ]
)


@PROPERTY
@given(st.binary(max_size=64) | json_values.map(lambda x: json.dumps(x).encode()), st.none() | content_types)
def test_decode_body_raises_only_its_own_errors(raw: bytes, content_type: str | None) -> None:
    try:
        v.decode_body(raw, content_type)
    except (v.RequestInvalid, v.BodyUnreadable):
        pass


@PROPERTY
@given(json_values)
def test_decode_body_round_trips_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert v.decode_body(raw, "application/json") == value
    assert v.decode_body(raw, "text/plain") == raw  # not JSON by its type: the bytes as sent


LOOP = asyncio.new_event_loop()  # one loop for every call (request_body_to_args is a coroutine)


def _fastapi_body(route: tuple[str, str], body: Any) -> list[Any]:
    fields = ROUTES[route].dependant.body_params
    received = Undefined if body is v._NO_BODY else body  # what FastAPI's handler passes for no body
    _, errors = LOOP.run_until_complete(request_body_to_args(fields, received, _should_embed_body_fields(fields)))
    return jsonable_encoder(errors)


def _native_body(route: tuple[str, str], body: Any) -> list[Any]:
    model, required = BODY_MODELS[route]
    try:
        v.parse_model(body, model, required=required)
    except v.RequestInvalid as exc:
        return exc.errors
    return []


body_values = st.one_of(
    st.just(v._NO_BODY),
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "session_id": json_values,
            "session_name": json_values,
            "session_state": json_values,
            "metadata": json_values,
            "user_id": json_values,
            "agent_id": json_values,
            "summary": json_values,
            "session_ids": st.lists(st.one_of(texts, st.integers()), max_size=3) | json_values,
            "session_types": st.lists(st.one_of(words, texts), max_size=3) | json_values,
        },
    ),
)


@pytest.mark.parametrize("route", list(BODY_MODELS), ids=" ".join)
@PER_ROUTE
@given(body=body_values)
def test_parse_model_is_fastapis(route: tuple[str, str], body: Any) -> None:
    assert _native_body(route, body) == _fastapi_body(route, body)
