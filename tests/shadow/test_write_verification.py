"""The sessions API's write verification as data (agentos_session.sessions_api.SESSION_WRITES):
which sessions a write touched and what the gateway reads back, without a gateway."""

from __future__ import annotations

import json

from agentos_session.sessions_api import SESSION_WRITES, SESSIONS, WriteVerification


def ids(method: str, path: str, body: object = None, answer: object = None) -> list[str]:
    params = SESSIONS.match(method, path).params
    encode = lambda value: b"" if value is None else json.dumps(value).encode()  # noqa: E731
    return SESSION_WRITES.written_ids(method, params, encode(body), encode(answer))


def test_the_written_session_comes_from_the_path_the_answer_or_the_body() -> None:
    assert ids("POST", "/sessions/s-1/rename", {"session_name": "x"}) == ["s-1"]
    assert ids("PATCH", "/sessions/s 2") == ["s 2"]
    assert ids("POST", "/sessions", {"session_id": "ignored"}, {"session_id": "made-1"}) == ["made-1"]
    assert ids("DELETE", "/sessions", {"session_ids": ["a", 3, "b"]}) == ["a", "b"]


def test_unusable_bodies_touch_nothing() -> None:
    assert ids("POST", "/sessions", None, {"session_id": ""}) == []
    assert ids("POST", "/sessions", None, ["not", "an", "object"]) == []
    assert ids("DELETE", "/sessions", {"session_ids": "a"}) == []
    assert SESSION_WRITES.written_ids("DELETE", {}, b"{not json", b"") == []
    # An empty id names no session: read back, `/sessions/` would be the list (found by
    # schemathesis: a bulk delete of [""] counted as "the deleted session can still be read").
    assert ids("DELETE", "/sessions", {"session_ids": ["", "a"]}) == ["a"]


def test_read_back_targets_keep_only_the_selecting_query() -> None:
    query = [("db_id", "main-db"), ("token", "x"), ("type", "agent")]
    assert SESSION_WRITES.reads("PATCH", "a/b", query) == [
        "/sessions/a%2Fb?db_id=main-db&type=agent",
        "/sessions/a%2Fb/runs?db_id=main-db&type=agent",
    ]
    assert SESSION_WRITES.reads("DELETE", "s-1", []) == ["/sessions/s-1"]


def test_another_api_is_just_other_data() -> None:
    items = WriteVerification(
        id_param="item_id",
        created_field="id",
        bulk_field="ids",
        read_back=("/items/{id}",),
        read_back_deleted=("/items/{id}",),
        query=(),
    )
    assert items.written_ids("POST", {}, b"", b'{"id": "i-9"}') == ["i-9"]
    assert items.reads("PUT", "i-9", [("db_id", "x")]) == ["/items/i-9"]
