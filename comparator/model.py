"""The comparator's vocabulary: a `Request`, the two `Response`s to it, the `Difference`s
between them and the `Comparison` that ends as `match`, `mismatch`, `expected` or `error`.

Sides are `legacy` (agno AgentOS) and `native` (this project's service); per request, the
`primary` answered the client and the `shadow` is the mirrored copy. Everything here is plain
data, picklable, so a comparison can run in another thread or process.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from .paths import template_of

Side = Literal["legacy", "native"]
Result = Literal["match", "mismatch", "expected", "error"]
Kind = Literal["status", "header", "value", "type", "missing", "extra", "order", "length", "tie"]
"""`tie`: a tied run of a sorted list at a page edge holding other members on each side (see
`comparator.ties`); the others name what differs at a path."""

# The results in the order reports show them: from nothing to look at to the worst.
RESULTS: tuple[Result, ...] = ("match", "expected", "mismatch", "error")
# The results that pass a check (a registered known difference is `expected`, not a failure).
PASSING: tuple[Result, ...] = ("match", "expected")
# The sides in the order tables and command lines show them.
SIDES: tuple[Side, ...] = ("legacy", "native")
KINDS: tuple[Kind, ...] = ("status", "header", "value", "type", "missing", "extra", "order", "length", "tie")


class _Absent:
    """The value of a side that has nothing at a path (a `missing` or `extra` difference)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<absent>"

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Request:
    """What was sent to both sides. `target` is the path with its query string."""

    method: str
    target: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    @classmethod
    def parse(cls, line: str) -> Request:
        """`"GET /sessions?limit=2"` (the short form used by tests, CLIs and request files), or
        one JSON object as written by `to_dict`."""
        line = line.strip()
        if line.startswith("{"):
            return cls.from_dict(json.loads(line))
        method, _, target = line.partition(" ")
        if not target:
            method, target = "GET", method
        return cls(method.upper(), target.strip())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "target": self.target}
        if self.headers:
            out["headers"] = dict(self.headers)
        out.update(_body_fields(self.body))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Request:
        return cls(str(data["method"]).upper(), str(data["target"]), dict(data.get("headers") or {}), _body_of(data))

    def __str__(self) -> str:
        return f"{self.method} {self.target}"


@dataclass(frozen=True)
class Response:
    """One side's answer. `error` is set instead when the side gave no HTTP answer at all
    (connection refused, timeout): then `status` is 0 and the comparison is an `error`."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    side: Side | None = None
    error: str | None = None

    def header(self, name: str) -> str | None:
        """Case-insensitive lookup; multi-valued headers are expected joined by the caller."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @classmethod
    def failed(cls, error: str, side: Side | None = None) -> Response:
        return cls(0, {}, b"", side, error)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "headers": dict(self.headers)}
        out.update(_body_fields(self.body))
        if self.side:
            out["side"] = self.side
        if self.error:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Response:
        return cls(
            int(data.get("status", 0)),
            dict(data.get("headers") or {}),
            _body_of(data),
            data.get("side"),
            data.get("error"),
        )


def _body_fields(body: bytes) -> dict[str, str]:
    """A body for JSON files: its text when it is UTF-8 (the usual case), else base64."""
    if not body:
        return {}
    try:
        return {"body": body.decode()}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body).decode()}


def _body_of(data: Mapping[str, Any]) -> bytes:
    if "body_base64" in data:
        return base64.b64decode(data["body_base64"])
    body = data.get("body")
    if body is None:
        return b""
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


@dataclass(frozen=True)
class Difference:
    """One place where the two answers disagree.

    `path` is concrete (`data[3].session_name`; `:status` and `:headers.<name>` for the HTTP
    parts; `$` for the body as a whole) and `template` is the same path with every index as
    `[*]`, a bounded value fit for metric labels and rules."""

    path: str
    kind: Kind
    primary: Any = ABSENT
    shadow: Any = ABSENT
    template: str = ""

    def __post_init__(self) -> None:
        if not self.template:
            object.__setattr__(self, "template", template_of(self.path))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "template": self.template, "kind": self.kind}
        if self.primary is not ABSENT:
            out["primary"] = self.primary
        if self.shadow is not ABSENT:
            out["shadow"] = self.shadow
        return out


@dataclass(frozen=True)
class Comparison:
    """The verdict on one pair. `differences` are the ones that count; `noise` holds those a
    `NoiseModel` explained away; `known` names the known difference behind an `expected`
    (`page-edge-tie`: only tied runs cut by the page edge differ, see `comparator.ties`);
    `reason` says why an `error` is one, why a `match` needed a rule (tied items reordered) or
    what a `page-edge-tie` cut."""

    result: Result
    differences: tuple[Difference, ...] = ()
    route: str | None = None
    known: str | None = None
    reason: str | None = None
    noise: tuple[Difference, ...] = ()

    @property
    def ok(self) -> bool:
        """True for `match` and `expected`: nothing for a person to look at."""
        return self.result in PASSING

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result, "route": self.route}
        if self.known:
            out["known"] = self.known
        if self.reason:
            out["reason"] = self.reason
        out["differences"] = [d.to_dict() for d in self.differences]
        if self.noise:
            out["noise"] = [d.to_dict() for d in self.noise]
        return out
