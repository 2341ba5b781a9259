"""Differential contract tests of the write routes, both ways.

Each scenario is applied once through agno (to a session `L-...`) and once through the native
service (to an identical session `N-...`); the answers must be equal once the two ids are
swapped for one token and the write clock is masked (`differential.normalize`). Then both
services read both sessions back, byte for byte: what native writes, agno reads identically,
and the reverse.

Where a scenario changes a *seeded* session, it is applied to the same row twice (agno first,
then native) with an operation whose result does not depend on being first, so both answers
must still be equal. This module runs after test_reads.py (pytest's file order).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from comparator import Request, Response
from harness import seed
from tests.contract.differential import Pair, body_of, normalize, send

pytestmark = pytest.mark.contract
JSON_CT = {"Content-Type": "application/json"}


def ids(tag: str) -> tuple[str, str]:
    token = uuid.uuid4().hex[:8]
    return f"L-{tag}-{token}", f"N-{tag}-{token}"


def both(pair: Pair, method: str, legacy_path: str, native_path: str, **kw: Any) -> tuple[Response, Response]:
    return pair.both(method, legacy_path, native_path, **kw)


def assert_equivalent(pair: Pair, legacy: Response, native: Response, lid: str, nid: str) -> None:
    pair.same(normalize(legacy, {lid: "<id>"}), normalize(native, {nid: "<id>"}))


def cross_read(pair, *session_ids: str) -> None:  # type: ignore[no-untyped-def]
    """Both services read each session (and its runs) byte-identically."""
    client, legacy, native = pair
    for sid in session_ids:
        for path in (
            f"/sessions/{sid}",
            f"/sessions/{sid}/runs",
            f"/sessions?component_id=&user_id=&session_name={sid}",
        ):
            pair.same(send(client, legacy, "GET", path), send(client, native, "GET", path), f"GET {path}")


def create_pair(pair, tag: str, body: dict[str, Any] | None = None, query: str = "") -> tuple[str, str]:  # type: ignore[no-untyped-def]
    lid, nid = ids(tag)
    lbody = {**(body or {}), "session_id": lid}
    nbody = {**(body or {}), "session_id": nid}
    client, legacy, native = pair
    lr = send(client, legacy, "POST", f"/sessions{query}", body=lbody)
    nr = send(client, native, "POST", f"/sessions{query}", body=nbody)
    assert lr.status == 201, lr.body
    pair.same(normalize(lr, {lid: "<id>"}), normalize(nr, {nid: "<id>"}), f"POST /sessions{query}")
    return lid, nid


# ---- POST /sessions ---------------------------------------------------------------------------

CREATE_BODIES = [
    ("", {}),
    (
        "?type=agent",
        {
            "session_name": "My Agent Session",
            "session_state": {"k": "v"},
            "metadata": {"m": 1},
            "user_id": "user-9",
            "agent_id": "basic-agent",
        },
    ),
    ("?type=team", {"team_id": "basic-team"}),
    ("?type=team", {"team_id": "basic-team", "agent_id": "ignored", "workflow_id": "ignored", "session_name": "T"}),
    ("?type=workflow", {"workflow_id": "basic-workflow", "session_name": "WF named"}),
    ("?type=workflow", {"workflow_id": "basic-workflow"}),
    (
        "",
        {"session_state": {"zzz": 1, "a": 2, "bb": {"y": 1, "x": 2}}, "metadata": {"long_key": 1, "k": 2, "f": 1e-05}},
    ),
    ("", {"metadata": {"agno_component_version": 3, "agno_dispatch_depth": 1}}),
    ("", {"metadata": {"agno_dispatch_chain": ["x"], "keep": "yes"}}),
    ("", {"metadata": {}, "session_state": {}}),
    ("", {"session_name": "Zoë — 東京 ✓ </script>", "user_id": ""}),
    ("", {"session_name": "", "unknown_key": 1}),
    ("", {"session_state": {"tiny": 1e-6, "big": 1e16, "pi": 3.141592653589793, "neg": -0.0, "n": None}}),
    ("?db_id=main-db", {"session_name": "with db id"}),
    ("?type=agent", {"session_name": None, "session_state": None, "metadata": None}),
]


@pytest.mark.parametrize("query,body", CREATE_BODIES)
def test_create(pair, query: str, body: dict[str, Any]) -> None:
    lid, nid = create_pair(pair, "create", body, query)
    cross_read(pair, lid, nid)


@pytest.mark.parametrize("raw,ctype", [(None, None), (b"", "application/json")])
def test_create_without_body_generates_id(pair, raw: bytes | None, ctype: str | None) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    lr, nr = both(pair, "POST", "/sessions", "/sessions", raw=raw, headers=headers)
    assert lr.status == nr.status == 201
    lid, nid = body_of(lr)["session_id"], body_of(nr)["session_id"]
    uuid.UUID(nid)
    assert_equivalent(pair, lr, nr, lid, nid)
    cross_read(pair, lid, nid)


CREATE_ERRORS = [
    ("?type=foo", {"body": {}}),
    ("?type=", {"body": {}}),
    ("", {"body": {"session_state": "notadict"}}),
    ("", {"body": {"session_id": 5, "metadata": [1], "user_id": {"a": 1}}}),
    ("", {"body": [1, 2]}),
    ("", {"raw": b"null", "headers": JSON_CT}),
    ("", {"raw": b'{"session_id": "x",', "headers": JSON_CT}),
    ("", {"raw": b"{'a': 1}", "headers": JSON_CT}),
    ("", {"raw": b'{"session_id": "plain-text"}', "headers": {"Content-Type": "text/plain"}}),
    ("", {"raw": b'{"session_id": "no-type"}'}),
    ("", {"raw": b"\xff\xfe\x00bad", "headers": JSON_CT}),
    ("", {"body": {"session_id": "s-agent-1"}}),
    ("?type=team", {"body": {"session_id": "s-wf-1"}}),
    ("?db_id=nope", {"body": {}}),
    ("?type=foo&db_id=nope", {"body": {"session_state": 1}}),
]


@pytest.mark.parametrize("query,kw", CREATE_ERRORS)
def test_create_errors(pair, query: str, kw: dict[str, Any]) -> None:
    client, legacy, native = pair
    lr, nr = pair.both("POST", "/sessions" + query, "/sessions" + query, **kw)
    assert lr.status >= 400
    pair.same(lr, nr)


# ---- POST /sessions/{id}/rename ---------------------------------------------------------------

RENAMES = [
    ("", {"session_name": "Renamed!"}),
    ("", {"session_name": ""}),
    ("", {"session_name": "Zoë — 東京 ✓"}),
    ("", {"session_name": "nul\u0000byte"}),
    ("?type=agent", {"session_name": "typed"}),
    ("?type=team", {"session_name": "wrong type filter"}),
    ("?user_id=user-9", {"session_name": "owner"}),
    ("?user_id=someone-else", {"session_name": "not owner"}),
    ("", {"session_name": "x", "extra": 1}),
]


@pytest.mark.parametrize("query,body", RENAMES)
def test_rename(pair, query: str, body: dict[str, Any]) -> None:
    lid, nid = create_pair(pair, "rename", {"session_name": "before", "user_id": "user-9", "session_state": {"s": 1}})
    lr, nr = both(pair, "POST", f"/sessions/{lid}/rename{query}", f"/sessions/{nid}/rename{query}", body=body)
    assert_equivalent(pair, lr, nr, lid, nid)
    cross_read(pair, lid, nid)


@pytest.mark.parametrize("session_type", ["team", "workflow"])
def test_rename_other_types(pair, session_type: str) -> None:
    lid, nid = create_pair(
        pair, "rename-t", {f"{session_type}_id": f"basic-{session_type}", "session_name": "a"}, f"?type={session_type}"
    )
    for query in ("", f"?type={session_type}", "?type=agent"):
        lr, nr = both(
            pair,
            "POST",
            f"/sessions/{lid}/rename{query}",
            f"/sessions/{nid}/rename{query}",
            body={"session_name": f"renamed {query}"},
        )
        assert_equivalent(pair, lr, nr, lid, nid)
    cross_read(pair, lid, nid)


RENAME_ERRORS = [
    {"body": {}},
    {"body": {"session_name": 5}},
    {"body": {"session_name": None}},
    {"body": ["session_name"]},
    {"raw": b"null", "headers": JSON_CT},
    {"raw": b"", "headers": JSON_CT},
    {"raw": b"{bad json", "headers": JSON_CT},
    {"raw": b'{"session_name": "t"}', "headers": {"Content-Type": "text/plain"}},
]


@pytest.mark.parametrize("kw", RENAME_ERRORS)
@pytest.mark.parametrize("target", ["s-agent-1", "nope"])
def test_rename_errors(pair, target: str, kw: dict[str, Any]) -> None:
    lr, nr = both(pair, "POST", f"/sessions/{target}/rename", f"/sessions/{target}/rename", **kw)
    assert lr.status == 422
    pair.same(lr, nr)


def test_rename_missing_session(pair) -> None:
    for query in ("", "?type=team", "?db_id=nope", "?table=agno_sessions"):
        lr, nr = both(
            pair, "POST", f"/sessions/nope/rename{query}", f"/sessions/nope/rename{query}", body={"session_name": "x"}
        )
        assert lr.status >= 400
        pair.same(lr, nr)


@pytest.mark.parametrize("session_id", [seed.S_AGENT_2, seed.S_TEAM_2, seed.S_WF_2, seed.LEGACY_2])
def test_rename_seeded_session_same_row(pair, session_id: str) -> None:
    """Rename a session with real runs through agno, then the same row through native: renaming
    to the same name again must answer the same bytes (rename never touches updated_at)."""
    client, legacy, native = pair
    lr = send(client, legacy, "POST", f"/sessions/{session_id}/rename", body={"session_name": "Same name ✓"})
    nr = send(client, native, "POST", f"/sessions/{session_id}/rename", body={"session_name": "Same name ✓"})
    pair.last = Request("POST", f"/sessions/{session_id}/rename")
    assert lr.status == 200
    pair.same(lr, nr)
    cross_read(pair, session_id)


# ---- PATCH /sessions/{id} ---------------------------------------------------------------------

PATCHES = [
    {},
    {"session_name": "patched name"},
    {"session_state": {"a": 2, "zz": [1, 2.5e-5]}},
    {"metadata": {"x": "y"}},
    {"metadata": {"agno_component_version": 1}},
    {"metadata": {}},
    {"summary": {"summary": "A summary", "topics": ["t1"], "updated_at": "2025-10-21T14:30:00Z"}},
    {"summary": {"summary": "no date"}},
    {"summary": {"summary": "naive", "updated_at": "2024-01-01T00:00:00", "topics": None}},
    {"summary": {"summary": "empty date", "updated_at": ""}},
    {
        "session_name": "all",
        "session_state": {"k": "v"},
        "metadata": {"m": 1.5},
        "summary": {"summary": "s"},
        "other": 1,
    },
]


@pytest.mark.parametrize("body", PATCHES)
@pytest.mark.parametrize("session_type", ["agent", "team", "workflow"])
def test_patch(pair, session_type: str, body: dict[str, Any]) -> None:
    lid, nid = create_pair(
        pair,
        "patch",
        {f"{session_type}_id": f"basic-{session_type}", "user_id": "user-7", "metadata": {"old": True}},
        f"?type={session_type}",
    )
    lr, nr = both(pair, "PATCH", f"/sessions/{lid}", f"/sessions/{nid}", body=body)
    assert lr.status == 200, lr.body
    assert_equivalent(pair, lr, nr, lid, nid)
    cross_read(pair, lid, nid)


@pytest.mark.parametrize(
    "query", ["?type=team", "?type=workflow", "?user_id=user-7", "?user_id=other", "?db_id=main-db"]
)
def test_patch_query_variants(pair, query: str) -> None:
    lid, nid = create_pair(pair, "patchq", {"agent_id": "basic-agent", "user_id": "user-7", "session_name": "n"})
    lr, nr = both(
        pair, "PATCH", f"/sessions/{lid}{query}", f"/sessions/{nid}{query}", body={"session_state": {"q": query}}
    )
    assert_equivalent(pair, lr, nr, lid, nid)
    cross_read(pair, lid, nid)


@pytest.mark.parametrize("session_id", [seed.S_AGENT_1, seed.S_TEAM_2, seed.S_WF_1, seed.LEGACY_1])
def test_patch_seeded_session_same_row(pair, session_id: str) -> None:
    """PATCH a session with real runs through agno, then the same row through native: the same
    patch gives the same body (updated_at is the write clock, masked)."""
    client, legacy, native = pair
    body = {"session_state": {"patched": True, "ü": 1e-6}, "summary": {"summary": "Résumé", "topics": ["a"]}}
    lr = send(client, legacy, "PATCH", f"/sessions/{session_id}", body=body)
    nr = send(client, native, "PATCH", f"/sessions/{session_id}", body=body)
    pair.last = Request("PATCH", f"/sessions/{session_id}")
    assert lr.status == 200
    pair.same(normalize(lr, {}), normalize(nr, {}))
    cross_read(pair, session_id)


PATCH_ERRORS = [
    {"raw": b"", "headers": JSON_CT},
    {"raw": None},
    {"body": {"session_state": "x", "metadata": 3}},
    {"body": [1]},
    {"raw": b"{", "headers": JSON_CT},
    {"raw": b"{}", "headers": {"Content-Type": "text/plain"}},
]


@pytest.mark.parametrize("kw", PATCH_ERRORS)
def test_patch_errors(pair, kw: dict[str, Any]) -> None:
    lr, nr = both(pair, "PATCH", "/sessions/s-agent-1", "/sessions/s-agent-1", **kw)
    assert lr.status == 422
    pair.same(lr, nr)


def test_patch_missing_session(pair) -> None:
    for query in ("", "?type=team", "?db_id=nope", "?table=nope&db_id=main-db"):
        lr, nr = both(pair, "PATCH", f"/sessions/nope{query}", f"/sessions/nope{query}", body={"session_name": "x"})
        assert lr.status >= 400
        pair.same(lr, nr)


# ---- DELETE -----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?user_id=user-9", "?user_id=other", "?db_id=main-db", "?delete_media=false"])
def test_delete(pair, query: str) -> None:
    lid, nid = create_pair(pair, "delete", {"user_id": "user-9", "session_name": "to delete"})
    lr, nr = both(pair, "DELETE", f"/sessions/{lid}{query}", f"/sessions/{nid}{query}")
    assert lr.status == 204
    pair.same(lr, nr)
    cross_read(pair, lid, nid)


@pytest.mark.parametrize("query", ["", "?delete_media=true", "?delete_media=maybe", "?db_id=nope", "?table=x"])
def test_delete_edges(pair, query: str) -> None:
    lr, nr = both(pair, "DELETE", f"/sessions/nope{query}", f"/sessions/nope{query}")
    pair.same(lr, nr)


def test_bulk_delete(pair) -> None:
    l1, n1 = create_pair(pair, "bulk", {"user_id": "user-9"})
    l2, n2 = create_pair(pair, "bulk", {"team_id": "basic-team"}, "?type=team")
    lr, nr = both(
        pair,
        "DELETE",
        "/sessions",
        "/sessions",
        body={"session_ids": [l1, l2, "nope"], "session_types": ["agent", "team", "workflow"]},
    )
    pair.same(lr, nr)
    nr2 = send(
        pair[0],
        pair[2],
        "DELETE",
        "/sessions",
        body={"session_ids": [n1, n2, "nope"], "session_types": ["agent", "team", "workflow"]},
    )
    pair.same(lr, nr2)
    cross_read(pair, l1, l2, n1, n2)


def test_bulk_delete_user_scope(pair) -> None:
    lid, nid = create_pair(pair, "bulku", {"user_id": "user-9"})
    for base, sid in ((pair[1], lid), (pair[2], nid)):
        r = send(
            pair[0], base, "DELETE", "/sessions?user_id=other", body={"session_ids": [sid], "session_types": ["agent"]}
        )
        assert r.status == 204
    cross_read(pair, lid, nid)


BULK_ERRORS = [
    {"body": {"session_ids": [], "session_types": []}},
    {"body": {"session_ids": ["a"], "session_types": ["agent", "team"]}},
    {"body": {"session_ids": ["a"], "session_types": ["bogus"]}},
    {"body": {"session_ids": "a", "session_types": None}},
    {"body": {}},
    {"raw": None},
    {"raw": b"[", "headers": JSON_CT},
]


@pytest.mark.parametrize("query", ["", "?delete_media=true", "?db_id=nope"])
@pytest.mark.parametrize("kw", BULK_ERRORS)
def test_bulk_delete_errors(pair, kw: dict[str, Any], query: str) -> None:
    lr, nr = both(pair, "DELETE", "/sessions" + query, "/sessions" + query, **kw)
    assert lr.status >= 400
    pair.same(lr, nr)


# ---- Known differences ------------------------------------------------------------------------


def test_rename_json_null_session_data(pair) -> None:
    lid, nid = create_pair(pair, "jsonnull", {})  # no name, no state: session_data is JSON null
    lr, nr = both(pair, "POST", f"/sessions/{lid}/rename", f"/sessions/{nid}/rename", body={"session_name": "named"})
    pair.known("rename-json-null-session-data", lr, nr, Request("POST", f"/sessions/{lid}/rename"))
    assert body_of(nr)["session_name"] == "named"
    # What native wrote, agno reads identically.
    cross_read(pair, lid, nid)
    client, legacy, _ = pair
    assert body_of(send(client, legacy, "GET", f"/sessions/{nid}"))["session_name"] == "named"


def _insert_sql_null_session(dsn: str, session_id: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO ai.agno_sessions (session_id, session_type, agent_id, user_id, created_at, updated_at) "
                "VALUES ($1, 'agent', 'basic-agent', 'user-6', 1795550000, 1795550000)",
                session_id,
            )
        finally:
            await conn.close()

    asyncio.run(run())


def test_rename_sql_null_session_data(pair, pg_dsn: str) -> None:
    lid, nid = ids("sqlnull")
    _insert_sql_null_session(pg_dsn, lid)
    _insert_sql_null_session(pg_dsn, nid)
    lr, nr = both(pair, "POST", f"/sessions/{lid}/rename", f"/sessions/{nid}/rename", body={"session_name": "kept"})
    pair.known(
        "rename-sql-null-session-data",
        normalize(lr, {lid: "<id>"}),
        normalize(nr, {nid: "<id>"}),
        Request("POST", f"/sessions/{lid}/rename"),
    )
    assert body_of(lr)["session_name"] == ""  # agno: not stored, derived name shown
    assert body_of(nr)["session_name"] == "kept"
    cross_read(pair, lid, nid)


@pytest.mark.parametrize(
    "summary",
    [
        {"topics": ["t"]},
        {"summary": "s", "nope": 1},
        {"summary": "s", "updated_at": "not a date"},
        {"summary": "s", "updated_at": 5},
    ],
)
def test_patch_malformed_summary(pair, summary: dict[str, Any]) -> None:
    lid, nid = create_pair(pair, "badsum", {"session_name": "n"})
    body = {"summary": summary, "session_name": "changed?"}
    lr, nr = both(pair, "PATCH", f"/sessions/{lid}", f"/sessions/{nid}", body=body)
    pair.known("patch-malformed-summary", lr, nr, Request("PATCH", f"/sessions/{lid}", body=json.dumps(body).encode()))
    assert json.loads(nr.body)["detail"][0]["loc"] == ["body", "summary"]
    # Nothing was written on either side.
    cross_read(pair, lid, nid)
    assert body_of(send(pair[0], pair[2], "GET", f"/sessions/{nid}"))["session_name"] == "n"
