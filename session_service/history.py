"""A session's history as a client sends it (`POST /sessions` with `runs` and `summary`, or a line
of `agentos-session import`), turned into the rows agno itself writes.

agno stores a run as its `RunOutput.to_dict()` (`TeamRunOutput`, `WorkflowRunOutput`) in the
3.x runs table, one row per run with `run_index` = its position in the session. A client can
send a run in two forms:

* the *rendered* form, as `GET /sessions/{id}/runs/{run_id}` answers it (agno's `RunSchema`,
  `TeamRunSchema`, `WorkflowRunSchema`; recognised by its `run_input` key). It is mapped back to
  the stored form (`stored_from_rendered`). The rendered form loses what agno never shows: the
  run's `agent_name`/`team_name`, `model`, `content_type` (only "text"/"json" survive), the
  structure of an input that was not a string or a JSON object (`str(list)` is not reversible),
  and whether an empty id was absent or "". Every read route re-renders what it shows the same
  (the differential test proves it against agno's own reader); what it does not show is gone.
* the *stored* form, `to_dict()` as agno wrote it (what `agentos-session export` writes): taken
  as is, so an export/import round trip loses nothing.

Pure functions: validation raises `RequestInvalid` with FastAPI's 422 list, locations like
`["body", "runs", 3, "run_id"]`; nothing here does I/O, so nothing is written on a refusal.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from . import render
from .validation import RequestInvalid, _fastapi_errors, sanitize_strings, unstorable

# --------------------------------------------------------------------------------------------
# Shapes (agno.os.schema's run schemas and agno.run's stored dicts; agno itself is not imported)
# --------------------------------------------------------------------------------------------

_Obj = dict[str, Any]


class _RenderedCommon(BaseModel):
    """The fields every rendered run schema has, with agno's types (extra keys are refused: a
    key agno's schema does not have was not rendered by agno)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    run_input: str | None = None
    content: Any = None
    status: str | None = None
    cancellation_stage: str | None = None
    reasoning_content: str | None = None
    reasoning_steps: list[_Obj] | None = None
    metrics: _Obj | None = None
    created_at: datetime | None = None
    references: list[_Obj] | None = None
    citations: _Obj | None = None
    reasoning_messages: list[_Obj] | None = None
    images: list[_Obj] | None = None
    videos: list[_Obj] | None = None
    audio: list[_Obj] | None = None
    files: list[_Obj] | None = None
    response_audio: _Obj | None = None
    events: list[_Obj] | None = None


class _RenderedMemberish(_RenderedCommon):
    """`RunSchema` and `TeamRunSchema` share these."""

    parent_run_id: str | None = None
    user_id: str | None = None
    run_response_format: str | None = None
    messages: list[_Obj] | None = None
    tools: list[_Obj] | None = None
    session_state: _Obj | None = None
    input_media: dict[str, list[_Obj]] | None = None
    followups: list[str] | None = None
    forked_from_run_id: str | None = None
    forked_from_message_index: int | None = None
    forked_from_session_id: str | None = None
    regenerated_from: str | None = None
    last_checkpoint_at_message_index: int | None = None


class RenderedAgentRun(_RenderedMemberish):
    """agno's `RunSchema`."""

    agent_id: str | None = None
    metadata: _Obj | None = None


class RenderedTeamRun(_RenderedMemberish):
    """agno's `TeamRunSchema`."""

    team_id: str | None = None


class RenderedWorkflowRun(_RenderedCommon):
    """agno's `WorkflowRunSchema`."""

    workflow_id: str | None = None
    user_id: str | None = None
    content_type: str | None = None
    step_results: list[Any] | None = None
    step_executor_runs: list[_Obj] | None = None
    step_requirements: list[Any] | None = None
    pause_kind: str | None = None
    paused_step_name: str | None = None
    paused_step_index: int | None = None


class StoredRun(BaseModel):
    """The fields of a stored run (`RunOutput.to_dict()` and its team/workflow twins) that the
    reads depend on, with their types; the other keys are kept as they are."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    agent_id: str | None = None
    team_id: str | None = None
    workflow_id: str | None = None
    parent_run_id: str | None = None
    user_id: str | None = None
    status: str | None = None
    created_at: int | float | None = None
    messages: list[_Obj] | None = None
    content_type: str | None = None


class Summary(BaseModel):
    """A session summary as the detail schema shows it (`SessionSummary.to_dict()`)."""

    model_config = ConfigDict(extra="forbid")

    summary: str
    topics: list[str] | None = None
    updated_at: str | None = None


# Which run kinds a session of each type holds (agno.os.services.sessions.classify_session_run).
_KINDS_FOR_TYPE = {"agent": ("agent",), "team": ("team", "agent"), "workflow": ("workflow", "team", "agent")}


_RENDERED: dict[str, type[_RenderedCommon]] = {
    "agent": RenderedAgentRun,
    "team": RenderedTeamRun,
    "workflow": RenderedWorkflowRun,
}


def rendered_kind(run: _Obj) -> str:
    """The schema a rendered run was made with, by the id key only that schema has."""
    if "workflow_id" in run or "step_results" in run:
        return "workflow"
    if "team_id" in run:
        return "team"
    return "agent"


# --------------------------------------------------------------------------------------------
# Rendered form -> stored form
# --------------------------------------------------------------------------------------------


def _unstringify(text: str) -> Any:
    """Undo `stringify_input_content` where it is reversible: a JSON object rendered with
    `json.dumps(indent=2)` becomes that object again (agno names a workflow session after a dict
    input with compact `json.dumps`, so the object must be stored, not its rendering)."""
    if not text.startswith("{"):
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict) and json.dumps(parsed, indent=2, default=str) == text:
        return parsed
    return text


def _epoch(value: datetime | None) -> int | float | None:
    if value is None:
        return None
    ts = value.timestamp()
    return int(ts) if ts.is_integer() else ts


def _put(out: _Obj, key: str, value: Any, *, empty: Any = None) -> None:
    """Keep a value unless it is None or what the schema renders for an absent key."""
    if value is None or (empty is not None and value == empty):
        return
    out[key] = value


_SHARED = (
    "content",
    "status",
    "cancellation_stage",
    "metrics",
    "references",
    "citations",
    "reasoning_messages",
    "reasoning_steps",
    "images",
    "videos",
    "audio",
    "files",
    "response_audio",
    "events",
)


def stored_from_rendered(run: _RenderedCommon) -> _Obj:
    """The stored dict whose rendering is `run` (see the module docstring for what is lost)."""
    data = run.model_dump(exclude_unset=True)
    out: _Obj = {"run_id": run.run_id}
    for key in _SHARED:
        _put(out, key, data.get(key))
    _put(out, "reasoning_content", data.get("reasoning_content"), empty="")
    created = _epoch(data.get("created_at"))
    if created is not None:
        out["created_at"] = created
    if isinstance(run, RenderedWorkflowRun):
        for key in ("workflow_id", "user_id", "content_type", "status"):
            _put(out, key, data.get(key), empty="")
        for key in ("step_results", "step_executor_runs", "step_requirements"):
            _put(out, key, data.get(key), empty=[])
        for key in ("pause_kind", "paused_step_name", "paused_step_index"):
            _put(out, key, data.get(key))
        if data.get("run_input"):
            out["input"] = _unstringify(data["run_input"])
        return out
    id_key = "team_id" if isinstance(run, RenderedTeamRun) else "agent_id"
    for key in (id_key, "parent_run_id", "user_id"):
        _put(out, key, data.get(key), empty="")
    for key in ("messages", "tools", "session_state", *render.LINEAGE_FIELDS):
        _put(out, key, data.get(key))
    if isinstance(run, RenderedAgentRun):
        _put(out, "metadata", data.get("metadata"))
    fmt = data.get("run_response_format")
    out["content_type"] = "str" if fmt in (None, "text") else "dict"
    run_input: _Obj = {}
    if data.get("run_input"):
        run_input["input_content"] = _unstringify(data["run_input"])
    media = data.get("input_media") or {}
    for key in ("images", "videos", "audios", "files"):
        if media.get(key):
            run_input[key] = media[key]
    if run_input:
        out["input"] = run_input
    return out


# --------------------------------------------------------------------------------------------
# Validation of a whole history
# --------------------------------------------------------------------------------------------


def _stored_kind(run: _Obj) -> str:
    return render.run_type(run)


def validate_runs(runs: Any, session_type: str, session_id: str, loc: tuple[Any, ...] = ("body", "runs")) -> list[_Obj]:
    """The stored dicts of `runs` (a list of rendered or stored runs) for a session of
    `session_type`, or `RequestInvalid` naming each bad run by index and field."""
    if not isinstance(runs, list):
        raise RequestInvalid(
            [{"type": "list_type", "loc": list(loc), "msg": "Input should be a valid list", "input": runs}]
        )
    allowed = _KINDS_FOR_TYPE[session_type]
    errors: list[_Obj] = []
    stored: list[_Obj] = []
    seen: set[str] = set()
    for index, run in enumerate(runs):
        at = (*loc, index)
        if not isinstance(run, dict):
            errors.append(
                {"type": "dict_type", "loc": list(at), "msg": "Input should be a valid dictionary", "input": run}
            )
            continue
        try:
            if "run_input" in run:
                kind = rendered_kind(run)
                data = stored_from_rendered(_RENDERED[kind].model_validate(run))
            else:
                StoredRun.model_validate(run)
                kind = _stored_kind(run)
                data = dict(run)
        except ValidationError as exc:
            errors.extend(_fastapi_errors(exc, at))
            continue
        if kind not in allowed:
            errors.append(_value_error((*at,), f"a {kind} run cannot be part of a {session_type} session", run))
            continue
        if not data["run_id"]:
            errors.append(_value_error((*at, "run_id"), "run_id must not be empty", data["run_id"]))
            continue
        if data["run_id"] in seen:
            errors.append(_value_error((*at, "run_id"), "run_id is repeated in this session", data["run_id"]))
            continue
        seen.add(data["run_id"])
        data["session_id"] = session_id  # agno's runs carry their session's id
        text = _plainly_storable(data)
        problems = [] if text is not None else unstorable(data, at, sanitized=True)
        if not problems and not render.renderable(data):
            problems = [_value_error(at, "nested too deeply for the run to be rendered", None)]
        errors.extend(problems)
        stored.append(RunData(data, text) if text is not None else RunData(sanitize_strings(data)))
    if errors:
        raise RequestInvalid(errors)
    return stored


class RunData(dict[str, Any]):
    """A stored run dict that may carry its JSON text (`json.dumps(ensure_ascii=False)`),
    computed once by the storability check and written as is (the import's CPU was mostly
    serializing each run twice)."""

    def __init__(self, data: _Obj, text: str | None = None):
        super().__init__(data)
        self.text = text

    def json_text(self) -> str:
        return self.text if self.text is not None else json.dumps(self, ensure_ascii=False)


# In `json.dumps(ensure_ascii=False)` text: an escaped character agno strips or Postgres refuses
# (\x00-\x08, \x0b, \x0c, \x0e-\x1f; \b and \f are two of them), or a raw lone surrogate,
# U+FFFE or U+FFFF. A literal backslash before `b`/`f` also matches: a false alarm only sends the
# run the slow way.
_ESCAPED = re.compile(r"\\u00(?:0[0-8bcef]|1[0-9a-fA-F])|\\[bf]")
_RAW = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _plainly_storable(data: Any) -> str | None:
    """`data`'s JSON text when it certainly needs neither agno's string sanitizing nor a
    refusal (one serialization and substring scans instead of two walks of every string), else
    None, which means "look closer", never "refuse"."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or Infinity
        return None
    if ("\\u00" in text or "\\b" in text or "\\f" in text) and _ESCAPED.search(text):
        return None
    if not text.isascii() and _RAW.search(text):
        return None
    return text


def _value_error(loc: tuple[Any, ...], message: str, value: Any) -> _Obj:
    error: _Obj = {"type": "value_error", "loc": list(loc), "msg": f"Value error, {message}"}
    if value is not None:
        error["input"] = value
    return error


def validate_summary(summary: Any, session_type: str, loc: tuple[Any, ...] = ("body", "summary")) -> _Obj | None:
    """The summary as agno stores it (`SessionSummary.from_dict(d).to_dict()`), or a 422."""
    if summary is None:
        return None
    if session_type == "workflow":
        raise RequestInvalid([_value_error(loc, "a workflow session has no summary", summary)])
    try:
        Summary.model_validate(summary)
        normalized = render.normalize_summary(summary)
    except ValidationError as exc:
        raise RequestInvalid(_fastapi_errors(exc, loc)) from None
    except render.SummaryError as exc:
        raise RequestInvalid([_value_error(loc, str(exc), summary)]) from None
    problems = unstorable(normalized, loc, sanitized=True)
    if problems:
        raise RequestInvalid(problems)
    return sanitize_strings(normalized)


def run_rows(session_id: str, user_id: str | None, runs: list[_Obj], now: int) -> list[_Obj]:
    """The runs-table rows agno's `upsert_run` writes for each run (`build_single_run_row`),
    `run_index` being the run's position in the session."""
    rows = []
    for index, run in enumerate(runs):
        rows.append(
            {
                "run_id": run["run_id"],
                "session_id": session_id,
                "run_type": render.run_type(run),
                "agent_id": run.get("agent_id"),
                "team_id": run.get("team_id"),
                "workflow_id": run.get("workflow_id"),
                "user_id": run.get("user_id") or user_id,  # agno: run_output.user_id or session.user_id
                "parent_run_id": run.get("parent_run_id"),
                "status": run.get("status"),
                "run_index": index,
                "run_data": run.json_text() if isinstance(run, RunData) else run,
                "created_at": int(run.get("created_at") or now),
                "updated_at": now,
            }
        )
    return rows
