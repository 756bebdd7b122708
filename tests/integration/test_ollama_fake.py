"""OllamaProvider end to end through the real ``ollama`` client, against a fake Ollama server.

No real Ollama server was available to test against (none can run here): this fake
(tests/fakes/ollama_server.py) follows Ollama's documented /api/chat wire format -- JSON and NDJSON
streaming, logprobs with top_logprobs, done_reason, the ``{"error": ...}`` bodies -- and runs on a
free local port for each test. What these tests prove is that the provider drives the official client
correctly and maps everything it can raise; they cannot prove a given Ollama release behaves exactly
as documented.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import ollama
import pytest

from edgecascade.errors import (
    AuthenticationError,
    ConfigError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderTimeoutError,
    UnknownModelError,
    UpstreamError,
)
from edgecascade.providers.base import Provider, Timeouts
from edgecascade.providers.ollama import OllamaProvider
from edgecascade.types import Delta, Message, Request
from tests.fakes.ollama_server import ANSWER_LOGPROBS, ANSWER_TOKENS, FakeOllama

MODEL = "tiny:1b"
ANSWER = "".join(ANSWER_TOKENS)


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    with FakeOllama(models={MODEL}) as fake:
        yield fake


def provider(server: FakeOllama, model: str = MODEL, **kw: object) -> OllamaProvider:
    return OllamaProvider(server.url, model, **kw)  # type: ignore[arg-type]


def ask(max_tokens: int = 64, **kw: object) -> Request:
    return Request([Message("system", "Be brief."), Message("user", "Why is the sky blue?")],
                   max_tokens=max_tokens, **kw)  # type: ignore[arg-type]


async def collect(p: OllamaProvider, request: Request) -> list[Delta]:
    return [d async for d in p.stream(request)]


async def test_complete_maps_text_usage_finish_and_aligned_logprobs(server: FakeOllama) -> None:
    p = provider(server, top_logprobs=3)
    c = await p.complete(ask())
    await p.aclose()
    assert c.text == ANSWER and c.model == MODEL and c.finish_reason == "stop"
    assert c.usage.prompt_tokens == (2 + 4) + (5 + 4) and c.usage.completion_tokens == len(ANSWER_TOKENS)
    assert c.usage.reported
    lp = c.logprobs
    assert lp is not None
    assert lp.tokens == list(ANSWER_TOKENS) and "".join(lp.tokens) == c.text
    assert lp.logprobs.dtype == np.float64 and lp.logprobs.tolist() == pytest.approx(ANSWER_LOGPROBS)
    assert lp.top_logprobs.shape == (len(ANSWER_TOKENS), 3) and lp.top_logprobs.dtype == np.float64
    assert [row[0] for row in lp.top_tokens] == list(ANSWER_TOKENS)
    assert lp.top_tokens[0] == ["The", " alt1", " alt2"]
    assert np.all(np.diff(lp.top_logprobs, axis=1) <= 0)  # best first
    assert lp.top_logprobs[:, 0].tolist() == pytest.approx(ANSWER_LOGPROBS)
    assert math.exp(lp.top_logprobs[0, 1]) < math.exp(lp.top_logprobs[0, 0])
    t = c.timings
    assert t.total_s > 0 and t.load_s == pytest.approx(1e-6)
    assert t.first_token_s == pytest.approx(2e-6)  # prompt_eval_duration, in seconds


async def test_top_logprobs_are_sorted_best_first_whatever_order_the_server_sends(server: FakeOllama) -> None:
    server.top_order = "worst_first"
    c = await provider(server, top_logprobs=4).complete(ask())
    assert c.logprobs is not None
    assert np.all(np.diff(c.logprobs.top_logprobs, axis=1) <= 0)
    assert c.logprobs.top_tokens[1] == [" sky", " alt1", " alt2", " alt3"]


async def test_zero_top_logprobs_gives_an_n_by_0_array(server: FakeOllama) -> None:
    c = await provider(server, top_logprobs=0).complete(ask())
    assert c.logprobs is not None and c.logprobs.top_logprobs.shape == (len(ANSWER_TOKENS), 0)
    assert c.logprobs.top_tokens == [[] for _ in ANSWER_TOKENS]
    assert server.requests[-1]["top_logprobs"] == 0 and server.requests[-1]["logprobs"] is True


async def test_num_predict_reached_is_length(server: FakeOllama) -> None:
    c = await provider(server).complete(ask(max_tokens=3))
    assert c.finish_reason == "length" and c.text == "The sky is"
    assert c.usage.completion_tokens == 3 and c.logprobs is not None and len(c.logprobs) == 3


async def test_options_reach_the_server(server: FakeOllama) -> None:
    p = provider(server, keep_alive="10m", options={"num_ctx": 2048, "temperature": 0.9}, top_logprobs=7)
    c = await p.complete(ask(max_tokens=20, temperature=0.25, seed=42, stop=[" because"]))
    body = server.requests[-1]
    assert body["model"] == MODEL and body["stream"] is False
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Why is the sky blue?"}]
    # the request's own settings win over the tier's options; the tier's other options pass through
    assert body["options"] == {"num_ctx": 2048, "temperature": 0.25, "num_predict": 20, "seed": 42,
                               "stop": [" because"]}
    assert body["keep_alive"] == "10m"
    assert body["logprobs"] is True and body["top_logprobs"] == 7
    assert c.text == "The sky is blue" and c.finish_reason == "stop"


async def test_seed_and_stop_are_left_out_when_unset(server: FakeOllama) -> None:
    await provider(server).complete(ask())
    body = server.requests[-1]
    assert "seed" not in body["options"] and "stop" not in body["options"] and "keep_alive" not in body


async def test_stream_yields_pieces_then_the_finish_reason_and_usage(server: FakeOllama) -> None:
    p = provider(server, top_logprobs=2)
    s = p.stream(ask(max_tokens=4))
    deltas = [d async for d in s]
    assert "".join(d.text for d in deltas) == "The sky is blue"
    assert [d.finish_reason for d in deltas[:-1]] == [None] * (len(deltas) - 1)
    assert deltas[-1].finish_reason == "length"
    assert s.usage is not None and s.usage.completion_tokens == 4 and s.usage.prompt_tokens == 15
    assert s.logprobs is not None and s.logprobs.tokens == ["The", " sky", " is", " blue"]
    assert s.logprobs.top_logprobs.shape == (4, 2)
    assert server.requests[-1]["stream"] is True


async def test_unknown_model_says_to_pull_it(server: FakeOllama) -> None:
    with pytest.raises(UnknownModelError, match=r"ollama pull llama9:70b"):
        await provider(server, "llama9:70b").complete(ask())
    with pytest.raises(UnknownModelError):
        await collect(provider(server, "llama9:70b"), ask())


async def test_a_host_without_api_chat_is_not_an_unknown_model(server: FakeOllama) -> None:
    p = provider(server)
    p._get_client()._client.base_url = httpx.URL(server.url + "/not-ollama/")  # every path now 404s as plain text
    with pytest.raises(UpstreamError, match="is it an Ollama server") as ei:
        await p.complete(ask())
    assert type(ei.value) is UpstreamError and ei.value.status_code == 404


@pytest.mark.parametrize("streaming", [False, True])
async def test_server_error_is_upstream_with_its_status(server: FakeOllama, streaming: bool) -> None:
    server.fail_status = 500
    p = provider(server)
    with pytest.raises(UpstreamError) as ei:
        await (collect(p, ask()) if streaming else p.complete(ask()))
    assert type(ei.value) is UpstreamError and ei.value.status_code == 500
    assert "llama runner process has terminated" in str(ei.value)
    assert ei.value.__cause__ is None and ei.value.__context__ is None


async def test_a_model_too_big_for_the_server_is_not_retried_nor_held_against_it(server: FakeOllama) -> None:
    # a 500 that no retry can mend: it was retried and counted toward the server's cooldown
    from edgecascade.providers.resilient import ResilientProvider, _counts_against_endpoint, is_retryable

    server.fail_status = 500
    server.fail_error = "model requires more system memory (5.5 GiB) than is available (3.2 GiB)"
    wrapped = ResilientProvider(provider(server), endpoint=server.url)
    with pytest.raises(UnknownModelError, match="cannot load 'tiny:1b': .*use a smaller model") as ei:
        await wrapped.complete(ask())
    assert len(server.requests) == 1  # asked once
    assert not is_retryable(ei.value) and not _counts_against_endpoint(ei.value)


async def test_a_prompt_served_from_the_cache_leaves_the_counts_unknown_not_zero(server: FakeOllama) -> None:
    # its prompt tokens had counted 0, reported: the baseline priced the answer's tokens alone
    server.prompt_cached = True
    p = provider(server)
    c = await p.complete(ask())
    s = p.stream(ask())
    assert "".join([d.text async for d in s]) == ANSWER
    for usage in (c.usage, s.usage):
        assert usage is not None and not usage.reported and usage.completion_tokens == len(ANSWER_TOKENS)


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_redirect_is_not_followed_and_says_what_to_do(server: FakeOllama, streaming: bool) -> None:
    # the client followed it: the POST came back as a GET (with the tier's key) and failed as a 405
    server.redirect_to = server.url + "/moved/api/chat"
    p = provider(server, api_key="k")
    with pytest.raises(UpstreamError, match="HTTP 301, a redirect: set the host to the address it redirects to") \
            as ei:
        await (collect(p, ask()) if streaming else p.complete(ask()))
    assert ei.value.status_code == 301 and server.authorizations == ["Bearer k"]  # one request, not followed


async def test_error_line_mid_stream_is_upstream(server: FakeOllama) -> None:
    server.stream_error_after = 2
    with pytest.raises(UpstreamError, match="mid-stream") as ei:
        await collect(provider(server), ask())
    assert type(ei.value) is UpstreamError


@pytest.mark.parametrize("mode", ["close", "end"])
async def test_cut_stream_is_malformed(server: FakeOllama, mode: str) -> None:
    server.cut_stream_after, server.cut_mode = 3, mode  # type: ignore[assignment]
    got: list[str] = []
    with pytest.raises(MalformedResponseError, match="mid-response" if mode == "close" else "done=true"):
        async for d in provider(server).stream(ask()):
            got.append(d.text)
    assert "".join(got) == "The sky is"


@pytest.mark.parametrize("streaming", [False, True])
async def test_malformed_json_is_malformed_response(server: FakeOllama, streaming: bool) -> None:
    server.malformed = True
    p = provider(server)
    with pytest.raises(MalformedResponseError, match="documented /api/chat format"):
        await (collect(p, ask()) if streaming else p.complete(ask()))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("streaming", [False, True])
async def test_connection_refused_asks_whether_ollama_serve_runs(streaming: bool) -> None:
    host = f"http://127.0.0.1:{_closed_port()}"
    p = OllamaProvider(host, MODEL, timeouts=Timeouts(connect=2, read=2))
    with pytest.raises(ProviderConnectionError, match=r"is `ollama serve` running at http://127\.0\.0\.1"):
        await (collect(p, ask()) if streaming else p.complete(ask()))


async def test_read_timeout_is_provider_timeout(server: FakeOllama) -> None:
    server.delay_s = 0.5
    p = provider(server, timeouts=Timeouts(connect=2, read=0.1))
    with pytest.raises(ProviderTimeoutError):
        await p.complete(ask())


def test_bad_settings_fail_at_construction(server: FakeOllama) -> None:
    with pytest.raises(ConfigError, match="0 to 20"):
        provider(server, top_logprobs=21)
    with pytest.raises(ConfigError, match="no model"):
        provider(server, "")
    assert repr(provider(server)) == f"OllamaProvider(host={server.url!r}, model='tiny:1b')"


# --- client lifetime: one event loop per run_sync ------------------------------------------------------


def test_two_event_loops_in_a_row_each_get_a_fresh_client(server: FakeOllama) -> None:
    """What Cascade.run_sync does: asyncio.run per call, aclose at its end; the next run must still work
    (over real sockets, so a client kept from the first loop would fail in the second)."""
    p = provider(server)
    assert p._client is None  # nothing is created before the first call
    clients: list[object] = []

    async def one_run() -> tuple[str, str]:
        try:
            c = await p.complete(ask())
            clients.append(p._client)
            deltas = await collect(p, ask())
        finally:
            await p.aclose()
        return c.text, "".join(d.text for d in deltas)

    assert asyncio.run(one_run()) == (ANSWER, ANSWER)
    assert asyncio.run(one_run()) == (ANSWER, ANSWER)
    assert p._client is None and len(clients) == 2 and clients[0] is not clients[1]
    assert len(server.requests) == 4


async def test_a_client_passed_in_is_kept_open(server: FakeOllama) -> None:
    given = ollama.AsyncClient(host=server.url)  # bound to this loop: the caller's to manage
    p = OllamaProvider(server.url, MODEL, client=given)
    try:
        assert (await p.complete(ask())).text == ANSWER
        await p.aclose()
        assert p._client is given and not given._client.is_closed
        assert (await p.complete(ask())).text == ANSWER
    finally:
        await given.close()


# --- odd payloads never escape unmapped ----------------------------------------------------------------


class _OddClient:
    """An ollama client whose answers pass the client's own validation but not the shape the provider reads."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def chat(self, **kw: Any) -> Any:
        if not kw.get("stream"):
            return self.answer

        async def parts() -> AsyncIterator[Any]:
            yield self.answer

        return parts()


@pytest.mark.parametrize("answer", [
    SimpleNamespace(done=True, message=None, done_reason="stop", prompt_eval_count=1, eval_count=1,
                    prompt_eval_duration=1, load_duration=0, logprobs=None),  # message: null
    SimpleNamespace(done=True, message=SimpleNamespace(content="Hi"), done_reason="stop", prompt_eval_count="x",
                    eval_count=1, prompt_eval_duration=1, load_duration=0, logprobs=None),  # a count that is not one
    SimpleNamespace(done=True, message=SimpleNamespace(content="Hi"), done_reason="stop", prompt_eval_count=1,
                    eval_count=1, prompt_eval_duration=1, load_duration=0, logprobs=[{"token": "Hi"}]),  # no logprob
])
@pytest.mark.parametrize("streaming", [False, True])
async def test_an_odd_answer_is_malformed_not_an_unmapped_exception(answer: Any, streaming: bool) -> None:
    p = OllamaProvider("http://127.0.0.1:1", MODEL, client=_OddClient(answer))  # type: ignore[arg-type]
    with pytest.raises(MalformedResponseError, match="documented /api/chat format") as ei:
        await (collect(p, ask()) if streaming else p.complete(ask()))
    assert ei.value.__cause__ is None and ei.value.__context__ is None


# --- printed hosts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
async def test_host_credentials_are_never_printed(streaming: bool) -> None:
    host = f"http://user:pw@127.0.0.1:{_closed_port()}?token=X"
    p = OllamaProvider(host, MODEL, timeouts=Timeouts(connect=2, read=2))
    with pytest.raises(ProviderConnectionError) as ei:
        await (collect(p, ask()) if streaming else p.complete(ask()))
    await p.aclose()
    for text in (repr(p), str(ei.value)):
        assert "pw" not in text and "token" not in text and "user" not in text, text
    assert "http://127.0.0.1:" in str(ei.value)


# --- the key a config names -----------------------------------------------------------------------------


async def test_the_tier_key_reaches_the_server_as_a_bearer_token(server: FakeOllama,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from edgecascade.config import parse_config
    from edgecascade.providers import build_provider

    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.setenv("MY_OLLAMA_KEY", "sk-ollama-secret")
    tier = parse_config({"tiers": [{"provider": "ollama", "model": MODEL, "base_url": server.url,
                                    "api_key_env": "MY_OLLAMA_KEY"}]}).tiers[0]
    p = build_provider(tier)
    try:
        assert (await p.complete(ask())).text == ANSWER
    finally:
        await p.aclose()
    assert server.authorizations[-1] == "Bearer sk-ollama-secret"
    assert "sk-ollama-secret" not in repr(p)
    # a refused key: the error names the variable to check, never the key
    server.fail_status, server.fail_error = 401, "unauthorized: sk-ollama-secret is not valid"
    p = build_provider(tier)
    try:
        with pytest.raises(AuthenticationError) as ei:
            await p.complete(ask())
    finally:
        await p.aclose()
    assert "$MY_OLLAMA_KEY" in str(ei.value) and "sk-ollama-secret" not in str(ei.value)
    # no key configured anywhere: no Authorization header at all
    monkeypatch.delenv("MY_OLLAMA_KEY")
    server.fail_status = None
    await _ask_once(build_provider(tier))
    assert server.authorizations[-1] is None
    # nor the ollama client's own fallback, $OLLAMA_API_KEY (an ollama.com key), when the tier names another
    monkeypatch.setenv("OLLAMA_API_KEY", "sk-ollama-com-key")
    await _ask_once(build_provider(tier))
    assert server.authorizations[-1] is None
    # a provider that names $OLLAMA_API_KEY (the default, built in code too) sends it
    for p in (build_provider(parse_config({"tiers": [{"provider": "ollama", "model": MODEL,
                                                       "base_url": server.url}]}).tiers[0]),
              OllamaProvider(server.url, MODEL)):
        await _ask_once(p)
        assert server.authorizations[-1] == "Bearer sk-ollama-com-key"


async def _ask_once(p: Provider) -> None:
    try:
        await p.complete(ask())
    finally:
        await p.aclose()
