"""The known differences of config/known_differences.yaml, asserted rather than ignored."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from tests.contract.differential import Answer

PATH = Path(__file__).resolve().parents[2] / "config" / "known_differences.yaml"


@lru_cache(maxsize=1)
def entries() -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in yaml.safe_load(PATH.read_text())}


def assert_known(entry_id: str, legacy: Answer, native: Answer) -> None:
    """Legacy does exactly what the entry says agno does; native does what the entry promises."""
    entry = entries()[entry_id]
    for side, answer in (("legacy", legacy), ("native", native)):
        spec = entry[side]
        assert answer.status == spec["status"], f"{entry_id}: {side} answered {answer.status}: {answer.body!r}"
        if "body" in spec:
            assert answer.body == spec["body"].encode(), f"{entry_id}: {side} body {answer.body!r}"
        assert answer.content_type == "application/json"
