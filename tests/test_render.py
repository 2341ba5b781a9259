"""Unit tests of the pure JSON-shaping functions. Where agno has the same function, the test
runs both on the same input: agno is the authority, so the expected value is never hand-typed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pydantic_core
import pytest
from agno.db.utils import merge_runs_table_with_legacy_blob
from agno.models.message import Message
from agno.os.schema import PaginatedResponse, SessionSchema, _agent_metadata
from agno.os.utils import get_run_input, get_session_name, stringify_input_content
from agno.session.summary import SessionSummary
from agno.utils.string import sanitize_postgres_string, sanitize_postgres_strings
from pydantic import TypeAdapter

from session_service import render, validation

USER = {"role": "user", "content": "hello", "id": "m1", "created_at": 1}
ASSISTANT = {
    "role": "assistant",
    "content": "hi",
    "id": "m2",
    "created_at": 2,
    "from_history": False,
    "metrics": {
        "duration": 0.5,
        "input_tokens": 11,
        "total_tokens": 18,
        "output_tokens": 7,
        "cost": 0.0,
        "audio_input_tokens": 0,
        "provider_metrics": {},
        "time_to_first_token": 1e-05,
    },
}

INPUTS = [
    "text",
    {"b": 1, "a": [1, 2]},
    [{"role": "user", "content": "first"}],
    [{"role": "system"}],
    [],
    42,
    None,
    1.5,
]


@pytest.mark.parametrize("value", [v for v in INPUTS if v is not None])
def test_stringify_input_content_matches_agno(value) -> None:
    assert render.stringify_input_content(value) == stringify_input_content(value)


RUNS = [
    {"input": {"input_content": "asked"}, "messages": [USER]},
    {"input": {"input_content": {"k": "v"}}},
    {"input": {"input_content": None}, "messages": [USER, ASSISTANT]},
    {"messages": [ASSISTANT]},
    {},
    {"input": "workflow text", "step_executor_runs": [{"messages": [USER]}]},
    {"step_executor_runs": [{"messages": [ASSISTANT, USER]}]},
    {"input": {"topic": "x", "n": 2}},
]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("is_workflow", [False, True])
def test_get_run_input_matches_agno(run, is_workflow: bool) -> None:
    assert render.get_run_input(run, is_workflow) == get_run_input(run, is_workflow)


SESSIONS = [
    ({"session_name": "stored"}, [], "agent"),
    ({"session_name": ""}, [{"messages": [USER]}], "agent"),
    (None, [{"messages": [USER]}], "agent"),
    ({}, [{"messages": [{"role": "user", "content": ""}]}, {"input": {"input_content": "x"}}], "agent"),
    ({}, [{"agent_id": "member", "messages": [USER]}, {"team_id": "t", "messages": [ASSISTANT]}], "team"),
    ({}, [{"input": "wf text"}], "workflow"),
    ({}, [{"input": {"z": 1, "a": 2}}], "workflow"),
    ({}, [{"input": 5}], "workflow"),
    ({}, [], "workflow"),
    ({}, [], "team"),
]


@pytest.mark.parametrize("session_data,runs,session_type", SESSIONS)
def test_session_name_matches_agno(session_data, runs, session_type) -> None:
    workflow_data = {"name": "Flow"}
    row = {"session_data": session_data, "runs": runs, "session_type": session_type, "workflow_data": workflow_data}
    assert render.session_name(session_data, runs, session_type, workflow_data) == get_session_name(row)


@pytest.mark.parametrize(
    "table,legacy",
    [
        (
            [{"run_id": "a", "v": "table"}, {"run_id": "c"}],
            [{"run_id": "b"}, {"run_id": "a", "v": "legacy"}, "junk", {"x": 1}],
        ),
        ([{"run_id": "a"}], None),
        ([], json.dumps([{"run_id": "z"}])),
        ([{"run_id": "a"}], "not json"),
    ],
)
def test_merge_runs_matches_agno(table, legacy) -> None:
    assert render.merge_runs(table, legacy) == merge_runs_table_with_legacy_blob(table, legacy)


@pytest.mark.parametrize(
    "message",
    [
        USER,
        ASSISTANT,
        {**ASSISTANT, "tool_calls": [{"id": "c"}], "content": None, "tool_args": {}},
        {"role": "assistant", "content": "", "id": "x", "created_at": 3.0, "name": "n", "metrics": None},
    ],
)
def test_chat_message_matches_agno_message_to_dict(message) -> None:
    expected = Message.from_dict(dict(message)).to_dict()
    assert list(render.chat_message(message).items()) == list(expected.items())


def test_chat_history_skips_history_system_tool_and_member_runs() -> None:
    runs = [
        {
            "messages": [
                {"role": "system", "content": "s", "id": "s", "created_at": 1},
                USER,
                {**USER, "id": "old", "from_history": True},
                {"role": "tool", "content": "t", "id": "t", "created_at": 1},
            ]
        },
        {"parent_run_id": "p", "messages": [{**USER, "id": "member"}]},
    ]
    assert [m["id"] for m in render.chat_history(runs)] == ["m1"]


def test_message_without_id_gets_a_fresh_one_each_time() -> None:
    """The one documented nondeterminism of agno's chat_history (a stored message without id)."""
    first = render.chat_message({"role": "user", "content": "x", "created_at": 1})["id"]
    second = render.chat_message({"role": "user", "content": "x", "created_at": 1})["id"]
    assert first != second


@pytest.mark.parametrize(
    "metadata,agent_data",
    [
        (None, None),
        ({"a": 1}, None),
        ({"a": 1}, {"sdk": "py"}),
        (None, {"framework": "lc"}),
        ({"sdk": "old", "b": 2}, {"sdk": "new"}),
        ({"a": 1}, {"sdk": ""}),
        ({"a": 1}, "not a dict"),
    ],
)
def test_agent_metadata_matches_agno(metadata, agent_data) -> None:
    assert render.agent_metadata(metadata, agent_data) == _agent_metadata(metadata, agent_data)


@pytest.mark.parametrize(
    "summary",
    [
        {"summary": "s"},
        {"topics": ["t"], "summary": "s", "updated_at": "2025-10-21T14:30:00Z"},
        {"summary": "s", "updated_at": "2024-01-01T00:00:00", "topics": None},
        {"summary": 5, "updated_at": ""},
    ],
)
def test_normalize_summary_matches_agno(summary) -> None:
    expected = SessionSummary.from_dict(dict(summary)).to_dict()
    assert list(render.normalize_summary(summary).items()) == list(expected.items())


@pytest.mark.parametrize("summary", [{"topics": []}, {"summary": "s", "extra": 1}, {"summary": "s", "updated_at": "x"}])
def test_normalize_summary_rejects_what_agno_rejects(summary) -> None:
    with pytest.raises((TypeError, ValueError)):  # a missing/unknown field, or a bad timestamp
        SessionSummary.from_dict(dict(summary))
    with pytest.raises(render.SummaryError):
        render.normalize_summary(summary)


def test_dumps_prints_floats_and_times_as_pydantic() -> None:
    body = {
        "a": 1e-05,
        "b": 1e-06,
        "c": 1e16,
        "d": 7.000000000000001e-05,
        "t": render.utc(1795550916),
        "f": render.utc(1.5),
        "u": "Zoë</",
    }
    assert render.dumps(body) == (
        b'{"a":0.00001,"b":1e-6,"c":1e+16,"d":0.00007000000000000001,"t":"2026-11-24T20:08:36Z",'
        b'"f":"1970-01-01T00:00:01.500000Z","u":"Zo\xc3\xab</"}'
    )


def test_utc_of_iso_strings() -> None:
    assert render.utc("2025-01-01T00:00:00Z") == datetime(2025, 1, 1, tzinfo=UTC)
    assert render.utc("garbage") is None


def test_session_page_meta() -> None:
    assert render.session_page([], 3, 2, 5)["meta"] == {
        "page": 3,
        "limit": 2,
        "total_pages": 3,
        "total_count": 5,
        "search_time_ms": 0.0,
    }
    assert render.session_page([], 1, 20, 0)["meta"]["total_pages"] == 0


def test_filters_keep_runs_without_created_at_and_drop_runs_without_status() -> None:
    runs = [{"created_at": 5}, {"created_at": 15}, {}]
    assert render.filter_runs(runs, 10, None) == [{"created_at": 15}, {}]
    assert render.filter_runs(runs, None, 5) == [{"created_at": 5}, {}]
    schemas = [{"status": "COMPLETED"}, {"status": None}, {"status": "error"}]
    assert render.filter_status(schemas, {"ERROR"}) == [{"status": "error"}]
    assert render.filter_status(schemas, None) is schemas


# ---- hostile values (what the differential fuzzer found) --------------------------------------

HOSTILE_TEXT = ["", "plain", "N\r\x1a0", "\x00a\x01\x08\t\n\x0b\x0c\r\x0e\x1f\x7f", "\ufffe\uffff\u2028", "é東\x1b"]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_sanitize_string_is_agnos(text: str) -> None:
    assert validation.sanitize_string(text) == sanitize_postgres_string(text)


def test_sanitize_strings_is_agnos_keys_kept() -> None:
    value = {"k\x01": ["v\x02", {"n": "\x00x", "i": 1, "f": 1.5, "z": None, "b": True}], "s": "\uffffok"}
    assert validation.sanitize_strings(value) == sanitize_postgres_strings(value)
    assert "k\x01" in validation.sanitize_strings(value)


@pytest.mark.parametrize(
    "raw,path",
    [
        ("/sessions/%FF", "/sessions/\ufffd"),
        ("/sessions/%ED%A0%80/runs", "/sessions/\ufffd\ufffd\ufffd/runs"),
        ("/sessions/a%0Ab?x=%00", "/sessions/a\nb"),
        ("/sessions/a%2Fb", "/sessions/a/b"),
    ],
)
def test_starlette_path_decodes_as_uvicorn(raw: str, path: str) -> None:
    assert validation.starlette_path(raw) == path


@pytest.mark.parametrize(
    "value,loc",
    [
        ({"x": float("nan")}, [["body", "f", "x"]]),
        ({"x": [float("-inf")]}, [["body", "f", "x", 0]]),
        ({"\ud800": 1}, [["body", "f", "\ufffd"]]),
        ({"k": "a\udfff"}, [["body", "f", "k"]]),
        ({"k\x00": 1}, [["body", "f", "k\ufffd"]]),
        ({"k": "a\x00"}, []),  # a NUL in a value is stripped, as agno does: storable
        ({"k": 1e308, "s": "\u2028"}, []),
    ],
)
def test_unstorable_names_each_value_postgres_refuses(value, loc) -> None:
    assert [e["loc"] for e in validation.unstorable(value, ("body", "f"), sanitized=True)] == loc


def test_unstorable_raw_fields_keep_their_nul() -> None:
    assert validation.unstorable("a\x00", ("body", "user_id"), sanitized=False)[0]["loc"] == ["body", "user_id"]
    assert validation.storable("a") and not validation.storable("a\x00") and not validation.storable("\ud800")


def _nested(depth: int) -> dict:
    value: dict = {"a": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_dumps_page_is_the_same_bytes() -> None:
    page = render.session_page([{"session_id": "s", "metadata": {"a": [1, {"b": None}]}, "x": 0.1}], 1, 20, 1)
    assert render.dumps_page(page) == render.dumps(page)


def _agno_lists(item: dict) -> bool:
    """Whether agno's list answer (`PaginatedResponse[SessionSchema]`, as FastAPI dumps it) renders."""
    adapter = TypeAdapter(PaginatedResponse[SessionSchema])
    meta = {"page": 1, "limit": 20, "total_pages": 1, "total_count": 1}
    try:
        adapter.dump_json(PaginatedResponse(data=[SessionSchema(**item)], meta=meta), exclude_none=True)
    except pydantic_core.PydanticSerializationError:
        return False
    return True


@pytest.mark.parametrize("depth", [255, 256, 300, 600])
def test_dumps_page_renders_any_depth(depth: int) -> None:
    """agno's list renders 255 levels inside an item's field, not 256 (it answers 500, a known
    difference); native writes every row, with the bytes agno writes for the rows it can."""
    item = {"session_id": "s", "session_name": "n", "metadata": _nested(depth)}
    assert _agno_lists(item) is (depth <= 255)
    page = render.session_page([item, {"session_id": "t", "session_state": _nested(depth)}], 1, 20, 2)
    body = render.dumps_page(page)
    assert json.loads(body)["data"][0]["metadata"] == _nested(depth)
    assert json.loads(body)["data"][1]["session_state"] == _nested(depth)
    if depth <= 255:
        assert body == render.dumps(page)


@pytest.mark.parametrize("depth,ok", [(253, True), (254, False)])
def test_renderable_is_the_detail_limit(depth: int, ok: bool) -> None:
    """Writes still refuse what agno could not answer (the detail limit, 254 levels)."""
    assert render.renderable(_nested(depth)) is ok
    if not ok:
        with pytest.raises(pydantic_core.PydanticSerializationError, match="depth exceeded"):
            pydantic_core.to_json({"session_state": _nested(depth)})
    # Native itself answers any depth it has stored (agno: 500, a known difference).
    assert json.loads(render.dumps({"session_state": _nested(depth)}))["session_state"] == _nested(depth)


DEEP_SAMPLES = [
    {},
    [],
    {"a": [1, {"b": None}], "": [[], {}]},
    ["Zoë 東京 ✓ 🙂", "\x01\x1f\u2028\ufffe", '"\\/', "<script>", "b" * 1000],
    {"n": [0, -1, 2**53 + 1, 10**30, 1.5, -0.0, 1e-7, 1e308, 0.1, True, False, None]},
    {"t": datetime(2026, 12, 1, 12, 0, tzinfo=UTC), "k\n": {"é": [1, [2, [3]]]}},
]


@pytest.mark.parametrize("value", DEEP_SAMPLES)
def test_deep_writer_is_pydantic_cores_bytes(value: object) -> None:
    """The fallback writes what pydantic-core writes, wherever both can write."""
    assert render._dumps_deep(value) == pydantic_core.to_json(value)
    assert render._dumps_deep({"x": value, "y": [value]}) == pydantic_core.to_json({"x": value, "y": [value]})


def test_deep_writer_takes_lists_too() -> None:
    value: list = [1]
    for i in range(400):
        value = [i, value] if i % 2 else [{"a": value}]
    assert render.dumps(value) == json.dumps(value, separators=(",", ":")).encode()


def test_other_serialization_errors_still_raise() -> None:
    with pytest.raises(pydantic_core.PydanticSerializationError):
        render.dumps({"x": object()})


def test_body_nested_past_the_recursion_limit_is_unreadable() -> None:
    with pytest.raises(validation.BodyUnreadable):
        validation.decode_body(('{"a":' * 10_000 + "1" + "}" * 10_000).encode(), "application/json")
