"""session_service.history without a server: the rendered -> stored mapping re-renders to the
same schema, and the fast storability check never changes what is stored or refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from session_service import history, render
from session_service.validation import RequestInvalid, sanitize_strings, unstorable

STORED_AGENT = {
    "run_id": "r1",
    "agent_id": "a1",
    "user_id": "u1",
    "session_id": "s1",
    "input": {"input_content": {"topic": "dict input", "n": 2}, "images": [{"url": "http://x/i.png"}]},
    "content": "answer",
    "content_type": "str",
    "status": "COMPLETED",
    "created_at": 1795550100,
    "metrics": {"input_tokens": 3},
    "metadata": {"tag": "t"},
    "messages": [{"id": "m1", "role": "user", "content": "q", "created_at": 1795550100}],
}
STORED_TEAM = {**{k: v for k, v in STORED_AGENT.items() if k not in ("agent_id", "metadata")}, "team_id": "t1"}
STORED_WORKFLOW = {
    "run_id": "w1",
    "workflow_id": "wf",
    "session_id": "s1",
    "input": {"topic": "dict input"},
    "content": "done",
    "content_type": "str",
    "status": "COMPLETED",
    "created_at": 1795550100,
    "step_results": [{"step_name": "one", "content": "x"}],
}


def as_json(value: Any) -> bytes:
    return render.dumps(value)


@pytest.mark.parametrize(
    ("stored", "schema", "session_type"),
    [
        (STORED_AGENT, render.agent_run, "agent"),
        (STORED_TEAM, render.team_run, "team"),
        (STORED_WORKFLOW, render.workflow_run, "workflow"),
    ],
)
def test_a_rendered_run_maps_back_to_a_run_that_renders_the_same(stored: dict, schema: Any, session_type: str) -> None:
    rendered = json.loads(as_json(schema(stored)))
    [back] = history.validate_runs([rendered], session_type, "s1")
    assert as_json(schema(back)) == as_json(schema(stored))
    # what the name fallback and chat_history read comes back too
    assert render.session_name(None, [back], session_type, None) == render.session_name(
        None, [stored], session_type, None
    )


@pytest.mark.parametrize("code", [*range(0, 0x20), 0x7F, 0xD800, 0xDFFF, 0xFFFE, 0xFFFF])
def test_the_fast_path_stores_and_refuses_exactly_as_the_walks(code: int) -> None:
    text = f"a{chr(code)}b"
    run = {"run_id": "r", "agent_id": "a", "content": text, "metadata": {f"k{chr(code)}": [text]}}
    slow_errors = unstorable({**run, "session_id": "s"}, ("body", "runs", 0), sanitized=True)
    try:
        [stored] = history.validate_runs([run], "agent", "s")
    except RequestInvalid as exc:
        assert exc.errors == slow_errors
        return
    assert not slow_errors
    assert stored == sanitize_strings({**run, "session_id": "s"})


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(RequestInvalid) as caught:
        history.validate_runs([{"run_id": "r", "agent_id": "a", "metrics": {"cost": float("nan")}}], "agent", "s")
    assert caught.value.errors[0]["loc"] == ["body", "runs", 0, "metrics", "cost"]


def test_run_rows_follow_agnos_build_single_run_row() -> None:
    [row] = history.run_rows("s1", "owner", [dict(STORED_AGENT)], now=1800000000)
    assert (row["run_index"], row["run_type"], row["user_id"], row["created_at"]) == (0, "agent", "u1", 1795550100)
    assert row["updated_at"] == 1800000000
