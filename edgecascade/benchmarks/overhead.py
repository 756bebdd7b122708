"""`edgecascade bench overhead`: what logprob capture and the engine cost, measured side by side.

Three ways to generate the same greedy answer to the same prompt with the same model, run
interleaved in one process, in an order that turns each round (so no variant always runs first or
right after the built-in one's big logits buffer), and reported as medians over several runs, with
each round's ratio to plain (the ratio is the median of those, with their range):

- plain:   the provider's own model (edgecascade's llama-cpp-python subclass, which spells tokens
           whole and caps the answer's tokens) through llama-cpp-python's chat completion, no logprobs;
- capture: edgecascade's LlamaCppProvider (logits processor + numpy, top-5 alternatives);
- builtin: stock llama-cpp-python's own ``logprobs=True, top_logprobs=5`` (needs ``logits_all=True``).

Then the engine's own overhead per query (wall time minus time inside providers) over a few
hundred queries through a 3-tier cascade of scripted providers, so only the engine is measured;
per query path too (answered by the first tier, or after one or two escalations), since the
overall median falls between those paths. The scripted answers are a few words long, on a short
prompt: checks and features grow with an answer's length, so a real answer's overhead is larger
(the README says by how much on one).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..config import AcceptRule
from ..engine import Cascade, Tier
from ..models import resolve
from ..providers.llamacpp import LlamaCppProvider, _import_llama_cpp
from ..providers.scripted import ScriptedProvider, ScriptedReply
from ..types import Message, Request

PROMPT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."


def _tokens_per_s(fn: Callable[[], int]) -> float:
    t0 = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - t0)


def generation_speed(model: str = "qwen2.5-coder-0.5b", *, max_tokens: int = 128, runs: int = 5, n_ctx: int = 1024,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Median tokens/s for plain, capture and built-in logprobs on one model (the defaults are
    `bench overhead`'s: the default drafter, 128 tokens, 5 rounds)."""
    if progress:
        progress(f"generation speed on {model}: {runs} runs x 3 variants, {max_tokens} tokens each (greedy)")
    llama_cpp = _import_llama_cpp()
    resolved = resolve(model)
    provider = LlamaCppProvider(path=resolved.path, model=resolved.name, n_ctx=n_ctx, top_logprobs=5)
    provider.load()
    loaded, _ = provider._loaded()
    plain_llama = loaded.llama
    builtin_llama = llama_cpp.Llama(
        model_path=str(resolved.path), n_ctx=n_ctx, n_threads=provider.n_threads,
        n_threads_batch=provider.n_threads, logits_all=True,  # as the provider's model reads its prompt
        verbose=False,
    )
    messages = [{"role": "user", "content": PROMPT}]
    request = Request([Message("user", PROMPT)], max_tokens=max_tokens, temperature=0.0, seed=0)

    # Every variant starts from a clean state, as the provider does: otherwise llama-cpp-python would
    # skip re-reading the identical prompt for the plain and built-in runs only.
    def plain() -> int:
        plain_llama.reset()
        out = plain_llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                 temperature=0.0, seed=0)
        return int(out["usage"]["completion_tokens"])

    def capture() -> int:
        c = provider._complete_blocking(request)
        assert c.logprobs is not None and len(c.logprobs) == c.usage.completion_tokens
        return c.usage.completion_tokens

    def builtin() -> int:
        builtin_llama.reset()
        out = builtin_llama.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                   temperature=0.0, seed=0, logprobs=True, top_logprobs=5)
        return int(out["usage"]["completion_tokens"])

    variants = {"plain": plain, "capture": capture, "builtin": builtin}
    names = list(variants)
    tokens = {name: fn() for name, fn in variants.items()}  # warm-up: first calls pay for allocation and caches
    speeds: dict[str, list[float]] = {k: [] for k in variants}
    orders: list[list[str]] = []
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]  # each round starts with another variant
        orders.append(order)
        for name in order:  # interleaved, so drift hits every variant alike
            speeds[name].append(_tokens_per_s(variants[name]))
            if progress:
                progress(f"run {r + 1}/{runs} {name}: {speeds[name][-1]:.1f} tok/s")
    builtin_llama.close()
    med = {k: statistics.median(v) for k, v in speeds.items()}

    def ratios(name: str) -> list[float]:  # each round's, against that round's plain run
        return [a / b for a, b in zip(speeds[name], speeds["plain"], strict=True)]

    return {
        "model": resolved.name,
        "max_tokens": max_tokens,
        "runs": runs,
        "tokens": tokens,  # what each variant generated (greedy: the same answer, so the same count)
        "tokens_per_s": med,
        "tokens_per_s_all": speeds,
        "orders": orders,
        "capture_over_plain": statistics.median(ratios("capture")),
        "capture_over_plain_range": [min(ratios("capture")), max(ratios("capture"))],
        "builtin_over_plain": statistics.median(ratios("builtin")),
        "builtin_over_plain_range": [min(ratios("builtin")), max(ratios("builtin"))],
    }


def engine_overhead(queries: int = 500, *, calibrated: bool = False) -> dict[str, Any]:
    """Per-query engine overhead (ms) through 3 scripted tiers: half accepted at the first tier,
    a quarter escalated once, a quarter escalated twice. With ``calibrated``, the first two tiers
    use the default config's rule (the shipped calibration: every draft's features and P(correct)),
    and the keys say so."""
    rule = AcceptRule(min_confidence=0.5)
    calibration = None
    if calibrated:
        from ..config import load_config
        from ..engine import calibration_for

        tier = load_config("default").tiers[0]
        rule, calibration = tier.accept, calibration_for(tier)
    # five alternatives per token, as the default tier captures them and the shipped calibration was fitted on
    sure = ScriptedReply("The answer is 42.", logprob=-0.05, top_k=5)
    unsure = ScriptedReply("Maybe 41?", logprob=-2.0, top_k=5)
    tiers = [
        Tier("t1", ScriptedProvider(lambda r: sure if len(r.messages[0].content) % 2 else unsure, model="a"),
             rule, calibration=calibration),
        Tier("t2", ScriptedProvider(lambda r: sure if len(r.messages[0].content) % 4 == 2 else unsure,
                                    model="b"), rule, calibration=calibration),
        Tier("t3", ScriptedProvider([sure], model="c")),
    ]
    cascade = Cascade(tiers)

    async def go() -> list[tuple[int, float]]:
        out = []
        for i in range(queries + 50):
            res = await cascade.run("q" * (i % 4 + 1) + f" question {i}")
            if i >= 50:  # the first queries warm up caches and the interpreter
                out.append((len(res.attempts), res.overhead_ms))
        return out

    runs = asyncio.run(go())
    ms = np.array([m for _, m in runs])
    key = "engine_overhead_calibrated" if calibrated else "engine_overhead"
    return {
        "queries": queries,
        f"{key}_ms_p50": float(np.percentile(ms, 50)),
        f"{key}_ms_p99": float(np.percentile(ms, 99)),
        f"{key}_ms_mean": float(ms.mean()),
        # by how many tiers the query asked: the overall median falls between these
        f"{key}_ms_p50_by_tiers": {str(n): float(np.median([m for k, m in runs if k == n]))
                                   for n in sorted({k for k, _ in runs})},
    }
