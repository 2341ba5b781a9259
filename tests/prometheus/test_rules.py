"""config/prometheus/ as Prometheus's own tool judges it: `promtool check config`, `check rules`
and `test rules` (the unit tests in alerts_test.yml, a firing and a quiet case for every alert),
plus what promtool does not know: the metric names are the exported ones, every alert carries
its severity and annotations, and every runbook link points at a section of docs/rollout.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prometheus.promql import PROMETHEUS_DIR, REPO, alert_rules, exported_names, metric_names

SEVERITIES = {"warning", "critical"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `make tools` installs Debian's prometheus package")
    return subprocess.run([tool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "args",
    [("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml"), ("test", "rules", "alerts_test.yml")],
    ids=" ".join,
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_config_names_both_services_and_the_one_rules_file() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    targets = {
        job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]] for job in config["scrape_configs"]
    }
    assert targets == {"agentos-gateway": ["gateway:8090"], "agentos-native": ["native:8080"]}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in config["scrape_configs"])


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_alert_has_severity_annotations_and_a_runbook_section() -> None:
    headings = re.findall(r"^#+ (.+)$", (REPO / "docs" / "rollout.md").read_text(), flags=re.M)
    anchors = {github_anchor(h) for h in headings}
    rules = alert_rules()
    assert len(rules) >= 8
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/rollout.md" and anchor in anchors, (rule["alert"], anchor, sorted(anchors))


def test_every_alert_names_exported_metrics() -> None:
    names = exported_names()
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used and used <= names, (rule["alert"], used - names)


def _cases(tests: list[dict[str, Any]]) -> dict[str, list[list[Any]]]:
    cases: dict[str, list[list[Any]]] = {}
    for test in tests:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    return cases


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    cases = _cases(tests["tests"])
    for rule in alert_rules():
        expected = cases.get(rule["alert"], [])
        assert any(expected), f"{rule['alert']}: no case where it fires"
        assert not all(expected), f"{rule['alert']}: no case where it stays quiet"


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    """The unit tests judge the rules: with the parity target moved, they fail."""
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text()
    assert ") < 0.99" in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(") < 0.99", ") < 0.5"))
    shutil.copy(PROMETHEUS_DIR / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "ShadowParityBelowTarget" in result.stdout + result.stderr
