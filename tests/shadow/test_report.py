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


# ---- parity over time, latency, cohorts, curl, highlighting, the refresh payload ----------------

ROUTE = "GET /sessions/{session_id}"


def timeline_rows(*buckets: dict[str, int], route: str = ROUTE, step: float = 60.0) -> list[dict[str, Any]]:
    """`GatewayStore.route_timeline` rows: one bucket per argument, `step` seconds apart."""
    return [
        {"route": route, "bucket": AT + i * step, "result": result, "n": n}
        for i, counts in enumerate(buckets)
        for result, n in counts.items()
    ]


class Points(HTMLParser):
    """The chart's circles: (cx, cy, data-parity) per route figure."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.by_route: dict[str, list[tuple[float, float, str]]] = {}
        self.polylines = 0
        self._route = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure":
            self._route = a.get("data-route") or "group " + (a.get("data-group") or "")
        if tag == "circle":
            self.by_route.setdefault(self._route, []).append(
                (float(a["cx"] or 0), float(a["cy"] or 0), a.get("data-parity") or "")
            )
        if tag == "polyline":
            self.polylines += 1


def test_the_chart_draws_one_point_per_judged_bucket():
    rows = timeline_rows({"match": 10}, {"match": 5, "mismatch": 5}, {"error": 3}, {"mismatch": 4})
    rows += timeline_rows({"match": 1}, route="GET /sessions")
    text = render_report({"timeline": rows})
    points = Points(text)
    assert set(points.by_route) == {ROUTE, "GET /sessions"}
    mine = points.by_route[ROUTE]
    assert [p[2] for p in mine] == ["1.0000", "0.5000", "0.0000"]  # the error-only bucket is a gap
    xs, ys = [p[0] for p in mine], [p[1] for p in mine]
    assert xs == sorted(xs) and xs[0] < xs[-1]  # oldest on the left
    assert ys[0] < ys[1] < ys[2]  # 100 % at the top, 0 % at the bottom
    assert points.polylines == 1  # a single point draws no line
    chart = Page(text).text_by_section["chart"]
    assert "62.50% agree" in chart  # 15 agreeing of 24 judged, over the whole range
    assert "no comparisons stored yet" in render_report({})
    # A group's chart sums its routes per bucket: what the gate judges.
    groups = {"reads": {"stage": "shadow", "routes": [ROUTE, "GET /sessions"]}}
    both = Points(render_report({"timeline": rows, "groups": groups})).by_route
    assert [p[2] for p in both["group reads"]] == ["1.0000", "0.5000", "0.0000"]  # bucket 1: 11 of 11
    assert both[ROUTE] == mine


def test_latency_by_side_is_interpolated_in_the_histogram():
    from shadow_proxy.routestats import quantile

    assert quantile(0.5, {0.01: 50, 0.025: 50}) == 0.01
    assert abs((quantile(0.99, {0.01: 50, 0.025: 50}) or 0) - 0.0247) < 1e-9
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {0.005: 4}) == 0.00375  # from the bucket's lower bound (2.5 ms), not from 0
    assert quantile(0.99, {0.005: 1, float("inf"): 99}) == 10.0  # in +Inf: the highest finite bound
    rows = [
        {"route": ROUTE, "side": "legacy", "le": 0.01, "n": 50},
        {"route": ROUTE, "side": "legacy", "le": 0.025, "n": 50},
        {"route": ROUTE, "side": "native", "le": 0.005, "n": 100},
    ]
    latency = Page(render_report({"latency": rows})).text_by_section["latency"]
    assert "10.0 ms" in latency and "24.7 ms" in latency  # legacy p50, p99
    assert "3.8 ms" in latency and "5.0 ms" in latency  # native p50 (3.75 ms), p99 (4.975 ms) in 2.5-5 ms
    assert "no latency stored yet" in render_report({})


def test_cohorts_are_shown_worst_first_with_the_chosen_kind_selected():
    rows = [
        {"route": ROUTE, "value": "agent", "result": "match", "n": 90},
        {"route": ROUTE, "value": "team", "result": "match", "n": 5},
        {"route": ROUTE, "value": "team", "result": "mismatch", "n": 5},
        {"route": ROUTE, "value": "workflow", "result": "error", "n": 1},
    ]
    text = render_report({"cohort": "type", "cohorts": rows})
    section = text[text.index('<section id="cohorts">') : text.index('<section id="known">')]
    order = re.findall(r'data-cohort="([^"]+)"', section)
    assert order == ["team", "agent", "workflow"]  # 50 %, 100 %, none judged
    assert '<tr data-cohort="team" class="worse">' in section
    assert '<option value="type" selected>' in section and '<option value="size">' in section
    assert "Parity by cohort: user" in render_report({"cohort": "user"})
    assert "Parity by cohort: type" in render_report({"cohort": "bogus"})  # the view validates; the page falls back


def test_cohort_keys_are_bounded():
    from shadow_proxy.routestats import cohorts, size_bucket

    answer = Response(200, JSON, json.dumps({"session_type": "workflow", "user_id": "u-7"}).encode(), "legacy")
    keys = cohorts(Request("GET", "/sessions/s1"), answer)
    assert keys["type"] == "workflow" and keys["size"] == "1"
    assert keys["user"] == str(__import__("zlib").crc32(b"u-7") % 16)
    assert cohorts(Request("GET", "/sessions?type=team&user_id=u-7"), Response(200, JSON, b"[]"))["type"] == "team"
    assert cohorts(Request("GET", "/sessions?type=<b>"), Response(200, JSON, b"{}"))["type"] == "other"
    assert cohorts(Request("GET", "/sessions"), Response(200, JSON, b"not json"))["type"] == "agent"  # agno's default
    assert cohorts(Request("GET", "/sessions"), Response(200, JSON, b"{}"))["user"] == "none"
    big = Response(200, JSON, json.dumps({"session_type": "team", "pad": "x" * 70_000}).encode())
    assert cohorts(Request("GET", "/sessions/s1"), big) == {
        "type": "agent",
        "user": "none",
        "size": "128",
    }  # not parsed
    # A page (the list) is not parsed: its keys are the request's or the defaults.
    single = Response(200, JSON, b'{"session_type": "team", "user_id": "u-7"}')
    assert cohorts(Request("GET", "/sessions"), single)["type"] == "team"
    assert cohorts(Request("GET", "/sessions"), single, page=True) == {"type": "agent", "user": "none", "size": "1"}
    assert cohorts(Request("GET", "/sessions?type=team&user_id=u-7"), single, page=True)["type"] == "team"
    from agentos_session.sessions_api import SESSION_PAGES

    assert SESSION_PAGES == {"GET /sessions"}
    users = {cohorts(Request("GET", f"/sessions?user_id=u{i}"), Response(200, JSON, b""))["user"] for i in range(500)}
    assert users == {str(i) for i in range(16)}
    assert [size_bucket(n) for n in (0, 1024, 1025, 2048, 3000, 5000, 1 << 20)] == [
        "1",
        "1",
        "2",
        "2",
        "4",
        "8",
        "1024",
    ]


def test_copy_as_curl_redacts_as_the_sample_is_and_quotes_what_traffic_sent():
    from shadow_proxy.redact import REDACTED
    from shadow_proxy.report import curl

    request = {
        "method": "POST",
        "target": "/sessions?type=team&x=it's",
        "headers": {
            "Authorization": REDACTED,
            "X-Api-Key": REDACTED,
            "Content-Type": "application/json",
            "Host": "gateway:8090",
            "X-Shadow-Request": "1",
        },
        "body": '{"session_name": "$(rm -rf /)"}',
    }
    line = curl(request, "http://legacy:7777/", "legacy")
    assert line.startswith("curl -sS -X POST http://legacy:7777'/sessions?type=team&x=it'\"'\"'s'")
    assert '-H "Authorization: Bearer $OS_SECURITY_KEY"' in line and '-H "X-Api-Key: $X_API_KEY"' in line
    assert "-H 'Content-Type: application/json'" in line
    assert "Host" not in line and "X-Shadow-Request" not in line  # curl's own, and the gateway's
    assert '--data-raw \'{"session_name": "$(rm -rf /)"}\'' in line  # single-quoted: nothing expands
    assert curl({"method": "GET", "target": "/sessions"}, None, "native") == 'curl -sS -X GET "$NATIVE_URL"/sessions'
    import shlex

    words = shlex.split(line)
    assert words[4] == "http://legacy:7777/sessions?type=team&x=it's"  # the shell gives back the URL


def test_highlighting_follows_the_differing_path_not_the_key_name():
    left = {"data": [{"session_name": "same"}, {"session_name": "a", "meta": {"k": 1}}]}
    right = {"data": [{"session_name": "same"}, {"session_name": "b", "meta": {"k": 2}}]}
    sample = sample_dict(5, left, right, target="/sessions", route="GET /sessions")
    page = Page(render_report({"samples": [sample]}))
    assert sorted(page.data_paths) == ["data[1].meta.k", "data[1].session_name"]
    marked = [line.strip() for line in page.highlighted]
    assert marked == ['"session_name": "a",', '"k": 1', '"session_name": "b",', '"k": 2']  # not item 0's


def test_a_nested_difference_marks_every_line_of_its_value():
    from comparator.paths import parse_path
    from shadow_proxy.report import body_lines

    body = {"body": json.dumps({"a": {"b": [1, 2]}, "c": 3})}
    lines, cut = body_lines(body, [tuple(parse_path("a"))])
    assert cut == 0
    assert [line["text"].strip() for line in lines if line["hl"]] == ['"a": {', '"b": [', "1,", "2", "]", "},"]


def test_json_lines_are_json_dumps_lines():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from shadow_proxy.report import json_lines

    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=12,
    )

    @settings(max_examples=200, deadline=None)
    @given(values)
    def same(value: Any) -> None:
        assert [line for _, line in json_lines(value)] == json.dumps(value, indent=2, ensure_ascii=False).split("\n")

    same()


def test_writes_get_no_ask_again_button():
    sample = sample_dict(6, {"a": 1}, {"a": 2})
    sample["request"]["method"] = "DELETE"
    text = render_report({"samples": [sample]})
    assert "no recheck" in text and 'class="recheck"' not in text
    assert 'data-url="mismatches/7/recheck"' in render_report(full_data())


def test_the_refresh_payload_is_the_pages_sections():
    from shadow_proxy.report import SECTIONS, render_update

    data = full_data() | {"timeline": timeline_rows({"match": 3}), "refresh_s": 5}
    update = render_update(data)
    assert update["generated"] == "2023-11-14T22:13:20Z" and update["sample_ids"] == "7"
    assert set(update["sections"]) == set(SECTIONS)
    page = render_report(data)
    for name, html in update["sections"].items():
        assert f'<section id="{name}">{html}</section>' in page
    assert 'data-refresh-s="5"' in page
