"""The parity gate: per route group, rolling windows of comparison results and of native
calls, and a policy that promotes or rolls back the group's stage. Pure: `decide` looks at the
windows and the current stage and returns a `Decision` or None; applying it is the caller's.

Rates are judged by their Wilson score interval, not their raw value (prior art §4.2): promote
when even the *upper* bound of the mismatch rate is under the target, so 0 mismatches in 20
samples does not pass for 0%; roll back when even the *lower* bound of the mismatch (or native
error) rate is over its limit, so one unlucky error does not flap the stage.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from .config import Gate, Stage
from .model import Decision

# Results a comparison window holds; `expected` (a known difference) counts as agreement.
GOOD = ("match", "expected")


def wilson(failures: int, total: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a failure rate (lower, upper)."""
    if total == 0:
        return 0.0, 1.0
    p = failures / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass
class Window:
    """The last N outcomes of one kind, True for a failure."""

    size: int
    outcomes: deque[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.outcomes = deque(maxlen=self.size)

    def add(self, failed: bool) -> None:
        self.outcomes.append(failed)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> int:
        return sum(self.outcomes)

    def clear(self) -> None:
        self.outcomes.clear()


@dataclass
class GroupWindows:
    """What the gate knows of one route group since its stage last changed."""

    comparisons: Window
    native_calls: Window

    @classmethod
    def sized(cls, size: int) -> GroupWindows:
        return cls(Window(size), Window(size))

    def observe_comparison(self, result: str) -> None:
        if result in GOOD or result == "mismatch":  # an `error` is a failed call, counted there
            self.comparisons.add(result == "mismatch")

    def observe_native(self, failed: bool) -> None:
        self.native_calls.add(failed)

    def reset(self) -> None:
        self.comparisons.clear()
        self.native_calls.clear()


def decide(group: str, stage: Stage, windows: GroupWindows, policy: Gate) -> Decision | None:
    """One step of the policy for one group; None when the stage stays."""
    comparisons, calls = windows.comparisons, windows.native_calls
    if stage in ("primary", "native"):
        # Roll back on native's errors first, then on mismatches: the same test on two windows.
        for name, window, limit in (
            ("native error rate", calls, policy.rollback_error_rate),
            ("mismatch rate", comparisons, policy.rollback_mismatch_rate),
        ):
            if window.total >= policy.min_rollback_samples:
                low, _ = wilson(window.failures, window.total, policy.z)
                if low > limit:
                    reason = f"{name} {window.failures}/{window.total} (lower bound {low:.2%}) is over {limit:.2%}"
                    return Decision(group, stage, "shadow", reason, "gate")
    target: Stage | None = {"shadow": "primary", "primary": "native" if policy.allow_native else None}.get(stage)
    if target is None or comparisons.total < policy.min_samples:
        return None
    _, high = wilson(comparisons.failures, comparisons.total, policy.z)
    if high > policy.promote_max_mismatch_rate:
        return None
    if calls.total and wilson(calls.failures, calls.total, policy.z)[0] > policy.rollback_error_rate:
        return None
    return Decision(
        group,
        stage,
        target,
        f"{comparisons.total - comparisons.failures}/{comparisons.total} pairs agree "
        f"(mismatch rate upper bound {high:.2%} <= {policy.promote_max_mismatch_rate:.2%})",
        "gate",
    )
