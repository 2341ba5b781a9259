"""`compare(primary, shadow, rules)`: the verdict on one pair of answers.

Three steps, cheapest first. (1) Status, the compared headers and the body bytes: equal bytes
end there, without parsing. (2) Both bodies parse; if they are equal value for value *and*
re-encode to the same text, the only difference is serialization (key order, spacing, number
spelling), reported as one `order` difference at `$`. (3) Otherwise deepdiff walks both trees,
guided by `_Guide`, a deepdiff operator that skips equal subtrees (so cost follows the
differences, not the body size), skips ignored paths, reports key-order and array-order
differences (which deepdiff does not see) and array lengths, and by the rules' unordered arrays.
deepdiff is started at the smallest subtrees that hold the differences (`_differing_subtrees`).
"""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import Executor
from typing import Any, Optional

from deepdiff import DeepDiff
from deepdiff.helper import CannotCompare, notpresent
from deepdiff.operator import BaseOperatorPlus

from .model import ABSENT, Comparison, Difference, Kind, Request, Response
from .paths import ROOT, Segment, format_path, format_template
from .rules import DEFAULT_RULES, RouteRules, Rules, Unordered

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

    def unordered(self, level: Any) -> Optional[Unordered]:
        if not self.rules.unordered:
            return None
        segments = self.segments(level)
        return self.rules.unordered_at(format_path(segments), format_template(segments))

    def match(self, level: Any) -> bool:
        return True

    def normalize_value_for_hashing(self, parent: Any, obj: Any) -> Any:
        return obj

    def give_up_diffing(self, level: Any, diff_instance: Any) -> bool:
        t1, t2 = level.t1, level.t2
        if _same(t1, t2):
            return True
        if self.rules.ignore:
            segments = self.segments(level)
            probe = Difference(format_path(segments), "value", template=format_template(segments))
            if self.rules.ignores(probe):
                return True
        if isinstance(t1, dict) and isinstance(t2, dict):
            if self.rules.key_order and [k for k in t1 if k in t2] != [k for k in t2 if k in t1]:
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
    from .paths import parse_path

    if difference.path.startswith(":"):
        return (0, difference.path)
    return (1, tuple((0, s, "") if isinstance(s, int) else (1, 0, s) for s in parse_path(difference.path)), difference.kind)


def _excerpt(a: bytes, b: bytes, width: int = 40) -> tuple[str, str]:
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    lo = max(0, i - width)
    return a[lo:i + width].decode(errors="replace"), b[lo:i + width].decode(errors="replace")


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
        children: list[Segment]
        if isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b):
            children = [k for k in a if not _same(a[k], b[k])]
        elif (isinstance(a, list) and isinstance(b, list) and len(a) == len(b)
              and not (rules.unordered and rules.unordered_at(format_path(prefix), format_template(prefix)))):  # fmt: skip
            children = [i for i in range(len(a)) if not _same(a[i], b[i])]
            if len(children) > 1 and sorted(_ENCODE(a[i]) for i in children) == sorted(_ENCODE(b[i]) for i in children):
                found.append((prefix, a, b))  # a permutation: `_Guide` reports one `order` for the list
                continue
        else:
            found.append((prefix, a, b))
            continue
        stack.extend((prefix + [c], a[c], b[c]) for c in reversed(children))  # type: ignore[index]
    return found


def diff_bodies(primary: Any, shadow: Any, rules: RouteRules) -> list[Difference]:
    """The differences between two parsed bodies (pure; no serialization check)."""
    if _same(primary, shadow):
        return []
    out: list[Difference] = []
    for prefix, left, right in _differing_subtrees(primary, shadow, rules):
        out.extend(_deepdiff(prefix, left, right, rules))
    return out


def _deepdiff(prefix: list[Segment], primary: Any, shadow: Any, rules: RouteRules) -> list[Difference]:
    guide = _Guide(rules, prefix)
    keyed = any(u.key for u in rules.unordered)
    options: dict[str, Any] = {"view": "tree", "custom_operators": [guide], "ignore_nan_inequality": True}
    if rules.unordered:
        options["ignore_order_func"] = guide.ignore_order
    if keyed:
        options["iterable_compare_func"] = guide.same_item
    if rules.float_tolerance:
        options["math_epsilon"] = rules.float_tolerance
        options["ignore_numeric_type_changes"] = True
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
            if kind == "length":
                left, right = len(level.t1), len(level.t2)
            elif report_type == "key_order":
                left, right = list(level.t1), list(level.t2)
            else:
                left, right = _value(level.t1), _value(level.t2)
            out.append(Difference(format_path(segments), kind, left, right, format_template(segments)))
    return out


def compare(primary: Response, shadow: Response, rules: Optional[Rules] = None, *,
            request: Optional[Request] = None) -> Comparison:  # fmt: skip
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

    if primary.body != shadow.body:
        parsed = []
        for label, response in (("primary", primary), ("shadow", shadow)):
            try:
                parsed.append(json.loads(response.body))
            except ValueError:
                return Comparison("error", tuple(differences), route, reason=f"{label} body is not JSON")
        body_differences = diff_bodies(parsed[0], parsed[1], route_rules)
        if not body_differences and route_rules.key_order and _ENCODE(parsed[0]) == _ENCODE(parsed[1]):
            # Same values, same key order, different bytes: spacing, escapes or number spelling.
            left, right = _excerpt(primary.body, shadow.body)
            body_differences.append(Difference(ROOT, "order", left, right))
        differences.extend(body_differences)

    if route_rules.ignore:
        differences = [d for d in differences if not route_rules.ignores(d)]
    if not differences:
        return Comparison("match", (), route)
    differences.sort(key=_sort_key)
    known = rules.explain(route, request, primary, shadow, differences)
    if known is not None:
        return Comparison("expected", tuple(differences), route, known=known.id)
    return Comparison("mismatch", tuple(differences), route)


def _absent(value: Optional[str]) -> Any:
    return ABSENT if value is None else value


async def compare_async(primary: Response, shadow: Response, rules: Optional[Rules] = None, *,
                        request: Optional[Request] = None, executor: Optional[Executor] = None,
                        offload_bytes: int = OFFLOAD_BYTES) -> Comparison:  # fmt: skip
    """`compare` for async callers: differing bodies of `offload_bytes` or more are compared in
    `executor` (the loop's default thread pool if None) so the event loop keeps serving.
    Byte-equal bodies never leave the loop: their check is one memcmp."""
    if primary.body == shadow.body or max(len(primary.body), len(shadow.body)) < offload_bytes:
        return compare(primary, shadow, rules, request=request)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(compare, primary, shadow, rules, request=request))
