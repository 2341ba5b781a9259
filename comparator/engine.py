"""`compare(primary, shadow, rules)`: the verdict on one pair of answers.

Cheapest first:

1. Status, the compared headers, and the body bytes: byte-equal bodies end there, unparsed.
2. Both bodies parse. `_differing_subtrees` descends through the parts that agree in shape to
   the smallest subtrees that differ, so the cost follows the differences, not the body size.
3. deepdiff diffs each of those subtrees. `_Guide`, a deepdiff operator, runs at every node
   deepdiff visits: it skips equal and ignored subtrees, and reports what deepdiff does not
   see (key order, a permuted array, array lengths, `0.0` vs `-0.0`, `true` vs `1`). The rules'
   unordered arrays go to deepdiff's own order-free matching.
4. Same values with the same key order but other bytes (spacing, escapes, number spelling)
   are one `order` difference at `$`.

A route with a `sorted` rule first has the shadow's tied items (equal sort keys) put in the
primary's order (`comparator.ties`): reordered ties alone are a `match` (with a `reason`), and a
tied run at a page edge holding other members on each side is a `tie` difference: a pair with
only those is `expected`, `known` = `PAGE_EDGE_TIE`, counted apart and never a silent match.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
from concurrent.futures import Executor
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import CannotCompare, notpresent
from deepdiff.operator import BaseOperatorPlus

from .model import ABSENT, Comparison, Difference, Kind, Request, Response
from .paths import ROOT, Segment, format_path, format_template, parse_path
from .rules import DEFAULT_RULES, PAGE_EDGE_TIE, RouteRules, Rules, Unordered
from .ties import Aligned, align_ties

# Bodies at least this large (and not byte-equal) are compared in an executor by `compare_async`.
OFFLOAD_BYTES = 64 * 1024

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode

_KINDS: dict[str, Kind] = {
    "values_changed": "value",
    "type_changes": "type",
    "dictionary_item_removed": "missing",
    "iterable_item_removed": "missing",
    "dictionary_item_added": "extra",
    "iterable_item_added": "extra",
    "iterable_item_moved": "order",
    "key_order": "order",
    "array_order": "order",
    "length": "length",
}


def _same(a: Any, b: Any) -> bool:
    """Strict JSON equality: Python's `==` alone says 1 == 1.0 == True and ignores key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        return a == b and _ENCODE(a) == _ENCODE(b)
    if a != a:  # NaN (json.loads accepts it) equals itself here
        return b != b
    if isinstance(a, float) and a == 0.0:  # 0.0 == -0.0, but they are different JSON
        return b == 0.0 and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


class _Guide(BaseOperatorPlus):
    """deepdiff's hook into its own walk, called at every level before deepdiff descends."""

    def __init__(self, rules: RouteRules, prefix: list[Segment]) -> None:
        self.rules = rules
        self.prefix = prefix
        self._segments: dict[int, list[Segment]] = {}

    def segments(self, level: Any, use_t2: bool = False) -> list[Segment]:
        """The level's path from the body's root (deepdiff's own starts at the zoomed node)."""
        if use_t2:
            return self.prefix + level.path(output_format="list", use_t2=True)
        key = id(level)
        if key not in self._segments:
            self._segments[key] = self.prefix + level.path(output_format="list")
        return self._segments[key]

    def unordered(self, level: Any) -> Unordered | None:
        if not self.rules.unordered:
            return None
        segments = self.segments(level)
        return self.rules.unordered_at(format_path(segments), format_template(segments))

    def match(self, level: Any) -> bool:
        return True

    def normalize_value_for_hashing(self, parent: Any, obj: Any) -> Any:
        return obj

    def _ignored(self, segments: list[Segment]) -> bool:
        probe = Difference(format_path(segments), "value", template=format_template(segments))
        return self.rules.ignores(probe)

    def _ordered_keys(self, level: Any, d: dict[str, Any], other: dict[str, Any]) -> list[str]:
        """The keys whose order counts: those on both sides, less the ignored ones."""
        keys = [k for k in d if k in other]
        if self.rules.ignore:
            base = self.segments(level)
            keys = [k for k in keys if not self._ignored(base + [k])]
        return keys

    def give_up_diffing(self, level: Any, diff_instance: Any) -> bool:
        t1, t2 = level.t1, level.t2
        if _same(t1, t2):
            return True
        if self.rules.ignore and self._ignored(self.segments(level)):
            return True
        if type(t1) is not type(t2) and (isinstance(t1, bool) or isinstance(t2, bool)):
            diff_instance.custom_report_result("type_changes", level)  # deepdiff groups bool with int
            return True
        if isinstance(t1, float) and isinstance(t2, float) and t1 == t2 and not self.rules.float_tolerance:
            diff_instance.custom_report_result("values_changed", level)  # 0.0 vs -0.0: equal to Python
            return True
        if isinstance(t1, dict) and isinstance(t2, dict):
            if self.rules.key_order and self._ordered_keys(level, t1, t2) != self._ordered_keys(level, t2, t1):
                diff_instance.custom_report_result("key_order", level)
        elif isinstance(t1, list) and isinstance(t2, list):
            if len(t1) != len(t2):
                diff_instance.custom_report_result("length", level)
            elif self.unordered(level) is None and sorted(map(_ENCODE, t1)) == sorted(map(_ENCODE, t2)):
                diff_instance.custom_report_result("array_order", level)
                return True  # a permutation: one `order` difference, not one per index
        return False

    def ignore_order(self, level: Any) -> bool:
        return self.unordered(level) is not None

    def same_item(self, x: Any, y: Any, level: Any = None) -> bool:
        rule = self.unordered(level) if level is not None else None
        if rule is None or rule.key is None or not (isinstance(x, dict) and isinstance(y, dict)):
            raise CannotCompare()
        if rule.key not in x or rule.key not in y:
            raise CannotCompare()
        return bool(x[rule.key] == y[rule.key])


def _value(v: Any) -> Any:
    return ABSENT if v is notpresent else v


def _sort_key(difference: Difference) -> tuple[Any, ...]:
    if difference.path.startswith(":"):
        return (0, difference.path)
    return (
        1,
        tuple((0, s, "") if isinstance(s, int) else (1, 0, s) for s in parse_path(difference.path)),
        difference.kind,
    )


def _excerpt(a: bytes, b: bytes, width: int = 40) -> tuple[str, str]:
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    lo = max(0, i - width)
    return a[lo : i + width].decode(errors="replace"), b[lo : i + width].decode(errors="replace")


def _differing_subtrees(primary: Any, shadow: Any, rules: RouteRules) -> list[tuple[list[Segment], Any, Any]]:
    """Where deepdiff should look: descend through containers that agree in shape (the same
    keys in the same order; or the same length, not a permutation, not an unordered array)
    into the children that differ, and stop where shapes disagree or at scalars. deepdiff's
    cost is per node it visits, so it is started at each of these small subtrees instead of
    at the root: the cost follows the differences, not the size of the body. This decides no
    difference itself; deepdiff and `_Guide` report every one."""
    found: list[tuple[list[Segment], Any, Any]] = []
    stack: list[tuple[list[Segment], Any, Any]] = [([], primary, shadow)]
    while stack:
        prefix, a, b = stack.pop()
        if prefix and rules.ignore:
            probe = Difference(format_path(prefix), "value", template=format_template(prefix))
            if rules.ignores(probe):
                continue
        children: list[Any]  # keys of a dict or indices of a list: both are path segments
        if isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b):
            children = [k for k in a if not _same(a[k], b[k])]
        elif (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and not (rules.unordered and rules.unordered_at(format_path(prefix), format_template(prefix)))
        ):
            children = [i for i in range(len(a)) if not _same(a[i], b[i])]
            if len(children) > 1 and sorted(_ENCODE(a[i]) for i in children) == sorted(_ENCODE(b[i]) for i in children):
                found.append((prefix, a, b))  # a permutation: `_Guide` reports one `order` for the list
                continue
        else:
            found.append((prefix, a, b))
            continue
        stack.extend((prefix + [c], a[c], b[c]) for c in reversed(children))
    return found


def diff_bodies(primary: Any, shadow: Any, rules: RouteRules) -> list[Difference]:
    """The differences between two parsed bodies (pure; no serialization check)."""
    if _same(primary, shadow):
        return []
    out: list[Difference] = []
    for prefix, left, right in _differing_subtrees(primary, shadow, rules):
        found = _deepdiff(prefix, left, right, rules)
        if not found and rules.key_order and isinstance(left, list) and isinstance(right, list):
            found = _element_key_order(prefix, left, right)
        out.extend(found)
    return out


_ENCODE_SORTED = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, sort_keys=True
).encode


def _element_key_order(prefix: list[Segment], primary: list[Any], shadow: list[Any]) -> list[Difference]:
    """deepdiff pairs the elements of an unordered array by hashes that ignore key order, so
    elements that differ only in key order look equal to it. Same elements once keys are
    sorted, different elements as written: the difference is key order inside elements."""
    if sorted(map(_ENCODE, primary)) == sorted(map(_ENCODE, shadow)):
        return []
    if sorted(map(_ENCODE_SORTED, primary)) != sorted(map(_ENCODE_SORTED, shadow)):
        return []  # something else differs too: what rules explain (ignored paths, tolerance)
    return [Difference(format_path(prefix), "order", primary, shadow, format_template(prefix))]


def _deepdiff(prefix: list[Segment], primary: Any, shadow: Any, rules: RouteRules) -> list[Difference]:
    guide = _Guide(rules, prefix)
    keyed = any(u.key for u in rules.unordered)
    # threshold_to_diff_deeper=0: deepdiff otherwise reports two objects sharing under a third
    # of their keys as one changed value, hiding which keys came and went.
    options: dict[str, Any] = {
        "view": "tree",
        "custom_operators": [guide],
        "ignore_nan_inequality": True,
        "threshold_to_diff_deeper": 0,
    }
    if rules.unordered:
        options["ignore_order_func"] = guide.ignore_order
    if keyed:
        options["iterable_compare_func"] = guide.same_item
    if rules.float_tolerance:
        options["math_epsilon"] = rules.float_tolerance
        options["ignore_type_in_groups"] = [(int, float)]
    tree = DeepDiff(primary, shadow, **options)
    out = []
    for report_type, levels in tree.items():
        kind = _KINDS.get(report_type)
        if kind is None:
            continue
        for level in levels:
            if report_type == "iterable_item_moved" and level.up is not None and guide.unordered(level.up):
                continue
            segments = guide.segments(level, use_t2=kind == "extra")
            left: Any
            right: Any
            if kind == "length":
                left, right = len(level.t1), len(level.t2)
            elif report_type == "key_order":
                left, right = list(level.t1), list(level.t2)
            else:
                left, right = _value(level.t1), _value(level.t2)
            out.append(Difference(format_path(segments), kind, left, right, format_template(segments)))
    return out


def compare(
    primary: Response, shadow: Response, rules: Rules | None = None, *, request: Request | None = None
) -> Comparison:
    """Pure and synchronous. `request` gives the route (for per-route rules) and lets known
    differences recognise their trigger; without it only the default rules apply."""
    rules = rules or DEFAULT_RULES
    route = rules.route_of(request)
    route_rules = rules.for_route(route)
    failed = [f"{name} failed: {r.error}" for name, r in (("primary", primary), ("shadow", shadow)) if r.error]
    if failed:
        return Comparison("error", (), route, reason="; ".join(failed))

    differences: list[Difference] = []
    if primary.status != shadow.status:
        differences.append(Difference(":status", "status", primary.status, shadow.status))
    for name in route_rules.headers:
        left, right = primary.header(name), shadow.header(name)
        if left != right:
            differences.append(Difference(f":headers.{name}", "header", _absent(left), _absent(right)))

    aligned: Aligned | None = None
    if primary.body != shadow.body:
        parsed = []
        for label, response in (("primary", primary), ("shadow", shadow)):
            try:
                parsed.append(json.loads(response.body))
            except ValueError:
                # A known difference may name a side whose answer has no JSON body (a 204):
                # its statuses alone explain the pair when it bounds no body paths.
                known = rules.explain(route, request, primary, shadow, differences)
                if known is not None and not known.paths and any(d.kind == "status" for d in differences):
                    return Comparison("expected", tuple(sorted(differences, key=_sort_key)), route, known=known.id)
                return Comparison("error", tuple(differences), route, reason=f"{label} body is not JSON")
        if route_rules.sorted is not None and request is not None:
            aligned = align_ties(parsed[0], parsed[1], route_rules.sorted, request.query)
        shadow_body = parsed[1] if aligned is None else aligned.shadow
        body_differences = diff_bodies(parsed[0], shadow_body, route_rules)
        if not body_differences and route_rules.key_order and _ENCODE(parsed[0]) == _ENCODE(shadow_body):
            if _other_bytes(primary.body, shadow.body, aligned):
                # Same values, same key order, different bytes: spacing, escapes or number spelling.
                left, right = _excerpt(primary.body, shadow.body)
                body_differences.append(Difference(ROOT, "order", left, right))
        differences.extend(body_differences)

    if route_rules.ignore:
        differences = [d for d in differences if not route_rules.ignores(d)]
    ties = tuple(t for t in aligned.ties if not route_rules.ignores(t)) if aligned is not None else ()
    if not differences and not ties:
        return Comparison("match", (), route, reason=_reordered(aligned))
    differences.sort(key=_sort_key)
    # A known difference explains what differs besides the ties (those the page cut explains).
    known = rules.explain(route, request, primary, shadow, differences) if differences else None
    everything = tuple(sorted((*differences, *ties), key=_sort_key))
    if known is not None:
        return Comparison("expected", everything, route, known=known.id)
    if not differences:
        return Comparison("expected", everything, route, known=PAGE_EDGE_TIE, reason=_cut_reason(ties, aligned))
    return Comparison("mismatch", everything, route)


def _other_bytes(primary: bytes, shadow: bytes, aligned: Aligned | None) -> bool:
    """Whether bodies whose values are equal are spelled differently. Reordered ties move
    whole items, so the bytes stay the same multiset: any other count of some byte is a
    spacing, escape or number spelling difference. Past a page cut's tie the members differ,
    and so do the bytes: spelling is not judged there."""
    if aligned is None:
        return True
    if aligned.ties:
        return False
    return sorted(primary) != sorted(shadow)


def _reordered(aligned: Aligned | None) -> str | None:
    if aligned is None or not aligned.moved:
        return None
    return f"tied items (equal {'/'.join(aligned.key) or 'unsorted'}) listed in another order"


def _cut_reason(ties: tuple[Difference, ...], aligned: Aligned | None) -> str:
    key = "/".join(aligned.key) if aligned is not None else ""
    return (
        f"a page cut falls inside a tie (equal {key or 'unsorted'}) at {', '.join(d.path for d in ties)}: "
        "each side holds other members of it"
    )


def _absent(value: str | None) -> Any:
    return ABSENT if value is None else value


async def compare_async(
    primary: Response,
    shadow: Response,
    rules: Rules | None = None,
    *,
    request: Request | None = None,
    executor: Executor | None = None,
    offload_bytes: int = OFFLOAD_BYTES,
) -> Comparison:
    """`compare` for async callers: differing bodies of `offload_bytes` or more are compared in
    `executor` (the loop's default thread pool if None) so the event loop keeps serving.
    Byte-equal bodies never leave the loop: their check is one memcmp."""
    if primary.body == shadow.body or max(len(primary.body), len(shadow.body)) < offload_bytes:
        return compare(primary, shadow, rules, request=request)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(compare, primary, shadow, rules, request=request))
