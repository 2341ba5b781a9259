"""`store.decode_jsonb` (orjson with a stdlib fallback) gives exactly `json.loads`'s values for
what Postgres prints for jsonb: same types (int vs float), same float bits, same key order, and
so the same response bytes. Values go through a real Postgres `::jsonb::text` round trip first,
because the decoder only ever sees Postgres's canonical text."""

from __future__ import annotations

import json
import math
import random
import struct
from typing import Any

import psycopg
import pydantic_core
import pytest

from session_service.store import decode_jsonb


def _typed(value: Any) -> Any:
    """A value with every type and float bit pattern spelled out (1 == 1.0 == True in Python)."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    return (type(value).__name__, value)


def _corpus() -> list[str]:
    rnd = random.Random(20261201)
    values: list[Any] = []
    while len(values) < 3000:  # random doubles over the whole range, bit by bit
        (f,) = struct.unpack(">d", rnd.getrandbits(64).to_bytes(8, "big"))
        if math.isfinite(f):
            values.append(f)
    values += [rnd.uniform(-1e6, 1e6) for _ in range(1000)] + [rnd.random() for _ in range(1000)]
    values += [0.1, 0.2, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.0, 1.0, 100.0]
    ints = [0, -1, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19]
    values += ints + [10**40, -(10**40), 123456789012345678901234567890]
    strings = ["", "é", "日本語", "😀", 'a"b\\c/d', "\n\t\r\b\f", "\x01\x1f\x7f", "\u2028\u2029", "x" * 10_000]
    strings += ["1234567890123456789012", "id-9999999999999999999", "\\u0000 text"]
    values += strings + [True, False, None, [], {}, {"b": 1, "a": [1, 2.5, "x"]}]
    texts = [json.dumps(v, ensure_ascii=False) for v in values]
    # Decimal spellings Postgres normalizes (exponents, trailing zeros, long fractions).
    texts += ["1e2", "1E-7", "1.50", "-0", "-0.0", "1e308", "1.5e-400", "0." + "0" * 320 + "1", "1" + "0" * 25]
    texts += ["0.1000000000000000055511151231257827", "123.456e5", "9007199254740993", "-9223372036854775809"]
    texts += [f"{rnd.randint(1, 10**17)}.{rnd.randint(0, 10**12)}" for _ in range(500)]
    texts += ['{"k": ' + "[" * 300 + "1" + "]" * 300 + "}", "[" * 2000 + "]" * 2000]
    return texts


@pytest.fixture(scope="module")
def canonical(pg_dsn: str, seeded: None) -> list[str]:
    texts = _corpus()
    with psycopg.connect(pg_dsn) as conn:
        rows = conn.execute(
            "SELECT x::jsonb::text FROM unnest(%s::text[]) WITH ORDINALITY AS t(x, i) ORDER BY i", (texts,)
        ).fetchall()
        # And every JSONB value the seed's real agno rows hold.
        rows += conn.execute(
            "SELECT v::text FROM ai.agno_sessions, LATERAL (VALUES (session_data), (agent_data), (team_data), "
            "(workflow_data), (metadata), (summary)) AS c(v) WHERE v IS NOT NULL "
            "UNION ALL SELECT run_data::text FROM ai.agno_runs"
        ).fetchall()
    return [r[0] for r in rows]


def test_decode_jsonb_is_json_loads(canonical: list[str]) -> None:
    assert len(canonical) > 5600
    for text in canonical:
        try:
            expected = json.loads(text)
        except RecursionError:
            with pytest.raises(RecursionError):
                decode_jsonb(text)
            continue
        got = decode_jsonb(text)
        assert _typed(got) == _typed(expected), text[:200]
        try:
            rendered = pydantic_core.to_json(expected)
        except pydantic_core.PydanticSerializationError:
            continue  # nested past pydantic-core's limit: not renderable either way
        assert pydantic_core.to_json(got) == rendered, text[:200]
