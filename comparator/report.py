"""Presenting comparisons to people: a readable diff (coloured on a terminal), and reports of
many checks as JSON or Markdown. Pure functions from comparisons to text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .model import ABSENT, RESULTS, Comparison, Difference, Request

_RESULT_COLOUR = {"match": "32", "expected": "33", "mismatch": "31", "error": "35"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def show(value: Any, limit: int = 300) -> str:
    """A value as JSON text, shortened in the middle when long."""
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]} … ({len(text) - limit} chars) … {text[-half:]}"
    return text


def render_difference(
    difference: Difference, color: bool = False, primary: str = "primary", shadow: str = "shadow"
) -> str:
    head = f"  {difference.kind:<7} {_paint(difference.path, '1', color)}"
    width = max(len(primary), len(shadow)) + 1
    return "\n".join(
        [
            head,
            "          " + _paint(f"- {(primary + ':').ljust(width)} {show(difference.primary)}", "31", color),
            "          " + _paint(f"+ {(shadow + ':').ljust(width)} {show(difference.shadow)}", "32", color),
        ]
    )


def render_text(
    comparison: Comparison,
    request: Request | None = None,
    color: bool = False,
    primary: str = "primary",
    shadow: str = "shadow",
) -> str:
    """The diff a person reads: the verdict, then each difference with both sides' values."""
    head = _paint(comparison.result.upper(), _RESULT_COLOUR[comparison.result], color)
    parts = [head]
    if comparison.route:
        parts.append(comparison.route)
    if request is not None:
        parts.append(f"({request})")
    if comparison.known:
        parts.append(f"known difference: {comparison.known}")
    if comparison.reason:
        parts.append(f"reason: {comparison.reason}")
    if comparison.differences:
        parts.append(f"{len(comparison.differences)} difference(s)")
    lines = ["  ".join(parts)]
    lines += [render_difference(d, color, primary, shadow) for d in comparison.differences]
    if comparison.noise:
        lines.append(
            f"  ({len(comparison.noise)} difference(s) set aside as noise: "
            + ", ".join(sorted({d.template for d in comparison.noise}))
            + ")"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Check:
    """One comparison made by a test (or a replay), with where it came from."""

    name: str
    request: Request | None
    comparison: Comparison

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "request": str(self.request) if self.request else None}
        out.update(self.comparison.to_dict())
        return out


def summary(checks: Iterable[Check]) -> dict[str, Any]:
    """Counts per result and per route, and the most frequent differing path templates."""
    by_result: dict[str, int] = {}
    by_route: dict[str, dict[str, int]] = {}
    paths: dict[str, int] = {}
    for check in checks:
        result, route = check.comparison.result, check.comparison.route or "-"
        by_result[result] = by_result.get(result, 0) + 1
        by_route.setdefault(route, {}).setdefault(result, 0)
        by_route[route][result] += 1
        if result == "mismatch":
            for template in {d.template for d in check.comparison.differences}:
                key = f"{route} {template}"
                paths[key] = paths.get(key, 0) + 1
    top = sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    return {"results": by_result, "routes": by_route, "top_paths": [{"path": p, "mismatches": n} for p, n in top]}


def report_json(checks: list[Check]) -> str:
    return json.dumps(
        {"summary": summary(checks), "checks": [c.to_dict() for c in checks]}, indent=2, ensure_ascii=False, default=str
    )


def report_markdown(checks: list[Check]) -> str:
    """A parity report for a pull request or a ticket: totals, per-route table, then every
    check that was not a match with its diff."""
    info = summary(checks)
    total = len(checks)
    lines = ["# Parity report", ""]
    lines.append(f"{total} checks: " + ", ".join(f"{n} {r}" for r, n in sorted(info["results"].items())))
    lines += ["", "| route | " + " | ".join(RESULTS) + " |", "|---|" + "---:|" * len(RESULTS)]
    for route, counts in sorted(info["routes"].items()):
        cells = " | ".join(str(counts.get(r, 0)) for r in RESULTS)
        lines.append(f"| `{route}` | {cells} |")
    if info["top_paths"]:
        lines += ["", "## Most frequent differing paths", ""]
        lines += [f"- `{p['path']}`: {p['mismatches']}" for p in info["top_paths"]]
    others = [c for c in checks if c.comparison.result != "match"]
    if others:
        lines += ["", "## Checks that were not a match", ""]
        for check in others:
            lines += [f"### {check.name}", "", "```", render_text(check.comparison, check.request), "```", ""]
    return "\n".join(lines) + "\n"
