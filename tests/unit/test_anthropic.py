"""AnthropicProvider against httpx.MockTransport, with payloads shaped like the Messages API documents them.

Covers the request shape (top-level system, merged turns, stop_sequences, headers), the response and
SSE stream mapping, every documented error status, transport failures, and that the API key never
leaks into an exception, a URL, a log record or a repr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from edgecascade.config import TierConfig
from edgecascade.errors import (
    AuthenticationError,
    ContextLengthError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UpstreamError,
)
from edgecascade.providers import build_provider
from edgecascade.providers.anthropic import AnthropicProvider
from edgecascade.providers.base import Provider
from edgecascade.providers.resilient import ResilientProvider, is_retryable
from edgecascade.types import Delta, Message, Request
from tests.fakes.client_lifetime import check_fresh_client_per_event_loop, check_given_client_is_kept_open

KEY = "sk-ant-SECRET-xyz"
MODEL = "claude-sonnet-4-5"
BASE = "https://api.anthropic.test"

Handler = Callable[[httpx.Request], httpx.Response]


def message_body(text: str = "Paris.", stop_reason: str = "end_turn", inp: int = 21, out: int = 3) -> dict[str, Any]:
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}],
        "model": MODEL,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": inp, "output_tokens": out},
    }


def error_body(etype: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": etype, "message": message}}


def sse(*events: tuple[str, dict[str, Any]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


STREAM_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("message_start", {"type": "message_start", "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [],
        "model": MODEL, "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0,
                             "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "Hello"}}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "!"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"}),
]


class Recorder:
    """A MockTransport handler that records every request and answers with ``respond``."""

    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)


def make(respond: Handler, **kw: Any) -> tuple[AnthropicProvider, Recorder]:
    rec = Recorder(respond)
    client = httpx.AsyncClient(transport=httpx.MockTransport(rec))
    return AnthropicProvider(MODEL, api_key=KEY, base_url=BASE, client=client, **kw), rec


def reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=payload, headers=headers)


def ask(*messages: Message, **kw: Any) -> Request:
    return Request(list(messages) or [Message("user", "Capital of France?")], **kw)


async def collect(p: AnthropicProvider, request: Request | None = None) -> list[Delta]:
    return [d async for d in p.stream(request or ask())]


# --- requests ------------------------------------------------------------------------------------------


async def test_request_shape_system_top_level_turns_merged_and_headers() -> None:
    p, rec = make(reply(200, message_body()))
    await p.complete(ask(
        Message("system", "Be brief."),
        Message("user", "Hi."),
        Message("system", "Answer in French."),
        Message("user", "Capital of France?"),
        Message("assistant", "Paris."),
        Message("assistant", "Definitely."),
        Message("user", "And Spain?"),
        max_tokens=50, temperature=0.3, stop=["\n\n", "END"], seed=7,
    ))
    r = rec.requests[-1]
    assert r.method == "POST" and str(r.url) == f"{BASE}/v1/messages"
    assert r.headers["x-api-key"] == KEY
    assert r.headers["anthropic-version"] == "2023-06-01"
    assert r.headers["content-type"] == "application/json"
    assert rec.body == {
        "model": MODEL,
        "max_tokens": 50,
        "system": "Be brief.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": "Hi.\n\nCapital of France?"},
            {"role": "assistant", "content": "Paris.\n\nDefinitely."},
            {"role": "user", "content": "And Spain?"},
        ],
        "temperature": 0.3,
        "stop_sequences": ["END"],  # "\n\n" is cut here: the API refuses a stop of whitespace alone
    }
    # the key is in that one header only
    assert KEY not in str(r.url)
    assert [k for k, v in r.headers.items() if KEY in v] == ["x-api-key"]
    assert KEY.encode() not in r.content


def _delta_events(*pieces: str, stop_reason: str = "max_tokens", out: int = 40) -> list[tuple[str, dict[str, Any]]]:
    """A stream that sends ``pieces`` as text deltas and finishes with ``stop_reason``."""
    deltas = [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": t}}) for t in pieces]
    return [*STREAM_EVENTS[:3], *deltas, STREAM_EVENTS[5],
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": {"output_tokens": out}}), STREAM_EVENTS[-1]]


async def test_a_stop_of_whitespace_alone_is_cut_here_not_sent() -> None:
    # the Messages API answers such a stop_sequences with a 400 ("each stop sequence must contain
    # non-whitespace"): a query with stop=["\n"] had failed at every Claude tier
    def strict(request: httpx.Request) -> httpx.Response:
        if any(not s.strip() for s in json.loads(request.content).get("stop_sequences", [])):
            said = "stop_sequences: each stop sequence must contain non-whitespace"
            return httpx.Response(400, json=error_body("invalid_request_error", said))
        return httpx.Response(200, json=message_body("x = 1\ny = 2\n", stop_reason="max_tokens", out=9))

    p, rec = make(strict)
    got = await p.complete(ask(stop=["\n", "END"]))
    assert rec.body["stop_sequences"] == ["END"]
    # cut at the stop, and finished there; the tokens generated past it were billed and are counted
    assert (got.text, got.finish_reason, got.usage.completion_tokens) == ("x = 1", "stop", 9)
    p, rec = make(strict)
    assert (await p.complete(ask(stop=["\n"]))).text == "x = 1" and "stop_sequences" not in rec.body
    # streamed: a stop split across deltas is held back and never shown; the rest is read for its usage
    p, _ = make(sse_reply(sse(*_delta_events("x = 1", "\n", "\ny = 2"))))
    s = p.stream(ask(stop=["\n\n"]))
    assert [d async for d in s] == [Delta("x = 1"), Delta("", "stop")]
    assert s.usage is not None and s.usage.completion_tokens == 40 and s.finish_reason == "stop"
    # a held-back start of a stop that never comes is answer text, and a stop never met leaves the
    # API's own reason
    p, _ = make(sse_reply(sse(*_delta_events("a", "\n", "b", "\n"))))
    s = p.stream(ask(stop=["\n\n"]))
    assert "".join([d.text async for d in s]) == "a\nb\n" and s.finish_reason == "length"


async def test_no_system_and_no_stop_are_left_out_and_the_version_is_configurable() -> None:
    p, rec = make(reply(200, message_body()), version="2024-01-01")
    await p.complete(ask())
    assert "system" not in rec.body and "stop_sequences" not in rec.body and "stream" not in rec.body
    assert rec.body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert rec.requests[-1].headers["anthropic-version"] == "2024-01-01"


async def test_build_provider_reads_the_key_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_CLAUDE_KEY", KEY)
    built = build_provider(TierConfig(model=MODEL, provider="anthropic", api_key_env="MY_CLAUDE_KEY", base_url=BASE))
    assert isinstance(built, ResilientProvider)
    inner = built.inner
    assert isinstance(inner, AnthropicProvider) and inner.api_key_env == "MY_CLAUDE_KEY"
    rec = Recorder(reply(200, message_body()))
    inner._client = httpx.AsyncClient(transport=httpx.MockTransport(rec))
    await inner.complete(ask())
    assert rec.requests[-1].headers["x-api-key"] == KEY
    monkeypatch.delenv("MY_CLAUDE_KEY")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)  # the tier named another variable: the default is not read
    built = build_provider(TierConfig(model=MODEL, provider="anthropic", api_key_env="MY_CLAUDE_KEY"))
    assert isinstance(built, ResilientProvider)
    with pytest.raises(AuthenticationError, match=r"\$MY_CLAUDE_KEY"):
        await built.inner.complete(ask())


async def test_the_provider_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    rec = Recorder(reply(200, message_body()))
    p = AnthropicProvider(MODEL, client=httpx.AsyncClient(transport=httpx.MockTransport(rec)))
    with pytest.raises(AuthenticationError, match=r"\$ANTHROPIC_API_KEY"):
        await p.complete(ask())
    assert rec.requests == []


async def test_a_missing_key_fails_on_the_call_naming_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    rec = Recorder(reply(200, message_body()))
    p = AnthropicProvider(MODEL, api_key=None, client=httpx.AsyncClient(transport=httpx.MockTransport(rec)))
    with pytest.raises(AuthenticationError, match=r"\$ANTHROPIC_API_KEY"):
        await p.complete(ask())
    with pytest.raises(AuthenticationError):
        await collect(p)
    assert rec.requests == []


# --- responses -----------------------------------------------------------------------------------------


async def test_normal_response() -> None:
    p, _ = make(reply(200, message_body("Paris is the capital of France.", inp=14, out=9)))
    assert isinstance(p, Provider) and p.capabilities.logprobs is False and p.capabilities.streaming is True
    c = await p.complete(ask())
    assert c.text == "Paris is the capital of France." and c.model == MODEL
    assert c.finish_reason == "stop" and c.logprobs is None
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (14, 9) and c.usage.reported
    assert c.timings.total_s >= 0 and c.timings.first_token_s is None
    body = message_body()
    del body["usage"]  # a proxy that drops it: no counts, and said so
    p, _ = make(reply(200, body))
    c = await p.complete(ask())
    assert c.text == "Paris." and (c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.reported) == (0, 0, False)


async def test_text_blocks_are_joined_and_other_blocks_skipped() -> None:
    body = message_body()
    body["content"] = [{"type": "thinking", "thinking": "hmm", "signature": "x"},
                       {"type": "text", "text": "Par"}, {"type": "text", "text": "is."}]
    p, _ = make(reply(200, body))
    assert (await p.complete(ask())).text == "Paris."


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("max_tokens", "length"), ("end_turn", "stop"), ("stop_sequence", "stop"),
])
async def test_finish_reason(stop_reason: str, finish: str) -> None:
    p, _ = make(reply(200, message_body("Paris is", stop_reason=stop_reason)))
    assert (await p.complete(ask(max_tokens=2))).finish_reason == finish


@pytest.mark.parametrize("payload", [
    {"type": "message", "role": "assistant"},  # no content
    {"type": "error_but_200"},
    ["not", "an", "object"],
])
async def test_bodies_outside_the_documented_shape_are_malformed(payload: Any) -> None:
    p, _ = make(reply(200, payload))
    with pytest.raises(MalformedResponseError, match="documented Messages format"):
        await p.complete(ask())


async def test_a_body_that_is_not_json_is_malformed() -> None:
    p, _ = make(lambda r: httpx.Response(200, content=b'{"type": "message", "content": [',
                                         headers={"content-type": "application/json"}))
    with pytest.raises(MalformedResponseError):
        await p.complete(ask())


async def test_a_web_page_is_malformed_and_not_worth_a_retry() -> None:
    """A wrong base_url (a proxy's login page) answers 200 with HTML every time."""
    from edgecascade.providers.resilient import is_retryable

    p, _ = make(lambda r: httpx.Response(200, content=b"<!doctype html><title>Sign in</title>",
                                         headers={"content-type": "text/html; charset=utf-8"}))
    with pytest.raises(MalformedResponseError, match="web page.*base_url") as ei:
        await p.complete(ask())
    assert not is_retryable(ei.value)
    garbled = make(lambda r: httpx.Response(200, content=b'{"type": "message"',
                                            headers={"content-type": "application/json"}))[0]
    with pytest.raises(MalformedResponseError) as ei:
        await garbled.complete(ask())
    assert is_retryable(ei.value)  # garbled JSON may be a one-off


async def test_a_404_from_a_base_url_ending_in_v1_says_the_path_is_doubled() -> None:
    """The path is base_url + /v1/messages: a base_url copied with its /v1 asks for /v1/v1/messages,
    and the 404 read only as "does not serve model"."""
    seen: list[str] = []

    def not_found(r: httpx.Request) -> httpx.Response:
        seen.append(r.url.path)
        return httpx.Response(404, json={"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(not_found))
    p = AnthropicProvider(MODEL, api_key=KEY, base_url="https://proxy.example.test/anthropic/v1/", client=client)
    with pytest.raises(UnknownModelError, match="ends in /v1.*without /v1") as ei:
        await p.complete(ask())
    assert seen == ["/anthropic/v1/v1/messages"] and KEY not in str(ei.value)
    p, _ = make(not_found)  # the right root: no such hint
    with pytest.raises(UnknownModelError) as ei:
        await p.complete(ask())
    assert "ends in /v1" not in str(ei.value)


# --- streaming -----------------------------------------------------------------------------------------


def sse_reply(body: bytes) -> Handler:
    return lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


async def test_stream_events_become_deltas_and_usage() -> None:
    p, rec = make(sse_reply(sse(*STREAM_EVENTS)))
    s = p.stream(ask())
    deltas = [d async for d in s]
    assert deltas == [Delta("Hello"), Delta("!"), Delta("", "stop")]
    assert s.usage is not None and (s.usage.prompt_tokens, s.usage.completion_tokens) == (25, 15)
    assert s.usage.reported and s.finish_reason == "stop"
    assert rec.body["stream"] is True and rec.requests[-1].headers["accept"] == "text/event-stream"
    # a proxy that drops message_start's usage: zero tokens, and said so (they had read as reported)
    start = STREAM_EVENTS[0][1]
    bare = [("message_start", {**start, "message": {k: v for k, v in start["message"].items() if k != "usage"}}),
            *STREAM_EVENTS[1:]]
    p, _ = make(sse_reply(sse(*bare)))
    s = p.stream(ask())
    assert "".join([d.text async for d in s]) == "Hello!"
    assert s.usage is not None and not s.usage.reported


async def test_stream_max_tokens_is_length() -> None:
    events = [e if e[0] != "message_delta" else ("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {"output_tokens": 2}}) for e in STREAM_EVENTS]
    p, _ = make(sse_reply(sse(*events)))
    assert (await collect(p))[-1] == Delta("", "length")


async def test_cut_stream_without_message_stop_is_malformed() -> None:
    p, _ = make(sse_reply(sse(*STREAM_EVENTS[:5])))
    got: list[str] = []
    with pytest.raises(MalformedResponseError, match="cut off"):
        async for d in p.stream(ask()):
            got.append(d.text)
    assert "".join(got) == "Hello!"


class _DroppedConnection(httpx.AsyncByteStream):
    """A body that stops with the error httpx raises when the peer closes mid-body."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


async def test_connection_dropped_mid_stream_is_malformed() -> None:
    p, _ = make(lambda r: httpx.Response(200, stream=_DroppedConnection(sse(*STREAM_EVENTS[:4])),
                                         headers={"content-type": "text/event-stream"}))
    with pytest.raises(MalformedResponseError, match="cut off"):
        await collect(p)


async def test_error_event_mid_stream_is_mapped() -> None:
    events = STREAM_EVENTS[:4] + [("error", error_body("overloaded_error", "Overloaded"))]
    p, _ = make(sse_reply(sse(*events)))
    with pytest.raises(UpstreamError, match="Overloaded") as ei:
        await collect(p)
    assert type(ei.value) is UpstreamError and ei.value.status_code == 529


async def test_an_overloaded_answer_carries_its_retry_after() -> None:
    p, _ = make(reply(529, error_body("overloaded_error", "Overloaded"), headers={"retry-after": "4"}))
    with pytest.raises(UpstreamError) as ei:
        await p.complete(ask())
    assert ei.value.status_code == 529 and ei.value.retry_after == 4
    p, _ = make(reply(500, error_body("api_error", "Internal")))
    with pytest.raises(UpstreamError) as ei:
        await p.complete(ask())
    assert ei.value.retry_after is None


async def test_stream_data_that_is_not_json_is_malformed() -> None:
    p, _ = make(sse_reply(b"event: message_start\ndata: {not json\n\n"))
    with pytest.raises(MalformedResponseError):
        await collect(p)


async def test_stream_http_error_is_mapped_like_complete() -> None:
    p, _ = make(reply(429, error_body("rate_limit_error", "Number of request tokens has exceeded your rate limit"),
                      {"retry-after": "3"}))
    with pytest.raises(RateLimitedError) as ei:
        await collect(p)
    assert ei.value.retry_after == 3.0


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "etype", "message", "cls"), [
    (400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum", ContextLengthError),
    # the other way Anthropic says it (it was an UpstreamError, its counts lost)
    (400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 208310 + 21333 > 200000, "
     "decrease input length or `max_tokens` and try again", ContextLengthError),
    (400, "invalid_request_error", "messages: roles must alternate", UpstreamError),
    (401, "authentication_error", "invalid x-api-key", AuthenticationError),
    (403, "permission_error", "Your API key does not have permission to use the specified resource.",
     AuthenticationError),
    (404, "not_found_error", "model: claude-nonexistent", UnknownModelError),
    (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", RateLimitedError),
    (500, "api_error", "Internal server error", UpstreamError),
    (529, "overloaded_error", "Overloaded", UpstreamError),
])
async def test_error_statuses_are_mapped(status: int, etype: str, message: str, cls: type[ProviderError]) -> None:
    p, _ = make(reply(status, error_body(etype, message), {"retry-after": "3"} if status == 429 else None))
    with pytest.raises(cls) as ei:
        await p.complete(ask())
    err = ei.value
    assert type(err) is cls and message in str(err)
    assert err.__cause__ is None and err.__context__ is None
    if cls is UpstreamError:
        assert isinstance(err, UpstreamError) and err.status_code == status
    if cls is AuthenticationError:
        assert "$ANTHROPIC_API_KEY" in str(err)
    if cls is RateLimitedError:
        assert isinstance(err, RateLimitedError) and err.retry_after == 3.0
    if cls is ContextLengthError:
        assert isinstance(err, ContextLengthError) and (err.prompt_tokens, err.context) == (208310, 200000)


async def test_an_error_body_that_is_not_json_keeps_its_status() -> None:
    p, _ = make(lambda r: httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(UpstreamError, match="Bad Gateway") as ei:
        await p.complete(ask())
    assert ei.value.status_code == 502


async def test_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    p, _ = make(refuse)
    with pytest.raises(ProviderConnectionError, match="cannot reach the Anthropic API") as ei:
        await p.complete(ask())
    assert ei.value.__cause__ is None and ei.value.__context__ is None
    with pytest.raises(ProviderConnectionError):
        await collect(p)


async def test_a_call_cut_after_it_was_sent_may_be_billed_and_is_not_called_unreachable() -> None:
    # a reset while Claude generates had read as "cannot reach the API" (kind connection): the call
    # was not counted as maybe billed, and the message misled
    from edgecascade.errors import may_be_billed

    p, _ = make(_raise(httpx.ReadError))
    with pytest.raises(UpstreamError, match="the connection to the Anthropic API failed while it answered") as ei:
        await p.complete(ask())
    assert type(ei.value) is UpstreamError and may_be_billed(ei.value) and "try again" in str(ei.value)

    class Reset(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield sse(*STREAM_EVENTS[:4])
            raise httpx.ReadError("Connection reset by peer")

    p, _ = make(lambda r: httpx.Response(200, stream=Reset(), headers={"content-type": "text/event-stream"}))
    got: list[str] = []
    with pytest.raises(MalformedResponseError, match="cut off .*mid-answer") as cut:
        async for d in p.stream(ask()):
            got.append(d.text)
    assert got == ["Hello"] and may_be_billed(cut.value)
    # never connected: nothing sent, nothing billed, and the fix named
    for refused in (httpx.ConnectError, httpx.ConnectTimeout):
        p, _ = make(_raise(refused))
        with pytest.raises(ProviderError, match="base_url") as never:
            await p.complete(ask())
        assert not may_be_billed(never.value)


async def test_a_redirect_and_a_spent_account_are_named_with_their_fix() -> None:
    from edgecascade.errors import QuotaExceededError

    p, _ = make(lambda r: httpx.Response(301, text="<html><body>301 Moved Permanently</body></html>",
                                         headers={"location": "https://api.anthropic.test/v2/messages"}))
    with pytest.raises(UpstreamError, match="HTTP 301, a redirect to https://api.anthropic.test/v2/messages: set "
                       "base_url") as ei:
        await p.complete(ask())
    assert ei.value.status_code == 301 and not is_retryable(ei.value)
    for status in (402, 400):  # Anthropic documents its billing_error as a 402; a 400 saying so too
        p, _ = make(reply(status, error_body("billing_error", "Your credit balance is too low to access the API")))
        with pytest.raises(QuotaExceededError, match="credit balance is too low.*add credits"):
            await p.complete(ask())


async def test_timeout() -> None:
    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    p, _ = make(stall)
    with pytest.raises(ProviderTimeoutError):
        await p.complete(ask())


# --- the key never leaks --------------------------------------------------------------------------------


def _raise(exc: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(f"failed talking to {request.url}", request=request)
    return handler


LEAK_SCENARIOS: list[tuple[str, Handler]] = [
    # a server that echoes the key back in its message must not get it into ours
    ("401 echo", reply(401, error_body("authentication_error", f"invalid x-api-key: {KEY}"))),
    ("403", reply(403, error_body("permission_error", "not allowed"))),
    ("404", reply(404, error_body("not_found_error", "model: claude-x"))),
    ("429", reply(429, error_body("rate_limit_error", "slow down"), {"retry-after": "3"})),
    ("500 echo", lambda r: httpx.Response(500, text=f"upstream said {r.headers['x-api-key']}")),
    ("529", reply(529, error_body("overloaded_error", "Overloaded"))),
    ("400 long", reply(400, error_body("invalid_request_error", "prompt is too long: 9 tokens > 8 maximum"))),
    ("connect", _raise(httpx.ConnectError)),
    ("timeout", _raise(httpx.ReadTimeout)),
    ("protocol", _raise(httpx.RemoteProtocolError)),
    ("not json", lambda r: httpx.Response(200, content=b"{")),
    ("sse error", sse_reply(sse(("error", error_body("api_error", f"boom {KEY}"))))),
    ("sse cut", sse_reply(sse(*STREAM_EVENTS[:3]))),
]


def _chain(err: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while err is not None and err not in seen:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


async def _both_calls_fail(p: AnthropicProvider) -> list[ProviderError]:
    """The errors of one complete() and one stream() that must both fail."""
    errors: list[ProviderError] = []
    for call in (p.complete(ask()), collect(p)):
        try:
            await call
        except ProviderError as e:
            errors.append(e)
    assert len(errors) == 2
    return errors


@pytest.mark.parametrize(("name", "respond"), LEAK_SCENARIOS, ids=[n for n, _ in LEAK_SCENARIOS])
async def test_the_key_leaks_nowhere(name: str, respond: Handler, caplog: pytest.LogCaptureFixture) -> None:
    for logger in ("", "httpx", "httpcore", "edgecascade"):
        caplog.set_level(logging.DEBUG, logger=logger)
    p, rec = make(respond)
    errors = await _both_calls_fail(p)
    for err in errors:
        for link in _chain(err):
            assert KEY not in str(link) and KEY not in repr(link) and KEY not in repr(link.args)
            assert KEY not in repr(getattr(link, "__dict__", {}))
        assert err.__cause__ is None and err.__context__ is None
    for r in rec.requests:
        assert KEY not in str(r.url) and KEY not in repr(r)
    assert caplog.records, "expected httpx / provider log records to check"
    for record in caplog.records:
        assert KEY not in record.getMessage() and KEY not in repr(record.args)
    assert KEY not in caplog.text
    assert KEY not in repr(p) and KEY not in str(p) and KEY not in repr(vars(p))


async def test_the_key_is_not_in_the_locals_a_traceback_captures() -> None:
    """Error trackers capture each frame's locals: the request's headers, the key among them, had
    been one. (What a server echoes back is redacted in messages, not in the raw body a frame holds.)"""
    import traceback

    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    p, _ = make(lambda r: httpx.Response(529, json=overloaded))
    for err in await _both_calls_fail(p):
        captured = traceback.TracebackException.from_exception(err, capture_locals=True)
        assert KEY not in "".join(captured.format())


# --- redaction order, printed URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 500])
async def test_a_key_echoed_across_the_cut_leaves_no_prefix(status: int) -> None:
    """The key starts at character 285 of a long message: it is redacted before the message is cut to 300."""
    message = "x" * 285 + KEY + " and then some more text " * 20
    for respond in (reply(status, error_body("api_error", message)),
                    lambda r: httpx.Response(status, text=message)):
        p, _ = make(respond)
        for call in (p.complete(ask()), collect(p)):
            with pytest.raises(ProviderError) as ei:
                await call
            text = str(ei.value)
            assert "sk-ant" not in text and "SECRET" not in text and KEY[:3] not in text.replace("x" * 285, "")
            assert "[redac" in text


async def test_base_url_credentials_are_never_printed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)

    url = "https://user:pw@api.anthropic.test?api-key=X"
    p = AnthropicProvider(MODEL, api_key=KEY, base_url=url,
                          client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with pytest.raises(ProviderConnectionError) as ei:
        await p.complete(ask())
    for text in (repr(p), str(ei.value)):
        assert "pw" not in text and "api-key" not in text and "user" not in text, text
    assert "https://api.anthropic.test" in str(ei.value)


# --- client lifetime: one event loop per run_sync ------------------------------------------------------


async def _complete_and_stream(p: AnthropicProvider) -> tuple[str, str]:
    c = await p.complete(ask())
    return c.text, "".join(d.text for d in await collect(p))


def test_two_event_loops_in_a_row_each_get_a_fresh_client(monkeypatch: pytest.MonkeyPatch) -> None:
    def respond(r: httpx.Request) -> httpx.Response:
        if json.loads(r.content).get("stream"):
            return sse_reply(sse(*STREAM_EVENTS))(r)
        return httpx.Response(200, json=message_body())

    check_fresh_client_per_event_loop(
        monkeypatch, respond, lambda t: AnthropicProvider(MODEL, api_key=KEY, base_url=BASE, timeouts=t),
        _complete_and_stream, ("Paris.", "Hello!"))


def test_a_client_passed_in_is_kept_open() -> None:
    async def text(p: AnthropicProvider) -> str:
        return (await p.complete(ask())).text

    check_given_client_is_kept_open(make(reply(200, message_body()))[0], text, "Paris.")


def test_a_base_url_without_a_scheme_is_a_config_error() -> None:
    """It had failed every call as an unreachable server, retried and counted against the endpoint."""
    from edgecascade.errors import ConfigError

    with pytest.raises(ConfigError, match="not an http"):
        AnthropicProvider("claude-haiku-4-5", api_key="sk-ant-x", base_url="api.anthropic.com")


async def test_prompt_cache_tokens_are_counted_in_the_prompt_and_as_cached() -> None:
    """The Messages API's input_tokens leaves out the tokens read from and written to the prompt cache
    (cache_read_input_tokens, cache_creation_input_tokens): they were dropped, so the prompt read 12
    tokens where 4,112 were sent, and none read as cached."""
    usage = {"input_tokens": 12, "cache_read_input_tokens": 4000, "cache_creation_input_tokens": 100,
             "output_tokens": 3}
    p, _ = make(reply(200, {**message_body(), "usage": usage}))
    c = await p.complete(ask())
    assert (c.usage.prompt_tokens, c.usage.cached_prompt_tokens, c.usage.completion_tokens) == (4112, 4000, 3)
    start = STREAM_EVENTS[0][1]
    events = [("message_start", {**start, "message": {**start["message"], "usage": {**usage, "output_tokens": 1}}}),
              *STREAM_EVENTS[1:]]
    p, _ = make(lambda request: httpx.Response(200, content=sse(*events),
                                               headers={"content-type": "text/event-stream"}))
    s = p.stream(ask())
    assert "".join([d.text async for d in s]) == "Hello!"
    assert (s.usage.prompt_tokens, s.usage.cached_prompt_tokens, s.usage.completion_tokens) == (4112, 4000, 15)


async def test_a_temperature_the_api_refuses_is_refused_before_it_is_sent() -> None:
    """The library accepts temperatures up to 2, the Messages API up to 1: every query to a Claude tier
    under `[cascade] temperature = 1.2` failed with a 400, found only at the first question."""
    from edgecascade import Cascade, CascadeSettings, ConfigError, Tier

    p, rec = make(reply(200, message_body()))
    with pytest.raises(UpstreamError, match="accepts a temperature of 0 to 1, and this request asks 1.5"):
        await p.complete(ask(temperature=1.5))
    assert rec.requests == []
    assert (await p.complete(ask(temperature=1.0))).text == "Paris."
    with pytest.raises(ConfigError, match="accepts a temperature of at most 1 .* temperature is 1.2"):
        Cascade([Tier("claude", p)], CascadeSettings(temperature=1.2))
    assert Cascade([Tier("claude", p)], CascadeSettings(temperature=0.7)).tiers[0].name == "claude"
