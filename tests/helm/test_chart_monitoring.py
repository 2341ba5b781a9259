"""The monitoring resources say what the repository's Prometheus files say, and the parity
queries handed to Argo Rollouts and Flagger compute the parity ratio: Prometheus's own promtool
evaluates them over synthetic series (Debian's `prometheus` package, from `make tools`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shadow_proxy.config import load_config
from tests.helm.chart import NAMESPACE, REPO_ROOT, VALUE_SETS, render

ALERTS = REPO_ROOT / "config" / "prometheus" / "alerts.yml"


def _operator() -> Any:
    return render(VALUE_SETS["operator"])


def test_prometheus_rule_is_the_alerts_file() -> None:
    [rule] = _operator().of_kind("PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make tools` installs Debian's prometheus package"
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_prometheus_rule_groups_pass_promtool(tmp_path: Path) -> None:
    """What the operator loads is a valid Prometheus rules file (no Helm mangling)."""
    [rule] = _operator().of_kind("PrometheusRule")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _scrape_jobs() -> list[str]:
    config = yaml.safe_load((REPO_ROOT / "config" / "prometheus" / "prometheus.yml").read_text())
    return [job["job_name"] for job in config["scrape_configs"]]


def test_service_monitor_scrapes_both_services_under_the_scrape_config_job_names() -> None:
    rendered = _operator()
    [monitor] = rendered.of_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in rendered.of_kind("Service") if selector.items() <= s["metadata"]["labels"].items()]
    jobs = {s["metadata"]["labels"][monitor["spec"]["jobLabel"]] for s in selected}
    assert jobs == set(_scrape_jobs()), "the job names the alert rules use"
    ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"] and ports == {"http"}
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]


def _groups() -> dict[str, tuple[str, ...]]:
    return {g.name: g.routes for g in load_config(REPO_ROOT / "config" / "gateway.yaml", env={}).groups}


def _queries() -> dict[str, dict[str, str]]:
    """Per tool, per route group, the PromQL the tool will run (Flagger's {{ interval }} filled)."""
    rendered = _operator()
    [analysis] = rendered.of_kind("AnalysisTemplate")
    argo = {
        m["name"].removeprefix("parity-"): m["provider"]["prometheus"]["query"] for m in analysis["spec"]["metrics"]
    }
    flagger = {
        t["metadata"]["name"].rsplit("-parity-", 1)[1]: t["spec"]["query"].replace("{{ interval }}", "5m")
        for t in rendered.of_kind("MetricTemplate")
    }
    return {"argo": argo, "flagger": flagger}


def test_one_measurement_per_route_group() -> None:
    queries = _queries()
    assert set(queries["argo"]) == set(queries["flagger"]) == set(_groups())
    [analysis] = _operator().of_kind("AnalysisTemplate")
    for metric in analysis["spec"]["metrics"]:
        assert metric["successCondition"] == "len(result) > 0 && result[0] >= 0.995"
        assert metric["failureCondition"] == "len(result) > 0 && result[0] < 0.995"


def _series(route: str, result: str, per_minute: int, namespace: str = NAMESPACE) -> dict[str, str]:
    return {
        "series": f'shadow_comparisons_total{{route="{route}", result="{result}", namespace="{namespace}"}}',
        "values": f"0+{per_minute}x30",
    }


def test_parity_queries_compute_each_groups_ratio(tmp_path: Path) -> None:
    """Over counters growing at known rates, each group's query gives (match + expected) /
    (match + expected + mismatch) of its own routes only: not `error`, not other groups, not
    routes outside every group, not another namespace."""
    groups = _groups()
    reads, writes = groups["reads"], groups["writes"]
    series = [
        # reads: 3 routes with 99 agreeing (60 + 30 match, 9 expected) for 1 mismatch a minute
        # in all -> 0.99; `error` (no comparison) left out
        _series(reads[0], "match", 60),
        _series(reads[1], "match", 30),
        _series(reads[1], "expected", 9),
        _series(reads[2], "mismatch", 1),
        _series(reads[0], "error", 500),
        # writes: 3 matches for 1 mismatch -> 0.75
        _series(writes[0], "match", 30),
        _series(writes[-1], "mismatch", 10),
        # noise the queries must leave out
        _series("GET /agents", "mismatch", 1000),
        _series(reads[0], "mismatch", 1000, namespace="elsewhere"),
        _series("GET /sessions/x", "mismatch", 1000),
    ]
    expected = {"reads": 9900, "writes": 7500}  # ratio x 10000 (promtool compares floats exactly)
    tests = []
    for _tool, per_group in _queries().items():
        for group, query in per_group.items():
            tests.append(
                {
                    "expr": f"round(10000 * ({query}))",
                    "eval_time": "20m",
                    "exp_samples": [{"labels": "{}", "value": expected[group]}],
                }
            )
    (tmp_path / "rules.yml").write_text("groups: []\n")
    (tmp_path / "parity_test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            },
            width=10_000,
        )
    )
    result = _promtool("test", "rules", "parity_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(tests) == 2 * len(expected)


def test_parity_query_is_empty_without_comparisons(tmp_path: Path) -> None:
    """No comparisons in the window: an empty result, which the AnalysisTemplate's conditions
    count as inconclusive rather than as a pass."""
    query = _queries()["argo"]["reads"]
    series = [_series(_groups()["writes"][0], "match", 10)]
    (tmp_path / "rules.yml").write_text("groups: []\n")
    (tmp_path / "empty_test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": series,
                        "promql_expr_test": [{"expr": query, "eval_time": "20m", "exp_samples": []}],
                    }
                ],
            },
            width=10_000,
        )
    )
    result = _promtool("test", "rules", "empty_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("matchers", ['job="gateway"', 'namespace="prod", service="gw"'])
def test_parity_matchers_are_configurable(matchers: str) -> None:
    rendered = render({"parityAnalysis": {"flagger": {"enabled": True}, "matchers": matchers}})
    for template in rendered.of_kind("MetricTemplate"):
        assert template["spec"]["query"].count(matchers) == 2
        assert f'namespace="{NAMESPACE}"' not in template["spec"]["query"]
