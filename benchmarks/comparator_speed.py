"""Comparator throughput on one core: identical pairs, differing pairs, and cost vs body size.

Bodies have the shape of a real `GET /sessions` page of agno AgentOS (session items with
metrics, as captured in the contract); N items give any size. Everything runs in this one
process and thread, so the numbers are per core.

    .venv/bin/python -m benchmarks.comparator_speed [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from typing import Any

from comparator import Request, Response, Rules, compare

HEADERS = {"content-type": "application/json"}
REQUEST = Request("GET", "/sessions?limit=20")


def item(i: int) -> dict[str, Any]:
    usage = {"input_tokens": 11 + i, "total_tokens": 18 + i, "output_tokens": 7}
    return {
        "session_id": f"s-agent-{i}",
        "session_name": f"What tools do you have? #{i}",
        "session_state": {},
        "created_at": "2026-11-24T20:08:36Z",
        "updated_at": "2026-11-24T20:08:37Z",
        "session_type": "agent",
        "user_id": f"user-{i % 7}",
        "agent_id": "basic-agent",
        "metrics": {"details": {"model": [{"id": "gpt-4o", "provider": "OpenAI Chat", **usage}]}, **usage},
        "total_tokens": 18 + i,
        "metadata": {},
    }


def page(n_items: int) -> dict[str, Any]:
    return {
        "data": [item(i) for i in range(n_items)],
        "meta": {"page": 1, "limit": 20, "total_pages": 1, "total_count": n_items, "search_time_ms": 0.0},
    }


def page_of_size(target_bytes: int) -> dict[str, Any]:
    n = 1
    while len(json.dumps(page(n), separators=(",", ":"))) < target_bytes:
        n += 1
    return page(n)


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of `fn`, in batches, for about `seconds`."""
    fn()
    calls, started = 0, time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        calls += 50
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls / elapsed


def mutate_one(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["data"][rng.randrange(len(out["data"]))]["session_name"] = "changed"
    return out


def mutate_many(body: dict[str, Any], rng: random.Random, share: float = 0.1) -> dict[str, Any]:
    """A value changed in `share` of the items: the diff grows with the body."""
    out = json.loads(json.dumps(body))
    for entry in out["data"]:
        if rng.random() < share:
            entry["metrics"]["total_tokens"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    rng = random.Random(7)
    rules = Rules.load("config/comparator.yaml")

    base = page_of_size(2048)
    body = encode(base)
    print(
        f"# 2 KB pairs (a GET /sessions page of {len(base['data'])} items, {len(body)} bytes), rules: config/comparator.yaml"
    )
    same = Response(200, HEADERS, body)
    same_copy = Response(200, HEADERS, bytes(bytearray(body)))  # equal bytes, another object
    one = Response(200, HEADERS, encode(mutate_one(base, rng)))
    reordered = Response(200, HEADERS, encode({"meta": base["meta"], "data": base["data"]}))
    many = Response(200, HEADERS, encode(mutate_many(base, rng, share=0.5)))
    rows = [
        ("identical (byte-equal fast path)", lambda: compare(same, same_copy, rules, request=REQUEST)),
        ("one value differs", lambda: compare(same, one, rules, request=REQUEST)),
        ("top-level key order differs", lambda: compare(same, reordered, rules, request=REQUEST)),
        ("half the items differ", lambda: compare(same, many, rules, request=REQUEST)),
    ]
    print("| pair | pairs/s |\n|---|---:|")
    for name, fn in rows:
        assert fn().result in ("match", "mismatch")
        print(f"| {name} | {rate(fn, args.seconds):,.0f} |")

    print("\n# Cost vs body size (µs per pair, and per KB)")
    print(
        "| body | items | identical µs | one diff µs | 10% items differ µs | 10% µs/KB |\n|---:|---:|---:|---:|---:|---:|"
    )
    for size in (2_048, 8_192, 32_768, 131_072, 524_288):
        base = page_of_size(size)
        body = encode(base)
        a = Response(200, HEADERS, body)
        b = Response(200, HEADERS, bytes(bytearray(body)))
        c = Response(200, HEADERS, encode(mutate_one(base, rng)))
        d = Response(200, HEADERS, encode(mutate_many(base, rng)))
        seconds = args.seconds / 2
        t_same = 1e6 / rate(lambda a=a, b=b: compare(a, b, rules, request=REQUEST), seconds)
        t_one = 1e6 / rate(lambda a=a, c=c: compare(a, c, rules, request=REQUEST), seconds)
        t_many = 1e6 / rate(lambda a=a, d=d: compare(a, d, rules, request=REQUEST), seconds)
        kb = len(body) / 1024
        print(
            f"| {kb:,.0f} KB | {len(base['data'])} | {t_same:,.1f} | {t_one:,.0f} | {t_many:,.0f} | {t_many / kb:,.1f} |"
        )


if __name__ == "__main__":
    main()
