"""The in-process llama.cpp provider on the real SmolLM2-135M GGUF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecascade import ContextLengthError, Message, Request
from edgecascade.providers.llamacpp import LlamaCppProvider

QUESTION = [Message("user", "Name three primary colours.")]


@pytest.fixture(scope="module")
def provider(smollm2: Path) -> LlamaCppProvider:
    return LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=1024, top_logprobs=5)


async def test_generates_with_usage_timings_and_aligned_logprobs(provider: LlamaCppProvider) -> None:
    c = await provider.complete(Request(QUESTION, max_tokens=48))
    assert c.text.strip() and c.model == "smollm2-135m"
    assert c.finish_reason in ("stop", "length")
    assert c.usage.prompt_tokens > 5 and 0 < c.usage.completion_tokens <= 48
    lp = c.logprobs
    assert lp is not None
    # one logprob per generated token, and the tokens spell the answer
    assert len(lp.tokens) == len(lp.logprobs) == lp.top_logprobs.shape[0] == c.usage.completion_tokens
    assert "".join(lp.tokens).strip() == c.text.strip()
    assert np.all(lp.logprobs <= 0) and np.all(np.isfinite(lp.logprobs))
    # greedy: the chosen token is the best alternative, and alternatives are sorted best first
    assert np.allclose(lp.top_logprobs[:, 0], lp.logprobs, atol=1e-6)
    assert np.all(np.diff(lp.top_logprobs, axis=1) <= 1e-9)
    assert [row[0] for row in lp.top_tokens] == lp.tokens
    assert c.timings.first_token_s is not None and 0 < c.timings.first_token_s < c.timings.total_s
    assert c.tokens_per_s is not None and c.tokens_per_s > 0


async def test_logprobs_equal_llama_cpp_builtin(smollm2: Path) -> None:
    """Our captured values against llama-cpp-python's own (slow, logits_all=True) logprobs.

    Both models start fresh on the same prompt. Two differently batched evaluations can differ in
    the last float bits, so greedy decoding may part ways at a near-tie: the values are compared on
    the common prefix, which must be long, and a parting is only allowed at a genuine near-tie.
    """
    from llama_cpp import Llama

    fresh = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=512, top_logprobs=5)
    c = await fresh.complete(Request(QUESTION, max_tokens=24))
    ref = Llama(model_path=str(smollm2), n_ctx=512, logits_all=True, verbose=False, n_threads=fresh.n_threads)
    try:
        out = ref.create_chat_completion(messages=[m.to_dict() for m in QUESTION], max_tokens=24,
                                         temperature=0.0, logprobs=True, top_logprobs=5)
    finally:
        ref.close()
    content = out["choices"][0]["logprobs"]["content"]
    ours = c.logprobs
    assert ours is not None
    theirs_tokens = [t["token"] for t in content]
    common = 0
    while common < min(len(ours.tokens), len(theirs_tokens)) and ours.tokens[common] == theirs_tokens[common]:
        common += 1
    assert common >= 12, (ours.tokens, theirs_tokens)
    if common < min(len(ours.tokens), len(theirs_tokens)):
        assert ours.top_logprobs[common, 0] - ours.top_logprobs[common, 1] < 0.05  # a near-tie
    builtin = np.array([t["logprob"] for t in content[:common]])
    assert np.allclose(builtin, ours.logprobs[:common], atol=1e-4)
    # the top-5 alternatives agree too (same tokens, same values)
    for step, ours_toks, ours_lps in zip(content[:common], ours.top_tokens, ours.top_logprobs):
        theirs = {t["token"]: t["logprob"] for t in step["top_logprobs"]}
        assert ours_toks[0] in theirs
        for tok, val in zip(ours_toks, ours_lps):
            if tok in theirs:
                assert val == pytest.approx(theirs[tok], abs=1e-4)


async def test_token_limit_is_visible_as_length(provider: LlamaCppProvider) -> None:
    c = await provider.complete(Request([Message("user", "Write a long poem about the sea.")], max_tokens=5))
    assert c.finish_reason == "length" and c.usage.completion_tokens == 5
    assert len(c.logprobs) == 5  # type: ignore[arg-type]


async def test_an_answer_never_runs_past_max_tokens_inside_a_character(provider: LlamaCppProvider,
                                                                        smollm2: Path) -> None:
    """llama-cpp-python skips its max_tokens check while the text ends inside a character (each of
    SmolLM2's emoji here is three tokens): 40 asked gave 42, and where the limit was the context's
    last free slot, generation ran past the context and llama.cpp failed (the answer was lost).
    Now the answer ends at the limit, reads as cut off, and a stream ends alike."""
    emoji = [Message("user", "Write five food emoji, nothing else.")]
    for limit in (40, 41, 4):  # 40 and 4 end inside an emoji, 41 does not
        c = await provider.complete(Request(emoji, max_tokens=limit))
        assert c.usage.completion_tokens == limit and c.finish_reason == "length"
        assert c.logprobs is not None and len(c.logprobs) == limit
        streamed = [d async for d in provider.stream(Request(emoji, max_tokens=limit))]
        assert "".join(d.text for d in streamed) == c.text and streamed[-1].finish_reason == "length"
    small = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=128)
    context = small._loaded()[0].llama.n_ctx()
    for pad in range(4):  # the context fills inside an emoji for two of these prompts
        full = await small.complete(Request([Message("user", "Please. " * pad + emoji[0].content)], max_tokens=400))
        assert full.finish_reason == "length" and full.usage.prompt_tokens + full.usage.completion_tokens == context


async def test_sampling_with_seed_is_reproducible_and_logprobs_follow_the_sampled_tokens(
    provider: LlamaCppProvider,
) -> None:
    req = Request([Message("user", "Tell me a fun fact.")], max_tokens=24, temperature=1.2, seed=123)
    a = await provider.complete(req)
    b = await provider.complete(req)
    assert a.text == b.text
    assert a.logprobs is not None and np.allclose(a.logprobs.logprobs, b.logprobs.logprobs)  # type: ignore[union-attr]
    # when sampling, the chosen token is not always the top one: its logprob is at most the best one's
    assert np.all(a.logprobs.logprobs <= a.logprobs.top_logprobs[:, 0] + 1e-6)


async def test_stop_sequence(provider: LlamaCppProvider) -> None:
    c = await provider.complete(Request([Message("user", "Count from 1 to 20, separated by commas.")],
                                        max_tokens=60, stop=["5"]))
    assert "5" not in c.text and c.finish_reason == "stop"
    # the stop sequence's tokens were generated (usage counts them) but are not part of the answer,
    # so the answer's logprobs leave them out: the tokens spell exactly the text
    assert c.logprobs is not None and "".join(c.logprobs.tokens).strip() == c.text.strip()
    assert len(c.logprobs) < c.usage.completion_tokens and c.logprobs.top_logprobs.shape[0] == len(c.logprobs)


async def test_prompt_longer_than_context_is_a_clear_error(smollm2: Path) -> None:
    small = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=256)
    with pytest.raises(ContextLengthError, match="context window") as ei:
        await small.complete(Request([Message("user", "word " * 400)], max_tokens=8))
    assert "n_ctx" in str(ei.value)  # it says what to do
    # the model still works afterwards
    ok = await small.complete(Request(QUESTION, max_tokens=4))
    assert ok.usage.completion_tokens == 4


async def test_a_context_too_small_for_max_tokens_is_said(smollm2: Path, caplog: pytest.LogCaptureFixture) -> None:
    """llama.cpp cuts max_tokens to the room the prompt leaves, silently: the answer ends "length"
    short of the limit asked for, and the log says the context was full and what to do."""
    small = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=128)
    context = small._loaded()[0].llama.n_ctx()  # llama.cpp may round 128 up
    with caplog.at_level("WARNING", logger="edgecascade.providers.llamacpp"):
        c = await small.complete(Request([Message("user", "Make it long. " * 10 + "Write a long story about the sea.")],
                                         max_tokens=400))
        again = await small.complete(Request([Message("user", "Make it long. " * 15 + "Write a story.")],
                                             max_tokens=400))
    assert c.finish_reason == "length" and c.usage.completion_tokens < 400
    assert c.usage.prompt_tokens + c.usage.completion_tokens == context  # the context was full
    said = [r.getMessage() for r in caplog.records if "filled its context" in r.getMessage()]
    assert len(said) == 1 and f"context of {context} tokens" in said[0]  # once, not per answer
    assert "max_tokens=400" in said[0] and "n_ctx for this tier (now 128)" in said[0]
    assert again.finish_reason == "length" and again.usage.completion_tokens < 400
    # an answer stopped by its own max_tokens says nothing
    caplog.clear()
    with caplog.at_level("WARNING", logger="edgecascade.providers.llamacpp"):
        short = await LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=128).complete(
            Request(QUESTION, max_tokens=4))
    assert short.finish_reason == "length" and not caplog.records


async def test_stream_yields_the_same_text(provider: LlamaCppProvider) -> None:
    req = Request(QUESTION, max_tokens=24)
    full = await provider.complete(req)
    pieces = [d async for d in provider.stream(req)]
    assert "".join(d.text for d in pieces) == full.text
    assert pieces[-1].finish_reason == full.finish_reason


async def test_an_abandoned_stream_frees_the_model(provider: LlamaCppProvider,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing the stream waits for its worker to end, so the request after it always found the model
    free: what shows the generation stopped is how many tokens it went on to read (a review made the
    stop inert and this test, which timed only the next request, still passed)."""
    import asyncio

    from edgecascade.providers import llamacpp

    read = 0  # chunks (one per generated token) the stream's worker went through
    real = llamacpp._Spelling.text

    def counting(self: llamacpp._Spelling, stops: list[str]) -> tuple[str, bool]:
        nonlocal read
        read += 1
        return real(self, stops)

    monkeypatch.setattr(llamacpp._Spelling, "text", counting)
    req = Request([Message("user", "Write a long story about the sea.")], max_tokens=200)
    agen = provider.stream(req)
    first = await agen.__anext__()
    assert first.text is not None
    await agen.aclose()  # the consumer walks away after one piece; its worker has ended when this returns
    assert read < 20, f"the abandoned stream went on for {read} tokens of its 200"
    c = await asyncio.wait_for(provider.complete(Request(QUESTION, max_tokens=4)), timeout=30)
    assert c.usage.completion_tokens == 4


async def test_a_cancelled_request_stops_generating_and_frees_the_model(provider: LlamaCppProvider,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A timed-out or cancelled `complete` had gone on generating to its token limit on a worker
    thread, holding the model: the next request waited for it, and so did the process at exit."""
    import asyncio
    import time

    from edgecascade.providers import llamacpp

    caps: list[llamacpp.LogprobCapture] = []  # one per request, kept alive (an id could be reused)
    made: dict[int, int] = {}  # tokens generated per request, by its capture's place in caps
    real = llamacpp.LogprobCapture.on_token

    def slow_on_token(self: llamacpp.LogprobCapture, token: int) -> None:
        if not any(c is self for c in caps):
            caps.append(self)
        key = next(i for i, c in enumerate(caps) if c is self)
        made[key] = made.get(key, 0) + 1
        time.sleep(0.01)  # at most 100 tokens a second: the long request takes seconds
        real(self, token)

    monkeypatch.setattr(llamacpp.LogprobCapture, "on_token", slow_on_token)
    long = asyncio.ensure_future(provider.complete(
        Request([Message("user", "Write a long story about the sea.")], max_tokens=300)))
    while not made:  # its generation has started
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    long.cancel()
    at_cancel = sum(made.values())
    with caplog.at_level("WARNING", logger="edgecascade.providers.llamacpp"), pytest.raises(asyncio.CancelledError):
        await long
    c = await provider.complete(Request(QUESTION, max_tokens=4))  # after the stopped generation has ended
    # stopped on purpose short of its max_tokens, it was not "the context filled" (a false warning)
    assert not [r for r in caplog.records if "filled its context" in r.getMessage()]
    assert c.usage.completion_tokens == 4
    first = made[0]
    assert 1 <= at_cancel <= first <= at_cancel + 2  # it stopped at its next token, far short of 300
    # a request cancelled while it waits for its turn never generates
    queued_before = len(made)
    a = asyncio.ensure_future(provider.complete(Request(QUESTION, max_tokens=8)))
    b = asyncio.ensure_future(provider.complete(Request(QUESTION, max_tokens=8)))
    await asyncio.sleep(0)
    b.cancel()
    await a
    with pytest.raises(asyncio.CancelledError):
        await b
    assert len(made) == queued_before + 1


async def test_a_request_cancelled_while_its_model_loads_reads_no_prompt(provider: LlamaCppProvider,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled during the seconds a model takes to load, a request had gone on to read its prompt
    and make a token for nobody; now the model loads (for the next request) and nothing runs on it."""
    import asyncio
    import time

    from edgecascade.providers import llamacpp

    started: list[llamacpp.LogprobCapture] = []  # the captures that saw a token: one per generation
    real_on_token = llamacpp.LogprobCapture.on_token

    def on_token(self: llamacpp.LogprobCapture, token: int) -> None:
        if not any(c is self for c in started):
            started.append(self)
        real_on_token(self, token)

    real_loaded = provider._loaded
    loading = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_loaded() -> tuple[llamacpp._Loaded, float]:
        loop.call_soon_threadsafe(loading.set)
        time.sleep(0.5)  # a model file being read
        return real_loaded()

    monkeypatch.setattr(llamacpp.LogprobCapture, "on_token", on_token)
    monkeypatch.setattr(provider, "_loaded", slow_loaded)
    task = asyncio.ensure_future(provider.complete(Request(QUESTION, max_tokens=8)))
    await loading.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    c = await provider.complete(Request(QUESTION, max_tokens=4))  # queued behind the load on the same thread
    assert c.usage.completion_tokens == 4
    assert len(started) == 1  # the follow-up's generation only


async def test_sampling_without_a_seed_differs_from_call_to_call(provider: LlamaCppProvider,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With seed None, llama-cpp-python seeded every process alike: `run --temperature 1` gave the same
    answer each time. Greedy decoding needs no seed and gets none."""
    llama = provider._loaded()[0].llama
    real = llama.create_chat_completion
    seeds: list[object] = []

    def spy(**kw: object) -> object:
        seeds.append(kw.get("seed"))
        return real(**kw)

    monkeypatch.setattr(llama, "create_chat_completion", spy)
    req = Request([Message("user", "Name an animal.")], max_tokens=4, temperature=1.0)
    await provider.complete(req)
    await provider.complete(req)
    await provider.complete(Request([Message("user", "Name an animal.")], max_tokens=4))  # greedy
    await provider.complete(Request([Message("user", "Name an animal.")], max_tokens=4, temperature=1.0, seed=7))
    assert isinstance(seeds[0], int) and isinstance(seeds[1], int) and seeds[0] != seeds[1]
    assert seeds[2:] == [None, 7]


def _refusing_system_role(p: LlamaCppProvider, monkeypatch: pytest.MonkeyPatch,
                          refusal: Exception | None = None) -> list[list[dict[str, str]]]:
    """Make ``p``'s model refuse a system message as Gemma-style templates do (or with ``refusal``);
    returns the message lists it was asked with."""
    llama = p._loaded()[0].llama
    real = llama.create_chat_completion
    sent: list[list[dict[str, str]]] = []

    def gemma_like(**kw: object) -> object:
        messages = kw["messages"]
        sent.append(messages)  # type: ignore[arg-type]
        if any(m["role"] == "system" for m in messages):  # type: ignore[attr-defined, index]
            raise refusal or ValueError("System role not supported")
        return real(**kw)

    monkeypatch.setattr(llama, "create_chat_completion", gemma_like)
    return sent


async def test_a_template_that_refuses_a_system_role_gets_it_in_the_first_user_turn(
        smollm2: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Gemma-style templates raise 'System role not supported': with a config's system_prompt the tier
    failed every query, and everything escalated without a word."""
    p = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=1024, top_logprobs=5)
    sent = _refusing_system_role(p, monkeypatch)
    req = Request([Message("system", "Answer in one word."), Message("user", "Capital of France?")], max_tokens=4)
    with caplog.at_level("WARNING"):
        c = await p.complete(req)
    assert c.text.strip() and [m["role"] for m in sent[-1]] == ["user"]
    assert sent[-1][0]["content"] == "Answer in one word.\n\nCapital of France?"
    assert sum("refuses a system message" in r.getMessage() for r in caplog.records) == 1
    await p.complete(req)  # from now on asked merged at once: one call, no second warning
    assert len(sent) == 3 and sum("refuses a system message" in r.getMessage() for r in caplog.records) == 1


async def test_mistral_style_templates_get_the_system_text_in_the_first_user_turn(
        smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template that insists roles alternate (Mistral's raise_exception) failed every query with a
    system prompt; Mistral v0.2's and Mixtral's, read as llama-cpp-python's mistral-instruct format,
    dropped the system text without a word."""
    from llama_cpp.llama_chat_format import MISTRAL_INSTRUCT_CHAT_TEMPLATE, Jinja2ChatFormatter

    req = Request([Message("system", "Answer in one word."), Message("user", "Capital of France?")], max_tokens=4)
    # what llama-cpp-python raises for Mistral's own template, rendered as it renders it
    formatter = Jinja2ChatFormatter(MISTRAL_INSTRUCT_CHAT_TEMPLATE, eos_token="</s>", bos_token="<s>")
    with pytest.raises(ValueError, match="roles must alternate") as alternation:
        formatter(messages=[m.to_dict() for m in req.messages])
    p = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=1024)
    sent = _refusing_system_role(p, monkeypatch, alternation.value)
    assert (await p.complete(req)).text.strip() and [m["role"] for m in sent[-1]] == ["user"]
    monkeypatch.undo()
    quiet = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=1024)
    monkeypatch.setattr(quiet._loaded()[0].llama, "chat_format", "mistral-instruct")
    sent = _refusing_system_role(quiet, monkeypatch, AssertionError("the system message was sent as one"))
    await quiet.complete(req)
    assert [m["role"] for m in sent[-1]] == ["user"] and sent[-1][0]["content"].startswith("Answer in one word.")


def test_a_tier_reads_its_prompt_with_its_own_threads(smollm2: Path) -> None:
    """llama-cpp-python reads a prompt with every CPU unless told: a tier's n_threads held for the
    generation only (first tokens took seconds beside another job)."""
    p = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=512, n_threads=1)
    llama = p._loaded()[0].llama
    assert llama.n_threads == 1 and llama.n_threads_batch == 1


async def test_a_stream_cancelled_while_queued_does_not_wait_for_the_request_ahead(
        provider: LlamaCppProvider) -> None:
    import asyncio
    import time

    ahead = asyncio.ensure_future(provider.complete(Request([Message("user", "Write a long story.")],
                                                            max_tokens=96)))
    await asyncio.sleep(0.2)

    async def consume() -> None:
        async for _ in provider.stream(Request(QUESTION, max_tokens=8)):
            pass

    queued = asyncio.ensure_future(consume())
    await asyncio.sleep(0.1)
    queued.cancel()
    t0 = time.perf_counter()
    with pytest.raises(asyncio.CancelledError):
        await queued
    waited = time.perf_counter() - t0
    assert not ahead.done()  # it ended while the request ahead still generated
    await ahead
    assert waited < 1.0


async def test_a_decode_failure_mid_stream_is_a_provider_error(provider: LlamaCppProvider,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp's decode fails (the context full mid-character, say) with a RuntimeError: complete()
    turned it into an UpstreamError, stream() let it out raw, past the cascade's handling."""
    from edgecascade import UpstreamError

    llama = provider._loaded()[0].llama
    real = llama.create_chat_completion

    def failing(**kw: object) -> object:
        for i, chunk in enumerate(real(**kw)):
            if i == 2:
                raise RuntimeError("llama_decode returned 1")
            yield chunk

    monkeypatch.setattr(llama, "create_chat_completion", failing)
    with pytest.raises(UpstreamError, match="llama_decode returned 1"):
        async for _ in provider.stream(Request(QUESTION, max_tokens=16)):
            pass


def _long_question(provider: LlamaCppProvider) -> list[Message]:
    """A prompt of two to three of llama.cpp's 512-token batches, inside the fixture's 1,024-token context."""
    llama = provider._loaded()[0].llama
    text = "Summarise the log below in one line.\n\n" + "".join(
        f"line {i}: the sensor read {i * 7 % 23} degrees and the fan ran at speed {i % 5}.\n" for i in range(40))
    n = len(llama.tokenize(text.encode()))
    assert llama.n_batch < n < 1024 - 64, n  # more than one batch, and room to answer
    return [Message("user", text)]


def _spy_on_batches(monkeypatch: pytest.MonkeyPatch, provider: LlamaCppProvider,
                    hold: object | None = None) -> list[int]:
    """Record the size of every batch llama.cpp reads; with ``hold`` (a pair of threading.Events), the
    first batch of more than one token says it started and waits to be let go."""
    llama = provider._loaded()[0].llama
    base = type(llama).__mro__[1]  # llama_cpp.Llama: the class whose eval reads a batch
    real = base.eval
    sizes: list[int] = []

    def eval_(self: object, tokens: list[int]) -> None:
        sizes.append(len(tokens))
        if hold is not None and len(tokens) > 1 and len(sizes) == 1:
            started, go = hold  # type: ignore[misc]
            started.set()
            assert go.wait(30)
        real(self, tokens)

    monkeypatch.setattr(base, "eval", eval_)
    return sizes


async def test_a_request_cancelled_while_its_long_prompt_is_read_stops_reading_it(
        provider: LlamaCppProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp reads a whole prompt in one call: a request cancelled (a deadline, Ctrl-C) while
    its long prompt was read held the model, and every request queued behind it, until the last
    token was read, and then made a token for nobody. Now it stops at the end of the batch it is in."""
    import asyncio
    import threading

    question = _long_question(provider)
    started, go = threading.Event(), threading.Event()
    sizes = _spy_on_batches(monkeypatch, provider, hold=(started, go))
    task = asyncio.ensure_future(provider.complete(Request(question, max_tokens=8)))
    while not started.is_set():  # its prompt is being read
        await asyncio.sleep(0.01)
    task.cancel()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    c = await provider.complete(Request(QUESTION, max_tokens=4))  # after the abandoned request has ended
    assert c.usage.completion_tokens == 4
    # the cancelled request read one batch of its prompt and generated nothing: every batch after it
    # is the follow-up's (its short prompt, then one token at a time); read whole, the first would
    # have been the prompt's every token
    assert sizes[0] == provider._loaded()[0].llama.n_batch
    assert 1 < sizes[1] < sizes[0] and sizes[2:] and all(s == 1 for s in sizes[2:])


async def test_an_abandoned_stream_stops_reading_its_long_prompt(provider: LlamaCppProvider,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading

    question = _long_question(provider)
    started, go = threading.Event(), threading.Event()
    sizes = _spy_on_batches(monkeypatch, provider, hold=(started, go))
    agen = provider.stream(Request(question, max_tokens=8))
    first = asyncio.ensure_future(agen.__anext__())
    while not started.is_set():
        await asyncio.sleep(0.01)
    first.cancel()  # the consumer walks away while the prompt is read
    await asyncio.sleep(0)
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert sizes == [provider._loaded()[0].llama.n_batch]  # one batch read, nothing generated
    c = await provider.complete(Request(QUESTION, max_tokens=4))
    assert c.usage.completion_tokens == 4


async def test_a_long_prompt_read_in_batches_gives_the_same_numbers_as_llama_cpp_alone(
        provider: LlamaCppProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prompt is read in llama.cpp's own batches, so answers and logprobs are bit for bit those
    of llama.cpp reading it in one call: the traced and calibrated-on drafts stay what they were."""
    question = _long_question(provider)
    req = Request(question, max_tokens=24)
    batched = await provider.complete(req)
    llama = provider._loaded()[0].llama
    monkeypatch.setattr(type(llama), "eval", type(llama).__mro__[1].eval)  # llama.cpp's own, uninterruptible
    whole = await provider.complete(req)
    assert batched.text == whole.text
    assert batched.logprobs is not None and whole.logprobs is not None
    assert np.array_equal(batched.logprobs.logprobs, whole.logprobs.logprobs)
    assert np.array_equal(batched.logprobs.top_logprobs, whole.logprobs.top_logprobs)


async def test_a_stream_also_merges_a_refused_system_role_and_maps_template_errors(
        smollm2: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only complete() asked again with the system text merged, and only complete() turned a template
    error into a ProviderError: a stream on a Gemma-style template failed with jinja2's own exception."""
    from edgecascade import UpstreamError

    p = LlamaCppProvider(path=smollm2, model="smollm2-135m", n_ctx=1024, top_logprobs=5)
    sent = _refusing_system_role(p, monkeypatch)
    req = Request([Message("system", "Answer in one word."), Message("user", "Capital of France?")], max_tokens=4)
    text = "".join([d.text async for d in p.stream(req)])
    assert text.strip() and [m["role"] for m in sent[-1]] == ["user"] and len(sent) == 2

    class TemplateError(Exception):  # what jinja2 raises, by module
        __module__ = "jinja2.exceptions"

    def broken(**kw: object) -> object:
        raise TemplateError("unexpected end of template")

    monkeypatch.setattr(p._loaded()[0].llama, "create_chat_completion", broken)
    with pytest.raises(UpstreamError, match="chat template cannot format these messages"):
        async for _ in p.stream(Request(QUESTION, max_tokens=4)):
            pass


async def test_a_token_longer_than_32_bytes_is_spelt_whole_by_the_real_model(provider: LlamaCppProvider) -> None:
    """llama-cpp-python 0.3 spells a token through a 32-byte buffer and takes llama.cpp's "needs N
    bytes" for an empty piece: SmolLM2's 47 longer tokens (a line break and 80 spaces, a rule of
    #s) vanished from answers. Text made of them tokenizes and spells back whole."""
    import ctypes

    import llama_cpp

    llama = provider._loaded()[0].llama
    for text in (b"x\n" + b" " * 80 + b"y", b"# " + b"#" * 80 + b"\n", b"def f():\n" + b" " * 40 + b"return 1"):
        ids = llama.tokenize(text, add_bos=False, special=False)
        widths = []
        for t in ids:  # each piece's length, asked with room enough
            buf = (ctypes.c_char * 256)()
            widths.append(llama_cpp.llama_token_to_piece(llama._model.vocab, t, buf, 256, 0, False))
        assert max(widths) > 32, text  # the text holds a token the 32-byte buffer cannot
        assert llama.detokenize(ids) == text


def test_bench_overhead_runs_the_variants_in_turn_and_divides_within_rounds() -> None:
    """The variants ran in one fixed order every round (plain always right after the built-in one's
    big logits buffer), and the ratio divided medians taken from different rounds."""
    import statistics

    from edgecascade.benchmarks.overhead import generation_speed

    r = generation_speed("smollm2-135m", max_tokens=4, runs=2, n_ctx=512)
    assert r["orders"] == [["plain", "capture", "builtin"], ["capture", "builtin", "plain"]]
    assert len(set(r["tokens"].values())) == 1  # one greedy answer, three ways
    speeds = r["tokens_per_s_all"]
    rounds = [c / p for c, p in zip(speeds["capture"], speeds["plain"], strict=True)]
    assert r["capture_over_plain"] == statistics.median(rounds)
    assert r["capture_over_plain_range"] == [min(rounds), max(rounds)]
