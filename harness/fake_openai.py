"""A tiny OpenAI-compatible chat-completions server, so a real agno AgentOS can run without a key.

Only what agno's `OpenAIChat` needs: `POST /v1/chat/completions`, streaming (SSE) and not.
Behaviour (see contract section 7):

* normally it answers ``"Echo: <last user text>"`` with usage 11 prompt / 7 completion / 18 total;
* if the last user text contains ``DELEGATE``, a tool named ``delegate_task_to_member`` is offered
  and no ``tool`` message is in the conversation yet, it returns a ``delegate_task_to_member`` tool
  call with arguments ``{"member_id": "member-agent", "task": "Member task text"}`` (usage 5/3/8,
  the numbers of the stub that produced the contract's captured responses);
* once a ``tool`` message is in the conversation it returns ``"Final after tool: <tool content>"``.

It listens on 127.0.0.1 only, on a free port, in a daemon thread (stdlib only, no network).

    base_url, stop = start_fake_openai()   # base_url ends in /v1
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gpt-4o"
DELEGATE_TOOL = "delegate_task_to_member"
DELEGATE_ARGUMENTS = json.dumps({"member_id": "member-agent", "task": "Member task text"})
TEXT_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
TOOL_USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}

_call_ids = itertools.count(1)


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def _offered_tools(body: dict) -> set[str]:
    names = set()
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            names.add(fn["name"])
    return names


def decide(body: dict) -> dict:
    """What to answer: {"content": str} or {"tool_call": {...}}, plus "usage"."""
    messages = body.get("messages") or []
    tool_messages = [m for m in messages if isinstance(m, dict) and m.get("role") == "tool"]
    if tool_messages:
        return {"content": f"Final after tool: {_text_of(tool_messages[-1].get('content'))}", "usage": TEXT_USAGE}
    last_user = ""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            last_user = _text_of(m.get("content"))
            break
    if "DELEGATE" in last_user and DELEGATE_TOOL in _offered_tools(body):
        call = {
            "id": f"call_{next(_call_ids)}",
            "type": "function",
            "function": {"name": DELEGATE_TOOL, "arguments": DELEGATE_ARGUMENTS},
        }
        return {"tool_call": call, "usage": TOOL_USAGE}
    return {"content": f"Echo: {last_user}", "usage": TEXT_USAGE}


def _completion(answer: dict, model: str) -> dict:
    message: dict[str, Any] = {"role": "assistant"}
    if "tool_call" in answer:
        message["content"] = None
        message["tool_calls"] = [answer["tool_call"]]
        finish = "tool_calls"
    else:
        message["content"] = answer["content"]
        finish = "stop"
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": dict(answer["usage"]),
    }


def _chunks(answer: dict, model: str, include_usage: bool) -> list[dict]:
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(choices: list, **extra: Any) -> dict:
        return {**base, "choices": choices, **extra}

    out = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
    ]
    if "tool_call" in answer:
        call = answer["tool_call"]
        delta = {"tool_calls": [{"index": 0, **call}]}
        out.append(chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
        finish = "tool_calls"
    else:
        text = answer["content"]
        # Two pieces, to exercise the client's concatenation.
        cut = len(text) // 2
        for piece in (text[:cut], text[cut:]):
            if piece:
                out.append(chunk([{"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}]))
        finish = "stop"
    out.append(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]))
    if include_usage:
        out.append(chunk([], usage=dict(answer["usage"])))
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(
                200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}]}
            )
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        answer = decide(body)
        model = body.get("model") or MODEL
        if not body.get("stream"):
            self._send_json(200, _completion(answer, model))
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        payload = (
            b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in _chunks(answer, model, include_usage))
            + b"data: [DONE]\n\n"
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeOpenAI:
    """The server object; `base_url` ends in /v1. Use as a context manager or call stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://{host}:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_fake_openai(host: str = "127.0.0.1", port: int = 0) -> tuple[str, Callable[[], None]]:
    """Start the fake server; return (base_url ending in /v1, stop function)."""
    server = FakeOpenAI(host, port)
    return server.base_url, server.stop


if __name__ == "__main__":  # manual use: python -m harness.fake_openai [port]
    import sys

    srv = FakeOpenAI(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(srv.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
