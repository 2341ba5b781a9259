"""The chart lints clean and renders, for every value set, manifests Kubernetes would accept.

Core kinds are validated against the Kubernetes 1.30 OpenAPI schemas (kubernetes-validate,
strict: an unknown field fails). The custom resources have no schema there; their required
fields are checked from the CRDs of prometheus-operator (monitoring.coreos.com/v1), Argo
Rollouts (argoproj.io/v1alpha1) and Flagger (flagger.app/v1beta1).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest

from tests.helm.chart import CHART_DIR, CUSTOM_KINDS, KUBE_VERSION, VALUE_SETS, lint, render

WARNING = 2  # Helm lint severities: 1 info, 2 warning, 3 error


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_is_clean(name: str) -> None:
    report = lint(VALUE_SETS[name])
    assert report["total_charts_linted"] == 1
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert not problems and not report["errors"], (problems, report["errors"])


def test_lint_catches_a_broken_chart(tmp_path: Path) -> None:
    """The lint really lints: the same chart with one unclosed action is reported."""
    broken = tmp_path / "agno-session"
    shutil.copytree(CHART_DIR, broken)
    (broken / "templates" / "configmap.yaml").write_text("data: {{ .Values.config.mountPath\n")
    report = helm_python.lint(broken, {}, strict=True)
    assert report["errors"] or any(m["severity"] >= WARNING for m in report["messages"])


@pytest.mark.parametrize("name", VALUE_SETS)
def test_core_manifests_match_the_kubernetes_schemas(name: str) -> None:
    rendered = render(VALUE_SETS[name])
    core = [m for m in rendered.manifests if m["kind"] not in CUSTOM_KINDS]
    assert {"Deployment", "Service", "ConfigMap"} <= {m["kind"] for m in core}
    for manifest in core:
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{manifest['kind']}/{manifest['metadata']['name']}: {'.'.join(map(str, exc.path))}: {exc.message}"
            )


def test_schema_validation_is_strict() -> None:
    """A misspelt field is refused, so a passing manifest has none."""
    deployment = render({}).one("Deployment", "gateway")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_each_value_set_renders_what_it_asks_for() -> None:
    assert render(VALUE_SETS["defaults"]).kinds() == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Deployment",
            "HorizontalPodAutoscaler",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "ServiceAccount",
        ]
    )
    operator = render(VALUE_SETS["operator"])
    assert {"ServiceMonitor", "PrometheusRule", "AnalysisTemplate", "MetricTemplate"} <= set(operator.kinds())
    assert not operator.of_kind("Secret"), "with existingSecret the chart creates no Secret"
    in_process = render(VALUE_SETS["in-process"])
    assert [d["metadata"]["labels"]["app.kubernetes.io/component"] for d in in_process.of_kind("Deployment")] == [
        "gateway"
    ]
    assert not in_process.of_kind("HorizontalPodAutoscaler")
    assert [s["metadata"]["labels"]["app.kubernetes.io/component"] for s in in_process.of_kind("Service")] == [
        "gateway"
    ]
    assert len(in_process.of_kind("Secret")) == 1


# --- custom resources: required fields, from each CRD's openAPIV3Schema `required` lists ---


def _require(obj: dict[str, Any], fields: list[str], where: str) -> None:
    missing = [f for f in fields if obj.get(f) in (None, "", [], {})]
    assert not missing, f"{where}: missing required {missing}"


def check_service_monitor(sm: dict[str, Any]) -> None:
    # monitoring.coreos.com_servicemonitors: spec required [endpoints, selector]; each endpoint
    # names a Service port (`port`) or a `targetPort`.
    _require(sm, ["spec"], "ServiceMonitor")
    _require(sm["spec"], ["endpoints", "selector"], "ServiceMonitor.spec")
    for endpoint in sm["spec"]["endpoints"]:
        assert endpoint.get("port") or endpoint.get("targetPort"), endpoint
    assert sm["spec"]["selector"].get("matchLabels") or sm["spec"]["selector"].get("matchExpressions")


def check_prometheus_rule(rule: dict[str, Any]) -> None:
    # monitoring.coreos.com_prometheusrules: groups[] required [name]; rules[] required [expr],
    # and each rule is an `alert` or a `record`.
    _require(rule, ["spec"], "PrometheusRule")
    for group in rule["spec"]["groups"]:
        _require(group, ["name", "rules"], "PrometheusRule group")
        for r in group["rules"]:
            _require(r, ["expr"], f"rule of {group['name']}")
            assert ("alert" in r) != ("record" in r), r


def check_analysis_template(template: dict[str, Any]) -> None:
    # analysis-template-crd: spec.metrics[] required [name, provider]; the prometheus provider
    # needs its address and query to measure anything.
    _require(template, ["spec"], "AnalysisTemplate")
    _require(template["spec"], ["metrics"], "AnalysisTemplate.spec")
    for metric in template["spec"]["metrics"]:
        _require(metric, ["name", "provider", "successCondition"], "AnalysisTemplate metric")
        _require(metric["provider"]["prometheus"], ["address", "query"], f"{metric['name']}.provider.prometheus")


def check_metric_template(template: dict[str, Any]) -> None:
    # Flagger crd.yaml, MetricTemplate: spec required [provider, query]; provider required [type],
    # type one of its enum (prometheus here, with an address).
    _require(template, ["spec"], "MetricTemplate")
    _require(template["spec"], ["provider", "query"], "MetricTemplate.spec")
    _require(template["spec"]["provider"], ["type", "address"], "MetricTemplate.spec.provider")
    assert template["spec"]["provider"]["type"] == "prometheus"


CHECKS = {
    "ServiceMonitor": check_service_monitor,
    "PrometheusRule": check_prometheus_rule,
    "AnalysisTemplate": check_analysis_template,
    "MetricTemplate": check_metric_template,
}
API_VERSIONS = {
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "AnalysisTemplate": "argoproj.io/v1alpha1",
    "MetricTemplate": "flagger.app/v1beta1",
}


def test_custom_resources_have_their_required_fields() -> None:
    rendered = render(VALUE_SETS["operator"])
    for kind, check in CHECKS.items():
        found = rendered.of_kind(kind)
        assert found, f"no {kind} rendered"
        for resource in found:
            assert resource["apiVersion"] == API_VERSIONS[kind]
            assert resource["metadata"]["name"]
            check(resource)


def test_required_field_checks_fail_on_a_missing_field() -> None:
    rendered = render(VALUE_SETS["operator"])
    for kind, field in [("ServiceMonitor", "endpoints"), ("MetricTemplate", "query"), ("AnalysisTemplate", "metrics")]:
        resource = rendered.of_kind(kind)[0]
        del resource["spec"][field]
        with pytest.raises(AssertionError):
            CHECKS[kind](resource)


def test_notes_say_where_to_connect_and_warn_about_demo_settings() -> None:
    defaults = render(VALUE_SETS["defaults"]).notes
    assert "parity-agno-session-gateway.sessions.svc:8090" in defaults
    assert "no gateway.legacyUrl" in defaults and "embedded" in defaults
    operator = render(VALUE_SETS["operator"]).notes
    assert "WARNING" not in operator
    assert "AnalysisTemplate parity-agno-session-parity" in operator and "thresholdRange.min: 0.995" in operator
    assert "in-process" in render(VALUE_SETS["in-process"]).notes
