"""The parity gate: per route group, rolling windows of comparison results and of native
calls, and a policy that promotes or rolls back the group's stage. Pure: `decide` looks at the
windows and the current stage and returns a `Decision` or None; applying it is the caller's.

Across replicas the evidence is shared: every replica adds its verdicts to `Pending` counts per
(group, stage, time bucket), flushes them to the store every few seconds, and the gate judges the
sum of every replica's buckets (`combine`), so one decision is taken on all of the traffic and
N replicas need the same evidence as one gateway, not N times it. Without a store the replica's
own `GroupWindows` are judged, as before.

Rates are judged by their Wilson score interval, not their raw value (prior art §4.2): promote
when even the *upper* bound of the mismatch rate is under the target, so 0 mismatches in 20
samples does not pass for 0%; roll back when even the *lower* bound of the mismatch (or native
error) rate is over its limit, so one unlucky error does not flap the stage.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

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


class Rate(Protocol):
    """Outcomes of one kind: how many, how many failed (a `Window`, or `Counts` from the store)."""

    @property
    def total(self) -> int: ...

    @property
    def failures(self) -> int: ...


class Evidence(Protocol):
    """What `decide` judges: comparisons (failure = mismatch) and native calls (failure = error)."""

    @property
    def comparisons(self) -> Rate: ...

    @property
    def native_calls(self) -> Rate: ...


@dataclass(frozen=True)
class Counts:
    total: int = 0
    failures: int = 0


@dataclass(frozen=True)
class Bucket:
    """One time bucket of a group's counts at one stage, summed over every replica (a row of
    `shadow_gate_counts`). `agreed` = match + expected."""

    start: float
    agreed: int = 0
    mismatches: int = 0
    native_calls: int = 0
    native_errors: int = 0


@dataclass(frozen=True)
class Combined:
    """Every replica's evidence for one group, over the window (`combine`)."""

    comparisons: Counts
    native_calls: Counts


def combine(buckets: Iterable[Bucket], size: int) -> Combined:
    """The window over stored buckets: newest bucket first, whole buckets, until `size`
    comparisons (and, apart, `size` native calls) are reached. So `gate.window` keeps its
    meaning of "the last N" up to one bucket's worth more (a bucket is not split: which of its
    outcomes were the newest is not kept); the time limit (`gate.window_s`) is applied by the
    query that selects the buckets."""
    agreed = mismatches = calls = errors = 0
    for bucket in sorted(buckets, key=lambda b: b.start, reverse=True):
        if agreed + mismatches < size:
            agreed, mismatches = agreed + bucket.agreed, mismatches + bucket.mismatches
        if calls < size:
            calls, errors = calls + bucket.native_calls, errors + bucket.native_errors
        if agreed + mismatches >= size and calls >= size:
            break
    return Combined(Counts(agreed + mismatches, mismatches), Counts(calls, errors))


@dataclass
class Pending:
    """This replica's verdicts not yet flushed to the store, per (group, stage, bucket start):
    [agreed, mismatches, native calls, native errors]. The stage is the one the request was
    served at, so evidence gathered under one stage never counts for the next."""

    bucket_s: float
    counts: dict[tuple[str, str, float], list[int]] = field(default_factory=dict)

    def add(self, group: str, stage: str, columns: tuple[int, ...], at: float | None = None) -> None:
        moment = time.time() if at is None else at
        start = math.floor(moment / self.bucket_s) * self.bucket_s
        row = self.counts.setdefault((group, stage, start), [0, 0, 0, 0])
        for column in columns:
            row[column] += 1

    def take(self) -> dict[tuple[str, str, float], list[int]]:
        """Everything pending, emptied here (given back with `restore` if the flush fails)."""
        taken, self.counts = self.counts, {}
        return taken

    def restore(self, taken: dict[tuple[str, str, float], list[int]]) -> None:
        for key, values in taken.items():
            mine = self.counts.setdefault(key, [0, 0, 0, 0])
            for i, value in enumerate(values):
                mine[i] += value


@dataclass
class Window:
    """The last N outcomes of one kind, True for a failure."""

    size: int
    outcomes: deque[bool] = field(init=False)
    # Kept as outcomes come and go: summing the window (2,000 by default) on every comparison
    # cost 15 µs, a sixth or more of settling a mirrored copy (docs/benchmarks.md).
    failures: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.outcomes = deque(maxlen=self.size)

    def add(self, failed: bool) -> None:
        if len(self.outcomes) == self.size and self.outcomes and self.outcomes[0]:
            self.failures -= 1  # the oldest outcome, a failure, leaves the window
        self.outcomes.append(failed)
        self.failures += failed

    @property
    def total(self) -> int:
        return len(self.outcomes)

    def clear(self) -> None:
        self.outcomes.clear()
        self.failures = 0


@dataclass
class GroupWindows:
    """What the gate knows of one route group since its stage last changed."""

    comparisons: Window
    native_calls: Window
    # Set by the rollout: the group's name and current stage, and where verdicts go for the store.
    group: str = ""
    stage: str = ""
    pending: Pending | None = None

    @classmethod
    def sized(cls, size: int, group: str = "", pending: Pending | None = None) -> GroupWindows:
        return cls(Window(size), Window(size), group, "", pending)

    def observe_comparison(self, result: str, stage: str | None = None) -> None:
        """A verdict on a request served at `stage` (the group's current one if not given)."""
        if result in GOOD or result == "mismatch":  # an `error` is a failed call, counted there
            self.comparisons.add(result == "mismatch")
            if self.pending is not None:
                self.pending.add(self.group, stage or self.stage, (1,) if result == "mismatch" else (0,))

    def observe_native(self, failed: bool, stage: str | None = None) -> None:
        self.native_calls.add(failed)
        if self.pending is not None:
            self.pending.add(self.group, stage or self.stage, (2, 3) if failed else (2,))

    def reset(self) -> None:
        self.comparisons.clear()
        self.native_calls.clear()


def decide(group: str, stage: Stage, windows: Evidence, policy: Gate) -> Decision | None:
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


def clean_pairs_needed(failures: int, total: int, policy: Gate, limit: int = 10_000_000) -> int | None:
    """How many more agreeing pairs would let the group be promoted (the window not yet full),
    or None when no number of them would (`limit` reached: the mismatches already seen keep the
    upper bound over the target)."""

    def passes(n: int) -> bool:
        return n >= policy.min_samples and wilson(failures, n, policy.z)[1] <= policy.promote_max_mismatch_rate

    if passes(total):
        return 0
    low, high = total, max(total, policy.min_samples, 1)
    while not passes(high):  # doubling, then bisection: bounded by `limit`
        if high >= limit:
            return None
        low, high = high, min(limit, high * 2)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if passes(middle) else (middle, high)
    return high - total


def progress(stage: str, evidence: Evidence, policy: Gate) -> dict[str, object]:
    """Where a group stands against the policy, for the report: what `decide` would need to
    promote it and what would roll it back, with the bounds as they are now."""
    comparisons, calls = evidence.comparisons, evidence.native_calls
    mismatch_low, upper = wilson(comparisons.failures, comparisons.total, policy.z)
    error_low, _ = wilson(calls.failures, calls.total, policy.z)
    promotes_to = {"shadow": "primary", "primary": "native" if policy.allow_native else None}.get(stage)
    out: dict[str, object] = {
        "pairs": comparisons.total,
        "mismatches": comparisons.failures,
        "native_calls": calls.total,
        "native_errors": calls.failures,
        "min_samples": policy.min_samples,
        "upper_bound": upper,
        "target": policy.promote_max_mismatch_rate,
        "promotes_to": promotes_to,
        "clean_pairs_needed": (
            clean_pairs_needed(comparisons.failures, comparisons.total, policy) if promotes_to else None
        ),
    }
    if stage in ("primary", "native"):
        out["rollback"] = {
            "min_samples": policy.min_rollback_samples,
            "mismatch_lower_bound": mismatch_low,
            "mismatch_limit": policy.rollback_mismatch_rate,
            "error_lower_bound": error_low,
            "error_limit": policy.rollback_error_rate,
        }
    return out
