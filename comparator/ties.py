"""Unordered ties in sorted lists: the rules' `sorted` entries (`rules.Sorted`).

A list sorted by a key whose values repeat (agno stores `created_at` in whole seconds) lists the
tied items in whatever order the database's plan gives, and the plan changes over time on
either side. Neither order is wrong, so neither counts as a difference; any other order does.

`align_ties` prepares the shadow list for the ordinary diff. Runs of adjacent items with equal
keys are read off the primary list; where the shadow list holds the same key at the same
positions, its items there are rearranged into the primary's order: an item equal to a primary
item (as JSON) goes to that item's place, then an item with the same `identity` (the same item,
changed: the diff reports it field by field). Items are only ever moved within a set of
positions where every item on both sides has one and the same key, so an order difference
between items whose keys differ is never hidden. Paths in the differences are then the
primary's positions, and a difference's shadow value is the shadow's after the rearrangement
(the shadow's body as answered is in the sample).

What is left unpaired in a run is kept in place (the diff reports it) unless the run touches an
edge of the page that a page cut may lie next to (`Sorted.cut_edges`): a cut can fall inside a
tie, and then each side may hold other members of it (even when the page shows only one
member of the tie, its first or its last item: a run of one there). Those members are not compared; they
make one `tie` difference per run (the run's first position; primary and shadow: the members
only that side holds, by `identity` when there is one). A pair whose only differences are
`tie`s is `expected` with `known` = `PAGE_EDGE_TIE`: counted apart from matches, never
silently matched, and no noise learning is needed for it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Difference
from .paths import Segment, format_path
from .rules import Sorted

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


@dataclass(frozen=True)
class Aligned:
    """What `align_ties` did. `shadow` is the shadow body to diff (the original when nothing
    moved); `moved`: tied items were rearranged; `ties`: the `tie` differences at cut edges;
    `key`: the fields of the sort key (for reasons in the verdict)."""

    shadow: Any
    moved: bool
    ties: tuple[Difference, ...]
    key: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.moved or bool(self.ties)


def _at(body: Any, segments: Sequence[Segment]) -> Any:
    for segment in segments:
        if isinstance(segment, str) and isinstance(body, dict) and segment in body:
            body = body[segment]
        elif isinstance(segment, int) and isinstance(body, list) and 0 <= segment < len(body):
            body = body[segment]
        else:
            return None
    return body


def _replaced(body: Any, segments: Sequence[Segment], value: Any) -> Any:
    """A shallow copy of `body` with the node at `segments` replaced (the parsed body is not
    changed: the caller may still read it)."""
    if not segments:
        return value
    head, rest = segments[0], segments[1:]
    copy: Any = dict(body) if isinstance(body, dict) else list(body)
    copy[head] = _replaced(body[head], rest, value)
    return copy


def _key(item: Any, fields: tuple[str, ...]) -> str | None:
    """The item's sort key as rendered (its JSON encoding), None for NULL (absent or null)."""
    for name in fields:
        value = item.get(name)
        if value is not None:
            return _ENCODE(value)
    return None


def _runs(keys: Sequence[str | None], cut_start: bool, cut_end: bool) -> list[tuple[int, int]]:
    """Maximal runs `[start, end)` of two or more adjacent equal keys, and a lone item at an
    edge a page cut may lie next to: the tie it belongs to may go on past the cut, so it is a
    run of one whose other members are on another page (and may differ on each side)."""
    out = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            if i - start > 1 or (cut_start and start == 0) or (cut_end and i == len(keys)):
                out.append((start, i))
            start = i
    return out


def _pair(primary: Sequence[Any], shadow: Sequence[Any], identity: str | None) -> list[int | None]:
    """For each primary item of a run, the index of its shadow counterpart: an equal item
    first, then one with the same identity; None when there is none."""
    encoded = [_ENCODE(item) for item in shadow]
    free: dict[str, list[int]] = defaultdict(list)
    for j, text in enumerate(encoded):
        free[text].append(j)
    paired: list[int | None] = []
    taken: set[int] = set()
    for item in primary:
        candidates = free.get(_ENCODE(item))
        equal = candidates.pop(0) if candidates else None
        if equal is not None:
            taken.add(equal)
        paired.append(equal)
    if identity is not None:
        by_id: dict[str, list[int]] = defaultdict(list)
        for j, item in enumerate(shadow):
            if j not in taken and item.get(identity) is not None:
                by_id[_ENCODE(item[identity])].append(j)
        for i, item in enumerate(primary):
            if paired[i] is None and item.get(identity) is not None:
                candidates = by_id.get(_ENCODE(item[identity]))
                if candidates:
                    j = candidates.pop(0)
                    paired[i] = j
                    taken.add(j)
    return paired


def _member(item: Any, identity: str | None) -> Any:
    return item.get(identity, item) if identity is not None else item


def align_ties(primary: Any, shadow: Any, rule: Sorted, query: Mapping[str, Sequence[str]]) -> Aligned | None:
    """The shadow body with its tied items in the primary's order (see the module's docstring);
    None when the rule does not apply (no such list on both sides, items that are not objects,
    lists of other lengths, a key the items do not show) or nothing was tied."""
    fields = rule.key_fields(query)
    if fields is None:
        return None
    left, right = _at(primary, rule.items), _at(shadow, rule.items)
    if not (isinstance(left, list) and isinstance(right, list)) or len(left) != len(right) or len(left) < 2:
        return None
    if not all(isinstance(item, dict) for item in (*left, *right)):
        return None
    left_keys = [_key(item, fields) for item in left]
    right_keys = [_key(item, fields) for item in right]
    cut_start, cut_end = rule.cut_edges(query, len(left))
    out = list(right)
    moved = False
    ties: list[Difference] = []
    for start, end in _runs(left_keys, cut_start, cut_end):
        if any(k != left_keys[start] for k in right_keys[start:end]):
            continue  # the shadow has other keys here: the diff reports them as they are
        run = right[start:end]
        paired = _pair(left[start:end], run, rule.identity)
        unpaired = [j for j in range(len(run)) if j not in set(paired)]
        at_edge = (cut_start and start == 0) or (cut_end and end == len(left))
        if unpaired and at_edge:
            only_primary = [_member(left[start + i], rule.identity) for i, j in enumerate(paired) if j is None]
            only_shadow = [_member(run[j], rule.identity) for j in unpaired]
            segments = [*rule.items, start]
            ties.append(Difference(format_path(segments), "tie", only_primary, only_shadow))
        rest = iter(unpaired)
        for i, j in enumerate(paired):
            if j is None and at_edge:
                out[start + i] = left[start + i]  # another member of the tie: not compared
                continue
            source = j if j is not None else next(rest)
            out[start + i] = run[source]
            moved = moved or source != i
    if not moved and not ties:
        return None
    return Aligned(_replaced(shadow, rule.items, out), moved, tuple(ties), fields)
