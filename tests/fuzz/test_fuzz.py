"""The differential fuzzer in the normal test run: one fixed seed, at least 1,500 operations.

`make fuzz SEED=... N=...` runs other seeds and counts (FUZZ_SEED, FUZZ_N). The test fails
listing every unexplained difference, grouped by route and status pair, with the shortest
request of each kind; the table is printed either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from tests.fuzz.runner import Runner
from tests.legacy import seed

SEED = int(os.environ.get("FUZZ_SEED", "20261201"))
COUNT = int(os.environ.get("FUZZ_N", "1500"))


@pytest.fixture
def twins_removed(pg_dsn: str) -> Iterator[None]:
    """The twins are the fuzzer's own rows: removed afterwards so later tests see the seed only."""
    yield
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for table in (seed.RUNS, seed.SESSIONS):
            conn.execute(f"DELETE FROM {table} WHERE session_id LIKE 'L-fz%%' OR session_id LIKE 'N-fz%%'")


# 1,500 operations take about a minute alone and up to four on a loaded machine; pytest-timeout
# (main's global 300 s) must not cut a slow run short. The marker is a no-op without the plugin.
@pytest.mark.timeout(900)
def test_fuzz_parity(legacy_url: str, native_url: str, twins_removed: None) -> None:
    runner = Runner(legacy_url, native_url, SEED)
    try:
        report = runner.run(COUNT)
    finally:
        runner.close()
    print(f"\nfuzz seed {SEED}\n" + report.table())
    assert report.operations == COUNT
    assert not report.findings, f"seed {SEED}: unexplained differences\n" + report.table()
