"""The parity gate's policy, as pure functions: Wilson bounds and `decide`."""

from __future__ import annotations

import dataclasses

import pytest

from shadow_proxy.config import Gate
from shadow_proxy.gate import GroupWindows, decide, wilson

POLICY = Gate(
    window=100,
    min_samples=20,
    promote_max_mismatch_rate=0.2,
    allow_native=False,
    min_rollback_samples=10,
    rollback_mismatch_rate=0.1,
    rollback_error_rate=0.1,
)


def windows(matches: int = 0, mismatches: int = 0, calls: int = 0, errors: int = 0) -> GroupWindows:
    w = GroupWindows.sized(100)
    for result in ["match"] * matches + ["mismatch"] * mismatches:
        w.observe_comparison(result)
    for failed in [False] * (calls - errors) + [True] * errors:
        w.observe_native(failed)
    return w


def test_wilson_bounds_hold_the_rate_and_narrow_with_samples() -> None:
    assert wilson(0, 0, 1.96) == (0.0, 1.0)
    low, high = wilson(5, 100, 1.96)
    assert low < 0.05 < high
    assert wilson(50, 1000, 1.96)[1] - wilson(50, 1000, 1.96)[0] < high - low
    assert wilson(0, 20, 1.96)[1] == pytest.approx(0.161, abs=0.001)  # 0 of 20 is not 0%


def test_promotes_shadow_to_primary_only_with_enough_clean_samples() -> None:
    assert decide("reads", "shadow", windows(matches=19), POLICY) is None  # too few
    decision = decide("reads", "shadow", windows(matches=20), POLICY)
    assert decision is not None and (decision.from_stage, decision.to_stage, decision.by) == (
        "shadow",
        "primary",
        "gate",
    )
    assert decide("reads", "shadow", windows(matches=17, mismatches=3), POLICY) is None  # upper bound too high


def test_expected_counts_as_agreement_and_errors_are_not_comparisons() -> None:
    w = windows()
    for result in ["expected"] * 20 + ["error"] * 5:
        w.observe_comparison(result)
    assert (w.comparisons.total, w.comparisons.failures) == (20, 0)


def test_primary_to_native_only_when_allowed() -> None:
    assert decide("reads", "primary", windows(matches=50), POLICY) is None
    decision = decide("reads", "primary", windows(matches=50), dataclasses.replace(POLICY, allow_native=True))
    assert decision is not None and decision.to_stage == "native"


@pytest.mark.parametrize("stage", ["primary", "native"])
def test_rolls_back_on_mismatches_or_native_errors(stage: str) -> None:
    decision = decide("reads", stage, windows(matches=5, mismatches=5), POLICY)
    assert decision is not None and decision.to_stage == "shadow" and "mismatch rate" in decision.reason
    decision = decide("reads", stage, windows(calls=10, errors=5), POLICY)
    assert decision is not None and decision.to_stage == "shadow" and "native error rate" in decision.reason
    assert decide("reads", stage, windows(matches=9, mismatches=1, calls=9, errors=1), POLICY) is None  # one unlucky


def test_no_promotion_while_native_errors_are_high() -> None:
    assert decide("reads", "shadow", windows(matches=30, calls=30, errors=10), POLICY) is None
