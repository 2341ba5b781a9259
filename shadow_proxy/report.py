"""The gateway's HTML report: one self-contained page (inline CSS, no script, no external
asset) that a person opens during a rollout to see where each route group stands, how close
each route is to parity, which fields differ most, and the stored mismatches themselves with
both answers side by side.

Pure: `render_report(data)` turns plain data (what `admin.py` gathers from the gateway and its
store) into text, so it can be tested, saved or mailed without a running gateway. Every value
comes from traffic and is escaped; nothing in a body or a path can add markup.

`data` keys (all optional, an empty page renders):

- `generated_at`: epoch seconds;
- `note`: a line shown under the title (e.g. that no store is configured);
- `groups`: {name: {stage, routes, decided_by, reason, progress}} (`progress`: `gate.progress()`,
  where the group stands against the gate's policy on every replica's evidence);
- `routes`: {route template: {match, mismatch, expected, error, parity, known}} (parity 0..1 or
  None; `known`: {known difference id: expected answers it made});
- `top_paths`: [{route, path, samples}];
- `samples`: sample dicts as `GatewayStore.mismatches()` returns them;
- `decisions`: `Decision.to_dict()`s, newest first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from comparator.model import ABSENT
from comparator.paths import parse_path
from comparator.report import show

RESULTS = ("match", "expected", "mismatch", "error")

# A body longer than this is cut in the side-by-side view: the page must stay light enough to
# open in a browser when the store holds large answers.
MAX_BODY_LINES = 400

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.meta, .empty, .note { color: #666; } .note { font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0; } th, td { border: 1px solid #ddd; padding: 3px 8px;
  text-align: left; vertical-align: top; } th { background: #f4f4f6; } td.num { text-align: right; }
code { font-family: ui-monospace, monospace; font-size: 0.95em; }
.stage { font-weight: bold; padding: 1px 6px; border-radius: 3px; background: #eee; }
.stage-legacy { background: #e8eefc; } .stage-shadow { background: #fff3cd; }
.stage-primary { background: #ffe0b2; } .stage-native { background: #d4edda; }
.bar { display: inline-block; width: 120px; height: 10px; background: #f8d7da; vertical-align: middle;
  margin-right: 6px; } .bar span { display: block; height: 100%; background: #28a745; }
.sample { border: 1px solid #ccc; border-radius: 4px; margin: 1em 0; padding: 0.5em 1em; }
.sample h3 { margin: 0.3em 0; font-size: 1.05em; }
.result { text-transform: uppercase; font-weight: bold; } .result-mismatch { color: #c0392b; }
.result-error { color: #8e44ad; } .result-expected { color: #b7950b; } .result-match { color: #1e8449; }
.value { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.side pre { background: #f8f8fa; border: 1px solid #e3e3e8; padding: 0.5em; overflow-x: auto; margin: 0; }
.side h4 { margin: 0.5em 0 0.2em; } .line { display: block; } .line.hl { background: #fff3a8; }
details { margin: 0.4em 0; }
"""


def render_report(data: Mapping[str, Any]) -> str:
    """The whole page for `data` (see the module docstring for its keys)."""
    groups = data.get("groups") or {}
    decisions = data.get("decisions") or []
    body = "\n".join(
        [
            _header(data.get("generated_at"), data.get("note")),
            _section("Stages", "stages", _stages(groups, decisions)),
            _section("Progress toward promotion", "progress", _progress(groups)),
            _section("Parity per route", "parity", _parity(data.get("routes") or {})),
            _section("Known differences", "known", _known(data.get("routes") or {})),
            _section("Top differing paths", "top-paths", _top_paths(data.get("top_paths") or [])),
            _section("Recent samples", "samples", _samples(data.get("samples") or [])),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Shadow gateway report</title>"
        f"<style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


# ---- small pieces ------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _utc(epoch: Any) -> str:
    """Epoch seconds as UTC ISO 8601; whatever else as text (a report never fails on a date)."""
    if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return "" if epoch is None else str(epoch)


def _section(title: str, anchor: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>\n{content}\n</section>'


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _table(headings: Sequence[str], rows: Iterable[str], cls: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>"


def _stage(stage: Any) -> str:
    return f'<span class="stage stage-{_e(stage)}">{_e(stage)}</span>'


def _header(generated_at: Any, note: str | None) -> str:
    when = _utc(generated_at) or "unknown time"
    parts = [f'<header><h1>Shadow gateway report</h1><p class="meta">Generated at {_e(when)}</p>']
    if note:
        parts.append(f'<p class="note">{_e(note)}</p>')
    parts.append("</header>")
    return "".join(parts)


# ---- stages ------------------------------------------------------------------------------------


def _last_decision(group: str, entry: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]) -> str:
    """The newest stored decision for the group; else what the gateway itself reports."""
    for d in decisions:
        if d.get("group") == group:
            change = f"{d.get('from') or '(none)'} → {d.get('to')}"
            return (
                f"{_e(change)} by {_e(d.get('by'))} at {_e(_utc(d.get('at')))}"
                f'<br><span class="meta">{_e(d.get("reason"))}</span>'
            )
    if entry.get("decided_by") or entry.get("reason"):
        return f'by {_e(entry.get("decided_by"))}<br><span class="meta">{_e(entry.get("reason"))}</span>'
    return '<span class="meta">none</span>'


def _stages(groups: Mapping[str, Mapping[str, Any]], decisions: Sequence[Mapping[str, Any]]) -> str:
    if not groups:
        return _empty("no route groups")
    rows = []
    for name, entry in sorted(groups.items()):
        routes = "<br>".join(f"<code>{_e(r)}</code>" for r in entry.get("routes") or [])
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_stage(entry.get('stage'))}</td><td>{routes}</td>"
            f"<td>{_last_decision(name, entry, decisions)}</td></tr>"
        )
    return _table(["group", "stage", "routes", "last decision"], rows, "stages") + _history(decisions)


def _history(decisions: Sequence[Mapping[str, Any]]) -> str:
    """The recent stage changes of every group: who moved what, when and why."""
    if not decisions:
        return ""
    rows = [
        f"<tr><td>{_e(_utc(d.get('at')))}</td><td>{_e(d.get('group'))}</td><td>{_e(d.get('from') or '(none)')}</td>"
        f"<td>{_stage(d.get('to'))}</td><td>{_e(d.get('by'))}</td><td>{_e(d.get('reason'))}</td></tr>"
        for d in decisions
    ]
    return "<h3>Recent stage changes</h3>" + _table(["at", "group", "from", "to", "by", "reason"], rows, "decisions")


# ---- progress ----------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _promotion(p: Mapping[str, Any]) -> str:
    """What the gate needs before it promotes: pairs against min_samples, bound against target."""
    if not p.get("promotes_to"):
        return '<span class="meta">no promotion from this stage</span>'
    needed = p.get("clean_pairs_needed")
    if needed == 0:
        verdict = f"ready: promotes to {_e(p.get('promotes_to'))} at the next gate round"
    elif needed is None:
        verdict = "no number of clean pairs would: the mismatches seen keep the bound over the target"
    else:
        verdict = f"at least {_e(needed)} more clean pairs"
    return (
        f'pairs <span class="pairs">{_e(p.get("pairs"))}</span> / min {_e(p.get("min_samples"))}; '
        f'upper bound <span class="upper">{_e(_pct(p.get("upper_bound")))}</span> vs target '
        f"{_e(_pct(p.get('target')))}<br>"
        f'<span class="needed">{verdict}</span>'
    )


def _rollback(p: Mapping[str, Any]) -> str:
    """What would roll the group back (only at primary and native)."""
    r = p.get("rollback")
    if not isinstance(r, Mapping):
        return '<span class="meta">no rollback at this stage</span>'
    return (
        f"once {_e(r.get('min_samples'))} samples: mismatch rate lower bound {_e(_pct(r.get('mismatch_lower_bound')))}"
        f" over {_e(_pct(r.get('mismatch_limit')))}, or native error rate lower bound "
        f"{_e(_pct(r.get('error_lower_bound')))} over {_e(_pct(r.get('error_limit')))}"
    )


def _progress(groups: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for name, entry in sorted(groups.items()):
        p = entry.get("progress")
        if not isinstance(p, Mapping):
            continue
        seen = f"{_e(p.get('mismatches'))} mismatches; native {_e(p.get('native_errors'))}/{_e(p.get('native_calls'))}"
        rows.append(
            f'<tr data-group="{_e(name)}"><td>{_e(name)}</td><td>{_stage(entry.get("stage"))}</td>'
            f"<td>{_e(p.get('evidence'))}<br>{seen}</td><td>{_promotion(p)}</td><td>{_rollback(p)}</td></tr>"
        )
    if not rows:
        return _empty("no gate progress known")
    return _table(["group", "stage", "evidence", "promotion", "rollback"], rows, "progress")


# ---- known differences -------------------------------------------------------------------------


def _known(routes: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        f'<tr><td><code>{_e(known)}</code></td><td><code>{_e(route)}</code></td><td class="num">{_e(n)}</td></tr>'
        for route, counts in sorted(routes.items())
        for known, n in sorted((counts.get("known") or {}).items())
    ]
    if not rows:
        return _empty("no known difference has made an expected answer")
    return (
        _table(["known difference", "route", "expected answers"], rows, "known")
        + '<p class="meta">Counted by this replica since it started.</p>'
    )


# ---- parity ------------------------------------------------------------------------------------


def _parity_cell(parity: Any) -> str:
    if not isinstance(parity, (int, float)) or isinstance(parity, bool):
        return '<span class="meta">n/a</span>'
    percent = max(0.0, min(100.0, parity * 100))
    return f'<span class="bar"><span style="width:{percent:.2f}%"></span></span>{percent:.2f}%'


def _parity(routes: Mapping[str, Mapping[str, Any]]) -> str:
    if not routes:
        return _empty("no comparisons yet")
    rows = []
    for route, counts in sorted(routes.items()):
        cells = "".join(f'<td class="num">{_e(counts.get(r, 0))}</td>' for r in RESULTS)
        rows.append(f"<tr><td><code>{_e(route)}</code></td>{cells}<td>{_parity_cell(counts.get('parity'))}</td></tr>")
    return (
        _table(["route", *RESULTS, "parity"], rows, "parity")
        + '<p class="meta">Parity is match / (match + mismatch) over the gate window of this replica.</p>'
    )


# ---- top paths ---------------------------------------------------------------------------------


def _top_paths(top: Sequence[Mapping[str, Any]]) -> str:
    if not top:
        return _empty("no differing paths stored")
    rows = [
        f"<tr><td><code>{_e(t.get('route'))}</code></td><td><code>{_e(t.get('path'))}</code></td>"
        f'<td class="num">{_e(t.get("samples"))}</td></tr>'
        for t in top
    ]
    return _table(["route", "path", "samples"], rows, "top-paths")


# ---- samples -----------------------------------------------------------------------------------


def _samples(samples: Sequence[Mapping[str, Any]]) -> str:
    if not samples:
        return _empty("no mismatches stored")
    return "\n".join(_sample(s) for s in samples)


def _sample(sample: Mapping[str, Any]) -> str:
    request = sample.get("request") or {}
    comparison = sample.get("comparison") or {}
    differences = comparison.get("differences") or []
    result = sample.get("result") or comparison.get("result")
    title = (
        f'<span class="result result-{_e(result)}">{_e(result)}</span> <code>{_e(sample.get("route"))}</code> '
        f"<code>{_e(request.get('method'))} {_e(request.get('target'))}</code> · request id "
        f"<code>{_e(sample.get('request_id'))}</code> · {_e(_utc(sample.get('at')))}"
    )
    meta = f"group {_e(sample.get('group'))} · stage {_stage(sample.get('stage'))} · origin {_e(sample.get('origin'))}"
    return "\n".join(
        [
            f'<article class="sample" id="sample-{_e(sample.get("id"))}">',
            f'<h3>{title}</h3><p class="meta">{meta}</p>',
            _verdict(comparison),
            _differences(differences),
            _request(request),
            _sides(sample.get("primary") or {}, sample.get("shadow") or {}, differences),
            "</article>",
        ]
    )


def _verdict(comparison: Mapping[str, Any]) -> str:
    notes = []
    if comparison.get("known"):
        notes.append(f"known difference: <code>{_e(comparison['known'])}</code>")
    if comparison.get("reason"):
        notes.append(f"reason: {_e(comparison['reason'])}")
    if comparison.get("noise"):
        paths = sorted({str(d.get("template") or d.get("path")) for d in comparison["noise"]})
        notes.append(
            f"{len(comparison['noise'])} set aside as noise: " + ", ".join(f"<code>{_e(p)}</code>" for p in paths)
        )
    return "".join(f'<p class="meta">{n}</p>' for n in notes)


def _differences(differences: Sequence[Mapping[str, Any]]) -> str:
    if not differences:
        return _empty("no differences recorded")
    rows = [
        f'<tr data-path="{_e(d.get("path"))}"><td>{_e(d.get("kind"))}</td><td><code>{_e(d.get("path"))}</code></td>'
        f'<td class="value">{_e(show(d.get("primary", ABSENT)))}</td>'
        f'<td class="value">{_e(show(d.get("shadow", ABSENT)))}</td></tr>'
        for d in differences
    ]
    return _table(["kind", "path", "primary", "shadow"], rows, "differences")


def _request(request: Mapping[str, Any]) -> str:
    """The request behind the sample, folded: people ask for its headers (opendiffy#14)."""
    headers = "\n".join(f"{k}: {v}" for k, v in (request.get("headers") or {}).items())
    body = _body_text(request)
    text = "\n\n".join(part for part in (headers, body) if part) or "(no headers, no body)"
    return f"<details><summary>request</summary><pre>{_e(text)}</pre></details>"


def _body_text(message: Mapping[str, Any]) -> str:
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


def _diff_keys(differences: Sequence[Mapping[str, Any]]) -> set[str]:
    """The last key name of each body difference, as it appears in pretty JSON (`"name":`)."""
    keys = set()
    for d in differences:
        path = str(d.get("path") or "")
        if path.startswith(":") or path in ("", "$"):
            continue
        try:
            names = [s for s in parse_path(path) if isinstance(s, str)]
        except ValueError:
            continue
        if names:
            keys.add(json.dumps(names[-1], ensure_ascii=False) + ":")
    return keys


def _lines(text: str, keys: set[str]) -> str:
    lines = text.splitlines()
    cut = len(lines) - MAX_BODY_LINES
    out = []
    for line in lines[:MAX_BODY_LINES]:
        cls = "line hl" if any(k in line for k in keys) else "line"
        out.append(f'<span class="{cls}">{_e(line)}\n</span>')
    if cut > 0:
        out.append(f'<span class="line meta">… {cut} more line(s)</span>')
    return "".join(out)


def _side(label: str, response: Mapping[str, Any], keys: set[str]) -> str:
    head = f"{label}" + (f" ({response['side']})" if response.get("side") else "")
    if response.get("error"):
        status = f"no answer: {response['error']}"
    else:
        status = f"status {response.get('status')}"
    headers = "\n".join(f"{k}: {v}" for k, v in (response.get("headers") or {}).items())
    body = _body_text(response)
    return (
        f'<div class="side side-{_e(label)}"><h4>{_e(head)}</h4><p class="meta">{_e(status)}</p>'
        f"<details><summary>headers</summary><pre>{_e(headers or '(none)')}</pre></details>"
        f"<pre>{_lines(body, keys) if body else _e('(empty body)')}</pre></div>"
    )


def _sides(primary: Mapping[str, Any], shadow: Mapping[str, Any], differences: Sequence[Mapping[str, Any]]) -> str:
    keys = _diff_keys(differences)
    return f'<div class="sides">{_side("primary", primary, keys)}{_side("shadow", shadow, keys)}</div>'
