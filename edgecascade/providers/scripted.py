"""A scripted provider: canned answers for your tests and ours (like httpx.MockTransport).

It is public on purpose: a cascade built on ScriptedProvider tiers runs the real engine,
checks and accounting with no model, no network and no cost, so users can test their own
acceptance rules and error handling deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..types import Completion, Delta, FinishReason, Request, Timings, TokenLogprobs, Usage
from ._common import DeltaStream
from .base import Capabilities


@dataclass
class ScriptedReply:
    """One canned answer.

    ``logprob`` is either one value used for every (whitespace-separated) token of ``text``, or a
    list with one value per token; None means the reply carries no logprobs. ``error`` is raised
    instead of answering. ``delay_s`` simulates time spent in the model.
    """

    text: str = ""
    logprob: float | Sequence[float] | None = None
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    error: BaseException | None = None
    delay_s: float = 0.0
    top_k: int = 2


def _scripted_logprobs(reply: ScriptedReply) -> TokenLogprobs | None:
    if reply.logprob is None:
        return None
    tokens = reply.text.split() or [""]
    if isinstance(reply.logprob, (int, float)):
        lps = np.full(len(tokens), float(reply.logprob))
    else:
        lps = np.asarray(reply.logprob, dtype=np.float64)
        if lps.shape[0] != len(tokens):
            raise ValueError(
                f"ScriptedReply has {len(tokens)} tokens but {lps.shape[0]} logprobs: give one per token"
            )
    # alternatives: the chosen token and the rest of the probability mass split evenly, best first
    # as a real backend lists them (a chosen token less likely than an alternative is not first)
    k = max(reply.top_k, 1)
    rest = np.log(np.maximum(1.0 - np.exp(lps), 1e-12) / max(k - 1, 1))
    top = np.column_stack([lps] + [rest] * (k - 1)) if k > 1 else lps[:, None]
    names = [[t] + [f"<alt{j}>" for j in range(1, k)] for t in tokens]
    order = np.argsort(-top, axis=1, kind="stable")
    return TokenLogprobs(
        tokens=tokens,
        logprobs=lps,
        top_tokens=[[row[j] for j in o] for row, o in zip(names, order, strict=True)],
        top_logprobs=np.take_along_axis(top, order, axis=1),
    )


@dataclass
class ScriptedProvider:
    """Answers each request with the next scripted reply (or a function of the request).

    ``replies`` is a list consumed in order (the last one repeats), or a callable
    ``Request -> ScriptedReply``. Every request received is kept in ``requests``.
    """

    replies: Sequence[ScriptedReply] | Callable[[Request], ScriptedReply]
    model: str = "scripted"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(logprobs=True, streaming=True))
    requests: list[Request] = field(default_factory=list)

    def _next(self, request: Request) -> ScriptedReply:
        self.requests.append(request)
        if callable(self.replies):
            return self.replies(request)
        if not self.replies:
            raise ValueError("ScriptedProvider has no replies to give")
        i = min(len(self.requests) - 1, len(self.replies) - 1)
        return self.replies[i]

    async def complete(self, request: Request) -> Completion:
        reply = self._next(request)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.error is not None:
            raise reply.error
        lp = _scripted_logprobs(reply)
        n_out = len(lp) if lp is not None else len(reply.text.split())
        n_in = reply.prompt_tokens
        if n_in is None:
            n_in = sum(len(m.content.split()) for m in request.messages)
        return Completion(
            text=reply.text,
            model=self.model,
            finish_reason=reply.finish_reason,
            usage=Usage(n_in, n_out),
            timings=Timings(total_s=reply.delay_s),
            logprobs=lp,
        )

    def stream(self, request: Request) -> DeltaStream:
        """The reply a word at a time; after the last one, the stream's ``usage``, ``finish_reason`` and
        ``logprobs`` are complete()'s."""
        return DeltaStream(lambda out: self._stream(request, out))

    async def _stream(self, request: Request, out: DeltaStream) -> AsyncGenerator[Delta, None]:
        c = await self.complete(request)
        words = c.text.split(" ")
        for i, w in enumerate(words):
            last = i == len(words) - 1
            if last:
                out.usage, out.finish_reason, out.logprobs = c.usage, c.finish_reason, c.logprobs
            yield Delta(w if last else w + " ", c.finish_reason if last else None)

    async def aclose(self) -> None:
        return None
