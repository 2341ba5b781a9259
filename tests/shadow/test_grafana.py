"""The Grafana dashboards (grafana/dashboards/) and provisioning (grafana/provisioning/), checked
statically: Grafana itself is not installed here. Each dashboard has a fixed uid, unique panel
ids, a `datasource` variable that every panel and query uses, and only expressions that name
metrics the gateway and the native service export, by their real names and labels.
tests/prometheus/test_live.py then runs every expression on a real Prometheus."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.prometheus.promql import (
    DASHBOARDS,
    DASHBOARDS_DIR,
    REPO,
    dashboard_queries,
    exported_names,
    grouping_labels,
    load_dashboard,
    metric_names,
    template_variables,
)

PROVISIONING = REPO / "grafana" / "provisioning"
UIDS = {"shadow-parity.json": "agentos-shadow-parity", "native-service.json": "agentos-native-service"}
LABELS = {
    "route",
    "stage",
    "side",
    "code_class",
    "result",
    "path",
    "reason",
    "group",
    "from_stage",
    "to_stage",
    "by",
    "outcome",
    "dependency",
    "method",
    "status",
    "db_id",
    "le",
    "job",
    "instance",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def datasource_uid() -> str:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    return str(source["uid"])


def test_provisioning_loads_the_dashboards_directory_from_the_fixed_datasource() -> None:
    assert datasource_uid() == "agentos-prometheus"
    provisioned = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = provisioned["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert sorted(p.name for p in DASHBOARDS_DIR.glob("*.json")) == sorted(DASHBOARDS)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_essentials(name: str) -> None:
    dashboard = load_dashboard(name)
    assert dashboard["uid"] == UIDS[name] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 8
    assert all({"x", "y", "w", "h"} <= set(p["gridPos"]) for p in panels)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables["datasource"]
    assert (source["type"], source["query"], source["current"]["value"]) == (
        "datasource",
        "prometheus",
        datasource_uid(),
    )
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE and variable["allValue"] == ".*", variable["name"]
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"] and all(t.get("refId") and t.get("expr", "").strip() for t in panel["targets"])


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_expression_names_exported_metrics_and_labels(name: str) -> None:
    dashboard = load_dashboard(name)
    names = exported_names()
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    for where, expr in dashboard_queries(dashboard):
        used = metric_names(expr)
        assert used and used <= names, (where, used - names)
        assert grouping_labels(expr) <= LABELS, (where, grouping_labels(expr) - LABELS)
        assert template_variables(expr) <= variables, (where, expr)
        # Variables are only ever matched as regexes, so `All` (allValue `.*`) selects every series.
        for var in template_variables(expr):
            assert expr.count(f'=~"${var}"') == expr.count(f"${var}"), (where, var)


def test_gate_decisions_are_annotations_on_the_parity_dashboard() -> None:
    annotations: list[dict[str, Any]] = load_dashboard("shadow-parity.json")["annotations"]["list"]
    (decisions,) = [a for a in annotations if "shadow_stage_decisions_total" in a.get("expr", "")]
    assert decisions["datasource"] == DATASOURCE and decisions["enable"]
    assert all(f"{{{{{label}}}}}" in decisions["titleFormat"] for label in ("group", "from_stage", "to_stage"))
    assert "{{by}}" in decisions["textFormat"]
