from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from comparator.pytest_plugin import Parity
from tests.contract.differential import Pair


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture
def pair(http: httpx.Client, legacy_url: str, native_url: str, parity: Parity) -> Pair:
    """Legacy and native over the same seeded database, judged by `parity`."""
    return Pair(http, legacy_url, native_url, parity)
