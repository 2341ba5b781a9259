"""values.yaml documents every value, and values.schema.json refuses at install time what the
gateway would refuse at start-up (or silently ignore: a misspelt key)."""

from __future__ import annotations

import re

import helm_python
import pytest
import yaml

from tests.helm.chart import CHART_DIR, VALUE_SETS, render

KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w.-]*):(?P<value>.*)$")


def _undocumented(text: str) -> list[str]:
    """Keys with a value on their line that no comment explains: neither a comment right above
    the key nor above the section (a key with no value) it belongs to."""
    missing, sections = [], []  # sections: (indent, documented)
    previous = ""
    for line in text.splitlines():
        match = KEY.match(line)
        if match:
            indent = len(match["indent"])
            sections = [s for s in sections if s[0] < indent]
            documented = previous.lstrip().startswith("#") or any(doc for _, doc in sections[-1:])
            value = match["value"].split(" #")[0].strip()
            if value:
                if not documented:
                    missing.append(match["key"])
            else:
                sections.append((indent, documented))
        if line.strip():
            previous = line
    return missing


def test_every_value_is_documented() -> None:
    text = (CHART_DIR / "values.yaml").read_text()
    assert _undocumented(text) == []
    assert _undocumented("a:\n  b: 1\n") == ["b"], "the check itself finds an undocumented value"


def test_values_yaml_is_what_helm_uses() -> None:
    with helm_python.Chart.load(CHART_DIR) as chart:
        assert chart.values == yaml.safe_load((CHART_DIR / "values.yaml").read_text())
        assert chart.metadata["apiVersion"] == "v2"
        assert chart.schema is not None
        for values in VALUE_SETS.values():
            chart.validate_schema(chart.merge_values(values))


@pytest.mark.parametrize(
    "values, where",
    [
        ({"gateway": {"stage": "canary"}}, "/gateway/stage"),
        ({"gateway": {"sampleRate": 1.5}}, "/gateway/sampleRate"),
        ({"gatway": {"stage": "shadow"}}, "gatway"),
        ({"secret": {"pgdsn": "postgresql://x"}}, "pgdsn"),
        ({"parityAnalysis": {"minParity": 99}}, "/parityAnalysis/minParity"),
        ({"env": {"NOT A NAME": "x"}}, "NOT A NAME"),
    ],
)
def test_schema_refuses_what_the_gateway_would(values: dict, where: str) -> None:
    with pytest.raises(helm_python.HelmError, match=re.escape(where)):
        render(values)
