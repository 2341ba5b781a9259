"""The parity gate's policy, as pure functions: Wilson bounds and `decide`."""

from __future__ import annotations

import dataclasses

import pytest

from shadow_proxy.config import Gate
from shadow_proxy.gate import Bucket, GroupWindows, Pending, clean_pairs_needed, combine, decide, progress, wilson

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


# ---- the evidence of every replica: buckets, pending counts, the combined window ----------------


def test_combine_sums_every_replica_newest_buckets_first_up_to_the_window() -> None:
    buckets = [Bucket(0.0, agreed=50, mismatches=50), Bucket(10.0, agreed=60), Bucket(20.0, agreed=40, mismatches=1)]
    whole = combine(buckets, 1000)
    assert (whole.comparisons.total, whole.comparisons.failures) == (201, 51)
    # A window of 100: the two newest buckets (whole buckets: 101), the oldest one's 50 mismatches left out.
    recent = combine(list(reversed(buckets)), 100)
    assert (recent.comparisons.total, recent.comparisons.failures) == (101, 1)
    assert decide("reads", "shadow", recent, POLICY) is not None
    assert decide("reads", "shadow", whole, POLICY) is None


def test_combine_keeps_native_calls_apart_from_comparisons() -> None:
    combined = combine([Bucket(0.0, native_calls=30, native_errors=10), Bucket(10.0, agreed=5)], 20)
    assert (combined.comparisons.total, combined.native_calls.total, combined.native_calls.failures) == (5, 30, 10)
    decision = decide("reads", "primary", combined, POLICY)
    assert decision is not None and "native error rate 10/30" in decision.reason


def test_pending_counts_by_group_stage_and_bucket_and_survives_a_failed_flush() -> None:
    pending = Pending(10.0)
    w = GroupWindows.sized(100, "reads", pending)
    w.stage = "shadow"
    w.observe_comparison("match")
    w.observe_comparison("expected")
    w.observe_comparison("mismatch", "primary")  # served at primary: counted there
    w.observe_comparison("error")  # not a comparison
    w.observe_native(True)
    w.observe_native(False)
    (shadow_key, shadow), (primary_key, primary) = sorted(pending.counts.items(), key=lambda kv: kv[0][1], reverse=True)
    assert shadow_key[:2] == ("reads", "shadow") and shadow == [2, 0, 2, 1]
    assert primary_key[:2] == ("reads", "primary") and primary == [0, 1, 0, 0]
    assert shadow_key[2] % 10.0 == 0.0
    taken = pending.take()
    assert pending.counts == {}
    w.observe_comparison("match")
    pending.restore(taken)
    assert pending.counts[shadow_key] == [3, 0, 2, 1]
    pending.add("reads", "shadow", (0,), at=25.0)
    assert pending.counts[("reads", "shadow", 20.0)] == [1, 0, 0, 0]


# ---- progress toward promotion (for the report) -------------------------------------------------


def test_clean_pairs_needed_is_the_first_count_that_passes() -> None:
    policy = dataclasses.replace(POLICY, min_samples=20, promote_max_mismatch_rate=0.01)
    needed = clean_pairs_needed(0, 100, policy)
    assert needed == 281  # 0 of 381 is the first with an upper bound under 1 % (z 1.96)
    assert wilson(0, 100 + needed, 1.96)[1] <= 0.01 < wilson(0, 100 + needed - 1, 1.96)[1]
    assert clean_pairs_needed(0, 381, policy) == 0
    assert clean_pairs_needed(0, 5, POLICY) == 15  # min_samples binds first
    assert clean_pairs_needed(3, 10, dataclasses.replace(POLICY, promote_max_mismatch_rate=0.0)) is None


def test_progress_says_what_promotes_and_what_rolls_back() -> None:
    at_shadow = progress("shadow", windows(matches=10), POLICY)
    assert (at_shadow["pairs"], at_shadow["min_samples"], at_shadow["promotes_to"]) == (10, 20, "primary")
    assert at_shadow["clean_pairs_needed"] == 10 and "rollback" not in at_shadow
    at_primary = progress("primary", windows(matches=8, mismatches=2, calls=10, errors=1), POLICY)
    assert at_primary["promotes_to"] is None and at_primary["clean_pairs_needed"] is None
    rollback = at_primary["rollback"]
    assert isinstance(rollback, dict)
    assert rollback["mismatch_lower_bound"] == pytest.approx(wilson(2, 10, POLICY.z)[0])
    assert rollback["error_limit"] == POLICY.rollback_error_rate


def test_a_window_counts_its_failures_as_outcomes_come_and_go() -> None:
    """The running count is the sum of the last `size` outcomes after every add, as the window
    slides past failures and successes, and nothing after `clear`."""
    import random

    from shadow_proxy.gate import Window

    rng = random.Random(7)
    window, seen = Window(50), []
    for _ in range(1_000):
        failed = rng.random() < 0.3
        window.add(failed)
        seen.append(failed)
        assert (window.failures, window.total) == (sum(seen[-50:]), len(seen[-50:]))
    window.clear()
    assert (window.failures, window.total) == (0, 0)
    window.add(True)
    assert (window.failures, window.total) == (1, 1)
