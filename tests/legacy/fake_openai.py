"""Moved to `harness.fake_openai`; this module forwards every name to it, for the tests (and any branch
in flight) that still import it from here."""

from __future__ import annotations

from typing import Any

from harness import fake_openai as _moved


def __getattr__(name: str) -> Any:
    return getattr(_moved, name)
