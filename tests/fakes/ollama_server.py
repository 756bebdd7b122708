"""A small fake Ollama server that speaks ``POST /api/chat`` as Ollama documents it.

No real Ollama server can run in this project's test environment, so this fake follows Ollama's
documented wire format (docs/api.md, and ``api/types.go`` for the logprob fields added in 0.12.11):

- non-streaming: one JSON object with model, created_at, message {role, content}, done=true,
  done_reason ("stop" / "length"), total_duration, load_duration, prompt_eval_count,
  prompt_eval_duration, eval_count, eval_duration (nanoseconds), and with ``logprobs: true`` a
  ``logprobs`` list of {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]};
- streaming (``stream`` true, Ollama's default): NDJSON over chunked transfer encoding, one object per
  token with a partial message.content and done=false, then a final done=true object with the counts;
- errors: an HTTP status with ``{"error": "..."}``, e.g. 404 for a model that was never pulled, and an
  ``{"error": ...}`` line in place of the next chunk when generation fails mid-stream.

The answer is canned and deterministic (tokens, logprobs, counts, durations). Attributes that tests flip
simulate failures: ``fail_status``, ``cut_stream_after`` (+ ``cut_mode``), ``stream_error_after``,
``malformed`` and ``delay_s``. Every request body received is kept in ``requests``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

ANSWER_TOKENS: tuple[str, ...] = ("The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", ".")
# one logprob per answer token: high confidence except on the words a small model would hesitate over
ANSWER_LOGPROBS: tuple[float, ...] = (-0.01, -0.02, -0.01, -0.05, -0.4, -0.03, -0.9, -0.2, -0.01)
HOST = "127.0.0.1"  # loopback only: nothing outside this machine can reach the fake
ALT_LOGPROB_STEP = 1.5  # the j-th alternative is j * 1.5 nats below the chosen token


def _created_at() -> str:
    # RFC 3339 with nanoseconds, as Go's time.Time marshals it
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def _token_logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


@dataclass
class FakeOllama:
    """The fake server and its switches; use as a context manager (``with FakeOllama() as server``)."""

    models: set[str] = field(default_factory=lambda: {"tiny:1b"})
    #: answer every request with this HTTP status and ``{"error": fail_error}``
    fail_status: int | None = None
    fail_error: str = "llama runner process has terminated: exit status 2"
    #: streaming: stop after this many NDJSON lines ("close": drop the connection mid-body;
    #: "end": finish the HTTP body cleanly but never send the done=true line)
    cut_stream_after: int | None = None
    cut_mode: Literal["close", "end"] = "close"
    #: streaming: after this many lines send ``{"error": ...}`` the way Ollama reports a runner crash
    stream_error_after: int | None = None
    #: leave prompt_eval_count out of the final line, as Ollama does when the whole prompt came from its
    #: cache (Go's omitempty drops the 0)
    prompt_cached: bool = False
    #: answer every POST with a 301 to this address (as nginx's `return 301 https://...` does)
    redirect_to: str | None = None
    #: send a body (or an NDJSON line) that is not JSON
    malformed: bool = False
    #: wait this long before answering (to trip a client's read timeout)
    delay_s: float = 0.0
    #: order of each token's top_logprobs: Ollama sends them best-first
    top_order: Literal["best_first", "worst_first"] = "best_first"
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: the Authorization header of each request (None when absent), in order
    authorizations: list[str | None] = field(default_factory=list)

    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake server is not running"
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> FakeOllama:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server((HOST, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-ollama", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the model "generates" -------------------------------------------------------------

    def generate(self, body: dict[str, Any]) -> tuple[list[int], str]:
        """Indices of the answer tokens produced under the request's options, and the done_reason."""
        options = body.get("options") or {}
        num_predict = int(options.get("num_predict", -1))
        stops = [s for s in (options.get("stop") or []) if s]
        out: list[int] = []
        text = ""
        for i, tok in enumerate(ANSWER_TOKENS):
            if num_predict >= 0 and len(out) >= num_predict:
                return out, "length"
            if any(s in text + tok for s in stops):
                return out, "stop"  # Ollama trims the stop sequence and what follows it
            out.append(i)
            text += tok
        return out, "stop"

    def logprob_entry(self, i: int, top_k: int) -> dict[str, Any]:
        tok, lp = ANSWER_TOKENS[i], ANSWER_LOGPROBS[i]
        entry = _token_logprob(tok, lp)
        if top_k > 0:
            top = [_token_logprob(tok, lp)] + [
                _token_logprob(f" alt{j}", lp - j * ALT_LOGPROB_STEP) for j in range(1, top_k)
            ]
            entry["top_logprobs"] = top if self.top_order == "best_first" else top[::-1]
        return entry

    @staticmethod
    def prompt_eval_count(body: dict[str, Any]) -> int:
        # whitespace words plus a fixed 4 template tokens per message: deterministic, roughly realistic
        return sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages") or [])


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (its read timeout fired) is expected here, not a failure to print."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOllama
    protocol_version = "HTTP/1.1"  # chunked streaming, like Ollama's Go server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        return None  # keep test output clean

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
        fake = self.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake.authorizations.append(self.headers.get("Authorization"))
        if fake.redirect_to is not None:
            self.send_response(301)
            self.send_header("Location", fake.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/api/chat":
            data = b"404 page not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as e:
            self._send_json(400, {"error": f"invalid character in request body: {e}"})
            return
        fake.requests.append(body)
        if fake.delay_s:
            time.sleep(fake.delay_s)
        model = body.get("model")
        if not model:
            self._send_json(400, {"error": "model is required"})
            return
        if fake.fail_status is not None:
            self._send_json(fake.fail_status, {"error": fake.fail_error})
            return
        if model not in fake.models:
            self._send_json(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        tokens, done_reason = fake.generate(body)
        top_k = int(body.get("top_logprobs") or 0)
        with_logprobs = bool(body.get("logprobs"))
        final = {
            "model": model,
            "created_at": _created_at(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": done_reason,
            "total_duration": 50_000 + 1_000 * len(tokens),
            "load_duration": 1_000,
            "prompt_eval_count": fake.prompt_eval_count(body),
            "prompt_eval_duration": 2_000,
            "eval_count": len(tokens),
            "eval_duration": 1_000 * len(tokens),
        }
        if fake.prompt_cached:
            del final["prompt_eval_count"]
        if not body.get("stream", True):
            if fake.malformed:
                data = b'{"model": "' + model.encode() + b'", "message": {"role": "assist'
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            final["message"]["content"] = "".join(ANSWER_TOKENS[i] for i in tokens)  # type: ignore[index]
            if with_logprobs:
                final["logprobs"] = [fake.logprob_entry(i, top_k) for i in tokens]
            self._send_json(200, final)
            return
        self._stream(model, tokens, final, with_logprobs, top_k)

    def _stream(self, model: str, tokens: list[int], final: dict[str, Any], with_logprobs: bool, top_k: int) -> None:
        fake = self.fake
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines: list[bytes] = []
        for i in tokens:
            part: dict[str, Any] = {
                "model": model,
                "created_at": _created_at(),
                "message": {"role": "assistant", "content": ANSWER_TOKENS[i]},
                "done": False,
            }
            if with_logprobs:
                part["logprobs"] = [fake.logprob_entry(i, top_k)]
            lines.append(json.dumps(part).encode() + b"\n")
        lines.append(json.dumps(final).encode() + b"\n")
        if fake.malformed:
            lines.insert(1, b"this is not json\n")
        for n, line in enumerate(lines):
            if fake.cut_stream_after is not None and n >= fake.cut_stream_after:
                if fake.cut_mode == "close":
                    self.close_connection = True  # drop it: no terminating chunk, as if the server died
                    return
                break
            if fake.stream_error_after is not None and n >= fake.stream_error_after:
                self._chunk(json.dumps({"error": fake.fail_error}).encode() + b"\n")
                break
            self._chunk(line)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
