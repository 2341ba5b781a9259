"""What the report charts, kept per route and time bucket in the store so every replica counts:
comparisons by result (overall and by cohort) and the latency of each side on mirrored pairs.

Like the gate's `Pending`, this replica's share is counted here in memory and added to the store
by the rollout's periodic flush; the report reads the sums. Label values are bounded, so the
tables stay small: a cohort value is one of a fixed set (session type), one of 16 (user bucket)
or a power of two (response size in KiB, bounded by `shadow.max_body_bytes`), and latency is
counted in the fixed buckets of `shadow_upstream_duration_seconds`.

Pure apart from the clock: `cohorts()` derives the keys from the request and the answer.
"""

from __future__ import annotations

import bisect
import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from comparator import Request, Response

from .metrics import LATENCY_BUCKETS

# The cohort kinds of `/shadow/report?cohort=`; "all" is every comparison (the parity chart).
COHORTS = ("type", "user", "size")
ALL = "all"
SESSION_TYPES = ("agent", "team", "workflow")
USER_BUCKETS = 16
NO_USER = "none"
OTHER = "other"
# The report's buckets are coarser than the gate's and kept for hours, not the gate's day: the
# tables stay at most (routes x cohort values x results) rows per minute, for six hours.
BUCKET_S = 60.0
KEEP_S = 6 * 3600.0
# The latency buckets' upper bounds, with +Inf last (as Prometheus's histogram has them).
LES: tuple[float, ...] = (*LATENCY_BUCKETS, math.inf)


# An answer is parsed for its cohort keys only up to this size: it runs on the event loop for
# every comparison, and the keys it may hold (`session_type`, `user_id`) are top-level fields of
# small single-session answers; a larger answer takes the request's keys or the defaults.
ANSWER_PARSE_MAX = 64 * 1024


def _answer_json(response: Response) -> Any:
    """The answer's top-level object, None when it is none. Only an object holds the fields, so
    a list (a session's runs, its previews) is not parsed at all, and an object is parsed by
    orjson: the stdlib parser here was a tenth of the gateway's CPU with every read mirrored
    (docs/benchmarks.md). The two strings read from it are the same to either parser."""
    body = response.body
    if len(body) > ANSWER_PARSE_MAX or body[:64].lstrip()[:1] != b"{":
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _answer_field(response: Response, name: str, parsed: list[Any]) -> Any:
    """A top-level field of the answer, parsed at most once per comparison (`parsed` caches)."""
    if not parsed:
        parsed.append(_answer_json(response))
    body = parsed[0]
    return body.get(name) if isinstance(body, dict) else None


def session_type(request: Request, response: Response, parsed: list[Any] | None = None) -> str:
    """The request's `type` parameter; else the answer's `session_type` (a single session);
    else agno's default for the sessions routes, `agent`. Anything else is `other`."""
    asked = request.query.get("type", [None])[0]
    if asked is None:
        asked = _answer_field(response, "session_type", [] if parsed is None else parsed)
    if asked is None:
        return "agent"
    return asked if asked in SESSION_TYPES else OTHER


def user_bucket(request: Request, response: Response, parsed: list[Any] | None = None) -> str:
    """hash(user_id) mod 16, from the query, else the answer's `user_id`; `none` without one."""
    user = request.query.get("user_id", [None])[0]
    if user is None:
        user = _answer_field(response, "user_id", [] if parsed is None else parsed)
    if not isinstance(user, str) or not user:
        return NO_USER
    return str(zlib.crc32(user.encode()) % USER_BUCKETS)


def size_bucket(size: int) -> str:
    """The power-of-two KiB bucket the answer's size falls in, by its upper bound: `1` for up
    to 1 KiB, `2` for up to 2 KiB, `4`, `8`, ..."""
    kib = max(1, math.ceil(size / 1024))
    return str(2 ** math.ceil(math.log2(kib)))


def cohorts(request: Request, primary: Response, *, page: bool = False) -> dict[str, str]:
    """The cohort keys of one comparison (from the primary's answer: what the client got).
    `page`: the answer is a page of sessions, with no top-level field of one session, so it is
    not parsed (the list's page was 56 µs of orjson per copy, and more under load)."""
    parsed: list[Any] = [None] if page else []
    return {
        "type": session_type(request, primary, parsed),
        "user": user_bucket(request, primary, parsed),
        "size": size_bucket(len(primary.body)),
    }


@dataclass
class RouteStats:
    """This replica's counts not yet flushed to the store:
    `results[(route, bucket start, cohort, value, result)]` and
    `latency[(route, side, bucket start, le)]`."""

    bucket_s: float
    results: dict[tuple[str, float, str, str, str], int] = field(default_factory=dict)
    latency: dict[tuple[str, str, float, float], int] = field(default_factory=dict)

    def _start(self, at: float | None) -> float:
        return math.floor((time.time() if at is None else at) / self.bucket_s) * self.bucket_s

    def add_comparison(self, route: str, result: str, keys: Mapping[str, str], at: float | None = None) -> None:
        start = self._start(at)
        for cohort, value in ((ALL, ""), *keys.items()):
            key = (route, start, cohort, value, result)
            self.results[key] = self.results.get(key, 0) + 1

    def add_latency(self, route: str, side: str, seconds: float, at: float | None = None) -> None:
        le = LES[bisect.bisect_left(LES, seconds)]
        key = (route, side, self._start(at), le)
        self.latency[key] = self.latency.get(key, 0) + 1

    def __bool__(self) -> bool:
        return bool(self.results or self.latency)

    def take(self) -> RouteStats:
        """Everything pending, emptied here (given back with `restore` if the flush fails)."""
        taken = RouteStats(self.bucket_s, self.results, self.latency)
        self.results, self.latency = {}, {}
        return taken

    def restore(self, taken: RouteStats) -> None:
        for rkey, n in taken.results.items():
            self.results[rkey] = self.results.get(rkey, 0) + n
        for lkey, n in taken.latency.items():
            self.latency[lkey] = self.latency.get(lkey, 0) + n


def quantile(q: float, counts: Mapping[float, int]) -> float | None:
    """The `q` quantile of a histogram {upper bound: count} in the buckets of `LES`, by linear
    interpolation inside the bucket it falls in (from the bucket's lower bound, the previous
    bound of `LES`), as Prometheus's `histogram_quantile` does: in the +Inf bucket it answers
    the highest finite bound."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank, seen = q * total, 0
    for le in sorted(counts):
        n = counts[le]
        if n and seen + n >= rank:
            if math.isinf(le):
                return LES[-2]
            i = bisect.bisect_left(LES, le)
            lower = LES[i - 1] if i > 0 else 0.0
            return lower + (le - lower) * (rank - seen) / n
        seen += n
    return LES[-2]


def latency_view(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{route: {side: {p50, p99, count}}} from the store's rows {route, side, le, n}."""
    hist: dict[tuple[str, str], dict[float, int]] = {}
    for row in rows:
        per = hist.setdefault((row["route"], row["side"]), {})
        per[float(row["le"])] = per.get(float(row["le"]), 0) + int(row["n"])
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (route, side), counts in sorted(hist.items()):
        out.setdefault(route, {})[side] = {
            "p50": quantile(0.5, counts),
            "p99": quantile(0.99, counts),
            "count": sum(counts.values()),
        }
    return out
