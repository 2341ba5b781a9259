"""NoiseModel: counting same-side and primary-vs-shadow pairs, the thresholds that decide what
is noise, `judge`, the proposed ignore rules and their YAML, and persistence."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pytest
import yaml

from comparator import Comparison, Difference, Rules
from comparator.noise import STRUCTURAL_KINDS, NoiseModel, Proposal, Thresholds, proposals_yaml

ROUTE = "GET /items/{id}"


def pair(*differences: tuple[str, str], route: str | None = ROUTE, result: str = "mismatch") -> Comparison:
    """A comparison with one Difference per (path, kind)."""
    diffs = tuple(Difference(path, kind, 1, 2) for path, kind in differences)  # type: ignore[arg-type]
    return Comparison(result if diffs else "match", diffs, route)  # type: ignore[arg-type]


def feed(
    model: NoiseModel,
    noisy: int,
    total: int,
    template_path: str = "ts",
    *,
    raw: bool = False,
    route: str | None = ROUTE,
) -> None:
    """`total` pairs of which `noisy` differ at `template_path` (as same-side or raw pairs)."""
    observe = model.observe if raw else model.observe_noise
    for i in range(total):
        observe(pair((template_path, "value"), route=route) if i < noisy else pair(route=route))


def model_with(noise: tuple[int, int], raw: tuple[int, int], **thresholds: float) -> NoiseModel:
    """A model whose `ts` noise rate is noise[0]/noise[1] and raw rate raw[0]/raw[1]."""
    model = NoiseModel(Thresholds(**thresholds))  # type: ignore[arg-type]
    feed(model, *noise)
    feed(model, *raw, raw=True)
    return model


# ---- counting --------------------------------------------------------------------------------


def test_observe_noise_counts_pairs_and_templates_once_per_pair():
    """Several differences at one template in one pair count that template once, not per index."""
    model = NoiseModel()
    model.observe_noise(pair(("data[0].ts", "value"), ("data[1].ts", "value"), ("data[2].ts", "value")))
    model.observe_noise(pair(("data[0].ts", "value"), ("name", "value")))
    model.observe_noise(pair())
    counts = model.noise[ROUTE]
    assert counts.pairs == 3
    assert counts.differed["data[*].ts"] == 2
    assert counts.differed["name"] == 1
    assert model.noise_rate(ROUTE, "data[*].ts") == pytest.approx(2 / 3)
    assert model.noise_rate(ROUTE, "name") == pytest.approx(1 / 3)
    assert model.raw == {}


def test_observe_counts_raw_pairs_separately_from_noise():
    """observe feeds raw rates only; observe_noise feeds noise rates only."""
    model = NoiseModel()
    feed(model, 1, 4, raw=True)
    feed(model, 3, 4)
    assert model.raw_rate(ROUTE, "ts") == pytest.approx(0.25)
    assert model.noise_rate(ROUTE, "ts") == pytest.approx(0.75)
    assert model.raw[ROUTE].pairs == 4 and model.noise[ROUTE].pairs == 4


def test_noise_set_aside_earlier_still_counts():
    """Differences already moved to Comparison.noise are still evidence when observed."""
    model = NoiseModel()
    model.observe_noise(Comparison("match", (), ROUTE, noise=(Difference("ts", "value", 1, 2),)))
    assert model.noise_rate(ROUTE, "ts") == 1.0


def test_rates_are_zero_for_unknown_routes_and_templates():
    """A route or template never seen has rate 0 (no division by zero)."""
    model = NoiseModel()
    assert model.noise_rate(ROUTE, "ts") == 0.0
    assert model.raw_rate(None, "ts") == 0.0
    feed(model, 1, 2)
    assert model.noise_rate(ROUTE, "other") == 0.0
    assert model.noise_rate("GET /else", "ts") == 0.0


def test_routes_are_counted_separately_and_none_is_its_own_route():
    """Counts are per route; a comparison without a route is filed under the empty route."""
    model = NoiseModel()
    feed(model, 2, 2, route="GET /a")
    feed(model, 0, 2, route="GET /b")
    feed(model, 1, 1, route=None)
    assert model.noise_rate("GET /a", "ts") == 1.0
    assert model.noise_rate("GET /b", "ts") == 0.0
    assert model.noise_rate(None, "ts") == 1.0
    assert set(model.noise) == {"GET /a", "GET /b", ""}


# ---- is_noise and its thresholds -------------------------------------------------------------


def test_is_noise_needs_min_samples_same_side_pairs():
    """Before min_samples same-side pairs, nothing is noise; at min_samples it can be."""
    common = dict(absolute=0.0, relative=0.0)
    assert model_with((1, 4), (0, 4), min_samples=4, **common).is_noise(ROUTE, "ts") is True
    assert model_with((1, 4), (0, 4), min_samples=5, **common).is_noise(ROUTE, "ts") is False


def test_is_noise_false_for_a_template_that_never_differed_same_side():
    """A path that never differed between two same-side answers is never noise."""
    model = model_with((1, 4), (4, 4), min_samples=1, absolute=1.0, relative=1.0)
    assert model.is_noise(ROUTE, "ts") is True  # thresholds this strict make `ts` noise...
    assert model.is_noise(ROUTE, "name") is False  # ...but not a path without noise evidence
    assert model.is_noise("GET /else", "ts") is False


def test_absolute_threshold_decides_both_ways():
    """raw - noise = 0.25 (relative 0.5 passes): noise iff absolute > 0.25."""
    # noise 1/4 = 0.25, raw 2/4 = 0.5: above = 0.25 exactly, above / raw = 0.5
    assert model_with((1, 4), (2, 4), min_samples=4, absolute=0.3, relative=0.1).is_noise(ROUTE, "ts") is True
    assert model_with((1, 4), (2, 4), min_samples=4, absolute=0.25, relative=0.1).is_noise(ROUTE, "ts") is False


def test_relative_threshold_decides_both_ways():
    """(raw - noise) / raw = 0.5 (absolute passes): noise iff relative > 0.5."""
    assert model_with((1, 4), (2, 4), min_samples=4, absolute=0.01, relative=0.6).is_noise(ROUTE, "ts") is True
    assert model_with((1, 4), (2, 4), min_samples=4, absolute=0.01, relative=0.5).is_noise(ROUTE, "ts") is False


def test_raw_rate_at_or_below_noise_rate_is_noise():
    """A path that differs no more often across sides than within one side is noise."""
    thresholds = dict(min_samples=4, absolute=0.01, relative=0.1)
    assert model_with((2, 4), (2, 4), **thresholds).is_noise(ROUTE, "ts") is True
    assert model_with((2, 4), (1, 4), **thresholds).is_noise(ROUTE, "ts") is True
    assert model_with((2, 4), (0, 4), **thresholds).is_noise(ROUTE, "ts") is True  # raw 0: nothing above


def test_default_thresholds():
    """The documented defaults: 20 samples, 0.03% absolute, 20% relative."""
    assert Thresholds() == Thresholds(min_samples=20, absolute=0.0003, relative=0.2)
    model = NoiseModel()
    feed(model, 19, 19)
    assert model.is_noise(ROUTE, "ts") is False
    feed(model, 1, 1)
    assert model.is_noise(ROUTE, "ts") is True


# ---- judge -----------------------------------------------------------------------------------


def noisy_model() -> NoiseModel:
    """`ts` is noise on ROUTE (differs in every same-side pair); nothing else is."""
    model = NoiseModel(Thresholds(min_samples=2))
    feed(model, 2, 2, "ts")
    feed(model, 0, 1, "name")  # a clean pair: `name` never differed same-side
    return model


def test_judge_moves_noisy_differences_and_keeps_the_rest():
    """A mismatch keeps its real differences and sets noisy ones aside in `.noise`."""
    model = noisy_model()
    ts, name = Difference("ts", "value", 1, 2), Difference("name", "value", "a", "b")
    judged = model.judge(Comparison("mismatch", (ts, name), ROUTE))
    assert judged.result == "mismatch"
    assert judged.differences == (name,)
    assert judged.noise == (ts,)
    assert judged.route == ROUTE


def test_judge_turns_a_mismatch_of_only_noise_into_a_match():
    """When every difference is noise the verdict is a match, and the noise is kept for display."""
    model = noisy_model()
    earlier = Difference("other", "value", 0, 1)
    diffs = (Difference("ts", "value", 1, 2), Difference("ts", "value", 3, 4, template="ts"))
    judged = model.judge(Comparison("mismatch", diffs, ROUTE, noise=(earlier,)))
    assert judged.result == "match"
    assert judged.ok
    assert judged.differences == ()
    assert judged.noise == (earlier,) + diffs


def test_judge_leaves_non_noisy_mismatch_unchanged():
    """A mismatch with no noisy difference comes back as it was."""
    model = noisy_model()
    comparison = Comparison("mismatch", (Difference("name", "value", "a", "b"),), ROUTE)
    assert model.judge(comparison) == comparison


def test_judge_uses_the_comparisons_route():
    """Noise learned on one route does not excuse the same path on another route."""
    model = noisy_model()
    comparison = Comparison("mismatch", (Difference("ts", "value", 1, 2),), "GET /other")
    assert model.judge(comparison).result == "mismatch"


@pytest.mark.parametrize("result", ["expected", "error", "match"])
def test_judge_leaves_other_results_untouched(result: str):
    """expected, error and match are returned as they are, even with noisy differences."""
    model = noisy_model()
    comparison = Comparison(
        result,
        (Difference("ts", "value", 1, 2),),
        ROUTE,
        known="k" if result == "expected" else None,
        reason="r" if result == "error" else None,
    )  # type: ignore[arg-type]
    assert model.judge(comparison) is comparison


# ---- proposals -------------------------------------------------------------------------------


def kinds_model(entries: Iterable[tuple[str, str, int]], pairs: int = 10, min_samples: int = 2) -> NoiseModel:
    """A model with `pairs` same-side pairs on ROUTE; each (path, kind, n) differed in n of them."""
    model = NoiseModel(Thresholds(min_samples=min_samples))
    entries = list(entries)
    for i in range(pairs):
        model.observe_noise(pair(*[(path, kind) for path, kind, n in entries if i < n]))
    return model


def test_proposals_list_noisy_templates_with_evidence():
    """Each template that differed same-side is proposed with its rate, counts and kinds."""
    model = kinds_model([("ts", "value", 10), ("data[0].at", "value", 3)])
    props = model.proposals()
    assert props == [
        Proposal(ROUTE, "data[*].at", 0.3, 3, 10, ("value",)),
        Proposal(ROUTE, "ts", 1.0, 10, 10, ("value",)),
    ]
    assert not any(p.structural for p in props)


def test_proposals_min_rate_is_exclusive():
    """min_rate keeps templates that differed in strictly more than that share of pairs."""
    model = kinds_model([("ts", "value", 10), ("at", "value", 3)])
    assert [p.template for p in model.proposals(min_rate=0.3)] == ["ts"]
    assert [p.template for p in model.proposals(min_rate=0.29)] == ["at", "ts"]
    assert model.proposals(min_rate=1.0) == []


def test_proposals_need_min_samples_per_route():
    """A route with fewer same-side pairs than min_samples proposes nothing."""
    assert kinds_model([("ts", "value", 3)], pairs=3, min_samples=4).proposals() == []
    assert [p.template for p in kinds_model([("ts", "value", 3)], pairs=3, min_samples=3).proposals()] == ["ts"]


@pytest.mark.parametrize("kind", sorted(STRUCTURAL_KINDS))
def test_structural_kinds_are_flagged(kind: str):
    """A template seen with missing/extra/length/type/status differences is structural."""
    model = kinds_model([("x", kind, 5)])
    (proposal,) = model.proposals()
    assert proposal.kinds == (kind,)
    assert proposal.structural is True


def test_structural_flag_wins_over_value_kinds_of_the_same_template():
    """A template that was a value difference once and a missing key once is structural."""
    model = NoiseModel(Thresholds(min_samples=1))
    model.observe_noise(pair(("x", "value")))
    model.observe_noise(pair(("x", "missing")))
    (proposal,) = model.proposals()
    assert proposal.kinds == ("missing", "value")
    assert proposal.structural


@pytest.mark.parametrize("kind", ["value", "order", "header"])
def test_non_structural_kinds(kind: str):
    """value, order and header differences are not structural."""
    assert Proposal(ROUTE, "x", 1.0, 1, 1, (kind,)).structural is False


def test_structural_kinds_are_exactly_the_shape_changing_ones():
    """The set of structural kinds is missing, extra, length, type and status."""
    assert STRUCTURAL_KINDS == {"missing", "extra", "length", "type", "status"}


# ---- proposals_yaml --------------------------------------------------------------------------


def test_proposals_yaml_parses_with_value_templates_as_ignore_items():
    """Value-only templates become list items under routes.<route>.ignore; structural ones do not."""
    model = kinds_model(
        [("ts", "value", 10), ('meta["a.b"]', "value", 4), ("data[2]", "missing", 2), ('["odd: key#"]', "value", 3)]
    )
    text = proposals_yaml(model.proposals(), "10 pairs from test")
    parsed = yaml.safe_load(text)
    assert parsed == {"routes": {ROUTE: {"ignore": ['["odd: key#"]', 'meta["a.b"]', "ts"]}}}
    assert "10 pairs from test" in text
    # The structural template is present only as a commented-out line, marked for review.
    (line,) = [ln for ln in text.splitlines() if "data[*]" in ln]
    assert line.lstrip().startswith("# - ")
    assert "REVIEW" in line and "missing" in line
    # And the proposal is a usable rules mapping.
    rules = Rules.from_mapping(parsed)
    assert rules.for_route(ROUTE).ignore == ('["odd: key#"]', 'meta["a.b"]', "ts")


def test_proposals_yaml_only_structural_route_parses_to_no_rule():
    """A route with only structural proposals yields no active ignore rule."""
    model = kinds_model([("items", "length", 5)])
    parsed = yaml.safe_load(proposals_yaml(model.proposals(), "src"))
    assert parsed["routes"][ROUTE]["ignore"] in (None, [])
    assert Rules.from_mapping(parsed).for_route(ROUTE).ignore == ()


def test_proposals_yaml_groups_by_route():
    """Proposals of two routes land under their own route keys."""
    model = NoiseModel(Thresholds(min_samples=1))
    model.observe_noise(pair(("a", "value"), route="GET /a"))
    model.observe_noise(pair(("b", "value"), route="POST /b/{id}"))
    parsed = yaml.safe_load(proposals_yaml(model.proposals(), "src"))
    assert parsed == {"routes": {"GET /a": {"ignore": ["a"]}, "POST /b/{id}": {"ignore": ["b"]}}}


def test_proposals_yaml_empty():
    """No proposals is still valid YAML: an empty routes mapping."""
    text = proposals_yaml([], "0 pairs")
    assert yaml.safe_load(text) == {"routes": {}}
    assert Rules.from_mapping(yaml.safe_load(text)).routes == {}


# ---- persistence -----------------------------------------------------------------------------


def rich_model() -> NoiseModel:
    model = NoiseModel(Thresholds(min_samples=3, absolute=0.01, relative=0.3))
    feed(model, 2, 4, "ts")
    model.observe_noise(pair(("data[0].x", "missing"), ("data[1].x", "value")))
    feed(model, 3, 4, "ts", raw=True)
    feed(model, 1, 2, "ts", route=None)
    return model


def test_save_load_round_trip(tmp_path):
    """A saved model loads back with the same thresholds, counts, kinds and verdicts."""
    model = rich_model()
    path = tmp_path / "noise.yaml"
    model.save(path)
    loaded = NoiseModel.load(path)
    assert loaded.thresholds == model.thresholds
    assert loaded.to_dict() == model.to_dict()
    assert loaded.noise[ROUTE].kinds["data[*].x"] == {"missing", "value"}
    for route in (ROUTE, None, "GET /else"):
        for template in ("ts", "data[*].x", "nope"):
            assert loaded.noise_rate(route, template) == model.noise_rate(route, template)
            assert loaded.raw_rate(route, template) == model.raw_rate(route, template)
            assert loaded.is_noise(route, template) == model.is_noise(route, template)
    assert loaded.proposals() == model.proposals()


def test_saved_file_is_plain_yaml(tmp_path):
    """The file is safe_load-able YAML holding thresholds, noise and raw tables."""
    path = tmp_path / "noise.yaml"
    rich_model().save(path)
    data = yaml.safe_load(path.read_text())
    assert data["thresholds"] == {"min_samples": 3, "absolute": 0.01, "relative": 0.3}
    assert data["noise"][ROUTE]["pairs"] == 5
    assert data["noise"][ROUTE]["paths"]["ts"] == {"differed": 2, "kinds": ["value"]}
    assert data["raw"][ROUTE]["paths"]["ts"]["differed"] == 3


def test_from_dict_of_saved_dict_behaves_the_same(tmp_path):
    """from_dict(to_dict()) judges like the original and keeps counting from the loaded counts."""
    model = rich_model()
    again = NoiseModel.from_dict(model.to_dict())
    comparison = Comparison("mismatch", (Difference("ts", "value", 1, 2), Difference("name", "value", 1, 2)), ROUTE)
    assert again.judge(comparison) == model.judge(comparison)
    feed(model, 1, 1, "ts")
    feed(again, 1, 1, "ts")
    assert again.to_dict() == model.to_dict()


def test_load_of_empty_file_is_an_empty_model(tmp_path):
    """An empty model file loads as a fresh model with default thresholds."""
    path = tmp_path / "empty.yaml"
    path.write_text("")
    model = NoiseModel.load(path)
    assert model.thresholds == Thresholds() and model.noise == {} and model.raw == {}


def test_thresholds_can_be_replaced_after_load(tmp_path):
    """Replacing thresholds on a loaded model changes its verdicts (what the CLI does)."""
    model = rich_model()
    model.thresholds = dataclasses.replace(model.thresholds, min_samples=100)
    assert model.is_noise(ROUTE, "ts") is False
    assert model.proposals() == []
