"""What the tests read from the dashboards and the alert rules: their PromQL expressions, the
metric names those use, and the metric names the gateway and the native service really export
(read from their registries, so a renamed metric fails the tests instead of an empty panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from session_service.metrics import ServiceMetrics
from shadow_proxy.metrics import GatewayMetrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "config" / "prometheus"
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
DASHBOARDS = ("shadow-parity.json", "native-service.json")
# Series Prometheus itself writes for every target.
PROMETHEUS_NAMES = frozenset({"up"})
# Grafana's interval variables; every other `$name` is a dashboard template variable.
GRAFANA_INTERVALS = ("$__rate_interval", "$__interval")


def registry_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry exposes (counters also export `_created`)."""
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.update({family.name + "_total", family.name + "_created"})
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count", "_created"))
        else:
            names.add(family.name)
    return names


def exported_names() -> set[str]:
    service = ServiceMetrics()
    service.watch_pools(lambda: {})  # the pool gauges are collected at scrape time, from the pools
    return registry_names(GatewayMetrics().registry) | registry_names(service.registry) | PROMETHEUS_NAMES


def _without_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    """The project's metric names an expression selects (label values in quotes are not names)."""
    text = _without_strings(expr)
    return set(re.findall(r"\b(?:shadow|agno_session)_\w+", text)) | set(re.findall(r"\bup(?=\s*\{)", text))


def grouping_labels(expr: str) -> set[str]:
    text = _without_strings(expr)
    return {
        label.strip()
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text)
        for label in group.split(",")
        if label.strip()
    }


def template_variables(expr: str) -> set[str]:
    """Dashboard variables an expression uses (`$route`, `${route}`), Grafana's intervals aside."""
    for builtin in GRAFANA_INTERVALS:
        expr = expr.replace(builtin, "")
    return set(re.findall(r"\$\{?(\w+)\}?", expr))


def load_dashboard(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS_DIR / name).read_text())


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, expression) for every panel target and every Prometheus annotation."""
    queries = [
        (f"panel {p['id']} {p['title']!r} target {t.get('refId')}", t.get("expr", ""))
        for p in dashboard["panels"]
        for t in p.get("targets", [])
    ]
    queries += [
        (f"annotation {a['name']!r}", a.get("expr", ""))
        for a in dashboard["annotations"]["list"]
        if a.get("datasource", {}).get("type") == "prometheus"
    ]
    return queries


def instantiate(expr: str, interval: str = "1m") -> str:
    """A dashboard expression as Grafana would send it with every variable at `All`: the
    intervals become `interval`, and each template variable (only ever matched with `=~`)
    becomes `.*`, the variables' `allValue`."""
    for builtin in GRAFANA_INTERVALS:
        expr = expr.replace(builtin, interval)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
