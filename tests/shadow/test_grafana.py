"""grafana/dashboards/shadow-parity.json queries only metrics the gateway exports, by their real names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from shadow_proxy.metrics import GatewayMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "grafana" / "dashboards" / "shadow-parity.json"


def exported_names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        kind = family.type
        if kind == "counter":
            names.add(family.name + "_total")
        elif kind == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def test_every_query_names_an_exported_metric_and_label() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    metrics = GatewayMetrics()
    names = exported_names(metrics.registry)
    labels = {"route", "stage", "side", "code_class", "result", "path", "reason", "group", "from_stage", "to_stage",
              "by", "le"}  # fmt: skip
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        used = set(re.findall(r"\b(shadow_\w+)", expr))
        assert used and used <= names, (expr, used - names)
        for label in re.findall(r"by \(([^)]*)\)", expr):
            assert {x.strip() for x in label.split(",")} <= labels, expr
    assert {p["gridPos"]["y"] for p in dashboard["panels"]}  # laid out
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
