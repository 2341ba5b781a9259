"""The gateway's own vocabulary, on top of the comparator's (`Request`, `Response`,
`Comparison`): a `Sample` is one compared pair worth keeping, a `Decision` one stage change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from comparator import Comparison, Request, Response

from .config import Stage

# How a pair came to be compared: a mirrored copy of a request, or the read-back of a write.
Origin = Literal["mirror", "verify"]


@dataclass(frozen=True)
class Sample:
    """One comparison that was not a match, as stored in `shadow_mismatches` (redacted first)."""

    request_id: str
    at: float  # epoch seconds
    route: str  # route template, e.g. "GET /sessions/{session_id}"
    group: str
    stage: Stage
    origin: Origin
    request: Request
    primary: Response
    shadow: Response
    comparison: Comparison

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "at": self.at,
            "route": self.route,
            "group": self.group,
            "stage": self.stage,
            "origin": self.origin,
            "result": self.comparison.result,
            "request": self.request.to_dict(),
            "primary": self.primary.to_dict(),
            "shadow": self.shadow.to_dict(),
            "comparison": self.comparison.to_dict(),
        }


@dataclass(frozen=True)
class Decision:
    """A stage change of one route group, by the parity gate or by hand, with its reason."""

    group: str
    from_stage: Stage | None
    to_stage: Stage
    reason: str
    by: str  # "gate", "admin", "config"
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "from": self.from_stage,
            "to": self.to_stage,
            "reason": self.reason,
            "by": self.by,
            "at": self.at,
        }
