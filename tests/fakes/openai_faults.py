"""A loopback OpenAI-compatible server whose next answers the test scripts: faults on demand.

Each POST to /v1/chat/completions takes the next behaviour from ``script`` (the last one repeats):

- ``ok``: a normal chat completion (or SSE stream when the request asks for one);
- ``429:N``: Too Many Requests with ``Retry-After: N``;
- ``500``: an internal error with an OpenAI-shaped error body;
- ``hang:S``: sleep S seconds before answering (longer than the client's read timeout);
- ``cut``: a stream that stops mid-way (or a body shorter than its Content-Length);
- ``malformed``: 200 with a body that is not JSON;
- ``page``: 200 with a web page (``text/html``), as a wrong base_url or a proxy's login page serves.

Bound to 127.0.0.1 on a free port; started and stopped by the test fixture.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = ["Paris", " is", " the", " capital", "."]


def completion_body(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{
            "index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "".join(ANSWER)},
            "logprobs": {"content": [
                {"token": t, "logprob": -0.05, "bytes": list(t.encode()),
                 "top_logprobs": [{"token": t, "logprob": -0.05, "bytes": list(t.encode())},
                                  {"token": "x", "logprob": -3.0, "bytes": [120]}]}
                for t in ANSWER
            ]},
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": len(ANSWER), "total_tokens": 12 + len(ANSWER)},
    }


class FaultServer:
    def __init__(self, script: list[str] | None = None):
        self.script = list(script or ["ok"])
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                step = outer.script[min(len(outer.requests) - 1, len(outer.script) - 1)]
                outer.handle(self, step, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def start(self) -> FaultServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str = "application/json",
              extra: dict[str, str] | None = None, length: int | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(payload) if length is None else length))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)
        h.wfile.flush()

    def handle(self, h: BaseHTTPRequestHandler, step: str, body: dict[str, Any]) -> None:
        model = str(body.get("model", "fake"))
        if step.startswith("hang:"):
            time.sleep(float(step.split(":", 1)[1]))
            step = "ok"
        if step.startswith("429"):
            wait = step.split(":", 1)[1] if ":" in step else "1"
            err = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
            self._send(h, 429, json.dumps(err).encode(), extra={"Retry-After": wait})
        elif step == "500":
            err = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
            self._send(h, 500, json.dumps(err).encode())
        elif step == "malformed":
            self._send(h, 200, b"<html>gateway says hi</html>")
        elif step == "page":
            self._send(h, 200, b"<!doctype html><title>Open WebUI</title>", ctype="text/html; charset=utf-8")
        elif step == "cut" and not body.get("stream"):
            payload = json.dumps(completion_body(model)).encode()
            self._send(h, 200, payload[: len(payload) // 2], length=len(payload))
            h.close_connection = True
        elif body.get("stream"):
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Connection", "close")
            h.end_headers()
            pieces = ANSWER[:2] if step == "cut" else ANSWER
            for t in pieces:
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
                h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                h.wfile.flush()
            if step != "cut":
                last = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model,
                        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                h.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            h.wfile.flush()
            h.close_connection = True
        else:
            self._send(h, 200, json.dumps(completion_body(model)).encode())
