from __future__ import annotations

from typing import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def pair(legacy_url: str, native_url: str) -> Iterator[tuple[httpx.Client, str, str]]:
    """(client, legacy base url, native base url) over the same seeded database."""
    with httpx.Client(timeout=30) as client:
        yield client, legacy_url, native_url
