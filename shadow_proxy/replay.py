"""`agentos-session replay`: send recorded requests to both sides again and report parity.

    agentos-session replay FILE --legacy URL --native URL [--rules FILE] [--report FILE.md|.json]
    agentos-session replay --from-mismatches GATEWAY_URL [--route TEMPLATE] --legacy URL --native URL ...

The requests come from a recording (the JSONL the gateway's `Recorder` writes, `shadow.record`
in gateway.yaml) or from the gateway's stored mismatch samples (`GET /shadow/mismatches`), to
confirm that a fix made them match. Each request goes to both sides at once and the two answers
are compared with the rules (`--rules`, e.g. config/comparator.yaml, whose known differences
turn the pairs they explain into `expected`). `--primary` names the side that plays the primary
(default legacy), as the gateway would.

Headers: recorded credentials read `"<redacted>"`. A header given with `-H` replaces the
recorded one of that name; a header still `"<redacted>"` is dropped. `--config GATEWAY_YAML`
applies that gateway's per-side transforms (`legacy.transform`, `native.transform`: each side's
own key, a Host rewrite; values from the environment as for the gateway) to what each side is
sent, after `-H`, so a replay reaches each side as the gateway's traffic did. Hop-by-hop headers, `Host`
and `Content-Length` are not replayed: each side gets its own.

Writes are replayed as they are. The two sides usually share one database, so a POST, PATCH or
DELETE replayed to both is applied twice: the second side sees the first side's effect (a
create then conflicts, a delete then finds nothing), their answers differ for reasons that are
not a parity bug, and the data is changed. Against shared or production data use
`--reads-only`, which sends only the safe methods (GET, HEAD, OPTIONS) and reports the rest as skipped.

Exit status: 0 if every check is a match or expected, 1 if any is a mismatch, 2 if any is an
error or on bad input (unreadable file, bad URL, unreachable gateway), with a one-line message.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from agentos_session.routing import SAFE_METHODS
from agentos_session.sessions_api import route_label
from comparator import Request, Rules, RulesError, Side, compare_async
from comparator.cli import (
    add_color_option,
    add_header_option,
    add_primary_option,
    add_rules_option,
    parse_headers,
    use_color,
)
from comparator.fetch import UrlTarget
from comparator.report import Check, render_text, report_json, report_markdown, summary

from .recorder import read_recording
from .redact import REDACTED
from .transforms import Headers, apply

MISMATCH_LIMIT = 1000
# Computed per connection by the client; a recorded value would be wrong for the replayed one.
NOT_REPLAYED = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)
RESULT_ORDER = ("match", "expected", "mismatch", "error")


@dataclass(frozen=True)
class Item:
    """One request to replay, with the name its check gets in the report."""

    name: str
    request: Request


@dataclass(frozen=True)
class Sides:
    """The two base URLs and which of them plays the primary."""

    legacy: str
    native: str
    primary: Side

    @property
    def shadow(self) -> Side:
        return "native" if self.primary == "legacy" else "legacy"

    def url(self, side: Side) -> str:
        return self.legacy if side == "legacy" else self.native


# ---- arguments -------------------------------------------------------------------------------


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="replay recorded requests (or the gateway's mismatches) to both sides",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Exit 0 all match/expected, 1 any mismatch, 2 any error or bad input.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE", help="a recording (JSONL written by the gateway)")
    source.add_argument("--from-mismatches", metavar="GATEWAY_URL", help="replay the gateway's stored mismatch samples")
    p.add_argument("--route", metavar="TEMPLATE", help="with --from-mismatches: only this route, e.g. 'GET /sessions'")
    p.add_argument(
        "--admin-token",
        help="with --from-mismatches: bearer token of the gateway's admin API (default $AGNO_GATEWAY_ADMIN_TOKEN)",
    )
    p.add_argument("--legacy", required=True, metavar="URL", help="base URL of the legacy AgentOS")
    p.add_argument("--native", required=True, metavar="URL", help="base URL of the native service")
    add_primary_option(p, "--primary", "the side playing the primary (default legacy)")
    add_rules_option(p, "comparator rules YAML, with the known differences it names")
    p.add_argument("--report", metavar="FILE", help="write a report: Markdown if FILE ends in .md, else JSON")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    add_header_option(p, "header for every request, replacing the recorded one; repeatable")
    p.add_argument("--limit", type=int, help="only the first N requests of the source")
    p.add_argument("--reads-only", action="store_true", help="send only GET, HEAD and OPTIONS; the rest are skipped")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request and side (default 30)")
    p.add_argument(
        "--config",
        metavar="GATEWAY_YAML",
        help="apply this gateway config's per-side transforms (legacy.transform, native.transform)",
    )
    add_color_option(p, "color the diffs")
    p.set_defaults(run=run_replay)


def _base_url(text: str, option: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{option}: not an http(s) base URL: {text!r}")
    return text.rstrip("/")


def _check_numbers(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.limit is not None and args.limit < 0:
        raise ValueError(f"--limit must not be negative, got {args.limit}")
    if args.timeout <= 0:
        raise ValueError(f"--timeout must be positive, got {args.timeout}")
    if args.route and not args.from_mismatches:
        raise ValueError("--route needs --from-mismatches")


# ---- sources ---------------------------------------------------------------------------------


def items_from_recording(path: str, limit: int | None = None) -> list[Item]:
    """The first `limit` requests of a recording, named by position (`3: GET /sessions`)."""
    entries = itertools.islice(read_recording(path), limit)
    return [Item(f"{i}: {request}", request) for i, (request, _entry) in enumerate(entries, 1)]


def items_from_samples(data: Any, source: str) -> list[Item]:
    """The requests of `GET /shadow/mismatches`'s answer, named by mismatch id."""
    if not isinstance(data, dict) or not isinstance(data.get("mismatches"), list):
        raise ValueError(f'{source}: expected {{"mismatches": [...]}}')
    items = []
    for number, sample in enumerate(data["mismatches"], 1):
        try:
            request = Request.from_dict(sample["request"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: sample {number} has no usable request ({exc!r})") from exc
        label = sample.get("id", sample.get("request_id", number))
        items.append(Item(f"mismatch {label}: {request}", request))
    return items


async def fetch_mismatches(gateway: str, route: str | None, token: str | None, timeout: float) -> list[Item]:
    """The gateway's stored mismatch samples (newest first, as it lists them)."""
    query = {"limit": str(MISMATCH_LIMIT), **({"route": route} if route else {})}
    request = Request(
        "GET", f"/shadow/mismatches?{urlencode(query)}", {"Authorization": f"Bearer {token}"} if token else {}
    )
    target = UrlTarget(gateway, timeout)
    try:
        response = await target.send(request)
    finally:
        await target.close()
    source = f"{gateway}{request.target}"
    if response.error:
        raise ValueError(f"cannot reach the gateway at {gateway}: {response.error}")
    if response.status != 200:
        raise ValueError(f"{source} answered {response.status}: {response.body[:200].decode(errors='replace')}")
    try:
        data = json.loads(response.body)
    except ValueError as exc:
        raise ValueError(f"{source} did not answer JSON ({exc})") from exc
    return items_from_samples(data, source)


def with_headers(request: Request, overrides: Mapping[str, str]) -> Request:
    """The request as replayed: `-H` headers replace recorded ones of the same name (any case);
    still-redacted values and per-connection headers are dropped."""
    replaced = {name.lower() for name in overrides} | NOT_REPLAYED
    kept = {k: v for k, v in request.headers.items() if k.lower() not in replaced and v != REDACTED}
    return dataclasses.replace(request, headers={**kept, **overrides})


def redacted_names(items: Iterable[Item], overrides: Mapping[str, str]) -> set[str]:
    """Headers recorded as redacted that no `-H` gives: replayed without them."""
    given = {name.lower() for name in overrides}
    return {
        k.lower() for item in items for k, v in item.request.headers.items() if v == REDACTED and k.lower() not in given
    }


def split_reads(items: Sequence[Item], reads_only: bool) -> tuple[list[Item], list[Item]]:
    """(to send, skipped): with `reads_only`, everything but the safe methods is skipped."""
    if not reads_only:
        return list(items), []
    return [i for i in items if i.request.method in SAFE_METHODS], [
        i for i in items if i.request.method not in SAFE_METHODS
    ]


# ---- progress --------------------------------------------------------------------------------


class Progress:
    """Counts on stderr as checks finish. On a terminal one line redrawn in place; elsewhere (CI
    logs, files) a plain line each time another tenth is done, so logs stay short."""

    WIDTH = 20

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream.isatty()
        self.counts = dict.fromkeys(RESULT_ORDER, 0)
        self.done = 0
        self._tenth = 0

    def line(self) -> str:
        filled = self.WIDTH * self.done // self.total if self.total else self.WIDTH
        counts = " ".join(f"{r} {n}" for r, n in self.counts.items())
        return f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} {counts}"

    def advance(self, result: str) -> None:
        self.done += 1
        self.counts[result] = self.counts.get(result, 0) + 1
        if self.tty:
            self.stream.write("\r" + self.line())
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        tenth = 10 * self.done // self.total
        if tenth > self._tenth:
            self._tenth = tenth
            print(self.line(), file=self.stream, flush=True)


# ---- replaying -------------------------------------------------------------------------------


# Per side, the headers its transform changes (from `--config`); a side not named is sent as is.
Transforms = Mapping[Side, Headers]


async def _check(
    item: Item, primary: UrlTarget, shadow: UrlTarget, rules: Rules, transforms: Transforms | None = None
) -> Check:
    def to(target: UrlTarget) -> Request:
        headers = transforms.get(target.side) if transforms and target.side else None
        return item.request if headers is None else apply(item.request, headers)

    answers = await asyncio.gather(primary.send(to(primary)), shadow.send(to(shadow)))
    comparison = await compare_async(answers[0], answers[1], rules, request=item.request)
    return Check(item.name, item.request, comparison)


async def replay(
    items: Sequence[Item],
    sides: Sides,
    rules: Rules,
    *,
    concurrency: int = 4,
    timeout: float = 30.0,
    progress: Progress | None = None,
    transforms: Transforms | None = None,
) -> list[Check]:
    """Send each item to both sides (`concurrency` at a time), each as its `transforms` entry
    says, and compare; checks in item order."""
    primary = UrlTarget(sides.url(sides.primary), timeout, sides.primary)
    shadow = UrlTarget(sides.url(sides.shadow), timeout, sides.shadow)
    checks: list[Check | None] = [None] * len(items)
    queue = iter(enumerate(items))  # shared by the workers: each takes the next item

    async def worker() -> None:
        for index, item in queue:
            checks[index] = check = await _check(item, primary, shadow, rules, transforms)
            if progress is not None:
                progress.advance(check.comparison.result)

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
    finally:
        await primary.close()
        await shadow.close()
    return [c for c in checks if c is not None]


def exit_code(checks: Iterable[Check]) -> int:
    results = {c.comparison.result for c in checks}
    return 2 if "error" in results else 1 if "mismatch" in results else 0


# ---- output ----------------------------------------------------------------------------------


def render_summary(checks: Sequence[Check], skipped: Sequence[Item], sides: Sides, source: str) -> str:
    """Totals, a per-route table and the most frequent differing paths, from `summary`."""
    info = summary(checks)
    counts = ", ".join(f"{info['results'][r]} {r}" for r in RESULT_ORDER if r in info["results"]) or "nothing sent"
    lines = [
        f"Replayed {len(checks)} request(s) from {source}: {counts}",
        f"primary {sides.primary} {sides.url(sides.primary)}, shadow {sides.shadow} {sides.url(sides.shadow)}",
    ]
    if skipped:
        lines.append(f"{len(skipped)} skipped (--reads-only: not GET/HEAD/OPTIONS)")
    if info["routes"]:
        width = max(len("route"), *(len(route) for route in info["routes"]))
        lines += ["", f"{'route':<{width}}  " + "  ".join(f"{r:>8}" for r in RESULT_ORDER)]
        for route, per_result in sorted(info["routes"].items()):
            lines.append(f"{route:<{width}}  " + "  ".join(f"{per_result.get(r, 0):>8}" for r in RESULT_ORDER))
    if info["top_paths"]:
        lines += ["", "Most frequent differing paths:"]
        lines += [f"  {p['mismatches']:>5}  {p['path']}" for p in info["top_paths"]]
    return "\n".join(lines)


def render_details(checks: Sequence[Check], sides: Sides, color: bool) -> str:
    """Every check that was not a match, as the comparator renders it."""
    blocks = [
        f"--- {c.name}\n" + render_text(c.comparison, c.request, color, sides.primary, sides.shadow)
        for c in checks
        if c.comparison.result != "match"
    ]
    return "\n\n".join(blocks)


def write_report(path: str, checks: list[Check], skipped: Sequence[Item], sides: Sides, source: str) -> None:
    """The comparator's report (Markdown for .md, else JSON), plus where the replay ran and
    what it skipped."""
    meta = {"source": source, "primary": sides.primary, "legacy": sides.legacy, "native": sides.native}
    if path.endswith(".md"):
        text = report_markdown(checks) + "\n## Replay\n\n" + "".join(f"- {k}: `{v}`\n" for k, v in meta.items())
        if skipped:
            text += f"\n## Skipped ({len(skipped)}, --reads-only)\n\n" + "".join(f"- {i.name}\n" for i in skipped)
    else:
        data = json.loads(report_json(checks))
        data["replay"] = {**meta, "skipped": [{"name": i.name, "request": str(i.request)} for i in skipped]}
        text = json.dumps(data, indent=2, ensure_ascii=False)
    Path(path).write_text(text, encoding="utf-8")


# ---- the command -----------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[list[Item], str]:
    if args.from_mismatches:
        gateway = _base_url(args.from_mismatches, "--from-mismatches")
        token = args.admin_token or os.environ.get("AGNO_GATEWAY_ADMIN_TOKEN")
        items = asyncio.run(fetch_mismatches(gateway, args.route, token, args.timeout))
        return items[: args.limit] if args.limit is not None else items, f"{gateway} mismatches"
    return items_from_recording(args.file, args.limit), args.file


def _transforms(path: str | None) -> dict[Side, Headers]:
    """Each side's transform from a gateway config (none without `--config`). Raises ValueError
    (a `GatewayConfigError`) naming the bad key, or the variable that is not set."""
    if path is None:
        return {}
    from .config import load_config  # only with --config: the replay needs no gateway otherwise

    config = load_config(path)
    return {"legacy": Headers.of(config.legacy.transform), "native": Headers.of(config.native.transform)}


def run_replay(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr  # looked up now: redirections apply
    try:
        _check_numbers(args)
        sides = Sides(_base_url(args.legacy, "--legacy"), _base_url(args.native, "--native"), args.primary)
        headers = parse_headers(args.header)
        rules = Rules.load(args.rules, label=route_label) if args.rules else Rules(label=route_label)
        transforms = _transforms(args.config)
        items, source = _load(args)
    except (OSError, ValueError, RulesError) as exc:
        print(f"agentos-session replay: {exc}", file=stderr)
        return 2
    send, skipped = split_reads(items, args.reads_only)
    # A header that both sides' transforms set is not missing: each side gets its own value.
    set_by_transforms = (
        {n for n, _ in transforms["legacy"].add} & {n for n, _ in transforms["native"].add} if transforms else set()
    )
    missing = redacted_names(send, headers) - {n.lower() for n in set_by_transforms}
    if missing:
        print(
            f"agentos-session replay: note: redacted header(s) {', '.join(sorted(missing))} left out; "
            "give them with -H",
            file=stderr,
        )
    send = [dataclasses.replace(item, request=with_headers(item.request, headers)) for item in send]
    checks = asyncio.run(
        replay(
            send,
            sides,
            rules,
            concurrency=args.concurrency,
            timeout=args.timeout,
            progress=Progress(stderr, len(send)),
            transforms=transforms,
        )
    )
    details = render_details(checks, sides, use_color(args.color, stdout))
    if details:  # before the summary, so the totals are what a terminal shows last
        print(details + "\n", file=stdout)
    print(render_summary(checks, skipped, sides, source), file=stdout)
    if args.report:
        try:
            write_report(args.report, checks, skipped, sides, source)
        except OSError as exc:
            print(f"agentos-session replay: cannot write the report: {exc}", file=stderr)
            return 2
    return exit_code(checks)
