"""The OpenAI-compatible provider against httpx.MockTransport, with payloads shaped like OpenAI's documented ones."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import numpy as np
import pytest

from edgecascade.config import TierConfig
from edgecascade.errors import (
    AuthenticationError,
    ConfigError,
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
from edgecascade.providers._common import finish_reason, lookup_api_key, retry_after, safe_url, shorten_and_redact
from edgecascade.providers.base import Capabilities, Provider, Timeouts
from edgecascade.providers.openai_compat import PRESETS, OpenAICompatProvider
from edgecascade.providers.resilient import ResilientProvider
from edgecascade.types import Delta, Message, Request, Usage
from tests.fakes.client_lifetime import check_fresh_client_per_event_loop, check_given_client_is_kept_open

KEY = "sk-test-SECRET-123"
BASE = "https://api.example.test/v1"
LP = Capabilities(logprobs=True, streaming=True)
Handler = Callable[[httpx.Request], httpx.Response]


def request(**kw: Any) -> Request:
    return Request([Message("system", "Be brief."), Message("user", "Say hello.")], **kw)


def provider(handler: Handler, *, capabilities: Capabilities = LP, **kw: Any) -> OpenAICompatProvider:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    kw.setdefault("api_key", KEY)
    return OpenAICompatProvider(BASE, "gpt-4o-mini", capabilities=capabilities, client=client,
                                api_key_env="OPENAI_API_KEY", **kw)


def alt(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


# choices[0].logprobs.content as OpenAI documents it; the alternatives of step 1 arrive out of order
LOGPROBS_CONTENT = [
    {**alt("Hello", -0.31725305), "top_logprobs": [alt("Hello", -0.31725305), alt("Hi", -1.3190403)]},
    {**alt("!", -0.02380986), "top_logprobs": [alt(",", -3.787621), alt("!", -0.02380986)]},
    {**alt(" How", -0.000054), "top_logprobs": [alt(" How", -0.000054), alt(" What", -10.2)]},
]


def chat_completion(content: str = "Hello! How", *, finish: str = "length", logprobs: Any = None,
                    usage: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1702685778,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": logprobs,
            "finish_reason": finish,
        }],
    }
    if usage is not None:
        body["usage"] = {**usage, "total_tokens": sum(usage.values())}
    return body


def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def sse(*events: dict[str, Any] | str) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


STREAM_EVENTS: list[dict[str, Any] | str] = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hello"}),
    chunk({"content": "!"}),
    chunk({"content": " How"}),
    chunk({}, "stop"),
    {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-4o-mini",
     "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
    "[DONE]",
]


def error(status: int, message: str, type_: str, code: str | None, headers: dict[str, str] | None = None,
          ) -> httpx.Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers)


async def collect(p: OpenAICompatProvider, req: Request | None = None) -> list[Delta]:
    return [d async for d in p.stream(req or request())]


# -- complete ------------------------------------------------------------------------------------


async def test_completion_with_logprobs_is_parsed_and_aligned() -> None:
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200, json=chat_completion(
            logprobs={"content": LOGPROBS_CONTENT, "refusal": None}, usage={"prompt_tokens": 9, "completion_tokens": 3}
        ))

    p = provider(handler, top_logprobs=2)
    assert isinstance(p, Provider)
    c = await p.complete(request(max_tokens=3, stop=["\n"], seed=7))
    assert c.text == "Hello! How" and c.model == "gpt-4o-mini"  # the name asked for, not the served snapshot
    assert c.finish_reason == "length"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (9, 3) and c.usage.reported
    assert c.timings.total_s >= 0 and c.timings.first_token_s is None
    lp = c.logprobs
    assert lp is not None
    assert lp.tokens == ["Hello", "!", " How"]
    assert lp.logprobs.dtype == np.float64 and lp.logprobs.tolist() == [-0.31725305, -0.02380986, -0.000054]
    assert lp.top_logprobs.shape == (3, 2) and lp.top_logprobs.dtype == np.float64
    assert lp.top_tokens == [["Hello", "Hi"], ["!", ","], [" How", " What"]]  # sorted best-first
    assert np.all(np.diff(lp.top_logprobs, axis=1) <= 0)
    assert np.allclose(lp.top_logprobs[:, 0], lp.logprobs)

    r = seen[0]
    assert r.method == "POST" and str(r.url) == f"{BASE}/chat/completions"
    assert r.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(r.content)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}],
        "max_tokens": 3, "temperature": 0.0, "stop": ["\n"], "seed": 7,
        "logprobs": True, "top_logprobs": 2,  # the provider's top_logprobs
    }


async def test_ragged_alternatives_are_cut_to_the_shortest_row() -> None:
    content = [dict(LOGPROBS_CONTENT[0]), {**alt("!", -0.1), "top_logprobs": [alt("!", -0.1)]}]
    p = provider(lambda r: httpx.Response(200, json=chat_completion(
        "Hello!", finish="stop", logprobs={"content": content}, usage={"prompt_tokens": 9, "completion_tokens": 2})))
    lp = (await p.complete(request())).logprobs
    assert lp is not None and lp.top_logprobs.shape == (2, 1) and lp.top_tokens == [["Hello"], ["!"]]


async def test_logprobs_without_alternatives_give_zero_columns() -> None:
    content = [alt("Hi", -0.5)]
    p = provider(lambda r: httpx.Response(200, json=chat_completion(
        "Hi", finish="stop", logprobs={"content": content}, usage={"prompt_tokens": 9, "completion_tokens": 1})))
    lp = (await p.complete(request())).logprobs
    assert lp is not None and lp.top_logprobs.shape == (1, 0) and lp.top_tokens == [[]]


async def test_finish_reason_stop_and_no_logprobs_asked_when_the_capability_is_off() -> None:
    seen: list[dict[str, Any]] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(json.loads(r.content))
        return httpx.Response(200, json=chat_completion(
            "Hello!", finish="stop", usage={"prompt_tokens": 9, "completion_tokens": 2}))

    c = await provider(handler, capabilities=Capabilities(streaming=True)).complete(request())
    assert c.finish_reason == "stop" and c.logprobs is None
    assert "logprobs" not in seen[0] and "top_logprobs" not in seen[0]
    assert "stop" not in seen[0] and "seed" not in seen[0]  # only sent when set


async def test_missing_logprobs_and_usage_do_not_fail_the_answer() -> None:
    p = provider(lambda r: httpx.Response(200, json=chat_completion("Hello!", finish="stop")))
    c = await p.complete(request())
    assert c.text == "Hello!" and c.logprobs is None
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (0, 0)
    assert c.usage.reported is False  # said, so the cost read off these zeros is not taken for true


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"choices": []}', b'{"object": "list"}'])
async def test_a_200_that_is_not_a_chat_completion_is_malformed(body: bytes) -> None:
    p = provider(lambda r: httpx.Response(200, content=body))
    with pytest.raises(MalformedResponseError):
        await p.complete(request())


async def test_an_error_object_inside_a_200_is_an_upstream_error() -> None:
    p = provider(lambda r: httpx.Response(200, json={"error": {"message": "Provider returned error", "code": 502}}))
    with pytest.raises(UpstreamError, match="Provider returned error") as ei:
        await p.complete(request())
    assert ei.value.status_code == 502


# -- errors --------------------------------------------------------------------------------------


async def test_401_is_an_authentication_error_naming_the_env_var() -> None:
    p = provider(lambda r: error(401, "Incorrect API key provided: sk-test-***123.", "invalid_request_error",
                                 "invalid_api_key"))
    with pytest.raises(AuthenticationError, match=r"\$OPENAI_API_KEY") as ei:
        await p.complete(request())
    assert "Incorrect API key provided" in str(ei.value)


async def test_404_is_an_unknown_model_error_naming_model_and_url() -> None:
    p = provider(lambda r: error(404, "The model `gpt-4o-mini` does not exist or you do not have access to it.",
                                 "invalid_request_error", "model_not_found"))
    with pytest.raises(UnknownModelError, match="gpt-4o-mini") as ei:
        await p.complete(request())
    assert BASE in str(ei.value)


async def test_400_model_not_found_is_an_unknown_model_error() -> None:
    p = provider(lambda r: error(400, "foo/bar is not a valid model ID", "invalid_request_error", None))
    with pytest.raises(UnknownModelError):
        await p.complete(request())


async def test_429_carries_retry_after_seconds() -> None:
    p = provider(lambda r: error(429, "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3.",
                                 "requests", "rate_limit_exceeded", headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitedError) as ei:
        await p.complete(request())
    assert ei.value.retry_after == 7


async def test_429_retry_after_as_http_date_and_absent() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    p = provider(lambda r: error(429, "slow down", "requests", None, headers={"Retry-After": when}))
    with pytest.raises(RateLimitedError) as ei:
        await p.complete(request())
    assert ei.value.retry_after is not None and 25 <= ei.value.retry_after <= 31
    p = provider(lambda r: error(429, "slow down", "requests", None))
    with pytest.raises(RateLimitedError) as ei:
        await p.complete(request())
    assert ei.value.retry_after is None


async def test_500_is_an_upstream_error_with_its_status() -> None:
    p = provider(lambda r: error(500, "The server had an error while processing your request. Sorry about that!",
                                 "server_error", None))
    with pytest.raises(UpstreamError, match="Sorry about that") as ei:
        await p.complete(request())
    assert type(ei.value) is UpstreamError and ei.value.status_code == 500 and ei.value.retry_after is None
    # an overloaded server's Retry-After comes with its 503, for the retries to honour
    p = provider(lambda r: error(503, "overloaded", "server_error", None, headers={"Retry-After": "5"}))
    with pytest.raises(UpstreamError) as ei:
        await p.complete(request())
    assert ei.value.status_code == 503 and ei.value.retry_after == 5


async def test_other_4xx_is_an_upstream_error_with_its_status() -> None:
    p = provider(lambda r: httpx.Response(422, json={"detail": [{"msg": "field required", "loc": ["messages"]}]}))
    with pytest.raises(UpstreamError, match="field required") as ei:
        await p.complete(request())
    assert ei.value.status_code == 422


async def test_context_length_400_is_a_context_length_error() -> None:
    p = provider(lambda r: error(
        400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 130012 "
        "tokens. Please reduce the length of the messages.", "invalid_request_error", "context_length_exceeded"))
    with pytest.raises(ContextLengthError, match="maximum context length") as ei:
        await p.complete(request())
    assert ei.value.context == 128000 and ei.value.prompt_tokens == 130012


async def test_long_server_messages_are_truncated() -> None:
    p = provider(lambda r: error(500, "x" * 5000, "server_error", None))
    with pytest.raises(UpstreamError) as ei:
        await p.complete(request())
    assert len(str(ei.value)) < 600


async def test_connection_refused_is_a_connection_error() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=r)

    with pytest.raises(ProviderConnectionError, match="Connection refused"):
        await provider(handler).complete(request())


async def test_read_timeout_is_a_timeout_error() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=r)

    with pytest.raises(ProviderTimeoutError):
        await provider(handler).complete(request())


async def test_connect_timeout_is_a_timeout_error() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=r)

    with pytest.raises(ProviderTimeoutError, match="connect"):
        await provider(handler).complete(request())


async def test_remote_protocol_error_is_an_upstream_error() -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=r)

    with pytest.raises(UpstreamError) as ei:
        await provider(handler).complete(request())
    assert ei.value.status_code is None  # retryable by the wrapper


# -- stream --------------------------------------------------------------------------------------


async def test_stream_yields_deltas_and_a_final_finish_reason() -> None:
    seen: list[dict[str, Any]] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(json.loads(r.content))
        return httpx.Response(200, content=sse(*STREAM_EVENTS), headers={"content-type": "text/event-stream"})

    deltas = await collect(provider(handler))
    assert "".join(d.text for d in deltas) == "Hello! How"
    assert [d.finish_reason for d in deltas] == [None, None, None, "stop"]
    body = seen[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "logprobs" not in body  # a Delta cannot carry them: not asked for
    # the usage chunk's counts reach the caller (they had been dropped), through the retry layer too
    s = provider(handler).stream(request())
    assert "".join([d.text async for d in s]) == "Hello! How"
    assert s.usage == Usage(9, 3) and s.finish_reason == "stop"
    wrapped = ResilientProvider(provider(handler), endpoint=BASE).stream(request())
    assert "".join([d.text async for d in wrapped]) == "Hello! How" and wrapped.usage == Usage(9, 3)
    # a server that sends no usage chunk: zero, and said so
    bare = provider(lambda r: httpx.Response(200, content=sse(*STREAM_EVENTS[:5], "[DONE]"),
                                             headers={"content-type": "text/event-stream"})).stream(request())
    assert "".join([d.text async for d in bare]) == "Hello! How" and bare.usage == Usage(0, 0, reported=False)


async def test_stream_parses_sse_comments_split_lines_and_missing_space() -> None:
    raw = (b": keep-alive\n\n" + b'data:{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
           + b'event: message\ndata: {"choices":[{"index":0,"delta":{"content":" there"},\ndata: '
           + b'"finish_reason":"length"}]}\n\n' + b"data: [DONE]\n\n")
    p = provider(lambda r: httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"}))
    deltas = await collect(p)
    assert deltas == [Delta("Hi", None), Delta(" there", "length")]


async def test_stream_done_without_finish_reason_ends_with_stop() -> None:
    p = provider(lambda r: httpx.Response(200, content=sse(chunk({"content": "Hi"}), "[DONE]"),
                                          headers={"content-type": "text/event-stream"}))
    assert await collect(p) == [Delta("Hi", None), Delta("", "stop")]


@pytest.mark.parametrize("raw", [
    sse(*STREAM_EVENTS[:4]),  # cut between events: no finish reason, no [DONE]
    sse(*STREAM_EVENTS[:3]) + b'data: {"id": "chatcmpl-123", "choi',  # cut mid-event
    b"",  # headers sent, then nothing (llama.cpp's server, on a prompt longer than its context)
])
async def test_stream_cut_midway_is_malformed(raw: bytes) -> None:
    p = provider(lambda r: httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"}))
    with pytest.raises(MalformedResponseError, match="cut off"):
        await collect(p)


async def test_stream_read_timeout_midway_is_a_timeout_error() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield sse(STREAM_EVENTS[1])
        raise httpx.ReadTimeout("timed out")

    p = provider(lambda r: httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"}))
    got: list[Delta] = []
    with pytest.raises(ProviderTimeoutError, match="middle of the stream"):
        async for d in p.stream(request()):
            got.append(d)
    assert got == [Delta("Hello", None)]


async def test_stream_http_errors_are_mapped_like_complete() -> None:
    p = provider(lambda r: error(429, "slow down", "requests", None, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitedError) as ei:
        await collect(p)
    assert ei.value.retry_after == 7


async def test_stream_error_event_is_an_upstream_error() -> None:
    raw = sse(chunk({"content": "Hi"}), {"error": {"message": "upstream overloaded", "code": 503}})
    p = provider(lambda r: httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"}))
    with pytest.raises(UpstreamError, match="upstream overloaded") as ei:
        await collect(p)
    assert ei.value.status_code == 503


async def test_stream_ignored_by_the_server_still_answers() -> None:
    p = provider(lambda r: httpx.Response(200, json=chat_completion(
        "Hello!", finish="stop", usage={"prompt_tokens": 9, "completion_tokens": 2})))
    assert await collect(p) == [Delta("Hello!", "stop")]


# -- construction, presets, lifecycle ------------------------------------------------------------


def test_presets() -> None:
    assert set(PRESETS) == {"vllm", "llamacpp-server", "openai", "groq", "together", "openrouter", "deepseek",
                            "openai-compatible"}
    assert PRESETS["openai"].capabilities == Capabilities(logprobs=True, streaming=True, tools=True, json_mode=True)
    assert not PRESETS["groq"].capabilities.logprobs and PRESETS["groq"].api_key_env == "GROQ_API_KEY"
    assert PRESETS["openai-compatible"].base_url == "" and PRESETS["openai-compatible"].api_key_env is None
    assert all(p.capabilities.streaming for p in PRESETS.values())


def test_from_preset_reads_the_key_from_its_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    p = OpenAICompatProvider.from_preset("groq", "llama-3.1-8b-instant")
    assert p.base_url == "https://api.groq.com/openai/v1" and p.api_key_env == "GROQ_API_KEY"
    assert p.capabilities == PRESETS["groq"].capabilities and p._headers(stream=False)["Authorization"].endswith(KEY)
    with pytest.raises(ConfigError, match="base_url"):
        OpenAICompatProvider.from_preset("openai-compatible", "m")
    with pytest.raises(ConfigError, match="unknown"):
        OpenAICompatProvider.from_preset("nope", "m")


def test_bad_base_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        OpenAICompatProvider("", "m")
    with pytest.raises(ConfigError):
        OpenAICompatProvider("api.openai.com/v1", "m")
    assert OpenAICompatProvider("http://h:1/v1/", "m").base_url == "http://h:1/v1"


async def test_aclose_closes_only_a_client_it_created() -> None:
    given = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    p = OpenAICompatProvider(BASE, "m", client=given)
    await p.aclose()
    assert not given.is_closed
    await given.aclose()
    own = OpenAICompatProvider(BASE, "m", timeouts=Timeouts(connect=1.5, read=9.0))
    client = own._get_client()
    assert client.timeout == httpx.Timeout(connect=1.5, read=9.0, write=9.0, pool=1.5)
    await own.aclose()
    assert client.is_closed


# -- the key never leaks -------------------------------------------------------------------------


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on exit: connecting to it is refused


def _raiser(exc: type[httpx.TransportError], message: str) -> Handler:
    def handler(r: httpx.Request) -> httpx.Response:
        raise exc(message, request=r)

    return handler


LEAK_CASES: dict[str, Handler] = {
    "401": lambda r: error(401, "Incorrect API key provided: sk-test-***123.", "invalid_request_error",
                           "invalid_api_key"),
    "401-echoing-the-key": lambda r: error(401, f"bad key {r.headers['authorization']}", "auth", None),
    "404": lambda r: error(404, "The model does not exist", "invalid_request_error", "model_not_found"),
    "429": lambda r: error(429, "Rate limit reached", "requests", "rate_limit_exceeded", {"Retry-After": "7"}),
    "500": lambda r: error(500, "The server had an error", "server_error", None),
    "400-context": lambda r: error(400, "This model's maximum context length is 8 tokens.", "invalid_request_error",
                                   "context_length_exceeded"),
    "malformed": lambda r: httpx.Response(200, content=b"{not json"),
    "refused": _raiser(httpx.ConnectError, "[Errno 111] Connection refused"),
    "read-timeout": _raiser(httpx.ReadTimeout, "timed out"),
    "cut-stream": lambda r: httpx.Response(200, content=sse(chunk({"content": "Hi"})),
                                           headers={"content-type": "text/event-stream"}),
}


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is seen for seen in out):
            continue
        out.append(e)
        todo += [e.__cause__, e.__context__]
    return out


@pytest.mark.parametrize("case", sorted(LEAK_CASES))
async def test_the_api_key_never_leaks(case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "edgecascade"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return LEAK_CASES[case](r)

    p = provider(handler)
    assert KEY not in repr(p) and KEY not in str(p)
    errors: list[ProviderError] = []
    for call in (lambda: p.complete(request()), lambda: collect(p)):
        try:
            await call()
        except ProviderError as e:
            errors.append(e)
    assert len(errors) == 2, f"{case}: both the call and the stream must fail, each with a ProviderError"
    for err in errors:
        for link in _chain(err):
            assert KEY not in str(link) and KEY not in repr(link) and "SECRET" not in str(link)
            assert "authorization" not in str(link).lower()
    assert seen and all(r.headers["authorization"] == f"Bearer {KEY}" for r in seen)  # it was sent...
    assert all(KEY not in str(r.url) for r in seen)  # ...in the header only
    assert all(KEY not in rec.getMessage() for rec in caplog.records)


async def test_the_api_key_never_leaks_through_a_real_transport(caplog: pytest.LogCaptureFixture) -> None:
    """A real connection attempt (refused) with httpx/httpcore logging everything at DEBUG."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    p = OpenAICompatProvider(f"http://127.0.0.1:{_refused_port()}/v1", "m", api_key=KEY,
                             timeouts=Timeouts(connect=2, read=2))
    try:
        with pytest.raises(ProviderConnectionError) as ei:
            await p.complete(request())
        with pytest.raises(ProviderConnectionError):
            await collect(p)
    finally:
        await p.aclose()
    assert all(KEY not in str(e) and KEY not in repr(e) for e in _chain(ei.value))
    assert caplog.records  # httpcore did log the attempt
    assert all(KEY not in rec.getMessage() for rec in caplog.records)


async def test_extra_body_adds_fields_but_cannot_override_managed_ones() -> None:
    seen: list[dict[str, Any]] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(json.loads(r.content))
        return httpx.Response(200, json=chat_completion("Hi", finish="stop"))

    p = provider(handler, extra_body={"repeat_penalty": 1.0, "model": "other", "max_tokens": 1})
    await p.complete(request(max_tokens=9))
    assert seen[0]["repeat_penalty"] == 1.0
    assert seen[0]["model"] == "gpt-4o-mini" and seen[0]["max_tokens"] == 9


async def test_stream_error_status_with_an_unreadable_body_is_still_mapped() -> None:
    async def body() -> AsyncIterator[bytes]:
        raise httpx.ReadError("connection reset")
        yield b""  # pragma: no cover - makes this an async generator

    p = provider(lambda r: httpx.Response(503, content=body()))
    with pytest.raises(UpstreamError, match="HTTP 503") as ei:
        await collect(p)
    assert ei.value.status_code == 503


# -- client lifetime: one event loop per run_sync ------------------------------------------------


async def _complete_and_stream(p: OpenAICompatProvider) -> tuple[str, str]:
    c = await p.complete(request())
    return c.text, "".join([d.text async for d in p.stream(request())])


def test_two_event_loops_in_a_row_each_get_a_fresh_client(monkeypatch: pytest.MonkeyPatch) -> None:
    check_fresh_client_per_event_loop(
        monkeypatch, lambda r: httpx.Response(200, json=chat_completion(
            "Hello!", finish="stop", usage={"prompt_tokens": 9, "completion_tokens": 2})),
        lambda t: OpenAICompatProvider(BASE, "gpt-4o-mini", api_key=KEY, timeouts=t),
        _complete_and_stream, ("Hello!", "Hello!"))


def test_a_client_passed_in_is_kept_open_and_reused_across_runs() -> None:
    given = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, json=chat_completion("Hi", finish="stop"))))

    async def text(p: OpenAICompatProvider) -> str:
        return (await p.complete(request())).text

    check_given_client_is_kept_open(OpenAICompatProvider(BASE, "m", client=given), text, "Hi")


# -- the shared helpers --------------------------------------------------------------------------


def test_safe_url_drops_userinfo_query_and_fragment() -> None:
    assert safe_url("https://user:pw@host/v1?api-key=X") == "https://host/v1"
    assert safe_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434"
    assert safe_url("http://u@[::1]:8000/v1#frag") == "http://[::1]:8000/v1"
    assert safe_url("user:pw@localhost:11434?k=1") == "localhost:11434"  # no scheme, as OLLAMA_HOST allows
    assert safe_url("https://user:pw@host:99999/v1?k=X") == "https://host:99999/v1"  # unparseable port


@pytest.mark.parametrize("url", [
    "https://user:ab/cdSECRET@proxy.example.com/anthropic",  # a base64 password holding "/"
    "https://user:abc#SECRET@proxy.example.com",
    "https://user:12/34SECRET@proxy.example.com/v1",  # parses, with "12" as the port and the rest a path
    "https://user:12#34SECRET@proxy.example.com/v1",
    "https://user:12?34SECRET@proxy.example.com/v1",
    "user:ab/cdSECRET@localhost:11434",  # no scheme, as OLLAMA_HOST allows
    "https://user:s3cr@t/SECRETab@proxy.example.com/v1",  # an "@" and a "/" in one password
])
def test_safe_url_hides_a_password_that_ends_the_authority_early(url: str) -> None:
    """A password holding "/", "?" or "#" (not percent-encoded) ends the URL's authority where it
    stands: the password's first half was read as the port or the path, and printed."""
    shown = safe_url(url)
    assert "SECRET" not in shown and "user" not in shown and "ab" not in shown.replace("example", ""), shown
    assert "12" not in shown and shown.endswith(("proxy.example.com/anthropic", "proxy.example.com",
                                                 "proxy.example.com/v1", "localhost:11434")), shown


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/v1", "https://user:ab/cdSECRET@proxy.example.com/v1",
                                 "http://[::1/v1", "http://:8000/v1"])
def test_a_base_url_whose_host_or_port_cannot_be_read_is_a_config_error(url: str) -> None:
    """Port 99999 passed, and the first request raised an ExceptionGroup from the HTTP stack that no
    tier's failover caught (the whole cascade failed); a bad IPv6 literal raised httpx.InvalidURL."""
    from edgecascade.providers.anthropic import AnthropicProvider

    for make in (lambda: OpenAICompatProvider(url, "m"), lambda: AnthropicProvider("claude", base_url=url)):
        with pytest.raises(ConfigError, match="host or port that cannot be read") as ei:
            make()
        assert "SECRET" not in str(ei.value) and "cdSECRET" not in str(ei.value)


def test_a_base_url_with_an_at_sign_in_its_path_or_query_is_accepted() -> None:
    """A review found the first version of the host check refusing these (an e-mail address in the
    query, a scoped name in the path); messages show them without what comes before the "@"."""
    from edgecascade.providers._common import checked_url

    for url in ("https://host.example.com/v1?email=a@b.com", "https://gw.example.com/openai/@team/v1"):
        assert checked_url(url, "x") == url
        assert OpenAICompatProvider(url, "m").base_url == url


def test_an_ollama_host_whose_port_cannot_be_read_is_a_config_error() -> None:
    """Every request to it had failed as "answered outside its documented /api/chat format"."""
    pytest.importorskip("ollama")
    from edgecascade.providers.ollama import OllamaProvider

    for host in ("127.0.0.1:99999", "http://[::1:11434", "http://user:ab/cdSECRET@h:11434"):
        with pytest.raises(ConfigError, match="host or port that cannot be read") as ei:
            OllamaProvider(host, "m")
        assert "SECRET" not in str(ei.value)
    for host in ("127.0.0.1:11434", "http://localhost:11434", "https://user:pw@ollama.example.com", ":11434"):
        assert OllamaProvider(host, "m").host == host  # what the client reads, as given


async def test_sse_lines_end_only_at_cr_lf_or_crlf_however_the_body_is_chunked() -> None:
    from edgecascade.providers._common import sse_lines

    body = 'data: {"t": "a\u2028b\x85c\x0bd\x0ce\x1cf"}\r\n\r\ndata: x\rdata: y\n\ndata: end'

    async def chunks(size: int) -> AsyncIterator[str]:
        for i in range(0, len(body), size):
            yield body[i:i + size]
        yield ""

    want = ['data: {"t": "a\u2028b\x85c\x0bd\x0ce\x1cf"}', "", "data: x", "data: y", "", "data: end"]
    for size in (1, 2, 3, 7, len(body)):  # a CR LF split across two chunks is one line end
        assert [line async for line in sse_lines(chunks(size))] == want, size


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"])
async def test_a_streamed_answer_may_hold_unicode_line_separators(sep: str) -> None:
    """httpx's aiter_lines splits at U+2028, U+2029 and NEL, which a JSON string holds unescaped
    (llama.cpp's server and vLLM write them so): the event was cut mid-JSON and the stream failed as
    malformed, in the OpenAI-compatible and the Anthropic provider alike."""
    from edgecascade.providers.anthropic import AnthropicProvider

    def sse(body: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(
            200, content=body.encode(), headers={"content-type": "text/event-stream"})))

    text = f"line one{sep}line two"
    chunks = [{"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
    body = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    got = [d async for d in OpenAICompatProvider(BASE, "m", client=sse(body)).stream(request())]
    assert "".join(d.text for d in got) == text and got[-1].finish_reason == "stop"

    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data}, ensure_ascii=False)}\n\n"

    body = (event("message_start", {"message": {"usage": {"input_tokens": 3, "output_tokens": 1}}})
            + event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
            + event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}})
            + event("message_stop", {}))
    got = [d async for d in AnthropicProvider("claude", api_key="k", client=sse(body)).stream(request())]
    assert "".join(d.text for d in got) == text and got[-1].finish_reason == "stop"


async def test_a_web_page_where_a_stream_was_expected_says_check_base_url() -> None:
    """complete() named a web page (a wrong base_url) and did not retry it; stream() read it as an
    answer "cut off" and retried it, in both HTTP providers."""
    from edgecascade.providers.anthropic import AnthropicProvider

    page = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(
        200, text="<html><body>Sign in</body></html>", headers={"content-type": "text/html; charset=utf-8"})))
    providers = (OpenAICompatProvider(BASE, "m", client=page), AnthropicProvider("claude", api_key="k", client=page))
    for provider in providers:
        with pytest.raises(MalformedResponseError, match="web page.*base_url") as ei:
            [d async for d in provider.stream(request())]
        assert not ei.value.retryable and "cut off" not in str(ei.value)


def test_base_url_credentials_are_never_printed() -> None:
    url = "https://user:pw@api.example.test/v1?api-key=X"
    p = OpenAICompatProvider(url, "gpt-4o-mini", client=httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: error(404, f"no route for {r.url}", "invalid_request_error", "model_not_found"))))
    with pytest.raises(UnknownModelError) as ei:
        asyncio.run(p.complete(request()))
    for text in (repr(p), str(ei.value), p.identity):
        assert "pw" not in text and "api-key" not in text and "user" not in text, text
    assert "https://api.example.test/v1" in str(ei.value)


def test_retry_after_and_finish_reason_helpers() -> None:
    assert retry_after(httpx.Headers({"Retry-After-Ms": "1500", "Retry-After": "9"})) == 1.5
    assert retry_after(httpx.Headers({"Retry-After": "9"})) == 9.0
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None and retry_after({}) is None
    assert [finish_reason(r) for r in ("length", "max_tokens", "stop", "end_turn", None)] == \
        ["length", "length", "stop", "stop", "stop"]
    # Anthropic documents a full context window as a cut answer; a filtered or refused one is withheld
    assert [finish_reason(r) for r in ("model_context_window_exceeded", "content_filter", "refusal")] == \
        ["length", "filtered", "filtered"]
    # Mistral's full context window is a cut answer; text-generation-inference (before 2.2) finished
    # with "eos_token": every one of its answers had read as an error
    assert [finish_reason(r) for r in ("model_length", "eos_token")] == ["length", "stop"]


async def test_a_filtered_answer_is_rejected_not_judged_as_whole() -> None:
    """OpenAI's content_filter (the content omitted or cut) had read as a normal stop: a partial
    answer was judged as a whole one."""
    from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier

    p = provider(lambda r: httpx.Response(200, json=chat_completion("The answer is", finish="content_filter")))
    c = await p.complete(request())
    assert c.finish_reason == "filtered"
    cascade = Cascade([Tier("cloud", p, AcceptRule(min_confidence=0.0)),
                       Tier("local", ScriptedProvider([ScriptedReply("42.", logprob=-0.1)]))])
    r = await cascade.run("q")
    assert r.tier == "local" and "refusal: the backend withheld or cut the answer" in r.attempts[0].reason


def test_shorten_and_redact_redacts_before_cutting() -> None:
    text = "x" * 290 + KEY + " and more"  # the key straddles the 300-character cut
    out = shorten_and_redact(text, KEY)
    assert len(out) <= 300 and KEY[:4] not in out and "[redac" in out


# -- where the key comes from ---------------------------------------------------------------------


def test_one_key_lookup_for_build_provider_and_from_preset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_VLLM_KEY", KEY)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    assert lookup_api_key("MY_VLLM_KEY") == KEY and lookup_api_key("VLLM_API_KEY") is None
    assert lookup_api_key(None) is None
    built = build_provider(TierConfig(model="m", provider="vllm", api_key_env="MY_VLLM_KEY"))
    assert isinstance(built, ResilientProvider)
    inner = built.inner
    assert isinstance(inner, OpenAICompatProvider) and inner.api_key_env == "MY_VLLM_KEY"
    assert inner._headers(stream=False)["Authorization"] == f"Bearer {KEY}"
    p = OpenAICompatProvider.from_preset("vllm", "m", api_key_env="MY_VLLM_KEY")  # the variable named is read
    assert p._headers(stream=False)["Authorization"] == f"Bearer {KEY}"
    assert "Authorization" not in OpenAICompatProvider.from_preset("vllm", "m")._headers(stream=False)


class _TierWithLogprobs(TierConfig):
    """TierConfig plus the optional ``logprobs`` key build_provider honours when present."""

    logprobs: bool | None = None


@pytest.mark.parametrize(("preset", "flag", "expected"), [
    ("openai-compatible", None, False),  # the generic preset: off unless the tier says so
    ("openai-compatible", True, True),
    ("vllm", False, False),  # a preset's default can be turned off too
    ("vllm", None, True),
])
def test_a_tier_logprobs_flag_overrides_the_preset(preset: str, flag: bool | None, expected: bool) -> None:
    tier = _TierWithLogprobs(model="m", provider=preset, base_url="http://127.0.0.1:8000/v1",  # type: ignore[arg-type]
                             logprobs=flag, top_logprobs=5)
    built = build_provider(tier)
    assert isinstance(built, ResilientProvider) and built.capabilities.logprobs is expected
    assert built.capabilities.streaming  # the rest of the preset's capabilities are kept


async def test_llama_server_context_overflow_is_a_context_length_error() -> None:
    """llama.cpp's llama-server words it its own way (an integer code, the kind in `type`): it had
    come back as a plain 400, without the advice or the sizes."""
    body = {"error": {"code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": 9412, "n_ctx": 8192,
                      "message": "request (9412 tokens) exceeds the available context size (8192 tokens), "
                                 "try increasing it"}}
    p = provider(lambda r: httpx.Response(400, json=body))
    with pytest.raises(ContextLengthError, match="shorten the prompt") as ei:
        await p.complete(request())
    assert ei.value.context == 8192 and ei.value.prompt_tokens == 9412


async def test_an_account_out_of_credits_is_not_a_rate_limit() -> None:
    """OpenAI's 429 insufficient_quota had been retried as a rate limit, with "slow down" as advice."""
    from edgecascade import QuotaExceededError
    from edgecascade.providers.resilient import is_retryable

    p = provider(lambda r: error(429, "You exceeded your current quota, please check your plan and billing "
                                 "details.", "insufficient_quota", "insufficient_quota"))
    with pytest.raises(QuotaExceededError, match="out of credits or past its spend limit") as ei:
        await p.complete(request())
    assert not is_retryable(ei.value) and "slow down" not in str(ei.value)
    p = provider(lambda r: error(402, "Insufficient Balance", "unknown_error", "invalid_request_error"))
    with pytest.raises(QuotaExceededError):  # DeepSeek's word for it
        await p.complete(request())
    p = provider(lambda r: error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"))
    with pytest.raises(RateLimitedError) as rl:
        await p.complete(request())
    assert is_retryable(rl.value)
    # a request larger than the key's tokens-per-minute limit: no wait lets it through, so it is
    # neither retried nor held against the endpoint (it had been retried as a rate limit)
    from edgecascade.providers.resilient import _counts_against_endpoint

    p = provider(lambda r: error(429, "Request too large for gpt-4o in organization org-x on tokens per min (TPM): "
                                 "Limit 30000, Requested 50000. The input or output tokens must be reduced in "
                                 "order to run successfully.", "tokens", "rate_limit_exceeded"))
    with pytest.raises(UpstreamError, match="per-minute token limit .*shorten the prompt") as big:
        await p.complete(request())
    assert not is_retryable(big.value) and not _counts_against_endpoint(big.value)


async def test_the_openai_preset_sends_max_completion_tokens() -> None:
    """OpenAI deprecated max_tokens; its reasoning models refuse it. Other servers keep max_tokens."""
    seen: list[dict[str, Any]] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(json.loads(r.content))
        return httpx.Response(200, json=chat_completion("Hi", finish="stop"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    await OpenAICompatProvider.from_preset("openai", "gpt-4o-mini", api_key=KEY, client=client).complete(
        request(max_tokens=9))
    await OpenAICompatProvider.from_preset("vllm", "qwen", client=client).complete(request(max_tokens=9))
    assert seen[0]["max_completion_tokens"] == 9 and "max_tokens" not in seen[0]
    assert seen[1]["max_tokens"] == 9 and "max_completion_tokens" not in seen[1]
    # and so does a config's openai tier, which build_provider makes
    for name in ("openai", "vllm"):
        inner = build_provider(TierConfig(model="m", provider=name)).inner  # type: ignore[attr-defined]
        assert inner.max_tokens_field == PRESETS[name].max_tokens_field
    # a parameter a reasoning model refuses is named, with what to do
    p = provider(lambda r: error(400, "Unsupported value: 'temperature' does not support 0 with this model. Only "
                                 "the default (1) value is supported.", "invalid_request_error", "unsupported_value"))
    with pytest.raises(UpstreamError, match="use a chat model") as ei:
        await p.complete(request())
    assert ei.value.status_code == 400


async def test_a_base_url_with_a_query_keeps_it_after_the_path() -> None:
    """An Azure-style ?api-version= had been followed by /chat/completions, a URL no server serves."""
    seen: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return httpx.Response(200, json=chat_completion("Hi", finish="stop"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = OpenAICompatProvider("https://x.example/openai/deployments/d?api-version=2024-02-01", "m", client=client)
    await p.complete(request())
    assert str(seen[0].url) == "https://x.example/openai/deployments/d/chat/completions?api-version=2024-02-01"
    assert "api-version" not in repr(p)


async def test_cached_prompt_tokens_are_read_and_priced_at_the_cache_price() -> None:
    """OpenAI's prompt_tokens_details.cached_tokens and DeepSeek's prompt_cache_hit_tokens had been
    dropped, so a cached prompt was costed at the full input price."""
    from edgecascade import AcceptRule, Cascade, Price, Tier

    openai_usage = {"prompt_tokens": 2000, "completion_tokens": 10,
                    "prompt_tokens_details": {"cached_tokens": 1920}}
    deepseek_usage = {"prompt_tokens": 2000, "completion_tokens": 10, "prompt_cache_hit_tokens": 1920,
                      "prompt_cache_miss_tokens": 80}
    for usage in (openai_usage, deepseek_usage):
        p = provider(lambda r, u=usage: httpx.Response(200, json={**chat_completion("Hi", finish="stop"), "usage": u}))
        c = await p.complete(request())
        assert (c.usage.prompt_tokens, c.usage.cached_prompt_tokens) == (2000, 1920)
    price = Price(input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.25)
    r = await Cascade([Tier("cloud", p, AcceptRule(min_confidence=0.0), price)]).run("q")
    assert r.cost == pytest.approx((80 * 1.0 + 1920 * 0.25 + 10 * 4.0) / 1e6)
    assert Price(input_per_mtok=1.0).cost(2000, 0, 1920) == pytest.approx(2000 / 1e6)  # no cache price given


def test_the_key_is_not_a_plain_string_on_the_provider() -> None:
    """vars() of the OpenAI-compatible and Ollama providers had shown the key."""
    from edgecascade.providers.ollama import OllamaProvider

    for p in (OpenAICompatProvider(BASE, "m", api_key=KEY),
              OllamaProvider("http://127.0.0.1:11434", "llama3.2:1b", api_key=KEY)):
        assert KEY not in repr(vars(p)) and KEY not in repr(p)
    assert provider(lambda r: httpx.Response(200))._headers(stream=False)["Authorization"] == f"Bearer {KEY}"


async def test_legacy_shaped_logprobs_are_read_and_missing_ones_are_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """Together documents chat logprobs in the completions API's shape: they had been dropped without
    a word, and the tier judged on its checks alone."""
    legacy = {"tokens": ["Hi", "!"], "token_logprobs": [-0.1, -0.5],
              "top_logprobs": [{"Hi": -0.1, "Hello": -2.5}, {"!": -0.5, ".": -1.0}]}
    p = provider(lambda r: httpx.Response(200, json=chat_completion("Hi!", finish="stop", logprobs=legacy)))
    lp = (await p.complete(request())).logprobs
    assert lp is not None and lp.tokens == ["Hi", "!"] and lp.logprobs.tolist() == [-0.1, -0.5]
    assert lp.top_tokens == [["Hi", "Hello"], ["!", "."]]
    p = provider(lambda r: httpx.Response(200, json=chat_completion("Hi!", finish="stop")))
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert (await p.complete(request())).logprobs is None
    said = [r for r in caplog.records if "returned no logprobs" in r.getMessage()]
    assert len(said) == 1 and "set logprobs = false" in said[0].getMessage()


def test_every_url_a_server_echoes_is_printed_without_userinfo_or_query() -> None:
    """The endpoint a server echoes is not the base_url (it has a path), and the first pattern stopped
    at brackets, parentheses and quotes: an IPv6 host's query, a password with a quote, and the rest
    of a query after a redacted key had come through."""
    from edgecascade.providers._common import redact

    for text in ("no route for https://user:pw@[::1]:8000/v1/chat/completions?api-key=X",
                 "at https://us(er:p'w@h/v1/x?k=(1)&api-key=X",
                 f"url https://h/v1/chat?a={KEY}&api-key=X end"):
        out = redact(text, KEY)
        assert "api-key" not in out and "pw" not in out and "p'w" not in out and KEY not in out, out
    assert redact("see https://h.example/v1/models (the list)", None) == "see https://h.example/v1/models (the list)"


# -- from a review of the wire formats ------------------------------------------------------------


def test_a_key_with_a_line_break_or_a_non_ascii_character_is_refused_by_its_variable_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A key read from a CRLF .env file ended in "\\r": h11 refused the header with a message quoting
    the key, which redact() (looking for the raw key) left in; a pasted "…" raised UnicodeEncodeError
    out of the query."""
    monkeypatch.setenv("MY_KEY", KEY + "\r\n")
    assert lookup_api_key("MY_KEY") == KEY  # whitespace around it: dropped
    for bad in ("sk-abc\rdef", "sk-abc…", "sk abc"):
        monkeypatch.setenv("MY_KEY", bad)
        with pytest.raises(ConfigError, match=r"\$MY_KEY holds a character an API key cannot have") as e:
            lookup_api_key("MY_KEY")
        assert "abc" not in str(e.value)
    # a message that quotes a key the way Python escapes it is redacted too
    assert "SECRET" not in shorten_and_redact(f"Illegal header value b'Bearer {KEY}\\r'", KEY + "\r")


async def test_an_answer_the_backend_did_not_finish_is_not_taken_for_a_whole_one() -> None:
    """vLLM's and SGLang's "abort" (and any reason not known) mapped to "stop": a cut answer passed."""
    from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier

    assert [finish_reason(r) for r in ("abort", "repetition", "pause_turn", "tool_calls", "eos")] == \
        ["error", "error", "error", "stop", "stop"]
    p = provider(lambda r: httpx.Response(200, json=chat_completion("def is_prime(n):", finish="abort")))
    assert (await p.complete(request())).finish_reason == "error"
    cascade = Cascade([Tier("gpu", p, AcceptRule(min_confidence=0.0)),
                       Tier("local", ScriptedProvider([ScriptedReply("42.", logprob=-0.1)]))])
    r = await cascade.run("q")
    assert r.tier == "local" and "did not finish the answer" in r.attempts[0].reason


async def test_one_missing_logprob_escalates_the_draft_rather_than_dropping_all_of_them() -> None:
    """A single "logprob": null made the parser discard every logprob, and the draft was then
    "accepted on checks alone: this tier gives no logprobs" whatever its rule."""
    from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier

    rows = [dict(r) for r in LOGPROBS_CONTENT]
    rows[1] = {**rows[1], "logprob": None}
    p = provider(lambda r: httpx.Response(200, json=chat_completion(logprobs={"content": rows}, finish="stop")))
    c = await p.complete(request())
    assert c.logprobs is not None and np.isnan(c.logprobs.logprobs[1])
    cascade = Cascade([Tier("gpu", p, AcceptRule(min_confidence=0.01)),
                       Tier("local", ScriptedProvider([ScriptedReply("42.", logprob=-0.1)]))])
    r = await cascade.run("q")
    assert r.tier == "local" and "cannot be computed" in r.attempts[0].reason


async def test_placeholder_logprobs_are_floored_and_split_characters_are_rebuilt_from_bytes() -> None:
    """llama.cpp's server writes FLT_LOWEST for an alternative that underflowed (a margin of 1e37,
    P = 1 from the shipped calibrator); OpenAI writes -9999. And a character split across tokens
    (each "" or "\\ufffd" alone) left the tokens not spelling the answer, so the final number's
    logprobs could not be found and read as certain."""
    from edgecascade.quality.features import logprob_features
    from edgecascade.quality.structure import math_features
    from edgecascade.types import Completion, Timings

    times = "×".encode()
    rows = [
        {"token": "3 ", "logprob": -0.1, "bytes": list(b"3 "), "top_logprobs": [
            {"token": "3 ", "logprob": -0.1}, {"token": "x", "logprob": -3.4028234663852886e38}]},
        {"token": "\ufffd", "logprob": -0.2, "bytes": list(times[:1]), "top_logprobs": [
            {"token": "\ufffd", "logprob": -0.2}, {"token": "y", "logprob": -9999.0}]},
        {"token": "\ufffd", "logprob": -0.1, "bytes": list(times[1:]), "top_logprobs": [
            {"token": "\ufffd", "logprob": -0.1}, {"token": "z", "logprob": -2.0}]},
        {"token": " 4. The answer is ", "logprob": -0.1, "bytes": list(b" 4. The answer is "), "top_logprobs": [
            {"token": " 4. The answer is ", "logprob": -0.1}, {"token": "w", "logprob": -2.0}]},
        {"token": "12", "logprob": -4.0, "bytes": list(b"12"), "top_logprobs": [
            {"token": "12", "logprob": -4.0}, {"token": "7", "logprob": -0.1}]},
        {"token": ".", "logprob": -0.1, "bytes": list(b"."), "top_logprobs": [
            {"token": ".", "logprob": -0.1}, {"token": "!", "logprob": -2.0}]},
    ]
    text = "3 × 4. The answer is 12."
    p = provider(lambda r: httpx.Response(200, json=chat_completion(text, logprobs={"content": rows}, finish="stop")))
    c = await p.complete(request())
    assert c.logprobs is not None and "".join(c.logprobs.tokens) == text
    assert c.logprobs.top_logprobs.min() == -100.0
    assert logprob_features(c.logprobs).mean_margin < 50  # bounded (two of six steps floored); it was 5.7e37
    f = math_features(Completion(text, "m", "stop", Usage(5, 6), Timings(), c.logprobs))
    assert f["final_lp_min"] == -4.0  # the "12" found: it had read 0.0, certain


async def test_a_stream_that_fails_with_an_error_line_before_done_is_an_error() -> None:
    """llama.cpp's server (before 2025-09) sends a failure after the headers as an `error:` line and
    then [DONE]: it read as a complete answer."""
    body = (b'data: {"choices":[{"index":0,"delta":{"content":"The answer is 4"},"finish_reason":null}]}\n\n'
            + b'error: {"code":500,"message":"the context is full","type":"server_error"}\n\n' + b"data: [DONE]\n\n")
    p = provider(lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}))
    with pytest.raises(UpstreamError, match="the context is full"):
        await collect(p)


async def test_one_missing_alternative_escalates_a_calibrated_draft_rather_than_reading_as_certain() -> None:
    """A null logprob for one alternative became a margin and entropy of 0 (the neutral value of a
    draft with no alternatives), and with the shipped code calibrator a draft scored P 0.08 went to
    P 0.93 and passed; a missing chosen logprob escalated. A draft without alternatives stays neutral."""
    from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration, draft_features

    n = len(FEATURE_NAMES)
    cal = Calibration("m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.1] * n, 0.0)
    rule = AcceptRule(confidence="calibrated", min_confidence=0.01)
    rows = [dict(r) for r in LOGPROBS_CONTENT]
    assert all(len(r["top_logprobs"]) >= 2 for r in rows)
    rows[1] = {**rows[1], "top_logprobs": [dict(a) for a in rows[1]["top_logprobs"]]}
    rows[1]["top_logprobs"][1]["logprob"] = None
    p = provider(lambda r: httpx.Response(200, json=chat_completion(logprobs={"content": rows}, finish="stop")))
    c = await p.complete(request())
    f = draft_features(c)
    assert np.isnan(f["mean_entropy"]) and np.isnan(f["mean_margin"])
    cascade = Cascade([Tier("gpu", p, rule, calibration=cal),
                       Tier("local", ScriptedProvider([ScriptedReply("42.", logprob=-0.1)]))])
    r = await cascade.run("q")
    assert r.tier == "local" and "cannot be computed" in r.attempts[0].reason
    # one alternative per token (none to compare): margin and entropy are neutral, and it is judged
    alone = [{**r, "top_logprobs": r["top_logprobs"][:1]} for r in LOGPROBS_CONTENT]
    p1 = provider(lambda r: httpx.Response(200, json=chat_completion(logprobs={"content": alone}, finish="stop")))
    f1 = draft_features(await p1.complete(request()))
    assert (f1["mean_margin"], f1["mean_entropy"]) == (0.0, 0.0)
    r1 = await Cascade([Tier("gpu", p1, rule, calibration=cal), Tier("local", ScriptedProvider([]))]).run("q")
    assert r1.tier == "gpu" and r1.accepted


async def test_a_redirect_is_a_config_error_that_is_not_retried() -> None:
    """A base_url of http:// answered with 301 to https:// read as a garbled answer: retried, and
    counted against the endpoint, though the server sends the same redirect every time."""
    from edgecascade.providers.resilient import ResilientProvider, RetryPolicy, is_retryable

    calls = []

    def moved(r: httpx.Request) -> httpx.Response:
        calls.append(r)
        return httpx.Response(301, headers={"location": "https://user:pw@api.example.test/v1/chat/completions"})

    for how in ("complete", "stream"):
        p = provider(moved)
        with pytest.raises(UpstreamError, match="HTTP 301, a redirect to https://api.example.test") as e:
            if how == "complete":
                await p.complete(request())
            else:
                [_ async for _ in p.stream(request())]
        assert not is_retryable(e.value) and "pw" not in str(e.value) and e.value.status_code == 301
    calls.clear()
    with pytest.raises(UpstreamError):
        await ResilientProvider(provider(moved), endpoint=BASE,
                                retry=RetryPolicy(attempts=3, backoff_s=0.0)).complete(request())
    assert len(calls) == 1


@pytest.mark.parametrize("key", ["sk-clé-secrète", "sk-LEAKCHECK inner-space", "sk-LEAK\nCHECK"])
def test_an_api_key_no_header_can_carry_is_refused_when_the_tier_is_built_without_the_key(key: str) -> None:
    """A non-ASCII api_key passed directly had raised a bare UnicodeEncodeError whose `.object` held
    "Bearer <key>" (then an AuthenticationError at the first call); one with a line break inside went
    out, and httpcore's debug log quoted the header. Now the tier is refused as it is built, every
    provider alike, and the message quotes nothing of the key."""
    from edgecascade.providers.anthropic import AnthropicProvider
    from edgecascade.providers.ollama import OllamaProvider

    for build in (lambda: provider(lambda r: httpx.Response(200, json=chat_completion()), api_key=key),
                  lambda: AnthropicProvider("claude-x", api_key=key),
                  lambda: OllamaProvider("http://127.0.0.1:11434", "llama3.2:1b", api_key=key)):
        with pytest.raises(ConfigError, match="holds a character an API key cannot have") as e:
            build()
        assert "secr" not in str(e.value) and "LEAK" not in str(e.value)


def test_an_api_key_read_from_a_file_keeps_no_trailing_newline() -> None:
    """`Path("key.txt").read_text()` ends in a newline: it went into the header, which httpcore refused
    and logged, key and all, at each of the retried attempts."""
    seen: list[str] = []

    def ok(r: httpx.Request) -> httpx.Response:
        seen.append(r.headers["authorization"])
        return httpx.Response(200, json=chat_completion())

    asyncio.run(provider(ok, api_key=KEY + "\n").complete(request()))
    assert seen == [f"Bearer {KEY}"]


def test_a_key_in_base_url_is_redacted_wherever_a_server_quotes_it() -> None:
    """redact() replaced whole URLs only: a gateway that quoted the request's path and query
    ("Cannot POST /v1/chat/completions?api-key=KEY"), a login page's percent-encoded return URL, or the
    value alone carried a key written into base_url into errors, `run --json` and logs."""
    from edgecascade.providers._common import redact

    url = "http://127.0.0.1:18431/v1?api-key=sk-LEAKCHECK-0123456789abcdef&api-version=2024-06-01"
    said = ("<pre>Cannot POST /v1/chat/completions?api-key=sk-LEAKCHECK-0123456789abcdef</pre> "
            'rd="http%3A%2F%2Fh%2Fv1%3Fapi-key%3Dsk-LEAKCHECK-0123456789abcdef" bad key sk-LEAKCHECK-0123456789abcdef '
            "(api-version 2024-06-01)")
    out = redact(said, None, url)
    assert "LEAKCHECK" not in out and out.count("[redacted]") == 3 and "api-version 2024-06-01" in out
    assert "pw-secret" not in redact("said pw-secret", None, "https://user:pw-secret@h/v1")

    def quoting(r: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text=f"Cannot POST {r.url.raw_path.decode()}")

    p = OpenAICompatProvider(url, "m", client=httpx.AsyncClient(transport=httpx.MockTransport(quoting)))
    with pytest.raises(ProviderError) as e:
        asyncio.run(p.complete(request()))
    assert "LEAKCHECK" not in str(e.value) and "Cannot POST" in str(e.value)


def test_httpx_request_logs_show_no_key_from_base_url(caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs every request's full URL at INFO: a key in base_url's userinfo or query went with it."""
    url = "https://u:sk-LEAKCHECK-0123456789abcdef@gw.example/v1?key=sk-LEAKCHECK-0123456789abcdef"

    def ok(r: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=chat_completion())

    p = OpenAICompatProvider(url, "m", client=httpx.AsyncClient(transport=httpx.MockTransport(ok)))
    with caplog.at_level("INFO", logger="httpx"):
        asyncio.run(p.complete(request()))
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: POST https://gw.example/v1/chat/completions" in logged and "LEAKCHECK" not in logged


def test_a_key_pasted_where_an_address_goes_is_not_echoed() -> None:
    from edgecascade.providers.ollama import OllamaProvider

    with pytest.raises(ConfigError) as e:
        OpenAICompatProvider("sk-0123456789abcdef0123456789abcdef", "m")
    assert "0123456789" not in str(e.value) and "not an http(s) URL" in str(e.value)
    for host in ("sk-0123456789abcdef0123456789abcdef", "a" * 40):
        with pytest.raises(ConfigError, match="looks like an API key") as e:
            OllamaProvider(host, "llama3.2:1b")
        assert host not in str(e.value)
    for host in ("ollama:11434", "hf-gpu:11434", "pk-box.lan:11434", "hf-gpu"):  # host names, not keys
        assert OllamaProvider(host, "llama3.2:1b").host == host


async def test_together_is_asked_for_logprobs_as_it_documents_them() -> None:
    """Together documents `logprobs` as an integer, the alternatives per token (0 to 20), and no
    `top_logprobs`: it was sent OpenAI's `"logprobs": true, "top_logprobs": 5`, which a lax server
    reads as 1 alternative (no runner-up for a margin) and a strict one refuses."""
    from edgecascade.config import TierConfig

    bodies: list[dict[str, Any]] = []

    def seen(r: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(r.content))
        return httpx.Response(200, json=chat_completion("Hi!", finish="stop"))

    for preset, k, want in (("together", 5, {"logprobs": 5}), ("together", 0, {"logprobs": 1}),
                            ("together", 50, {"logprobs": 20}), ("openai", 5, {"logprobs": True, "top_logprobs": 5})):
        p = OpenAICompatProvider.from_preset(preset, "m", api_key=KEY, top_logprobs=k,
                                             client=httpx.AsyncClient(transport=httpx.MockTransport(seen)))
        await p.complete(request())
        assert {f: bodies[-1].get(f) for f in ("logprobs", "top_logprobs") if f in bodies[-1]} == want, (preset, k)
    built = build_provider(TierConfig(name="t", provider="together", model="m"))
    assert built.inner.logprobs_as_count is True  # type: ignore[attr-defined]


async def test_content_given_as_typed_parts_is_read_and_other_content_is_malformed() -> None:
    # Mistral's reasoning models send content as a list of parts; the text parts are the answer
    parts: Any = [{"type": "thinking", "thinking": [{"type": "text", "text": "17*23 = 391"}]},
                  {"type": "text", "text": "The answer is "}, {"type": "text", "text": "391."}]
    p = provider(lambda r: httpx.Response(200, json=chat_completion(parts, finish="stop")))
    assert (await p.complete(request())).text == "The answer is 391."
    streamed = provider(lambda r: httpx.Response(200, content=sse(chunk({"content": parts}), chunk({}, "stop"),
                                                                  "[DONE]"),
                                                 headers={"content-type": "text/event-stream"}))
    assert "".join(d.text for d in await collect(streamed)) == "The answer is 391."
    # content of another kind, or a delta that is no object, is no answer: a ProviderError (the
    # cascade goes on to its next tier), not a crash
    for content in (42, {"text": "391"}, [{"type": "text", "text": 391}]):
        odd = provider(lambda r, c=content: httpx.Response(200, json=chat_completion(c, finish="stop")))
        with pytest.raises(MalformedResponseError, match="neither text nor a list of text parts"):
            await odd.complete(request())
        odd_stream = provider(lambda r, c=content: httpx.Response(200, content=sse(chunk({"content": c}), "[DONE]"),
                                                                  headers={"content-type": "text/event-stream"}))
        with pytest.raises(MalformedResponseError, match="neither text nor a list of text parts"):
            await collect(odd_stream)
    bad_delta = {**chunk({}), "choices": [{"index": 0, "delta": "391", "finish_reason": None}]}
    no_delta = provider(lambda r: httpx.Response(200, content=sse(bad_delta, "[DONE]"),
                                                 headers={"content-type": "text/event-stream"}))
    with pytest.raises(MalformedResponseError, match="a delta that is not a JSON object"):
        await collect(no_delta)


async def test_an_answer_read_whole_has_no_decode_speed() -> None:
    # the whole call's time (network, queue, the prompt's reading) had been reported as tok/s
    async def slow(r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return httpx.Response(200, json=chat_completion(usage={"prompt_tokens": 9, "completion_tokens": 11}))

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    c = await OpenAICompatProvider(BASE, "gpt-4o-mini", capabilities=LP, client=client, api_key=KEY).complete(request())
    assert c.timings.total_s >= 0.2 and c.timings.first_token_s is None and c.tokens_per_s is None


async def test_a_base_url_with_a_password_and_an_api_key_is_refused_as_the_key_would_not_be_sent() -> None:
    # httpx sends the URL's user:password as Basic auth in place of the Bearer key; the 401 then blamed
    # the key, which had never gone out
    with pytest.raises(ConfigError, match="holds a user name and password, which would be sent in place of the API "
                                          "key in \\$VLLM_API_KEY") as ei:
        OpenAICompatProvider("http://admin:PaSsWoRd9@127.0.0.1:8000/v1", "m", api_key=KEY, api_key_env="VLLM_API_KEY")
    assert "PaSsWoRd9" not in str(ei.value) and KEY not in str(ei.value)
    # without a key, the URL's credentials are the ones sent (a proxy asking for Basic auth)
    seen: list[str] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r.headers.get("authorization", ""))
        return httpx.Response(200, json=chat_completion(finish="stop"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    await OpenAICompatProvider("http://admin:pw@127.0.0.1:8000/v1", "m", client=client).complete(request())
    assert seen == ["Basic YWRtaW46cHc="]


async def test_a_cloud_preset_without_a_key_fails_at_once_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # the call went out keyless; offline it failed as "could not connect" after three attempts
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    sent: list[str] = []

    def handler(r: httpx.Request) -> httpx.Response:
        sent.append(str(r.url))
        return httpx.Response(200, json=chat_completion(finish="stop"))

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler))

    cloud = OpenAICompatProvider.from_preset("openai", "gpt-4o-mini", client=client())
    with pytest.raises(AuthenticationError, match="needs an API key and none is set: set \\$OPENAI_API_KEY") as ei:
        await ResilientProvider(cloud, endpoint="https://api.openai.com/v1").complete(request())
    assert sent == [] and not ei.value.sent
    # a local server (or the vendor's API behind an address of one's own) is asked without one
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    await OpenAICompatProvider.from_preset("vllm", "m", client=client()).complete(request())
    await OpenAICompatProvider.from_preset("openai", "m", base_url="http://127.0.0.1:4000/v1", client=client()
                                           ).complete(request())
    assert len(sent) == 2


async def test_a_configured_cloud_tier_without_a_key_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    tier = TierConfig(provider="groq", model="llama-3.1-8b-instant")
    with pytest.raises(AuthenticationError, match="set \\$GROQ_API_KEY"):
        await build_provider(tier).complete(request())
