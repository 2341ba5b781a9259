"""The gateway's HTML report: one self-contained page (inline CSS, inline SVG charts and one small
inline script, no external asset) that a person opens during a rollout to see where each route
group stands, how parity moved over time, each side's latency, where mismatches concentrate
(by cohort), and the stored mismatches themselves: both answers side by side with the differing
paths highlighted, a copy-as-curl for either side and a button that asks both sides again.

Pure: `render_report(data)` turns plain data (what `admin.py` gathers from the gateway and its
store) into text, so it can be tested, saved or mailed without a running gateway;
`render_update(data)` gives the same page's sections one by one (for `/shadow/report.json`,
which the page's script polls to refresh without a reload). The markup is in Jinja2 templates
(shadow_proxy/templates/, autoescaped): everything from traffic is escaped by the engine; this
module only shapes the data (coordinates, quantiles, curl lines) into what the templates show.

`data` keys (all optional, an empty page renders):

- `generated_at`: epoch seconds; `note`: a line shown under the title;
- `groups`: {name: {stage, routes, decided_by, reason, progress}} (`progress`: `gate.progress()`);
- `routes`: {route template: {match, mismatch, expected, error, parity, known}} (this replica);
- `timeline`: [{route, bucket, result, n}] (`GatewayStore.route_timeline`, every replica);
- `latency`: [{route, side, le, n}] (`GatewayStore.latency_counts`);
- `cohort`: the cohort kind shown (`type`, `user`, `size`), `cohorts`: [{route, value, result, n}];
- `top_paths`: [{route, path, samples}]; `samples`: `GatewayStore.mismatches()` dicts;
- `decisions`: `Decision.to_dict()`s, newest first;
- `sides`: {legacy: base URL or None, native: base URL or None} for copy-as-curl;
- `refresh_s`: how often the page's script refreshes it (0: never).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from agentos_session.routing import SAFE_METHODS
from comparator.model import ABSENT, RESULTS, SIDES
from comparator.paths import Segment, parse_path
from comparator.report import show

from .redact import REDACTED
from .routestats import COHORTS, latency_view

# A body longer than this is cut in the side-by-side view: the page must stay light enough to
# open in a browser when the store holds large answers.
MAX_BODY_LINES = 400
# The sections the page's script replaces on each refresh (their ids), in page order.
SECTIONS = ("stages", "progress", "chart", "latency", "parity", "cohorts", "known", "top-paths", "samples")
# The parity chart's drawing area, in SVG user units.
CHART_W, CHART_H, CHART_PAD = 640, 140, 30
# Headers a copy-as-curl leaves out: set by curl itself or by the gateway for its own copies.
CURL_SKIP = frozenset({"host", "content-length", "connection", "transfer-encoding", "x-shadow-request"})
# What a redacted header becomes in a curl line: the secret from the environment, never its value.
CURL_SECRETS = {"authorization": "Bearer $OS_SECURITY_KEY"}
_TOKEN = re.compile(r"[A-Za-z0-9-]+\Z")

_ENV = Environment(
    loader=PackageLoader("shadow_proxy", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_report(data: Mapping[str, Any]) -> str:
    """The whole page for `data` (see the module docstring for its keys)."""
    return _ENV.get_template("report.html.j2").render(view=view(data))


def render_update(data: Mapping[str, Any]) -> dict[str, Any]:
    """What `/shadow/report.json` answers: every section's HTML, the time and the sample ids
    (the script replaces the samples only when these changed)."""
    shaped = view(data)
    module = _ENV.get_template("sections.html.j2").make_module({"view": shaped})
    return {
        "generated": shaped["generated"],
        "sample_ids": shaped["sample_ids"],
        "sections": {name: str(getattr(module, "section_" + name.replace("-", "_"))()) for name in SECTIONS},
    }


# ---- the view model: plain values the templates print -------------------------------------------


def view(data: Mapping[str, Any]) -> dict[str, Any]:
    groups = data.get("groups") or {}
    decisions = list(data.get("decisions") or [])
    routes = data.get("routes") or {}
    cohort = data.get("cohort") if data.get("cohort") in COHORTS else COHORTS[0]
    sides = {side: (data.get("sides") or {}).get(side) for side in SIDES}
    samples = [sample_view(s, sides) for s in data.get("samples") or []]
    return {
        "generated": utc(data.get("generated_at")) or "unknown time",
        "note": data.get("note"),
        "refresh_s": data.get("refresh_s") or 0,
        "groups": [group_view(name, g, decisions) for name, g in sorted(groups.items())],
        "decisions": [decision_view(d) for d in decisions],
        "routes": [route_view(route, counts) for route, counts in sorted(routes.items())],
        "known": [
            {"id": known, "route": route, "n": n}
            for route, counts in sorted(routes.items())
            for known, n in sorted((counts.get("known") or {}).items())
        ],
        "charts": charts(data.get("timeline") or [], groups),
        "latency": latency_rows(data.get("latency") or []),
        "cohort": cohort,
        "cohort_kinds": COHORTS,
        "cohorts": cohort_rows(data.get("cohorts") or []),
        "top_paths": list(data.get("top_paths") or []),
        "samples": samples,
        "sample_ids": " ".join(str(s["id"]) for s in samples),
        "results": RESULTS,
    }


def utc(epoch: Any) -> str:
    """Epoch seconds as UTC ISO 8601; whatever else as text (a report never fails on a date)."""
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return "" if epoch is None else str(epoch)


def pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def decision_view(d: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "at": utc(d.get("at")),
        "group": d.get("group"),
        "from": d.get("from") or "(none)",
        "to": d.get("to"),
        "by": d.get("by"),
        "reason": d.get("reason"),
    }


def group_view(name: str, entry: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A group's stage, its last decision (the newest stored, else the gateway's own) and its
    progress toward promotion or rollback, with every figure formatted."""
    last = next((decision_view(d) for d in decisions if d.get("group") == name), None)
    p = entry.get("progress")
    progress = None
    if isinstance(p, Mapping):
        needed = p.get("clean_pairs_needed")
        if not p.get("promotes_to"):
            verdict = None
        elif needed == 0:
            verdict = f"ready: promotes to {p.get('promotes_to')} at the next gate round"
        elif needed is None:
            verdict = "no number of clean pairs would: the mismatches seen keep the bound over the target"
        else:
            verdict = f"at least {needed} more clean pairs"
        r = p.get("rollback")
        progress = {
            "evidence": p.get("evidence"),
            "pairs": p.get("pairs"),
            "mismatches": p.get("mismatches"),
            "native_calls": p.get("native_calls"),
            "native_errors": p.get("native_errors"),
            "min_samples": p.get("min_samples"),
            "upper": pct(p.get("upper_bound")),
            "target": pct(p.get("target")),
            "verdict": verdict,
            "rollback": (
                {
                    "min_samples": r.get("min_samples"),
                    "mismatch_low": pct(r.get("mismatch_lower_bound")),
                    "mismatch_limit": pct(r.get("mismatch_limit")),
                    "error_low": pct(r.get("error_lower_bound")),
                    "error_limit": pct(r.get("error_limit")),
                }
                if isinstance(r, Mapping)
                else None
            ),
        }
    return {
        "name": name,
        "stage": entry.get("stage"),
        "routes": list(entry.get("routes") or []),
        "decided_by": entry.get("decided_by"),
        "reason": entry.get("reason"),
        "last": last,
        "progress": progress,
    }


def route_view(route: str, counts: Mapping[str, Any]) -> dict[str, Any]:
    parity = counts.get("parity")
    ok = isinstance(parity, (int, float)) and not isinstance(parity, bool)
    percent = max(0.0, min(100.0, float(parity) * 100)) if ok and parity is not None else None
    return {"route": route, "counts": [counts.get(r, 0) for r in RESULTS], "percent": percent}


def parity_of(counts: Mapping[Any, int]) -> float | None:
    """Agreement over comparisons that reached a verdict: (match + expected) / (those + mismatch)."""
    agreed = counts.get("match", 0) + counts.get("expected", 0)
    judged = agreed + counts.get("mismatch", 0)
    return agreed / judged if judged else None


# ---- parity over time: one inline SVG per route ------------------------------------------------


def charts(
    timeline: Sequence[Mapping[str, Any]], groups: Mapping[str, Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Each group's parity over time (its routes summed: what the gate judges), then each
    route's, as points of an SVG polyline: x by time over the buckets shown, y from 0 % (bottom)
    to 100 % (top). Buckets without a verdict are gaps."""
    per_route: dict[str, dict[float, dict[str, int]]] = {}
    for row in timeline:
        bucket = per_route.setdefault(str(row["route"]), {}).setdefault(float(row["bucket"]), {})
        bucket[str(row["result"])] = bucket.get(str(row["result"]), 0) + int(row["n"])
    per_group: dict[str, dict[float, dict[str, int]]] = {}
    for name, entry in sorted((groups or {}).items()):
        for route in entry.get("routes") or []:
            for start, counts in per_route.get(route, {}).items():
                summed = per_group.setdefault(name, {}).setdefault(start, {})
                for result, n in counts.items():
                    summed[result] = summed.get(result, 0) + n
    return [_chart("group", name, buckets) for name, buckets in sorted(per_group.items())] + [
        _chart("route", route, buckets) for route, buckets in sorted(per_route.items())
    ]


def _chart(kind: str, name: str, buckets: Mapping[float, Mapping[str, int]]) -> dict[str, Any]:
    starts = sorted(buckets)
    first, last = starts[0], starts[-1]
    span = (last - first) or 1.0
    points = []
    for start in starts:
        counts = buckets[start]
        parity = parity_of(counts)
        if parity is None:
            continue
        x = CHART_PAD + (start - first) / span * (CHART_W - 2 * CHART_PAD) if last > first else CHART_W / 2
        y = CHART_PAD / 2 + (1 - parity) * (CHART_H - CHART_PAD)
        points.append(
            {
                "x": f"{x:.1f}",
                "y": f"{y:.1f}",
                "title": f"{utc(start)}: {parity:.2%} of {sum(counts.get(r, 0) for r in RESULTS[:3])} "
                f"({counts.get('mismatch', 0)} mismatch, {counts.get('error', 0)} error)",
                "parity": f"{parity:.4f}",
            }
        )
    totals = {r: sum(b.get(r, 0) for b in buckets.values()) for r in RESULTS}
    return {
        "kind": kind,
        "name": name,
        "points": points,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "from": utc(first),
        "to": utc(last),
        "totals": totals,
        "parity": pct(parity_of(totals)),
        "w": CHART_W,
        "h": CHART_H,
        "top": CHART_PAD / 2,
        "bottom": CHART_H - CHART_PAD / 2,
    }


# ---- latency and cohorts -----------------------------------------------------------------------


def _ms(seconds: Any) -> str:
    return f"{seconds * 1000:.1f} ms" if isinstance(seconds, (int, float)) else "n/a"


def latency_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per route, each side's p50 and p99 (interpolated in the histogram's buckets) and count."""
    out = []
    for route, sides in latency_view(rows).items():
        out.append(
            {
                "route": route,
                "sides": [
                    {
                        "side": side,
                        "p50": _ms(sides[side]["p50"]) if side in sides else "n/a",
                        "p99": _ms(sides[side]["p99"]) if side in sides else "n/a",
                        "count": sides[side]["count"] if side in sides else 0,
                    }
                    for side in SIDES
                ],
            }
        )
    return out


def cohort_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per route and cohort value: the counts by result and the parity, worst parity first
    within a route (where mismatches concentrate is what the table is read for)."""
    per: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        counts = per.setdefault((str(row["route"]), str(row["value"])), {})
        counts[str(row["result"])] = counts.get(str(row["result"]), 0) + int(row["n"])

    def order(item: tuple[tuple[str, str], dict[str, int]]) -> tuple[str, float, str]:
        (route, value), counts = item
        parity = parity_of(counts)
        return route, 2.0 if parity is None else parity, value

    return [
        {
            "route": route,
            "value": value,
            "counts": [counts.get(r, 0) for r in RESULTS],
            "parity": pct(parity_of(counts)),
            "worse": counts.get("mismatch", 0) > 0,
        }
        for (route, value), counts in sorted(per.items(), key=order)
    ]


# ---- stored samples ----------------------------------------------------------------------------


def sample_view(sample: Mapping[str, Any], sides: Mapping[Any, str | None]) -> dict[str, Any]:
    request = sample.get("request") or {}
    comparison = sample.get("comparison") or {}
    differences = comparison.get("differences") or []
    paths = differing_segments(differences)
    noise = comparison.get("noise") or []
    return {
        "id": sample.get("id"),
        "result": sample.get("result") or comparison.get("result"),
        "route": sample.get("route"),
        "method": request.get("method"),
        "target": request.get("target"),
        "request_id": sample.get("request_id"),
        "at": utc(sample.get("at")),
        "group": sample.get("group"),
        "stage": sample.get("stage"),
        "origin": sample.get("origin"),
        "known": comparison.get("known"),
        "reason": comparison.get("reason"),
        "noise": sorted({str(d.get("template") or d.get("path")) for d in noise}),
        "noise_count": len(noise),
        "differences": [
            {
                "kind": d.get("kind"),
                "path": d.get("path"),
                "primary": show(d.get("primary", ABSENT)),
                "shadow": show(d.get("shadow", ABSENT)),
            }
            for d in differences
        ],
        "request_text": request_text(request),
        "sides": [
            side_view("primary", sample.get("primary") or {}, paths),
            side_view("shadow", sample.get("shadow") or {}, paths),
        ],
        "curls": [{"side": side, "text": curl(request, sides.get(side), side)} for side in SIDES],
        "safe": str(request.get("method") or "").upper() in SAFE_METHODS,  # only reads are asked again
    }


def request_text(request: Mapping[str, Any]) -> str:
    """The request behind the sample, folded: people ask for its headers (opendiffy#14)."""
    headers = "\n".join(f"{k}: {v}" for k, v in (request.get("headers") or {}).items())
    body = body_text(request)
    return "\n\n".join(part for part in (headers, body) if part) or "(no headers, no body)"


def body_text(message: Mapping[str, Any]) -> str:
    """A body for people: pretty JSON when it parses, else its text (base64 said as such)."""
    if "body_base64" in message:
        return f"(binary body, base64) {message['body_base64']}"
    body = message.get("body")
    if body is None or body == "":
        return ""
    if not isinstance(body, str):
        return json.dumps(body, indent=2, ensure_ascii=False)
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def differing_segments(differences: Sequence[Mapping[str, Any]]) -> list[tuple[Segment, ...]]:
    """The body paths of the differences as segment tuples (`$` is the whole body; status and
    header differences have no line in a body)."""
    out: list[tuple[Segment, ...]] = []
    for d in differences:
        path = str(d.get("path") or "")
        if path.startswith(":"):
            continue
        if path in ("", "$"):
            out.append(())
            continue
        try:
            out.append(tuple(parse_path(path)))
        except ValueError:
            continue
    return out


def json_lines(value: Any, indent: int = 2) -> Iterator[tuple[tuple[Segment, ...], str]]:
    """`json.dumps(value, indent=2)`'s lines, each with the path of the value it belongs to, so
    a differing path highlights exactly its own lines (a nested value: all of them)."""

    def walk(v: Any, path: tuple[Segment, ...], depth: int, lead: str, tail: str) -> Iterator[tuple[Any, str]]:
        pad = " " * (indent * depth)
        if isinstance(v, dict) and v:
            yield path, f"{pad}{lead}{{"
            items = list(v.items())
            for i, (key, item) in enumerate(items):
                comma = "," if i < len(items) - 1 else ""
                name = json.dumps(key, ensure_ascii=False) + ": "
                yield from walk(item, (*path, key), depth + 1, name, comma)
            yield path, f"{pad}}}{tail}"
        elif isinstance(v, list) and v:
            yield path, f"{pad}{lead}["
            for i, item in enumerate(v):
                yield from walk(item, (*path, i), depth + 1, "", "," if i < len(v) - 1 else "")
            yield path, f"{pad}]{tail}"
        else:
            yield path, f"{pad}{lead}{json.dumps(v, ensure_ascii=False)}{tail}"

    yield from walk(value, (), 0, "", "")


def body_lines(message: Mapping[str, Any], paths: Sequence[tuple[Segment, ...]]) -> tuple[list[dict[str, Any]], int]:
    """The body as lines, each marked when it lies under a differing path; and how many lines
    were cut past MAX_BODY_LINES."""
    body = message.get("body")
    parsed: Any = ABSENT
    if isinstance(body, str) and body and "body_base64" not in message:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = ABSENT
    elif body is not None and not isinstance(body, str):
        parsed = body
    if parsed is ABSENT:
        text = body_text(message)
        lines = [{"text": line, "hl": False} for line in text.splitlines()]
    else:
        lines = [{"text": line, "hl": any(path[: len(p)] == p for p in paths)} for path, line in json_lines(parsed)]
    cut = max(0, len(lines) - MAX_BODY_LINES)
    return lines[:MAX_BODY_LINES], cut


def side_view(label: str, response: Mapping[str, Any], paths: Sequence[tuple[Segment, ...]]) -> dict[str, Any]:
    lines, cut = body_lines(response, paths)
    return {
        "label": label,
        "side": response.get("side"),
        "status": f"no answer: {response['error']}" if response.get("error") else f"status {response.get('status')}",
        "headers": "\n".join(f"{k}: {v}" for k, v in (response.get("headers") or {}).items()) or "(none)",
        "lines": lines,
        "cut": cut,
    }


# ---- copy-as-curl ------------------------------------------------------------------------------


def _env_name(header: str) -> str:
    return "$" + re.sub(r"[^A-Za-z0-9]", "_", header).upper()


def curl(request: Mapping[str, Any], base_url: str | None, side: str) -> str:
    """A curl line that sends the stored request to `side`. The stored headers are redacted,
    and so is the line: a redacted header is taken from the environment (`$OS_SECURITY_KEY`
    for a bearer token, else `$<HEADER_NAME>`), never written out. Without a base URL (the
    in-process native side) the line reads it from `$NATIVE_URL` / `$LEGACY_URL`."""
    method = str(request.get("method") or "GET").upper()
    target = str(request.get("target") or "/")
    base = shlex.quote(base_url.rstrip("/")) if base_url else f'"${side.upper()}_URL"'
    parts = ["curl", "-sS", "-X", method, base + shlex.quote(target)]
    for name, value in (request.get("headers") or {}).items():
        if name.lower() in CURL_SKIP:
            continue
        if value == REDACTED and _TOKEN.match(name):
            secret = CURL_SECRETS.get(name.lower(), _env_name(name))
            parts += ["-H", f'"{name}: {secret}"']
        else:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    if "body_base64" in request:
        parts.append("--data-binary @body.bin  # the stored body is binary (base64 in the sample)")
    elif request.get("body"):
        body = request["body"]
        parts += ["--data-raw", shlex.quote(body if isinstance(body, str) else json.dumps(body))]
    return " ".join(parts)
