"""The HTML report, read back with `html.parser`: every section, the sample blocks and their
difference rows (found by `id="sample-<id>"` and `data-path`), the side-by-side bodies with the
differing lines marked, escaping of whatever traffic put in a body or a path, and the empty page.
Sample dicts are real `Sample.to_dict()`s of real comparisons, shaped as the store returns them."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from comparator import Request, Response, compare
from shadow_proxy.config import GatewayConfig
from shadow_proxy.model import Decision, Sample
from shadow_proxy.report import MAX_BODY_LINES, render_report

JSON = {"content-type": "application/json"}
AT = 1_700_000_000.0  # 2023-11-14T22:13:20Z


class Page(HTMLParser):
    """The parts of the page the tests look at: elements by id, rows by data-path, sections'
    text, the highlighted lines, and every start tag (to prove nothing unescaped got in)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.data_paths: list[str] = []
        self.highlighted: list[str] = []
        self.text_by_section: dict[str, str] = {}
        self._section: str | None = None
        self._in_hl = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "section":
            self._section = a.get("id")
        if "data-path" in a:
            self.data_paths.append(a["data-path"] or "")
        if tag == "span" and "hl" in (a.get("class") or "").split():
            self._in_hl = 1
            self.highlighted.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_hl = 0

    def handle_data(self, data: str) -> None:
        if self._section:
            self.text_by_section[self._section] = self.text_by_section.get(self._section, "") + data
        if self._in_hl:
            self.highlighted[-1] += data


def sample_dict(sample_id: int, primary: Any, shadow: Any, target: str = "/sessions/s1", **kw: Any) -> dict[str, Any]:
    """One row as `GatewayStore.mismatches()` returns it: the stored `Sample.to_dict()` plus its id."""

    def raw(body: Any) -> bytes:
        return body if isinstance(body, bytes) else json.dumps(body).encode()

    request = Request("GET", target, {"accept": "application/json"})
    left = kw.pop("primary_response", None) or Response(200, JSON, raw(primary), "legacy")
    right = kw.pop("shadow_response", None) or Response(200, JSON, raw(shadow), "native")
    comparison = compare(left, right, GatewayConfig().load_rules(), request=request)  # labelled as the gateway does
    sample = Sample(
        "req-" + str(sample_id),
        AT,
        kw.pop("route", "GET /sessions/{session_id}"),
        "reads",
        "shadow",
        "mirror",
        request,
        left,
        right,
        comparison,
    )
    return {"id": sample_id, **json.loads(json.dumps(sample.to_dict()))}


def full_data() -> dict[str, Any]:
    return {
        "generated_at": AT,
        "groups": {
            "reads": {
                "stage": "shadow",
                "routes": ["GET /sessions", "GET /sessions/{session_id}"],
                "decided_by": "config",
                "reason": "initial stage from the configuration",
            },
            "writes": {"stage": "legacy", "routes": ["POST /sessions"], "decided_by": None, "reason": None},
        },
        "routes": {
            "GET /sessions/{session_id}": {"match": 199, "mismatch": 1, "expected": 3, "error": 0, "parity": 0.995},
            "GET /sessions": {"match": 0, "mismatch": 0, "expected": 0, "error": 2, "parity": None},
        },
        "top_paths": [{"route": "GET /sessions/{session_id}", "path": "session_name", "samples": 4}],
        "samples": [sample_dict(7, {"session_name": "a", "n": 1}, {"session_name": "b", "n": 1})],
        "decisions": [Decision("reads", "legacy", "shadow", "mirroring starts", "admin", AT - 60).to_dict()],
    }


def test_every_section_is_present_with_its_content():
    text = render_report(full_data())
    page = Page(text)
    assert {"stages", "parity", "top-paths", "samples"} <= page.ids
    assert "2023-11-14T22:13:20Z" in text
    stages = page.text_by_section["stages"]
    assert "reads" in stages and "writes" in stages and "GET /sessions/{session_id}" in stages
    assert "legacy → shadow by admin" in stages and "mirroring starts" in stages
    parity = page.text_by_section["parity"]
    assert "99.50%" in parity and "n/a" in parity and "199" in parity
    assert 'style="width:99.50%"' in text
    assert "session_name" in page.text_by_section["top-paths"]


def test_sample_block_lists_its_differences_and_both_bodies():
    page = Page(render_report(full_data()))
    assert "sample-7" in page.ids
    assert page.data_paths == ["session_name"]
    samples = page.text_by_section["samples"]
    assert "mismatch" in samples and "GET /sessions/s1" in samples and "req-7" in samples
    assert "2023-11-14T22:13:20Z" in samples
    assert '"a"' in samples and '"b"' in samples  # both values, as comparator.report.show writes them
    assert [line.strip() for line in page.highlighted] == ['"session_name": "a",', '"session_name": "b",']


def test_missing_value_is_shown_as_absent():
    data = {"samples": [sample_dict(1, {"a": 1, "gone": True}, {"a": 1})]}
    page = Page(render_report(data))
    assert page.data_paths == ["gone"]
    assert "(absent)" in page.text_by_section["samples"]


def test_non_json_and_failed_sides_render_as_text():
    data = {
        "samples": [
            sample_dict(
                3,
                b"",
                b"",
                primary_response=Response(502, {"content-type": "text/plain"}, b"bad gateway"),
                shadow_response=Response.failed("timeout after 5s", "native"),
            )
        ]
    }
    samples = Page(render_report(data)).text_by_section["samples"]
    assert "bad gateway" in samples and "no answer: timeout after 5s" in samples and "error" in samples


def test_long_bodies_are_cut():
    big = {"items": list(range(MAX_BODY_LINES * 2))}
    text = render_report({"samples": [sample_dict(4, big, {"items": []})]})
    assert re.search(r"… \d+ more line\(s\)", text)


def test_traffic_cannot_inject_markup():
    """Bodies, paths, routes, targets, headers and group names all come from outside."""
    evil = "<script>alert(1)</script>"
    sample = sample_dict(9, {evil: 1, "x": evil}, {"x": "y"}, target="/sessions/" + evil, route=evil)
    sample["request"]["headers"] = {"x-evil": evil}
    data = {
        "groups": {evil: {"stage": evil, "routes": [evil]}},
        "routes": {evil: {"match": 1, "parity": 1.0}},
        "top_paths": [{"route": evil, "path": evil, "samples": 1}],
        "samples": [sample],
        "decisions": [{"group": evil, "from": None, "to": evil, "reason": evil, "by": evil, "at": AT}],
    }
    text = render_report(data)
    page = Page(text)
    assert page.tags.count("script") == 1  # the page's own, only
    assert text.lower().count("<script") == 1 and "alert(1)</script>" not in text
    assert "&lt;script&gt;" in text
    assert '["<script>alert(1)</script>"]' in page.data_paths  # a quoted key, escaped in the attribute


def test_empty_data_renders_every_empty_state():
    text = render_report({})
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert {"stages", "parity", "top-paths", "samples"} <= page.ids
    for empty in ("no route groups", "no comparisons yet", "no differing paths stored", "no mismatches stored"):
        assert empty in text
    assert "http://" not in text and "https://" not in text  # self-contained: no external asset


def test_note_is_shown():
    assert "no store configured" in render_report({"note": "no store configured", "generated_at": AT})


def test_progress_and_known_differences_are_shown_per_group():
    from shadow_proxy.config import Gate
    from shadow_proxy.gate import Combined, Counts, progress

    policy = Gate(min_samples=500, promote_max_mismatch_rate=0.01)
    groups = {
        "reads": {"stage": "shadow", "progress": progress("shadow", Combined(Counts(120, 0), Counts(120, 0)), policy)},
        "writes": {"stage": "primary", "progress": progress("primary", Combined(Counts(60, 3), Counts(60, 0)), policy)},
    }
    groups["reads"]["progress"]["evidence"] = "all replicas"
    routes = {"GET /sessions": {"match": 5, "expected": 7, "parity": 1.0, "known": {"list-page-zero": 7}}}
    page = Page(render_report({"groups": groups, "routes": routes}))
    progress_text, known_text = page.text_by_section["progress"], page.text_by_section["known"]
    assert "all replicas" in progress_text and "pairs 120 / min 500" in progress_text
    assert "at least 380 more clean pairs" in progress_text  # min_samples binds: 500 in all
    assert "no promotion from this stage" in progress_text  # writes at primary, allow_native off
    assert "once 50 samples: mismatch rate lower bound 1.71% over 2.00%" in progress_text
    assert "list-page-zero" in known_text and "7" in known_text
    empty = render_report({})
    assert "no gate progress known" in empty and "no known difference has made an expected answer" in empty
