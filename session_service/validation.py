"""Request validation with FastAPI's exact 422 bodies.

AgentOS validates query parameters and bodies with pydantic through FastAPI; clients (and the
parity tests) see pydantic's error `type`, `msg`, `input` and `ctx`. The cheapest way to be
identical is to validate with the same pydantic types, so this module declares each route's
parameters in agno's signature order (the order FastAPI reports errors in) and turns pydantic's
errors into FastAPI's list. Pure functions: no I/O.
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Annotated, Any, Optional
from urllib.parse import unquote

from pydantic import BaseModel, Field, TypeAdapter, ValidationError


class SessionType(str, Enum):
    AGENT = "agent"
    TEAM = "team"
    WORKFLOW = "workflow"


class SortOrder(str, Enum):
    ASC = "asc"
    DESC = "desc"


class CreateSessionRequest(BaseModel):
    session_id: str | None = None
    session_name: str | None = None
    session_state: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    user_id: str | None = None
    agent_id: str | None = None
    team_id: str | None = None
    workflow_id: str | None = None
    # Native only (issue 14): the session's history, validated by session_service.history with
    # errors naming the run's index. agno 3.1.10 has neither field and drops both keys.
    runs: Any = None
    summary: Any = None


class UpdateSessionRequest(BaseModel):
    session_name: str | None = None
    session_state: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


class DeleteSessionRequest(BaseModel):
    session_ids: list[str] = Field(..., min_length=1)
    session_types: list[SessionType] = Field(..., min_length=1)


class RequestInvalid(Exception):
    """A 422 with FastAPI's body: `{"detail": [errors...]}`."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(errors)
        self.errors = errors


class BodyUnreadable(Exception):
    """Starlette could not decode the body at all: FastAPI answers 400."""


# --------------------------------------------------------------------------------------------
# Paths and stored strings
# --------------------------------------------------------------------------------------------


def starlette_path(raw_path: str) -> str:
    """The request path as uvicorn hands it to Starlette: the raw path (before `?`)
    percent-decoded as UTF-8 with errors replaced (`%FF` is U+FFFD, `%0A` a newline). aiohttp's
    `request.path` leaves undecodable escapes as written, so an id like `%ED%A0%80` or one with
    a newline would name another session than agno's."""
    return unquote(raw_path.split("?", 1)[0])


# agno.utils.string.POSTGRES_INVALID_CHARS_REGEX: what agno removes from every string value of
# the JSON it stores (session_data, metadata, summary, ...; not keys) and from a new name.
POSTGRES_INVALID_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def sanitize_string(value: str) -> str:
    """agno's `sanitize_postgres_string`."""
    return POSTGRES_INVALID_CHARS.sub("", value)


def sanitize_strings(data: Any) -> Any:
    """agno's `sanitize_postgres_strings`: every string value in a JSON structure, recursively
    (keys kept as they are), so a row written by native reads back as agno's would."""
    if isinstance(data, dict):
        return {key: sanitize_strings(value) for key, value in data.items()}
    if isinstance(data, list):
        return [sanitize_strings(item) for item in data]
    if isinstance(data, str):
        return sanitize_string(data)
    return data


def storable(text: str) -> bool:
    """Whether Postgres can hold `text`: no NUL (text and jsonb refuse it) and no lone surrogate
    (not encodable as UTF-8). An id or filter that is not storable cannot match any row."""
    return "\x00" not in text and not _SURROGATE.search(text)


_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE_MSG = "Value error, PostgreSQL cannot store a NUL character or a lone surrogate"


def unstorable(value: Any, loc: tuple[Any, ...], *, sanitized: bool) -> list[dict[str, Any]]:
    """422 errors for what Postgres would refuse in `value` (already through `sanitize_strings`
    when `sanitized`): a non-finite number (`NaN`, `Infinity`, `1e400`), a key or string with a
    NUL or a lone surrogate. agno sends such values to Postgres and answers 500, sometimes after
    part of the work; native refuses them first (see known differences)."""
    errors: list[dict[str, Any]] = []

    def walk(v: Any, at: tuple[Any, ...]) -> None:
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            errors.append({"type": "finite_number", "loc": list(at), "msg": "Input should be a finite number"})
        elif isinstance(v, str):
            if not storable(v):
                errors.append({"type": "value_error", "loc": list(at), "msg": _UNSTORABLE_MSG})
        elif isinstance(v, dict):
            for key, item in v.items():
                if not storable(key):
                    errors.append({"type": "value_error", "loc": [*at, _printable(key)], "msg": _UNSTORABLE_MSG})
                walk(item, (*at, _printable(key)))
        elif isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, (*at, i))

    walk(sanitize_strings(value) if sanitized else value, loc)
    return errors


def _printable(key: str) -> str:
    """A key as it can appear in an error body (lone surrogates and NULs replaced)."""
    return _SURROGATE.sub("\ufffd", key).replace("\x00", "\ufffd")


# --------------------------------------------------------------------------------------------
# Query parameters
# --------------------------------------------------------------------------------------------

_OPT_STR = TypeAdapter(Optional[str])
_TYPE = TypeAdapter(Optional[SessionType])
_TYPE_DEFAULT_AGENT = TypeAdapter(SessionType)
_SORT_ORDER = TypeAdapter(Optional[SortOrder])
_LIMIT = TypeAdapter(Optional[Annotated[int, Field(ge=1)]])
_PAGE = TypeAdapter(Optional[Annotated[int, Field(ge=0)]])
_OPT_INT = TypeAdapter(Optional[int])
_BOOL = TypeAdapter(bool)
_STATUS = TypeAdapter(Optional[list[str]])


class Param:
    """One query parameter: its alias, pydantic type and default (FastAPI `Query(...)`)."""

    __slots__ = ("name", "adapter", "default", "many")

    def __init__(self, name: str, adapter: TypeAdapter, default: Any = None, many: bool = False):
        self.name, self.adapter, self.default, self.many = name, adapter, default, many


def _fastapi_errors(exc: ValidationError, loc: tuple[Any, ...]) -> list[dict[str, Any]]:
    """pydantic errors as FastAPI reports them (no `url`, location prefixed, ctx JSON-safe)."""
    out = []
    for err in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "type": err["type"],
            "loc": [*loc, *err["loc"]],
            "msg": err["msg"],
            "input": _jsonable(err["input"]),
        }
        if "ctx" in err:
            item["ctx"] = {k: _jsonable(v) for k, v in err["ctx"].items()}
        out.append(item)
    return out


def _jsonable(value: Any) -> Any:
    """The subset of FastAPI's `jsonable_encoder` that error inputs and ctx values need."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseException):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def parse_query(query: Mapping[str, Sequence[str]], params: Sequence[Param]) -> dict[str, Any]:
    """Validate `params` (in order) from a multi-valued query mapping; raise `RequestInvalid`.

    Starlette hands FastAPI the *last* value of a repeated scalar parameter, and every value of
    a list parameter.
    """
    values: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for p in params:
        raw = query.get(p.name)
        if not raw:
            value = p.default
            values[p.name] = value.value if isinstance(value, Enum) else value
            continue
        try:
            value = p.adapter.validate_python(list(raw) if p.many else raw[-1])
        except ValidationError as exc:
            errors.extend(_fastapi_errors(exc, ("query", p.name)))
            continue
        values[p.name] = value.value if isinstance(value, Enum) else value
    if errors:
        raise RequestInvalid(errors)
    return values


# Each route's query parameters in agno's signature order.
LIST_PARAMS = (
    Param("type", _TYPE),
    Param("component_id", _OPT_STR),
    Param("user_id", _OPT_STR),
    Param("session_name", _OPT_STR),
    Param("limit", _LIMIT, 20),
    Param("page", _PAGE, 1),
    Param("sort_by", _OPT_STR, "created_at"),
    Param("sort_order", _SORT_ORDER, SortOrder.DESC),
    Param("db_id", _OPT_STR),
    Param("table", _OPT_STR),
)
CREATE_PARAMS = (Param("type", _TYPE_DEFAULT_AGENT, SessionType.AGENT), Param("db_id", _OPT_STR))
DETAIL_PARAMS = (Param("type", _TYPE), Param("user_id", _OPT_STR), Param("db_id", _OPT_STR), Param("table", _OPT_STR))
RUNS_PARAMS = (
    Param("type", _TYPE),
    Param("user_id", _OPT_STR),
    Param("created_after", _OPT_INT),
    Param("created_before", _OPT_INT),
    Param("status", _STATUS, many=True),
    Param("db_id", _OPT_STR),
    Param("table", _OPT_STR),
)
RUN_PARAMS = DETAIL_PARAMS
DELETE_PARAMS = (
    Param("user_id", _OPT_STR),
    Param("db_id", _OPT_STR),
    Param("table", _OPT_STR),
    Param("delete_media", _BOOL, False),
)
RENAME_PARAMS = DETAIL_PARAMS
UPDATE_PARAMS = DETAIL_PARAMS

# --------------------------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------------------------

_NO_BODY = object()


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """FastAPI's body reading: JSON for `application/json` and `+json`, raw bytes otherwise,
    `_NO_BODY` when empty. Malformed JSON is a 422 `json_invalid`; undecodable bytes a 400."""
    if not raw:
        return _NO_BODY
    if content_type:
        message = email.message.Message()
        message["content-type"] = content_type
        subtype = message.get_content_subtype()
        if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
            return raw
    else:
        # FastAPI's strict_content_type (the default) does not parse a body without a type.
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestInvalid(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", exc.pos],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        # RecursionError: nested past Python's limit (agno's json.loads fails the same way and
        # FastAPI answers 400 "There was an error parsing the body").
        raise BodyUnreadable() from None


def _missing(loc: list[Any]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}


def parse_model(body: Any, model: type[BaseModel], *, required: bool) -> BaseModel | None:
    """A single, not embedded body model (FastAPI validates the whole body at `loc=("body",)`)."""
    if body is _NO_BODY:
        if required:
            raise RequestInvalid([_missing(["body"])])
        return model()
    try:
        return model.model_validate(body, from_attributes=True)
    except ValidationError as exc:
        raise RequestInvalid(_fastapi_errors(exc, ("body",))) from None


_STR = TypeAdapter(str)


def parse_embedded_str(body: Any, key: str) -> str:
    """`Body(embed=True)` of a `str`: a missing key, or a body that is not an object, is `missing`."""
    if body is _NO_BODY or isinstance(body, bytes) or not isinstance(body, dict) or key not in body:
        raise RequestInvalid([_missing(["body", key])])
    try:
        return _STR.validate_python(body[key])
    except ValidationError as exc:
        raise RequestInvalid(_fastapi_errors(exc, ("body", key))) from None
