"""Runs the generator's operations against both real sides and judges every answer.

Reads go byte for byte to both sides. A write goes to twin sessions: agno gets it for
`L-<run>-<n>`, native for `N-<run>-<n>`; the two answers are compared once the twin ids are one
token and the write clock is masked (tests/contract/differential.py: the only normalisations).
After a write, both twins are read through both sides: each side must read each twin the same
(exact), and the two twins must read the same (normalised).

Every pair is judged by `comparator.compare` with the project's rules (config/comparator.yaml,
route labels from `agentos_session.sessions_api.route_label`), so a registered known difference
is `expected`; `mismatch` and `error` are findings, grouped by route and status pair with the
shortest example of each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agentos_session.sessions_api import route_label
from comparator import Comparison, Request, Response, Rules, compare
from tests.contract.differential import mask_clock, normalize
from tests.fuzz.generator import TWIN_MARK, Generator, Op, enc

RULES_PATH = Path(__file__).resolve().parents[2] / "config" / "comparator.yaml"
_MARK_JSON = json.dumps(TWIN_MARK)[1:-1]  # how the mark appears inside a JSON string


@dataclass
class Finding:
    route: str
    legacy_status: int
    native_status: int
    count: int
    example: str  # the shortest request of its kind
    detail: str


@dataclass
class Report:
    operations: int = 0
    comparisons: int = 0
    results: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)  # known-difference id -> count
    findings: dict[tuple[str, int, int], Finding] = field(default_factory=dict)
    ties: int = 0  # list pages matching once rows with equal sort keys are compared unordered
    diverged: int = 0  # writes to twins that a known difference had already made differ

    def add(self, comparison: Comparison, request: Request, legacy: Response, native: Response) -> None:
        self.comparisons += 1
        self.results[comparison.result] = self.results.get(comparison.result, 0) + 1
        if comparison.result == "match" and comparison.reason:
            # Sessions with equal sort keys (twins created in one second) in another order on
            # each side: the comparator's own rule (comparator/ties.py, config/comparator.yaml's
            # `sorted`), the one the gateway judges shadow traffic by; counted to be seen.
            self.ties += 1
        if comparison.result == "expected" and comparison.known:
            self.expected[comparison.known] = self.expected.get(comparison.known, 0) + 1
        if comparison.result not in ("mismatch", "error"):
            return
        key = (comparison.route or "?", legacy.status, native.status)
        example = _describe(request)
        detail = f"{comparison.reason or ''} {comparison.differences[:3]}\n  legacy: {legacy.body[:300]!r}\n"
        detail += f"  native: {native.body[:300]!r}"
        found = self.findings.get(key)
        if found is None:
            self.findings[key] = Finding(key[0], key[1], key[2], 1, example, detail)
            return
        found.count += 1
        if len(example) < len(found.example):
            found.example, found.detail = example, detail

    def table(self) -> str:
        lines = [
            f"{self.operations} operations, {self.comparisons} comparisons: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.results.items())),
        ]
        if self.ties:
            lines.append(f"pages matching once equal sort keys are compared unordered: {self.ties}")
        if self.diverged:
            lines.append(f"writes to twins a known difference had made differ (not findings): {self.diverged}")
        if self.expected:
            lines.append("known differences: " + ", ".join(f"{k} {v}" for k, v in sorted(self.expected.items())))
        if self.findings:
            lines.append(f"{'route':<42} {'legacy':>6} {'native':>6} {'count':>5}  example")
            for f in sorted(self.findings.values(), key=lambda f: (f.route, f.legacy_status, f.native_status)):
                lines.append(f"{f.route:<42} {f.legacy_status:>6} {f.native_status:>6} {f.count:>5}  {f.example}")
                lines.append("    " + f.detail.replace("\n", "\n    "))
        return "\n".join(lines)


def _describe(request: Request) -> str:
    body = request.body.decode("utf-8", "backslashreplace")
    if len(body) > 200:
        body = body[:200] + f"...({len(request.body)} bytes)"
    target = request.target if len(request.target) < 300 else request.target[:300] + f"...({len(request.target)})"
    return f"{request.method} {target}" + (f" {body}" if body else "")


class Runner:
    def __init__(self, legacy: str, native: str, seed_value: int, timeout: float = 60) -> None:
        self.legacy, self.native, self.seed = legacy, native, seed_value
        self.timeout = timeout
        # One client per side: each side's requests come from one thread, one connection.
        self.clients = {legacy: httpx.Client(timeout=timeout), native: httpx.Client(timeout=timeout)}
        self.rules = Rules.load(RULES_PATH, label=route_label)
        self.gen = Generator(seed_value)
        self.report = Report()
        self.pool = ThreadPoolExecutor(2)  # both sides at once: one request per side in flight
        # Twins a registered known difference made differ on purpose (agno lost or refused a
        # write native made): each side still reads each of them the same, but not each other.
        self.diverged: set[int] = set()

    # ---- ids -------------------------------------------------------------------------------

    def twin_ids(self, twin: int) -> tuple[str, str]:
        base = f"fz{self.seed}-{twin}"
        return f"L-{base}", f"N-{base}"

    def full_ids(self, twin: int) -> tuple[str, str]:
        suffix = self.gen.suffixes[twin]
        lid, nid = self.twin_ids(twin)
        return lid + suffix, nid + suffix

    # ---- sending ---------------------------------------------------------------------------

    def send(self, base: str, method: str, target: str, body: bytes | None, ctype: str | None) -> Response:
        headers = {"Content-Type": ctype} if ctype and body is not None else {}
        try:
            r = self.clients[base].request(method, base + target, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._fresh(base)
            return Response(0, {}, b"", error=repr(exc))
        if r.status_code >= 500:
            # uvicorn closes a keep-alive connection after an unhandled exception (agno's 500)
            # without saying so; the next request must not be sent on it.
            self._fresh(base)
        return Response(r.status_code, dict(r.headers.multi_items()), r.content)

    def _fresh(self, base: str) -> None:
        self.clients[base].close()
        self.clients[base] = httpx.Client(timeout=self.timeout)

    def pair(
        self, method: str, ltarget: str, ntarget: str, lbody: bytes | None, nbody: bytes | None, ctype: str | None
    ) -> tuple[Response, Response]:
        lf = self.pool.submit(self.send, self.legacy, method, ltarget, lbody, ctype)
        nf = self.pool.submit(self.send, self.native, method, ntarget, nbody, ctype)
        return _as(lf.result(), "legacy"), _as(nf.result(), "native")

    def judge(self, request: Request, legacy: Response, native: Response, diverged: bool = False) -> Comparison:
        comparison = compare(legacy, native, self.rules, request=request)
        if diverged and comparison.result == "mismatch":
            # A write to twins an earlier known difference made differ (agno kept a row native
            # refused, or lost a write native made): their answers differ by that difference.
            self.report.diverged += 1
            return comparison
        self.report.add(comparison, request, legacy, native)
        return comparison

    # ---- operations ------------------------------------------------------------------------

    def run(self, count: int, progress: Callable[[int], None] | None = None) -> Report:
        for i in range(count):
            op = self.gen.op()
            if op.kind == "read":
                self.read(op)
            else:
                self.write(op)
            self.report.operations += 1
            if progress:
                progress(i)
        return self.report

    def read(self, op: Op) -> None:
        legacy, native = self.pair(op.method, op.path, op.path, op.body, op.body, op.content_type)
        self.judge(Request(op.method, op.path, body=op.body or b""), legacy, native)

    def write(self, op: Op) -> None:
        assert op.twin is not None
        lid, nid = self.twin_ids(op.twin)
        lfull, nfull = self.full_ids(op.twin)

        def side(text: str | None, twin_id: str, full: str, path: bool) -> str | None:
            if text is None:
                return None
            out = text.replace("{id}", enc(full)) if path else text
            return out.replace(_MARK_JSON, json.dumps(twin_id)[1:-1])

        lbody = side(op.body.decode("utf-8", "surrogateescape"), lid, lfull, False) if op.body is not None else None
        nbody = side(op.body.decode("utf-8", "surrogateescape"), nid, nfull, False) if op.body is not None else None
        ltarget, ntarget = side(op.path, lid, lfull, True), side(op.path, nid, nfull, True)
        assert ltarget is not None and ntarget is not None
        lraw = lbody.encode("utf-8", "surrogateescape") if lbody is not None else None
        nraw = nbody.encode("utf-8", "surrogateescape") if nbody is not None else None
        legacy, native = self.pair(op.method, ltarget, ntarget, lraw, nraw, op.content_type)
        swap = {lfull: "<id>", lid: "<id>"}, {nfull: "<id>", nid: "<id>"}
        if op.kind == "create" and legacy.status == native.status == 201:
            # A create without a session_id gets a fresh uuid on each side: one more twin id.
            for answer, ids in zip((legacy, native), swap, strict=True):
                generated = json.loads(answer.body).get("session_id")
                if isinstance(generated, str) and generated not in ids:
                    ids[generated] = "<id>"
        request = Request(op.method, ltarget, body=lraw or b"")
        diverged = op.twin in self.diverged
        comparison = self.judge(request, _norm(legacy, swap[0], "legacy"), _norm(native, swap[1], "native"), diverged)
        if comparison.result != "match":
            self.diverged.add(op.twin)
        if not (400 <= legacy.status < 500 and 400 <= native.status < 500) or op.twin in self.diverged:
            # Both sides refusing alike (a 4xx each) is read back only when the twins already
            # differ; every write that went through, failed (5xx) or answered apart is.
            self.cross_read(op.twin)

    def cross_read(self, twin: int) -> None:
        """Each side reads each twin the same; the twins read the same (ids swapped)."""
        lfull, nfull = self.full_ids(twin)
        lid, nid = self.twin_ids(twin)
        answers = {}
        for full in (lfull, nfull):
            target = f"/sessions/{enc(full)}"
            legacy, native = self.pair("GET", target, target, None, None, None)
            self.judge(Request("GET", target), legacy, native)
            answers[full] = legacy
        if twin in self.diverged:
            return
        left = _norm(answers[lfull], {lfull: "<id>", lid: "<id>"}, "legacy")
        right = _norm(answers[nfull], {nfull: "<id>", nid: "<id>"}, "native")
        self.judge(Request("GET", f"/sessions/{enc(lfull)}"), left, right)

    def close(self) -> None:
        self.pool.shutdown()
        for client in self.clients.values():
            client.close()


def _as(response: Response, side: str) -> Response:
    return Response(response.status, response.headers, response.body, side, response.error)  # type: ignore[arg-type]


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _norm(response: Response, swap: dict[str, str], side: str) -> Response:
    if response.error:
        return _as(response, side)
    # Ids appear JSON-escaped in bodies: swap both spellings (longest first).
    pairs = {}
    for old, new in swap.items():
        pairs[json.dumps(old)[1:-1]] = new
        if _encodable(old):
            pairs[old] = new
    ordered = dict(sorted(pairs.items(), key=lambda kv: -len(kv[0])))
    return _as(normalize(response, ordered, _mask_run_clock), side)


def _mask_run_clock(body: bytes) -> bytes:
    """The twins' own timestamps: each side's write clock, seconds apart when a later operation
    reads them (`normalize` masks the last 5 s only). The seed data is days older than an
    hour, so its timestamps stay compared."""
    return mask_clock(body, window_s=3600)
