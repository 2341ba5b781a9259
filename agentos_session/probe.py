"""`agentos-session probe [--url URL] [--timeout S]`: exit 0 when a `/readyz` answers 200.

The image's HEALTHCHECK and the compose healthchecks run it: the slim image has no curl, and
one command serves both processes the image runs, so by default it tries the gateway's port and
then the native service's. Standard library only: it runs every few seconds and must start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import TextIO

DEFAULT_URLS = ("http://127.0.0.1:8090/readyz", "http://127.0.0.1:8080/readyz")
DEFAULT_TIMEOUT_S = 3.0
REASON_CHARS = 300  # a 503 body names what is not ready; enough of it to read in `docker inspect`

# Never through a proxy: HTTP(S)_PROXY in a container's environment is for outbound traffic,
# and a proxy would answer for a process that is down.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "probe",
        help="exit 0 when a /readyz answers 200 (for health checks)",
        description="Exit 0 when a /readyz answers 200, else 1 with the reasons on stderr.",
    )
    p.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help=f"readiness URL, repeatable, tried in order until one answers 200 "
        f"(default: {' then '.join(DEFAULT_URLS)})",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds to wait for each URL (default %(default)s)",
    )
    p.set_defaults(run=run_probe)


def check(url: str, timeout: float) -> str | None:
    """None when `url` answers 200, else why not (status and the start of the body, or the
    connection error)."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            if response.status == 200:
                return None
            return f"{response.status} {_summary(response.read(REASON_CHARS * 4))}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {_summary(exc.read(REASON_CHARS * 4))}"
    except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, timed out, bad URL
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return f"no answer ({reason})"


def _summary(body: bytes) -> str:
    """The 503 body's `not_ready` mapping when it is the documented JSON, else its first bytes."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and "not_ready" in data:
        text = json.dumps(data["not_ready"], ensure_ascii=False)
    else:
        text = body.decode("utf-8", "replace")
    return text[:REASON_CHARS]


def probe(urls: Sequence[str], timeout: float) -> tuple[str | None, list[str]]:
    """(the first URL answering 200 or None, the reasons of those before it that did not)."""
    reasons: list[str] = []
    for url in urls:
        reason = check(url, timeout)
        if reason is None:
            return url, reasons
        reasons.append(f"{url}: {reason}")
    return None, reasons


def run_probe(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    if args.timeout <= 0:
        print("agentos-session probe: --timeout must be positive", file=stderr)
        return 2
    ready, reasons = probe(args.url or DEFAULT_URLS, args.timeout)
    if ready is None:
        for reason in reasons:
            print(f"not ready: {reason}", file=stderr)
        return 1
    print(f"ready: {ready}", file=stdout)
    return 0
