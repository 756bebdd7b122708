"""The OpenAI-compatible provider against a real server: llama-cpp-python's, serving SmolLM2-135M.

What this server does in the edge cases (checked here, so a server upgrade that changes it shows up):

- it serves its one loaded model whatever ``model`` name is asked for, and echoes that name back;
- a prompt longer than its context is a 400 with OpenAI's ``context_length_exceeded`` body when not
  streaming, but when streaming it sends 200 and its SSE headers, fails, and closes the stream empty;
- it reuses the KV cache of the previous request's shared prompt prefix, so a greedy answer can
  depend on what was asked just before (see test_stream_matches_the_greedy_completion).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from edgecascade.errors import ContextLengthError, MalformedResponseError, UnknownModelError
from edgecascade.providers.openai_compat import PRESETS, OpenAICompatProvider
from edgecascade.types import Message, Request

QUESTION = [Message("user", "Name three primary colours.")]


@pytest.fixture
async def provider(llamacpp_server: str) -> AsyncIterator[OpenAICompatProvider]:
    # one per test: an httpx client is bound to the event loop it was first used on
    p = OpenAICompatProvider(llamacpp_server, "smollm2-135m", capabilities=PRESETS["llamacpp-server"].capabilities,
                             top_logprobs=3)
    yield p
    await p.aclose()


async def test_complete_with_aligned_logprobs(provider: OpenAICompatProvider) -> None:
    c = await provider.complete(Request(QUESTION, max_tokens=12))
    assert c.text.strip() and c.model == "smollm2-135m"
    assert c.finish_reason in ("stop", "length")
    assert c.usage.prompt_tokens > 5 and 0 < c.usage.completion_tokens <= 12 and c.usage.reported
    lp = c.logprobs
    assert lp is not None
    assert len(lp.tokens) == len(lp.logprobs) == lp.top_logprobs.shape[0] == len(lp.top_tokens)
    assert len(lp) == c.usage.completion_tokens
    assert "".join(lp.tokens) == c.text
    assert lp.top_logprobs.shape[1] == 3 and all(len(t) == 3 for t in lp.top_tokens)
    assert np.all(lp.logprobs <= 0) and np.all(lp.top_logprobs <= 0)
    assert np.all(np.diff(lp.top_logprobs, axis=1) <= 0)  # best first
    assert np.all(lp.logprobs <= lp.top_logprobs[:, 0] + 1e-6)


async def test_without_repeat_penalty_greedy_picks_the_best_token(llamacpp_server: str) -> None:
    """The server's repeat_penalty (1.1 by default) makes temperature 0 pick tokens that are not its own
    logprobs' best (seen: "-" at -2.37 over "\\n" at -0.31); with 1.0 sent through extra_body it is greedy."""
    p = OpenAICompatProvider(llamacpp_server, "smollm2-135m", capabilities=PRESETS["llamacpp-server"].capabilities,
                             top_logprobs=3, extra_body={"repeat_penalty": 1.0})
    try:
        c = await p.complete(Request(QUESTION, max_tokens=12, temperature=0.0))
    finally:
        await p.aclose()
    lp = c.logprobs
    assert lp is not None and len(lp) == c.usage.completion_tokens
    assert np.allclose(lp.top_logprobs[:, 0], lp.logprobs)
    assert [row[0] for row in lp.top_tokens] == lp.tokens


async def test_stream_matches_the_greedy_completion(provider: OpenAICompatProvider) -> None:
    """Streamed and non-streamed greedy answers to the same request are the same text.

    The server re-uses the KV cache of the prompt prefix it shares with the previous request; a
    prefix evaluated in a different batch changes the last float bits, which can flip a greedy
    near-tie (seen here: "Red (OXENCERON) - A" after another prompt, "Red (OXENCURAMA): a" after the
    same one). So both measured calls are made from the same server state: each follows a call with
    this very prompt (the warm-up, then the completion itself).
    """
    request = Request(QUESTION, max_tokens=24, temperature=0.0, seed=1)
    await provider.complete(request)  # warm-up: the same prompt is now in the server's cache
    c = await provider.complete(request)
    deltas = [d async for d in provider.stream(request)]
    assert "".join(d.text for d in deltas) == c.text
    assert deltas[-1].finish_reason == c.finish_reason
    assert all(d.finish_reason is None for d in deltas[:-1])


async def test_the_server_serves_its_model_under_any_name(llamacpp_server: str) -> None:
    """llama.cpp's server has one model and ignores the name asked for: no UnknownModelError to expect."""
    served = httpx.get(f"{llamacpp_server}/models").json()["data"]
    assert len(served) == 1 and served[0]["id"].endswith(".gguf")
    body = {"model": "no-such-model", "messages": [QUESTION[0].to_dict()], "max_tokens": 2}
    raw = httpx.post(f"{llamacpp_server}/chat/completions", json=body, timeout=60).json()
    assert raw["model"] == "no-such-model"  # echoed back, not the file it ran
    p = OpenAICompatProvider(llamacpp_server, "no-such-model")
    try:
        c = await p.complete(Request(QUESTION, max_tokens=2))
    finally:
        await p.aclose()
    assert c.model == "no-such-model" and c.usage.completion_tokens > 0


async def test_a_wrong_base_url_is_an_unknown_model_error(llamacpp_server: str) -> None:
    root = llamacpp_server.removesuffix("/v1")  # the common mistake: the server root, not its API root
    p = OpenAICompatProvider(root, "smollm2-135m")
    try:
        with pytest.raises(UnknownModelError, match=r"HTTP 404: Not Found.*base_url is the API root"):
            await p.complete(Request(QUESTION, max_tokens=2))
    finally:
        await p.aclose()


async def test_a_prompt_longer_than_the_context_is_a_context_length_error(provider: OpenAICompatProvider) -> None:
    long = Request([Message("user", "hello world " * 600)], max_tokens=4)  # ~1230 tokens > n_ctx 1024
    with pytest.raises(ContextLengthError, match="maximum context length is 1024 tokens") as ei:
        await provider.complete(long)
    assert ei.value.context == 1024
    assert ei.value.prompt_tokens is not None and ei.value.prompt_tokens > 1024
    # streaming, the server has already answered 200 when it finds out, and just ends the stream
    with pytest.raises(MalformedResponseError, match="cut off"):
        async for _ in provider.stream(long):
            pass


async def test_the_key_is_only_in_the_header_even_in_httpcore_debug_logs(
    llamacpp_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A real request with a key (this server ignores it) while httpx and httpcore log at DEBUG."""
    key = "sk-test-SECRET-123"
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    p = OpenAICompatProvider(llamacpp_server, "smollm2-135m", api_key=key)
    try:
        await p.complete(Request(QUESTION, max_tokens=2))
        _ = [d async for d in p.stream(Request(QUESTION, max_tokens=2))]
    finally:
        await p.aclose()
    assert any(r.name.startswith("httpcore") for r in caplog.records)
    assert all(key not in r.getMessage() for r in caplog.records)
    assert key not in repr(p)


def test_two_event_loops_in_a_row_over_real_sockets(llamacpp_server: str) -> None:
    """What Cascade.run_sync does: asyncio.run per call, aclose at its end. A pooled connection from the
    first loop would fail in the second; the provider's fresh client after aclose does not."""
    p = OpenAICompatProvider(llamacpp_server, "smollm2-135m")

    async def one_run() -> int:
        try:
            return (await p.complete(Request(QUESTION, max_tokens=2))).usage.completion_tokens
        finally:
            await p.aclose()

    assert asyncio.run(one_run()) > 0 and asyncio.run(one_run()) > 0
