"""Reading a gateway's /metrics in tests (Prometheus text format, parsed by prometheus_client)."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def wait_mirrors_done(gateway_url: str, timeout_s: float = 20.0) -> str:
    """/metrics once no mirrored copy is queued or in flight (the copies are compared after the
    client got its answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = httpx.get(gateway_url + "/metrics", timeout=10).text
        busy = sum(v for _, v in samples(text, "shadow_mirror_inflight") + samples(text, "shadow_mirror_queue_depth"))
        if busy == 0 or time.monotonic() > deadline:
            return text
        time.sleep(0.2)
