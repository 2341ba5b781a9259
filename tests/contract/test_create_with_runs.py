"""`POST /sessions` with `runs` and `summary` (issue 14), proven with agno's own reader.

Sessions of all three types, with real runs made by real agno agents, a team and a workflow
(harness/seed.py, against the fake OpenAI endpoint), are captured from the main database as the
real AgentOS renders them (`GET /sessions/{id}/runs/{run_id}` and the detail's summary), created
through native in the *second* database, and read back there through a real AgentOS and through
native: every read route byte-identical between the two, and what the runs make (runs, run
previews, each run, chat_history, the session name, the summary) identical to the original
session's reads. The known differences `create-with-runs`/`create-with-summary` are asserted
like the others, and a malformed history is a 422 naming the run and the field, nothing written.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from comparator import Request
from comparator.pytest_plugin import Parity
from harness import seed
from tests.contract.differential import Pair, body_of, normalize, send

pytestmark = pytest.mark.contract

MAIN, SECOND = "main-db", "second-db"
# One of each type, plus the one with a summary, state and metadata, and a delegating team
# (its member runs carry parent_run_id: they are runs of the session but not of its history).
CAPTURED = {
    seed.S_AGENT_1: "agent",
    seed.S_AGENT_META: "agent",
    seed.S_TEAM_2: "team",
    seed.S_WF_1: "workflow",
    seed.S_WF_2: "workflow",
}
# What a session's runs make, in the detail (the rest of the row is the create body's).
DERIVED = ("chat_history", "session_name", "session_summary", "session_state", "user_id")


def get(client: httpx.Client, base: str, path: str) -> Any:
    r = send(client, base, "GET", path)
    assert r.status == 200, (path, r.status, r.body)
    return r


def capture(client: httpx.Client, legacy: str, session_id: str, session_type: str) -> dict[str, Any]:
    """The create body that carries the session as agno renders it in the main database."""
    q = f"?type={session_type}&db_id={MAIN}"
    detail = body_of(get(client, legacy, f"/sessions/{session_id}{q}"))
    listed = body_of(get(client, legacy, f"/sessions/{session_id}/runs{q}"))
    runs = [body_of(get(client, legacy, f"/sessions/{session_id}/runs/{r['run_id']}{q}")) for r in listed]
    assert runs, session_id
    body: dict[str, Any] = {
        "session_id": session_id,
        "user_id": detail.get("user_id"),
        f"{session_type}_id": detail.get(f"{session_type}_id"),
        "runs": runs,
    }
    for key in ("session_state", "metadata"):
        if detail.get(key) is not None:
            body[key] = detail[key]
    if detail.get("session_summary"):
        body["summary"] = detail["session_summary"]
    return body


def read_paths(client: httpx.Client, base: str, session_id: str, session_type: str, db_id: str) -> list[str]:
    q = f"?type={session_type}&db_id={db_id}"
    runs = body_of(get(client, base, f"/sessions/{session_id}/runs{q}"))
    return [
        f"/sessions/{session_id}{q}",
        f"/sessions/{session_id}?db_id={db_id}",
        f"/sessions/{session_id}/runs{q}",
        f"/sessions/{session_id}/runs?db_id={db_id}",
        f"/sessions/{session_id}/run-previews{q}",
        *(f"/sessions/{session_id}/runs/{r['run_id']}{q}" for r in runs),
        f"/sessions?type={session_type}&db_id={db_id}&limit=100",
    ]


@pytest.fixture(scope="module")
def imported(http: httpx.Client, legacy_multi_url: str, native_multi_url: str) -> dict[str, dict[str, Any]]:
    """Every captured session created through native in the second database."""
    bodies = {}
    for session_id, session_type in CAPTURED.items():
        body = capture(http, legacy_multi_url, session_id, session_type)
        r = send(http, native_multi_url, "POST", f"/sessions?type={session_type}&db_id={SECOND}", body=body)
        assert r.status == 201, r.body
        bodies[session_id] = body
    return bodies


@pytest.mark.parametrize("session_id", list(CAPTURED))
def test_imported_history_reads_alike_through_agno_and_native(
    session_id: str,
    imported: dict[str, dict[str, Any]],
    http: httpx.Client,
    legacy_multi_url: str,
    native_multi_url: str,
    parity: Parity,
) -> None:
    pair = Pair(http, legacy_multi_url, native_multi_url, parity)
    session_type = CAPTURED[session_id]
    for path in read_paths(http, legacy_multi_url, session_id, session_type, SECOND):
        legacy, native = pair.both("GET", path, path)
        assert legacy.status == 200, (path, legacy.body)
        pair.same(legacy, native, f"GET {path}")


@pytest.mark.parametrize("session_id", list(CAPTURED))
def test_imported_history_reads_as_the_original(
    session_id: str, imported: dict[str, dict[str, Any]], http: httpx.Client, legacy_multi_url: str
) -> None:
    """Through agno on both databases: the runs' routes byte-identical, the detail's derived
    fields equal (the row's own columns, e.g. agent_data or created_at, were not sent)."""
    session_type = CAPTURED[session_id]
    original = read_paths(http, legacy_multi_url, session_id, session_type, MAIN)
    copy = read_paths(http, legacy_multi_url, session_id, session_type, SECOND)
    assert len(original) == len(copy)
    for a, b in zip(original[2:-1], copy[2:-1], strict=True):
        assert get(http, legacy_multi_url, a).body == get(http, legacy_multi_url, b).body, (a, b)
    before = body_of(get(http, legacy_multi_url, original[0]))
    after = body_of(get(http, legacy_multi_url, copy[0]))
    for key in DERIVED:
        assert before.get(key) == after.get(key), key
    assert after.get("chat_history") or session_type == "workflow"
    listed_before = {s["session_id"]: s for s in body_of(get(http, legacy_multi_url, original[-1]))["data"]}
    listed_after = {s["session_id"]: s for s in body_of(get(http, legacy_multi_url, copy[-1]))["data"]}
    assert listed_before[session_id]["session_name"] == listed_after[session_id]["session_name"]


def test_stored_form_is_taken_as_is(http: httpx.Client, native_multi_url: str, legacy_multi_url: str) -> None:
    """A run in agno's stored form (what `export` writes) is stored unchanged: agno renders it."""
    sid = f"stored-{uuid.uuid4().hex[:8]}"
    run = {
        "run_id": f"{sid}-r1",
        "agent_id": "basic-agent",
        "agent_name": "Basic Agent",
        "user_id": "u-stored",
        "input": {"input_content": "stored question"},
        "content": "stored answer",
        "content_type": "str",
        "model": "gpt-4o-mini",
        "status": "COMPLETED",
        "created_at": 1795550100,
        "messages": [
            {"id": "m1", "role": "user", "content": "stored question", "created_at": 1795550100},
            {"id": "m2", "role": "assistant", "content": "stored answer", "created_at": 1795550101},
        ],
    }
    body = {"session_id": sid, "user_id": "u-stored", "agent_id": "basic-agent", "runs": [run]}
    r = send(http, native_multi_url, "POST", f"/sessions?db_id={SECOND}", body=body)
    assert r.status == 201, r.body
    created = body_of(r)
    assert created["session_name"] == "stored question"
    assert [m["content"] for m in created["chat_history"]] == ["stored question", "stored answer"]
    for path in (f"/sessions/{sid}?db_id={SECOND}", f"/sessions/{sid}/runs/{sid}-r1?db_id={SECOND}"):
        assert get(http, legacy_multi_url, path).body == get(http, native_multi_url, path).body


def test_malformed_run_is_a_422_naming_index_and_field(http: httpx.Client, native_multi_url: str) -> None:
    sid = f"bad-{uuid.uuid4().hex[:8]}"
    good = {"run_id": f"{sid}-ok", "agent_id": "a", "run_input": "hi", "content": "x"}
    bad = [
        ({"agent_id": "a", "run_input": "no id"}, [3, "run_id"], "missing"),
        ({"run_id": f"{sid}-b", "agent_id": "a", "run_input": "x", "messages": "oops"}, [3, "messages"], "list_type"),
        ({"run_id": f"{sid}-c", "agent_id": "a", "run_input": "x", "created_at": "never"}, [3, "created_at"], None),
        ({"run_id": f"{sid}-d", "team_id": "t", "run_input": "x"}, [3], "value_error"),
        ({"run_id": f"{sid}-e", "agent_id": "a", "run_input": "x", "unknown_field": 1}, [3, "unknown_field"], None),
    ]
    for run, loc, kind in bad:
        runs = [{**good, "run_id": f"{sid}-{i}"} for i in range(3)] + [run]
        r = send(http, native_multi_url, "POST", f"/sessions?db_id={SECOND}", body={"session_id": sid, "runs": runs})
        assert r.status == 422, r.body
        errors = body_of(r)["detail"]
        assert errors[0]["loc"] == ["body", "runs", *loc], errors
        if kind:
            assert errors[0]["type"] == kind, errors
        assert send(http, native_multi_url, "GET", f"/sessions/{sid}?db_id={SECOND}").status == 404
    r = send(
        http, native_multi_url, "POST", f"/sessions?db_id={SECOND}", body={"session_id": sid, "summary": {"topics": []}}
    )
    assert r.status == 422 and body_of(r)["detail"][0]["loc"] == ["body", "summary", "summary"], r.body


def test_run_id_taken_by_another_session_writes_nothing(http: httpx.Client, native_multi_url: str) -> None:
    sid = f"dup-{uuid.uuid4().hex[:8]}"
    run = {"run_id": f"{sid}-r", "agent_id": "a", "run_input": "hi"}
    first = send(http, native_multi_url, "POST", f"/sessions?db_id={SECOND}", body={"session_id": sid, "runs": [run]})
    assert first.status == 201, first.body
    again = send(
        http, native_multi_url, "POST", f"/sessions?db_id={SECOND}", body={"session_id": sid + "x", "runs": [run]}
    )
    assert again.status == 409, again.body
    assert send(http, native_multi_url, "GET", f"/sessions/{sid}x?db_id={SECOND}").status == 404


@pytest.mark.parametrize(
    ("entry", "extra"),
    [
        ("create-with-runs", {"runs": [{"run_id": "<rid>", "agent_id": "basic-agent", "run_input": "Imported hello"}]}),
        ("create-with-summary", {"summary": {"summary": "An imported summary", "topics": ["import"]}}),
    ],
)
def test_known_difference_create_with_history(entry: str, extra: dict[str, Any], pair: Pair) -> None:
    """Legacy drops the history (the keys are not agno's), native keeps it."""
    token = uuid.uuid4().hex[:8]
    lid, nid = f"L-hist-{token}", f"N-hist-{token}"
    extra = json.loads(json.dumps(extra).replace("<rid>", f"run-{token}"))
    client, legacy, native = pair
    lr = send(client, legacy, "POST", "/sessions", body={"session_id": lid, **extra})
    extra = json.loads(json.dumps(extra).replace(f"run-{token}", f"nrun-{token}"))
    nr = send(client, native, "POST", "/sessions", body={"session_id": nid, **extra})
    assert lr.status == nr.status == 201, (lr.body, nr.body)
    request = Request("POST", "/sessions", {"Content-Type": "application/json"}, json.dumps(extra).encode())
    pair.known(entry, normalize(lr, {lid: "<id>"}), normalize(nr, {nid: "<id>"}), request)
    assert "Imported hello" in nr.body.decode() or "An imported summary" in nr.body.decode()
    assert b"Imported hello" not in lr.body and b"An imported summary" not in lr.body
    # Both read native's row alike: agno's reader sees the history native kept.
    for path in (f"/sessions/{nid}", f"/sessions/{nid}/runs"):
        pair.same(send(client, legacy, "GET", path), send(client, native, "GET", path), f"GET {path}")


@pytest.mark.parametrize(
    ("entry", "extra"),
    [
        ("create-with-malformed-runs", {"runs": [{"agent_id": "basic-agent", "run_input": "no run id"}]}),
        ("create-with-malformed-summary", {"summary": {"topics": ["no summary key"]}}),
    ],
)
def test_known_difference_malformed_history(entry: str, extra: dict[str, Any], pair: Pair) -> None:
    """Legacy never reads the keys (201); native refuses what it cannot store as agno would."""
    token = uuid.uuid4().hex[:8]
    lid, nid = f"L-badhist-{token}", f"N-badhist-{token}"
    client, legacy, native = pair
    lr = send(client, legacy, "POST", "/sessions", body={"session_id": lid, **extra})
    nr = send(client, native, "POST", "/sessions", body={"session_id": nid, **extra})
    assert (lr.status, nr.status) == (201, 422), (lr.body, nr.body)
    request = Request("POST", "/sessions", {"Content-Type": "application/json"}, json.dumps(extra).encode())
    pair.known(entry, lr, nr, request)
    assert send(client, native, "GET", f"/sessions/{nid}").status == 404
