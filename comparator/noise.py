"""Noise learning, as Diffy does it, without a third fleet.

Pairs where the *same* side answered twice (legacy vs legacy) show which paths differ by
themselves: clocks, random ids, nondeterministic order. `NoiseModel` counts, per route and path
template, the share of such pairs in which the path differed (its noise rate), and the same
share in primary-vs-shadow pairs (its raw rate). A difference counts as a regression only when
its raw rate is clearly above its noise rate (`Thresholds`); otherwise `judge` moves it to
`Comparison.noise`. The model proposes ignore rules for a person to approve; it never edits
rules itself.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .model import Comparison

# Kinds that change a body's shape: proposing to ignore them hides whole classes of
# regressions (Keploy's lesson), so proposals mark them for review instead.
STRUCTURAL_KINDS = frozenset({"missing", "extra", "length", "type", "status"})


@dataclass(frozen=True)
class Thresholds:
    """When is a raw rate "clearly above" the noise rate? All three must hold:

    - `min_samples`: at least this many same-side pairs were seen for the route (before that,
      nothing is treated as noise);
    - `absolute`: raw rate - noise rate >= this (a share of pairs, 0.0003 = 0.03%);
    - `relative`: (raw rate - noise rate) / raw rate >= this (0.2 = the raw rate is at least
      25% above the noise rate).
    """

    min_samples: int = 20
    absolute: float = 0.0003
    relative: float = 0.2


@dataclass
class _Counts:
    pairs: int = 0
    differed: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, set[str]] = field(default_factory=dict)

    def add(self, comparison: Comparison) -> None:
        self.pairs += 1
        seen = set()
        for difference in comparison.differences + comparison.noise:
            self.kinds.setdefault(difference.template, set()).add(difference.kind)
            seen.add(difference.template)
        self.differed.update(seen)

    def rate(self, template: str) -> float:
        return self.differed[template] / self.pairs if self.pairs else 0.0


@dataclass
class NoiseModel:
    """Counts per route template. Not thread-safe: one owner feeds it (the gateway's comparison
    worker, or a CLI run)."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    noise: dict[str, _Counts] = field(default_factory=dict)
    raw: dict[str, _Counts] = field(default_factory=dict)

    def observe_noise(self, comparison: Comparison) -> None:
        """A same-side pair (legacy vs legacy): every path that differed is noise evidence."""
        self.noise.setdefault(comparison.route or "", _Counts()).add(comparison)

    def observe(self, comparison: Comparison) -> None:
        """A primary-vs-shadow pair, counted for the raw rates `judge` weighs."""
        self.raw.setdefault(comparison.route or "", _Counts()).add(comparison)

    def noise_rate(self, route: str | None, template: str) -> float:
        counts = self.noise.get(route or "")
        return counts.rate(template) if counts else 0.0

    def raw_rate(self, route: str | None, template: str) -> float:
        counts = self.raw.get(route or "")
        return counts.rate(template) if counts else 0.0

    def is_noise(self, route: str | None, template: str) -> bool:
        counts = self.noise.get(route or "")
        if counts is None or counts.pairs < self.thresholds.min_samples or not counts.differed[template]:
            return False
        noise, raw = counts.rate(template), self.raw_rate(route, template)
        above = raw - noise
        clearly_above = above >= self.thresholds.absolute and raw > 0 and above / raw >= self.thresholds.relative
        return not clearly_above

    def judge(self, comparison: Comparison) -> Comparison:
        """The comparison with its noise set aside: differences at noisy templates move to
        `noise`, and a mismatch left with no difference becomes a match. An `expected` or
        `error` result is kept as it is."""
        if comparison.result != "mismatch":
            return comparison
        noisy = tuple(d for d in comparison.differences if self.is_noise(comparison.route, d.template))
        if not noisy:
            return comparison
        kept = tuple(d for d in comparison.differences if d not in noisy)
        return dataclasses.replace(
            comparison, result="mismatch" if kept else "match", differences=kept, noise=comparison.noise + noisy
        )

    # ---- proposals -------------------------------------------------------------------------

    def proposals(self, min_rate: float = 0.0) -> list[Proposal]:
        """Ignore rules worth a person's look: templates that differed in more than `min_rate`
        of same-side pairs, for routes with at least `min_samples` pairs."""
        out = []
        for route, counts in sorted(self.noise.items()):
            if counts.pairs < self.thresholds.min_samples:
                continue
            for template, n in sorted(counts.differed.items()):
                rate = n / counts.pairs
                if rate > min_rate:
                    kinds = tuple(sorted(counts.kinds.get(template, ())))
                    out.append(Proposal(route, template, rate, n, counts.pairs, kinds))
        return out

    # ---- persistence -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def dump(table: dict[str, _Counts]) -> dict[str, Any]:
            return {
                route: {
                    "pairs": c.pairs,
                    "paths": {
                        t: {"differed": n, "kinds": sorted(c.kinds.get(t, ()))} for t, n in sorted(c.differed.items())
                    },
                }
                for route, c in sorted(table.items())
            }

        return {"thresholds": dataclasses.asdict(self.thresholds), "noise": dump(self.noise), "raw": dump(self.raw)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseModel:
        def load(table: Mapping[str, Any]) -> dict[str, _Counts]:
            out = {}
            for route, entry in (table or {}).items():
                counts = _Counts(pairs=int(entry["pairs"]))
                for template, item in (entry.get("paths") or {}).items():
                    counts.differed[template] = int(item["differed"])
                    counts.kinds[template] = set(item.get("kinds") or ())
                out[route] = counts
            return out

        thresholds = Thresholds(**(data.get("thresholds") or {}))
        return cls(thresholds, load(data.get("noise") or {}), load(data.get("raw") or {}))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def load(cls, path: str | Path) -> NoiseModel:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()) or {})


@dataclass(frozen=True)
class Proposal:
    """One proposed ignore rule, with the evidence for it."""

    route: str
    template: str
    rate: float
    differed: int
    pairs: int
    kinds: tuple[str, ...]

    @property
    def structural(self) -> bool:
        return bool(STRUCTURAL_KINDS.intersection(self.kinds))


def proposals_yaml(proposals: list[Proposal], source: str) -> str:
    """The proposals as a `routes:` block for config/comparator.yaml. Value-only paths are
    proposed as rules; structural ones (a key or element that comes and goes, a type that
    changes) are written commented out, because ignoring them can hide real regressions."""
    lines = [
        f"# Proposed by `agentos-session learn-noise` from {source}.",
        "# Nothing is applied: review each rule, then copy what you accept into config/comparator.yaml.",
        "routes:",
    ]
    if not proposals:
        lines[-1] = "routes: {}  # no path differed between two answers of the same side"
    by_route: dict[str, list[Proposal]] = {}
    for p in proposals:
        by_route.setdefault(p.route, []).append(p)
    for route, items in by_route.items():
        lines += [f"  {_quote(route)}:", "    ignore:"]
        for p in items:
            why = f"differed in {p.rate:.1%} of same-side pairs ({p.differed}/{p.pairs}); kinds: {', '.join(p.kinds)}"
            if p.structural:
                lines.append(f"      # - {_quote(p.template)}  # REVIEW, structural: {why}")
            else:
                lines.append(f"      - {_quote(p.template)}  # {why}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """JSON strings are YAML double-quoted scalars: safe for any template or route."""
    return json.dumps(text, ensure_ascii=False)
