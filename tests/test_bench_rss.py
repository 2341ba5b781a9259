"""benchmarks/rss.py measures what it says: not whether RSS is flat (that is the benchmark's
verdict, on a 60 s run), only that its readings, its verdict and its stall are real.

- the verdict: baseline at the end of the warm-up, growth max/baseline - 1, `flat` within 10 %;
- the gateway's counters are read from the real metric families (shadow_proxy.metrics);
- `stalled` stops a real process and continues it however the block ends;
- a short real run on real processes (AgentOS, native service, gateway, wrk) on a database of
  its own: the sampler read every second, legacy was stopped through the whole stall and answers
  after it, the client got native's answers meanwhile, and the docs section lands right after
  the suite's full section and is replaced by a rerun.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from benchmarks import _harness, dataset, report, rss
from benchmarks.rss import Sample
from shadow_proxy.metrics import GatewayMetrics

SESSIONS = 300
SECONDS, WARMUP, AFTER = 3, 1, 1


def samples(warmup: list[float], load: list[float], phase: str = "load") -> list[Sample]:
    out = [Sample(float(i), "warmup", v) for i, v in enumerate(warmup)]
    return out + [Sample(float(len(warmup) + i), phase, v) for i, v in enumerate(load)]


# ---- the verdict --------------------------------------------------------------------------------


def test_baseline_is_the_end_of_the_warm_up_not_its_start() -> None:
    # Growing during the warm-up (pools, caches) is the process's size, not growth.
    judged = rss.judge(samples([40.0, 55.0, 60.0], [60.0, 61.0, 63.0, 62.0]), ("load",))
    assert judged["baseline_mib"] == 60.0
    assert judged["max_mib"] == 63.0
    assert judged["last_mib"] == 62.0
    assert judged["growth_pct"] == 5.0
    assert judged["last_pct"] == pytest.approx(3.33, abs=0.01)
    assert judged["verdict"] == "flat"
    assert judged["samples"] == 4
    assert judged["slope_mib_per_min"] > 0


def test_growth_past_the_limit_is_not_flat_and_the_limit_itself_is() -> None:
    assert rss.judge(samples([50.0], [51.0, 55.5]), ("load",))["verdict"] == "grew"
    assert rss.judge(samples([50.0], [51.0, 55.0]), ("load",))["verdict"] == "flat"
    # A peak that fell back still counts: the target is about the whole run.
    spike = rss.judge(samples([50.0], [50.0, 60.0, 50.0]), ("load",))
    assert (spike["verdict"], spike["last_pct"]) == ("grew", 0.0)
    assert rss.judge(samples([50.0], [50.0, 54.0]), ("load",), limit_pct=5.0)["verdict"] == "grew"


def test_only_the_measured_phases_are_judged() -> None:
    readings = samples([50.0], [51.0]) + [Sample(9.0, "stall", 52.0), Sample(10.0, "after", 70.0)]
    assert rss.judge(readings, ("load", "stall"))["max_mib"] == 52.0
    assert rss.judge(readings, ("stall", "after"))["verdict"] == "grew"
    with pytest.raises(ValueError, match="warm-up"):
        rss.judge([Sample(0.0, "load", 50.0)], ("load",))
    with pytest.raises(ValueError):
        rss.judge(samples([50.0], []), ("load",))


def test_growth_once_the_bounded_queue_is_full_is_told_apart() -> None:
    def at(t: float, phase: str, mib: float, depth: float | None) -> Sample:
        return Sample(t, phase, mib, None, depth)

    readings = [
        at(0, "warmup", 80.0, 500),
        at(1, "stall", 85.0, 800),
        at(2, "stall", 92.0, 1000),
        at(3, "stall", 93.0, 1000),
        at(4, "after", 92.5, 990),
    ]
    full = rss.once_full(readings, ("stall", "after"), 1000)
    assert full is not None
    assert (full["seconds_to_full"], full["rss_at_full_mib"], full["max_after_mib"]) == (2.0, 92.0, 93.0)
    assert full["growth_after_pct"] == pytest.approx(1.09, abs=0.01)
    assert full["kib_per_queued_copy"] == pytest.approx(12 * 1024 / 500, abs=0.1)
    assert full["seconds_after"] == 2.0
    assert rss.once_full(readings, ("stall", "after"), 2000) is None  # never full
    almost = [at(0, "warmup", 80.0, 950), *readings[1:]]
    nearly_full = rss.once_full(almost, ("stall", "after"), 1000)
    assert nearly_full is not None and nearly_full["kib_per_queued_copy"] is None  # 50 copies say little
    assert rss.once_full(readings[1:], ("stall",), 1000) is None  # no baseline


def test_shadow_counters_are_read_from_the_gateways_own_metric_families() -> None:
    metrics = GatewayMetrics()
    for route in ("GET /sessions", "GET /sessions/{session_id}"):
        metrics.mirror_skipped.labels(route, "queue_full").inc(3)
        metrics.comparisons.labels(route, "match").inc(2)
    metrics.mirror_skipped.labels("GET /sessions", "timeout").inc(4)
    metrics.mirror_queue.set(1000)
    metrics.mirror_inflight.set(32)
    before = rss.shadow_counters(generate_latest(metrics.registry).decode())
    assert before["skipped"] == {"queue_full": 6.0, "timeout": 4.0}
    assert before["compared"] == {"match": 4.0}
    assert (before["queue_depth"], before["inflight"], before["fallbacks"]) == (1000.0, 32.0, 0.0)
    metrics.mirror_skipped.labels("GET /sessions", "timeout").inc(5)
    metrics.mirror_skipped.labels("GET /sessions", "shadow_error").inc()
    metrics.mirror_queue.set(10)
    delta = rss.counters_between(before, rss.shadow_counters(generate_latest(metrics.registry).decode()))
    assert delta["skipped"] == {"queue_full": 0, "shadow_error": 1, "timeout": 5}
    assert delta["compared"] == {"match": 0}
    assert delta["queue_depth"] == 10


# ---- SIGSTOP, SIGCONT ---------------------------------------------------------------------------


def test_stalled_continues_the_process_however_the_block_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with rss.stalled(child.pid):
            assert rss.process_state(child.pid) == "T"
        assert rss.process_state(child.pid) != "T"
        with pytest.raises(RuntimeError, match="load failed"), rss.stalled(child.pid):
            assert rss.process_state(child.pid) == "T"
            raise RuntimeError("load failed")
        deadline = time.monotonic() + 5
        while rss.process_state(child.pid) == "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rss.process_state(child.pid) != "T"
        assert child.poll() is None  # continued, not killed
    finally:
        child.send_signal(signal.SIGCONT)
        child.kill()
        child.wait(10)


def test_the_sampler_reads_the_process_every_second_and_at_each_phase_end() -> None:
    with rss.Sampler(os.getpid(), every_s=0.2) as sampler:
        sampler.enter("warmup")
        time.sleep(0.5)
        sampler.enter("load")
        time.sleep(0.5)
    phases = [s.phase for s in sampler.samples]
    assert phases.count("warmup") >= 3 and phases.count("load") >= 3
    assert phases[-1] == "load"  # __exit__'s reading ends the last phase
    assert all(s.rss_mib > 1 for s in sampler.samples)
    times = [s.t for s in sampler.samples]
    assert times == sorted(times)


# ---- a short real run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rss_dsn(_legacy_pg_server: _harness.PgServer, fake_openai_url: str) -> str:
    """A database of this module's own (its writes and the gateway's tables stay in it)."""
    dsn = _harness.create_database(_legacy_pg_server.admin_dsn, "bench_rss_test")
    _harness.seed(dsn, fake_openai_url)
    dataset.build(dsn, SESSIONS, (20,))
    return dsn


@pytest.fixture(scope="module")
def short_run(rss_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("rss") / "rss.json"
    args = ["--dsn", rss_dsn, "--seconds", str(SECONDS), "--warmup", str(WARMUP), "--after", str(AFTER)]
    code = rss.main([*args, "--out", str(out), "--no-docs"])
    results: dict[str, Any] = json.loads(out.read_text())
    flat = all(r["rss"]["verdict"] == "flat" for r in results["runs"])
    assert code == (0 if flat else 1)
    return results


def _by_name(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in results["runs"]}


def test_every_run_was_sampled_under_load(short_run: dict[str, Any]) -> None:
    runs = _by_name(short_run)
    assert set(runs) == {"native_reads", "native_writes", "gateway_stall"}
    for run in runs.values():
        readings = run["samples"]
        warm = [s for s in readings if s[1] == "warmup"]
        measured = [s for s in readings if s[1] in run["measured_phases"]]
        assert run["rss"]["baseline_mib"] == round(warm[-1][2], 1)
        seconds = sum(run["phases"][p]["seconds"] for p in run["measured_phases"])
        assert len(measured) >= int(seconds)  # once a second, plus each phase's end
        assert run["rss"]["max_mib"] == round(max(s[2] for s in measured), 1) > 10
        assert run["requests"] > 0
        assert run["errors"] == 0, run["phases"]
    assert short_run["dataset"]["sessions"] == SESSIONS


def test_legacy_was_stopped_through_the_stall_and_answers_after_it(short_run: dict[str, Any]) -> None:
    stall = _by_name(short_run)["gateway_stall"]
    legacy = stall["legacy"]
    assert legacy["stall_samples"] >= SECONDS
    assert legacy["stopped_samples"] == legacy["stall_samples"]
    assert legacy["state_at_end"] != "T"
    assert legacy["health_after"] == 200
    # The client kept getting native's answers; the mirrored copies were stuck on legacy: every
    # worker of the bounded queue busy at the end of the stall, copies waiting or dropped.
    assert stall["phases"]["stall"]["requests"] > 0 and stall["phases"]["stall"]["error_count"] == 0
    max_inflight = yaml.safe_load((_harness.REPO_ROOT / "config" / "gateway.yaml").read_text())["shadow"][
        "max_inflight"
    ]
    assert stall["sample_columns"][4] == "probe"
    # The queue is read with every sample; on a busy machine /metrics may miss the probe's 2 s.
    depths = [s[4] for s in stall["samples"]]
    read = [d for d in depths if d is not None]
    assert len(read) >= len(depths) // 2 and all(d >= 0 for d in read), depths
    during = stall["shadow"]["stall"]
    assert during["inflight"] == max_inflight
    assert during["queue_depth"] + sum(during["skipped"].values()) > 0
    assert during["fallbacks"] == 0


def test_the_docs_section_goes_after_the_full_suite_and_is_replaced(short_run: dict[str, Any], tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    original = (_harness.REPO_ROOT / "docs" / "benchmarks.md").read_text()
    begin, end = rss.MARKS
    without = original
    if begin in without:  # the committed docs already hold a section: start from none
        head, rest = without.split(begin, 1)
        without = head.rstrip("\n") + rest.split(end, 1)[1]
    docs.write_text(without)
    text = rss.markdown(short_run)
    assert "| native service, reads |" in text and "| stall |" in text
    assert "not judged (runs under 60 s, or not every run)" in text or "**not met** (" in text
    full_end = report.markers("full")[1]
    report.write_docs(docs, text, "rss", marks=rss.MARKS, after=full_end)
    report.write_docs(docs, text.replace("### RSS", "### RSS again"), "rss", marks=rss.MARKS, after=full_end)
    written = docs.read_text()
    assert written.count(begin) == 1 and written.count(end) == 1
    assert "### RSS again" in written and "### RSS over" not in written
    assert written.index(full_end) < written.index(begin)
    between = written.split(full_end, 1)[1].split(begin, 1)[0]
    assert between.strip() == ""
    section = written[written.index(begin) : written.index(end) + len(end)]
    assert written.replace(section, "").split() == without.split()  # nothing else changed
    # --render: the same section from a results file, without a run.
    results_file = tmp_path / "rss.json"
    results_file.write_text(json.dumps(short_run))
    assert rss.main(["--render", str(results_file), "--docs", str(docs)]) == 0
    assert docs.read_text().count(begin) == 1 and "### RSS over" in docs.read_text()


def test_the_target_is_met_only_by_every_run_for_60_s(short_run: dict[str, Any]) -> None:
    results = json.loads(json.dumps(short_run))
    for run in results["runs"]:
        run["rss"]["verdict"] = "flat"
    assert rss.target_verdict(results).startswith("not judged")  # 3 s runs
    results["settings"]["seconds"] = 60
    assert rss.target_verdict(results) == "**met**"
    assert rss.target_verdict({**results, "runs": results["runs"][:2]}).startswith("not judged")
    results["runs"][1]["rss"]["verdict"] = "grew"
    assert rss.target_verdict(results) == f"**not met** ({results['runs'][1]['label']})"
