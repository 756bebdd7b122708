"""What a cascade run returns: the answer plus a true account of how it was reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .quality import Decision
from .types import Completion


@dataclass(slots=True)
class Attempt:
    """One tier tried: its draft (or error), the decision on it, and what it cost."""

    tier: str
    model: str
    completion: Completion | None
    decision: Decision | None
    latency_ms: float
    cost: float
    error: str | None = None
    error_kind: str | None = None
    exception: BaseException | None = field(default=None, repr=False)
    #: the call failed in a way a provider may still bill (a timeout, a broken or cut-off answer) on a
    #: priced tier: what it cost is not known, and ``cost`` (0) does not hold it
    cost_unknown: bool = False

    @property
    def accepted(self) -> bool:
        return self.decision is not None and self.decision.accepted

    @property
    def reason(self) -> str:
        if self.error is not None:
            return f"failed ({self.error_kind}): {self.error}"
        assert self.decision is not None
        return self.decision.reason

    @property
    def confidence(self) -> float | None:
        return self.decision.confidence if self.decision else None

    def to_dict(self, *, logprobs: bool = False) -> dict[str, Any]:
        c = self.completion
        d: dict[str, Any] = {
            "tier": self.tier,
            "model": self.model,
            "content": c.text if c else None,
            "confidence": self.confidence,
            "accepted": self.accepted,
            "reason": self.reason,
            "finish_reason": c.finish_reason if c else None,
            "tokens": {
                "prompt": c.usage.prompt_tokens if c else 0,
                "completion": c.usage.completion_tokens if c else 0,
                # of the prompt tokens, those served from the backend's cache: what a discounted cost rests on
                "cached": c.usage.cached_prompt_tokens if c else 0,
                "reported": c.usage.reported if c else False,  # a failed call: what it used is unknown
            },
            "latency_ms": self.latency_ms,
            "time_to_first_token_ms": (
                c.timings.first_token_s * 1000 if c and c.timings.first_token_s is not None else None
            ),
            "load_ms": c.timings.load_s * 1000 if c else 0.0,
            "tokens_per_s": c.tokens_per_s if c else None,
            "cost": self.cost,
            "checks": [ch.to_dict() for ch in self.decision.checks] if self.decision else [],
            "features": (
                self.decision.features.to_dict() if self.decision and self.decision.features else None
            ),
            "cross_check": (
                self.decision.cross_check.to_dict() if self.decision and self.decision.cross_check else None
            ),
            "error": self.error,
            "cost_unknown": self.cost_unknown,
        }
        if logprobs:
            d["logprobs"] = c.logprobs.to_dict() if c and c.logprobs is not None else None
        return d


@dataclass(slots=True)
class Result:
    """The answer and its account.

    ``baseline_cost`` is what always using the strongest (last) tier would have cost for this
    query: measured when that tier ran, otherwise estimated from the answering tier's token counts
    at the strongest tier's prices, and then ``baseline_estimated`` is true. It is None (and so is
    ``saving``) when the strongest tier is priced and the answer it would be measured or estimated
    on came without token counts: a cost of $0 there would be a guess.
    """

    content: str
    tier: str
    model: str
    accepted: bool
    confidence: float | None
    reason: str
    attempts: list[Attempt]
    cost: float
    baseline_tier: str
    baseline_cost: float | None
    baseline_estimated: bool
    latency_ms: float
    overhead_ms: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def saving(self) -> float | None:
        """Dollars saved against the baseline; negative when escalation cost more than it; None when
        the baseline is not known."""
        return None if self.baseline_cost is None else self.baseline_cost - self.cost

    @property
    def escalated(self) -> bool:
        return len(self.attempts) > 1

    @property
    def usage_missing(self) -> list[str]:
        """The tiers whose backend sent no token counts: their cost reads as if they used none, so
        ``cost`` is too low by their share (and a priced baseline that would rest on them is None)."""
        return [a.tier for a in self.attempts if a.completion is not None and not a.completion.usage.reported]

    @property
    def cost_unknown(self) -> list[str]:
        """The priced tiers whose call failed in a way a provider may still bill (see
        :attr:`Attempt.cost_unknown`): ``cost`` may be too low, and the saving too high, by their share."""
        return [a.tier for a in self.attempts if a.cost_unknown]

    def to_dict(self, *, logprobs: bool = False) -> dict[str, Any]:
        return {
            "content": self.content,
            "tier": self.tier,
            "model": self.model,
            "accepted": self.accepted,
            "confidence": self.confidence,
            "reason": self.reason,
            "cost": self.cost,
            "baseline_tier": self.baseline_tier,
            "baseline_cost": self.baseline_cost,
            "baseline_estimated": self.baseline_estimated,
            "saving": self.saving,
            "latency_ms": self.latency_ms,
            "overhead_ms": self.overhead_ms,
            "escalated": self.escalated,
            "usage_missing": self.usage_missing,
            "cost_unknown": self.cost_unknown,
            "attempts": [a.to_dict(logprobs=logprobs) for a in self.attempts],
        }
