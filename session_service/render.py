"""Pure JSON shaping: session rows and run dicts in, agno 3.1.10's response bodies out.

Every function here is pure (no I/O, no clock except where agno itself reads one) so the rules
can be unit-tested without a server and optimised under the parity tests. The rules mirror
`agno.os.schema` and friends; comments name the agno function each one reproduces.

Input shapes:
* a *session row* is a dict of the sessions table's columns, JSONB already decoded with
  `json.loads` (which keeps Postgres's canonical JSONB key order, the order agno prints);
* *runs* are the merged run dicts of one session (see `merge_runs`).

Output is plain dicts/lists in agno's key order; `dumps` turns them into bytes with the same
serializer agno's responses go through (pydantic-core), so floats and datetimes print the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pydantic_core

# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------


def dumps(body: Any) -> bytes:
    """Response bytes exactly as FastAPI 0.165 writes a response model (pydantic-core).

    A stored value nested deeper than pydantic-core's limit (255 levels; only agno can store
    one: its create/PATCH commits before failing to render) is written level by level instead,
    so one such row never turns a read into a 500 (agno's does: see known differences). The
    bytes are the ones pydantic-core writes for every value it can."""
    try:
        return pydantic_core.to_json(body)
    except pydantic_core.PydanticSerializationError as exc:
        if "depth exceeded" not in str(exc):
            raise
        return _dumps_deep(body)


class _Token(bytes):
    """Punctuation already written, on `_dumps_deep`'s stack among the values still to write."""


def _dumps_deep(body: Any) -> bytes:
    """pydantic-core's JSON for dicts and lists of any depth: containers walked with an explicit
    stack (no recursion limit), every scalar written by pydantic-core itself."""
    out: list[bytes] = []
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, _Token):
            out.append(item)
        elif isinstance(item, dict):
            todo: list[Any] = [_Token(b"{")]
            for i, (key, value) in enumerate(item.items()):
                key_json = pydantic_core.to_json(key if isinstance(key, str) else str(key))
                todo += [_Token((b"," if i else b"") + key_json + b":"), value]
            todo.append(_Token(b"}"))
            stack.extend(reversed(todo))
        elif isinstance(item, (list, tuple)):
            todo = [_Token(b"[")]
            for i, value in enumerate(item):
                todo += [_Token(b",")] if i else []
                todo.append(value)
            todo.append(_Token(b"]"))
            stack.extend(reversed(todo))
        else:
            out.append(pydantic_core.to_json(item))
    return b"".join(out)


def renderable(value: Any) -> bool:
    """Whether a session holding `value` as a field (session_state, metadata, summary) can be
    written as a detail answer: pydantic-core refuses 255 levels of nesting, counted from the
    detail object. agno stores such a value and then answers 500 on every read of the row;
    native refuses it before writing (see known differences)."""
    try:
        pydantic_core.to_json({"field": value})
    except pydantic_core.PydanticSerializationError:
        return False
    return True


def dumps_page(page: dict[str, Any]) -> bytes:
    """A `session_page` as FastAPI writes it: one pydantic-core call for the whole page.

    agno's `PaginatedResponse[SessionSchema]` counts pydantic-core's depth limit from inside
    each item's dict fields (a `session_state` nested 255 levels still lists, 256 does not), so
    a page holding a value nested a little less than that already exceeds the limit counted
    from the page: `dumps` then writes it level by level, the same bytes (and the rows agno
    cannot write at all as well). Writing each item and field apart instead (a call per
    field) cost about a third of a list request's server CPU (docs/benchmarks.md)."""
    return dumps(page)


def dumps_error(body: Any) -> bytes:
    """Error bytes exactly as Starlette's JSONResponse writes them (json.dumps, compact, UTF-8)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    """`response_model_exclude_none=True` applies to a model's own fields, never inside dict values."""
    return {k: v for k, v in d.items() if v is not None}


# --------------------------------------------------------------------------------------------
# Small rules shared by several schemas
# --------------------------------------------------------------------------------------------


_UTC = UTC


def utc(value: Any) -> datetime | None:
    """`agno.os.utils.to_utc_datetime` for the values a session or run can hold."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            if value.endswith("Z"):
                value = value[:-1] + "+00:00"
            parsed = datetime.fromisoformat(value)
        except (ValueError, TypeError):
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
    return datetime.fromtimestamp(value, tz=_UTC)


def detect_session_type(row: dict[str, Any]) -> str:
    """`agno.db.utils.detect_session_type`: stored type, else by component id, else agent."""
    stored = row.get("session_type")
    if stored:
        return stored
    if row.get("agent_id"):
        return "agent"
    if row.get("team_id"):
        return "team"
    if row.get("workflow_id"):
        return "workflow"
    return "agent"


def agent_metadata(metadata: Any, agent_data: Any) -> dict[str, Any] | None:
    """`agno.os.schema._agent_metadata`: expose `agent_data.sdk` (or `framework`) in metadata."""
    sdk = (agent_data.get("sdk") or agent_data.get("framework")) if isinstance(agent_data, dict) else None
    if isinstance(sdk, str) and sdk:
        return {**(metadata or {}), "sdk": sdk}
    return dict(metadata) if metadata is not None else None


def stringify_input_content(value: Any) -> str:
    """`agno.os.utils.stringify_input_content` for JSON-decoded values."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value, indent=2, default=str)
    if isinstance(value, list):
        if value and isinstance(value[0], dict) and value[0].get("role") == "user":
            return value[0].get("content", str(value))
        return str(value)
    return str(value)


def get_run_input(run: dict[str, Any], is_workflow_run: bool = False) -> str:
    """`agno.os.utils.get_run_input`."""
    if not is_workflow_run and run.get("input") is not None:
        data = run["input"]
        if isinstance(data, dict) and data.get("input_content") is not None:
            return stringify_input_content(data["input_content"])
    if is_workflow_run:
        value = run.get("input")
        if value is not None:
            return stringify_input_content(value)
        step_runs = run.get("step_executor_runs", [])
        if step_runs:
            for message in reversed(step_runs[0].get("messages", [])):
                if message.get("role") == "user":
                    return message.get("content", "")
    if run.get("messages") is not None:
        for message in reversed(run["messages"]):
            if message.get("role") == "user":
                return message.get("content", "")
    return ""


def extract_input_media(run: dict[str, Any]) -> dict[str, list[Any]]:
    """`agno.os.utils.extract_input_media`."""
    media: dict[str, list[Any]] = {"images": [], "videos": [], "audios": [], "files": []}
    data = run.get("input", {})
    if isinstance(data, dict):
        for key in media:
            media[key].extend(data.get(key, []))
    return media


def run_type(run: dict[str, Any]) -> str:
    """`agno.db.utils.get_run_type` for a stored run dict."""
    if run.get("agent_id") or run.get("agent_name"):
        return "agent"
    if run.get("team_id") or run.get("team_name"):
        return "team"
    return "workflow"


# --------------------------------------------------------------------------------------------
# Runs: the legacy 2.x blob merged with the 3.x runs table
# --------------------------------------------------------------------------------------------


def merge_runs(table_runs: list[Any], legacy_runs: Any) -> list[dict[str, Any]]:
    """`agno.db.utils.merge_runs_table_with_legacy_blob`.

    Walk the legacy blob in its stored order, substituting the table's copy for any run id in
    both; then append the table-only runs in table order.
    """
    if isinstance(legacy_runs, str):
        try:
            legacy_runs = json.loads(legacy_runs)
        except (ValueError, TypeError):
            legacy_runs = None
    if not legacy_runs:
        return list(table_runs)
    table_by_id = {r.get("run_id"): r for r in table_runs if isinstance(r, dict) and r.get("run_id") is not None}
    legacy_ids: set[Any] = set()
    merged: list[dict[str, Any]] = []
    for legacy in legacy_runs:
        if not isinstance(legacy, dict) or legacy.get("run_id") is None:
            continue
        legacy_ids.add(legacy["run_id"])
        merged.append(table_by_id.get(legacy["run_id"], legacy))
    for run in table_runs:
        if isinstance(run, dict) and run.get("run_id") is not None and run["run_id"] not in legacy_ids:
            merged.append(run)
    return merged


def session_runs_for_type(runs: list[dict[str, Any]], session_type: str) -> list[dict[str, Any]]:
    """The runs that survive agno's deserialization of a session of `session_type`.

    `AgentSession`/`TeamSession.from_dict` keep dicts with an `agent_id` or `team_id` *key*
    (only when the first run is a dict); `WorkflowSession.from_dict` keeps workflow runs.
    """
    if session_type == "workflow":
        return [r for r in runs if isinstance(r, dict) and run_type(r) == "workflow"]
    if not runs or not isinstance(runs[0], dict):
        return []
    return [r for r in runs if isinstance(r, dict) and ("agent_id" in r or "team_id" in r)]


# --------------------------------------------------------------------------------------------
# session_name (agno.os.utils.get_session_name)
# --------------------------------------------------------------------------------------------


def session_name(session_data: Any, runs: list[dict[str, Any]], session_type: Any, workflow_data: Any) -> str:
    """The stored name, else one derived from the runs, as `get_session_name` does."""
    if session_data is not None and session_data.get("session_name") is not None:
        return session_data["session_name"]
    if session_type == "workflow":
        if not runs:
            return ""
        first_input = runs[0].get("input")
        if isinstance(first_input, str):
            return first_input
        if isinstance(first_input, dict):
            return json.dumps(first_input)
        # agno reads `.get("name")` of workflow_data; SQL-NULL workflow_data is coerced to {}
        # here (agno's list view raises and answers 500 in that case; see known differences).
        name = (workflow_data or {}).get("name")
        return f"New {name} Session" if name else ""
    candidates = [r for r in runs if not r.get("agent_id")] if session_type == "team" else runs
    for run in candidates:
        if run is None:
            continue
        for message in run.get("messages") or []:
            if message.get("role") == "user" and message.get("content"):
                return message["content"]
        if run.get("input") is not None:
            return stringify_input_content(run["input"])
    return ""


def first_run_names(run: Any, session_type: Any) -> bool:
    """Whether `session_name` over a session's runs is decided by its first run alone, so the
    list page can derive names from one run per session instead of all of them.

    True where the loop of `session_name` returns at the first run (a workflow looks only at
    `runs[0]`; an agent or team run returns on a user message with content, or on its input).
    A team's member run (`agent_id` set) is skipped there, and odd shapes are left to the full
    derivation: False, and the caller loads every run."""
    if not isinstance(run, dict):
        return False
    if session_type == "workflow":
        return True
    if session_type == "team" and run.get("agent_id"):
        return False
    messages = run.get("messages") or []
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return False
    if any(m.get("role") == "user" and m.get("content") for m in messages):
        return True
    return run.get("input") is not None


# --------------------------------------------------------------------------------------------
# Session summary (agno.session.summary.SessionSummary round trip)
# --------------------------------------------------------------------------------------------


class SummaryError(ValueError):
    """A summary object that `SessionSummary.from_dict` cannot take."""


_SUMMARY_KEYS = ("summary", "topics", "updated_at")


def normalize_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """`SessionSummary.from_dict(d).to_dict()`: keys `summary, topics, updated_at`, Nones dropped,
    `updated_at` re-rendered by `datetime.fromisoformat(...).isoformat()`.

    Raises `SummaryError` where agno would raise (missing `summary`, unknown keys, a bad date).
    """
    unknown = [k for k in summary if k not in _SUMMARY_KEYS]
    if unknown:
        raise SummaryError(f"unexpected key(s) {sorted(unknown)}; allowed: summary, topics, updated_at")
    if "summary" not in summary:
        raise SummaryError("the key 'summary' is required")
    updated_at = summary.get("updated_at")
    if updated_at:
        if not isinstance(updated_at, str):
            raise SummaryError("updated_at must be an ISO 8601 string")
        try:
            updated_at = datetime.fromisoformat(updated_at).isoformat()
        except ValueError as exc:
            raise SummaryError(f"updated_at is not an ISO 8601 date: {exc}") from None
    else:
        updated_at = None
    out = {"summary": summary["summary"], "topics": summary.get("topics"), "updated_at": updated_at}
    return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------------------------
# chat_history (AgentSession/TeamSession.get_chat_history + Message.to_dict)
# --------------------------------------------------------------------------------------------

_MESSAGE_KEYS = (
    "id",
    "content",
    "reasoning_content",
    "from_history",
    "compressed_content",
    "stop_after_tool_call",
    "role",
    "name",
    "tool_call_id",
    "tool_name",
    "tool_args",
    "tool_call_error",
    "tool_calls",
    "redacted_reasoning_content",
    "provider_data",
    "checkpoint_status",
    "checkpoint_created_at",
)
_MESSAGE_DEFAULTS = {"from_history": False, "stop_after_tool_call": False}
_METRIC_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "audio_total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "duration",
    "time_to_first_token",
    "provider_metrics",
)
_MEDIA_KEYS = ("images", "audio", "videos", "files", "audio_output", "references")


def message_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """`MessageMetrics.from_dict(m).to_dict()`: field order, no None, no int 0, no empty dict."""
    out = {}
    for key in _METRIC_KEYS:
        value = metrics.get(key)
        if value is None or (isinstance(value, int) and value == 0) or (isinstance(value, dict) and not value):
            continue
        out[key] = value
    return out


def chat_message(message: dict[str, Any], now: int | None = None) -> dict[str, Any]:
    """`Message.from_dict(m).to_dict()` for a stored message dict.

    Two values are not reproducible by design (agno makes them up per request): a message stored
    without `id` gets a fresh uuid4, and one without `created_at` gets the current time.
    """
    out: dict[str, Any] = {}
    for key in _MESSAGE_KEYS:
        value = message.get(key, _MESSAGE_DEFAULTS.get(key))
        if key == "id" and value is None:
            value = str(uuid4())
        if value is None or (isinstance(value, (list, dict)) and not value):
            continue
        out[key] = value
    for key in _MEDIA_KEYS:
        if message.get(key):
            out[key] = message[key]
    metrics = message.get("metrics")
    if isinstance(metrics, dict):
        rendered = message_metrics(metrics)
        if rendered:
            out["metrics"] = rendered
    created_at = message.get("created_at")
    if created_at is None:
        created_at = now if now is not None else int(datetime.now(tz=_UTC).timestamp())
    elif isinstance(created_at, float) and created_at.is_integer():
        created_at = int(created_at)
    out["created_at"] = created_at
    return out


def chat_history(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level runs' messages, minus history copies and system/tool messages, in order."""
    history = []
    for run in runs:
        if run.get("parent_run_id") is not None:
            continue
        for message in run.get("messages") or []:
            if message.get("from_history") or message.get("role") in ("system", "tool"):
                continue
            history.append(chat_message(message))
    return history


# --------------------------------------------------------------------------------------------
# Sessions
# --------------------------------------------------------------------------------------------


def session_list_item(row: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """`SessionSchema.from_dict` over the raw row (nulls omitted)."""
    session_data = row.get("session_data") or {}
    stype = detect_session_type(row)
    metrics = session_data.get("session_metrics")
    return drop_none(
        {
            "session_id": row.get("session_id", ""),
            "session_name": session_name(
                row.get("session_data"), runs, row.get("session_type"), row.get("workflow_data")
            ),
            "session_state": session_data.get("session_state"),
            "created_at": utc(row.get("created_at", 0)),
            "updated_at": utc(row.get("updated_at")),
            "session_type": stype,
            "user_id": row.get("user_id"),
            "agent_id": row.get("agent_id"),
            "team_id": row.get("team_id"),
            "workflow_id": row.get("workflow_id"),
            "session_summary": row.get("summary"),
            "metrics": metrics,
            "total_tokens": metrics.get("total_tokens") if metrics else None,
            "metadata": agent_metadata(row.get("metadata"), row.get("agent_data"))
            if stype == "agent"
            else row.get("metadata"),
        }
    )


def session_page(items: list[dict[str, Any]], page: int, limit: int, total_count: int) -> dict[str, Any]:
    """`PaginatedResponse[SessionSchema]`; `search_time_ms` is never set by agno."""
    return {
        "data": items,
        "meta": {
            "page": page,
            "limit": limit,
            "total_pages": (total_count + limit - 1) // limit,
            "total_count": total_count,
            "search_time_ms": 0.0,
        },
    }


def _detail_times(row: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    created = utc(row["created_at"]) if row.get("created_at") else None
    updated = utc(row["updated_at"]) if row.get("updated_at") else created
    return created, updated


def _metrics_of(session_data: Any) -> tuple[Any, Any]:
    if not session_data:
        return None, None
    metrics = session_data.get("session_metrics", {})
    return metrics, metrics.get("total_tokens")


def session_detail(
    row: dict[str, Any], runs: list[dict[str, Any]], as_type: str, *, include_none: bool
) -> dict[str, Any]:
    """`{Agent,Team,Workflow}SessionDetailSchema.from_session` of the row deserialized as `as_type`.

    `include_none` is False for GET/POST (nulls omitted) and True for rename/PATCH.
    """
    kept = session_runs_for_type(runs, as_type)
    session_data = row.get("session_data")
    if as_type == "workflow":
        body = _workflow_detail(row, kept)
    else:
        summary = row.get("summary")
        if isinstance(summary, dict):
            summary = normalize_summary(summary)
        summary = summary or None
        created, updated = _detail_times(row)
        metrics, total_tokens = _metrics_of(session_data)
        name = session_name(session_data, kept, as_type, None)
        state = session_data.get("session_state") if session_data else None
        if as_type == "agent":
            body = {
                "user_id": row.get("user_id"),
                "agent_session_id": row["session_id"],
                "session_id": row["session_id"],
                "session_name": name,
                "session_summary": summary,
                "session_state": state,
                "agent_id": row.get("agent_id") or None,
                "total_tokens": total_tokens,
                "agent_data": row.get("agent_data"),
                "metrics": metrics,
                "metadata": agent_metadata(row.get("metadata"), row.get("agent_data")),
                "chat_history": chat_history(kept),
                "created_at": created,
                "updated_at": updated,
            }
        else:
            body = {
                "session_id": row["session_id"],
                "session_name": name,
                "user_id": row.get("user_id"),
                "team_id": row.get("team_id"),
                "session_summary": summary,
                "session_state": state,
                "metrics": metrics,
                "team_data": row.get("team_data"),
                "metadata": row.get("metadata"),
                "chat_history": chat_history(kept),
                "created_at": created,
                "updated_at": updated,
                "total_tokens": total_tokens,
            }
    return body if include_none else drop_none(body)


def _workflow_detail(row: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    # WorkflowSession.__post_init__ coerces these three to {} and a NULL updated_at to "now".
    session_data = row.get("session_data")
    if session_data is None:
        session_data = {}
    workflow_data = row.get("workflow_data")
    if workflow_data is None:
        workflow_data = {}
    metadata = row.get("metadata")
    if metadata is None:
        metadata = {}
    created_at = row.get("created_at")
    updated_at = row.get("updated_at")
    if updated_at is None:
        updated_at = int(datetime.now(tz=_UTC).timestamp())
    created = utc(created_at) if created_at else None
    updated = utc(updated_at) if updated_at else created
    return {
        "user_id": row.get("user_id"),
        "workflow_id": row.get("workflow_id"),
        "workflow_name": None,
        "session_id": row["session_id"],
        "session_name": session_name(session_data, runs, "workflow", workflow_data),
        "session_data": session_data,
        "session_state": session_data.get("session_state") if session_data else None,
        "workflow_data": workflow_data,
        "metadata": metadata,
        "created_at": created,
        "updated_at": updated,
    }


# --------------------------------------------------------------------------------------------
# Run schemas
# --------------------------------------------------------------------------------------------


def _list_or_none(value: Any) -> list[Any] | None:
    return list(value) if value else None


def _response_format(run: dict[str, Any]) -> str:
    return "text" if run.get("content_type", "str") == "str" else "json"


# The last fields of agno's AgentRunSchema and TeamRunSchema, in the same order in both (the
# schemas differ before them, and key order is part of byte parity).
LINEAGE_FIELDS = (
    "followups",
    "forked_from_run_id",
    "forked_from_message_index",
    "forked_from_session_id",
    "regenerated_from",
    "last_checkpoint_at_message_index",
)


def _followups_and_lineage(run: dict[str, Any]) -> dict[str, Any]:
    return {name: run.get(name) for name in LINEAGE_FIELDS}


def _run_middle(run: dict[str, Any]) -> dict[str, Any]:
    """The fields agno's AgentRunSchema and TeamRunSchema share, in this order, after `events`."""
    g = run.get
    return {
        "created_at": utc(g("created_at")),
        "references": g("references", []),
        "citations": g("citations"),
        "reasoning_messages": g("reasoning_messages", []),
        "session_state": g("session_state"),
    }


def _run_media(run: dict[str, Any]) -> dict[str, Any]:
    """The output media fields of both schemas, in this order (`input_media` comes after them in
    the agent's schema and before them in the team's)."""
    g = run.get
    return {
        "images": g("images", []),
        "videos": g("videos", []),
        "audio": g("audio", []),
        "files": g("files", []),
        "response_audio": g("response_audio"),
    }


def agent_run(run: dict[str, Any], session: dict[str, Any] | None = None) -> dict[str, Any]:
    """`RunSchema.from_dict(run, session=session)` (all fields, None included)."""
    agent_data = None
    if (
        session is not None
        and detect_session_type(session) == "agent"
        and run.get("agent_id") in (None, session.get("agent_id"))
    ):
        agent_data = session.get("agent_data")
    g = run.get
    return {
        "run_id": g("run_id", ""),
        "parent_run_id": g("parent_run_id", ""),
        "agent_id": g("agent_id", ""),
        "user_id": g("user_id", ""),
        "status": g("status"),
        "cancellation_stage": g("cancellation_stage"),
        "run_input": get_run_input(run),
        "content": g("content", ""),
        "run_response_format": _response_format(run),
        "reasoning_content": g("reasoning_content", ""),
        "reasoning_steps": g("reasoning_steps", []),
        "metrics": g("metrics", {}),
        "metadata": agent_metadata(g("metadata"), agent_data),
        "messages": _list_or_none(g("messages")),
        "tools": _list_or_none(g("tools")),
        "events": _list_or_none(g("events")),
        **_run_middle(run),
        **_run_media(run),
        "input_media": extract_input_media(run),
        **_followups_and_lineage(run),
    }


def team_run(run: dict[str, Any]) -> dict[str, Any]:
    """`TeamRunSchema.from_dict(run)` (all fields, None included)."""
    g = run.get
    return {
        "run_id": g("run_id", ""),
        "parent_run_id": g("parent_run_id", ""),
        "team_id": g("team_id", ""),
        "user_id": g("user_id"),
        "status": g("status"),
        "cancellation_stage": g("cancellation_stage"),
        "content": g("content", ""),
        "reasoning_content": g("reasoning_content", ""),
        "reasoning_steps": g("reasoning_steps", []),
        "run_input": get_run_input(run),
        "run_response_format": _response_format(run),
        "metrics": g("metrics", {}),
        "tools": _list_or_none(g("tools")),
        "messages": _list_or_none(g("messages")),
        "events": _list_or_none(g("events")),
        **_run_middle(run),
        "input_media": extract_input_media(run),
        **_run_media(run),
        **_followups_and_lineage(run),
    }


def workflow_run(run: dict[str, Any]) -> dict[str, Any]:
    """`WorkflowRunSchema.from_dict(run)` (all fields, None included)."""
    g = run.get
    return {
        "run_id": g("run_id", ""),
        "run_input": get_run_input(run, is_workflow_run=True),
        "events": g("events", []),
        "workflow_id": g("workflow_id", ""),
        "user_id": g("user_id", ""),
        "content": g("content", ""),
        "content_type": g("content_type", ""),
        "status": g("status", ""),
        "cancellation_stage": g("cancellation_stage"),
        "step_results": g("step_results", []),
        "step_executor_runs": g("step_executor_runs", []),
        "step_requirements": g("step_requirements"),
        "pause_kind": g("pause_kind"),
        "paused_step_name": g("paused_step_name"),
        "paused_step_index": g("paused_step_index"),
        "metrics": g("metrics", {}),
        "created_at": utc(g("created_at")),
        "reasoning_content": g("reasoning_content", ""),
        "reasoning_steps": g("reasoning_steps", []),
        "references": g("references", []),
        "citations": g("citations"),
        "reasoning_messages": g("reasoning_messages", []),
        "images": g("images", []),
        "videos": g("videos", []),
        "audio": g("audio", []),
        "files": g("files", []),
        "response_audio": g("response_audio"),
    }


def run_by_shape(run: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """`GET /sessions/{id}/runs/{run_id}`: the schema is chosen by the run itself."""
    if run.get("workflow_id") is not None:
        return workflow_run(run)
    if run.get("team_id") is not None:
        return team_run(run)
    return agent_run(run, session)


def classify_runs(runs: Iterable[dict[str, Any]], session_type: str, session: dict[str, Any]) -> list[dict[str, Any]]:
    """`agno.os.services.sessions.classify_session_run` over a session's runs (all fields)."""
    out = []
    for run in runs:
        if session_type == "agent":
            out.append(agent_run(run, session))
        elif session_type == "team":
            if run.get("agent_id") is not None:
                out.append(agent_run(run))
            elif run.get("team_id") is not None:
                out.append(team_run(run))
        elif run.get("workflow_id") is not None:
            out.append(workflow_run(run))
        elif run.get("team_id") is not None:
            out.append(team_run(run))
        else:
            out.append(agent_run(run))
    return out


_PREVIEW_CHARS = 280


def _preview(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:_PREVIEW_CHARS]


def run_preview(schema: dict[str, Any]) -> dict[str, Any]:
    """`SessionRunPreviewSchema.from_run` over an already-built run schema (nulls omitted)."""
    return drop_none(
        {
            "run_id": schema["run_id"],
            "parent_run_id": schema.get("parent_run_id"),
            "agent_id": schema.get("agent_id"),
            "team_id": schema.get("team_id"),
            "workflow_id": schema.get("workflow_id"),
            "user_id": schema.get("user_id"),
            "status": schema.get("status"),
            "run_input": _preview(schema.get("run_input")),
            "content_preview": _preview(schema.get("content")),
            "created_at": schema.get("created_at"),
        }
    )


def filter_runs(
    runs: list[dict[str, Any]], created_after: int | None, created_before: int | None
) -> list[dict[str, Any]]:
    """Inclusive bounds on the run's own `created_at`; runs without one are kept (as agno does)."""
    out = []
    for run in runs:
        created_at = run.get("created_at")
        if created_after is not None and created_at is not None and created_at < created_after:
            continue
        if created_before is not None and created_at is not None and created_at > created_before:
            continue
        out.append(run)
    return out


def filter_status(schemas: list[dict[str, Any]], wanted: set[str] | None) -> list[dict[str, Any]]:
    """The status filter runs on the built schemas, case-insensitively; no status never matches."""
    if wanted is None:
        return schemas
    return [s for s in schemas if (s.get("status") or "").upper() in wanted]
