"""Does the benchmark describe the cascade? Run it live on traced items and compare.

`bench report` judges a config's rule from stored traces alone: each stored draft is decided as the
engine would decide it, and the answer is the draft's or the last tier's. That is only as true as two
assumptions: the model writes today the draft it wrote when traced (greedy decoding, the same build
and settings), and the offline decision is the engine's. `bench replay` checks both on real items:
the live cascade answers each one, and each attempt is set beside the traces and the offline rule.
"""

from __future__ import annotations

import asyncio
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..datasets import Item, grade
from ..engine import Cascade
from ..quality.checks import Check
from ..quality.crosscheck import CrossCheck
from ..quality.policy import Decision, decide, run_checks
from .traces import Trace

#: a confidence the engine and the offline rule compute from the same draft may differ only by rounding
#: (traces store logprobs to 5 decimals)
CONFIDENCE_TOLERANCE = 1e-3


class OfflineRule:
    """A cascade's first-tier rule applied to stored drafts, as the engine applies it live: the
    draft's checks run once, decide whether it is cross-checked (its traced cross-check stands in for
    the live one) and then judge it. Used by `bench report` for "this config's rule" and by replay."""

    def __init__(self, cascade: Cascade, cross_check_of: Callable[[Trace], CrossCheck | None]):
        self.cascade = cascade
        self.first = cascade.tiers[0]
        self.rule = self.first.accept
        self._cross_check_of = cross_check_of
        self._checks: dict[tuple[str, str], list[Check]] = {}
        self._ran: dict[tuple[str, str], bool] = {}

    def checks_of(self, t: Trace) -> list[Check]:
        key = (t.dataset, t.item_id)
        if key not in self._checks:
            self._checks[key] = run_checks(t.completion(), self.rule.checks, self.cascade.settings.repetition)
        return self._checks[key]

    def cross_checks(self, t: Trace, prompt: str | None) -> bool:
        """Whether the engine would cross-check this draft (and so pay for it)."""
        key = (t.dataset, t.item_id)
        if key not in self._ran:
            self._ran[key] = self.cascade.cross_checks(self.first, t.completion(), prompt or "", self.checks_of(t))
        return self._ran[key]

    def decision(self, t: Trace, prompt: str | None) -> Decision:
        check = self._cross_check_of(t) if self.cross_checks(t, prompt) else None
        return decide(t.completion(), self.rule, self.cascade.settings.repetition, self.first.calibration,
                      prompt=prompt, allow_examples=self.cascade.settings.run_examples, cross_check=check,
                      checks=self.checks_of(t))

    def keep(self, t: Trace, prompt: str | None) -> bool:
        return self.decision(t, prompt).accepted


@dataclass
class ReplayRow:
    """One item answered live, beside what the traces and the offline rule say happened."""

    item_id: str
    same_draft: bool
    live_confidence: float | None
    offline_confidence: float | None
    live_accepted: bool
    offline_accepted: bool
    live_tier: str
    offline_tier: str
    same_answer: bool
    live_correct: bool
    offline_correct: bool
    live_s: float
    offline_s: float

    @property
    def decision_agrees(self) -> bool:
        return self.live_accepted == self.offline_accepted and self.live_tier == self.offline_tier

    @property
    def confidence_agrees(self) -> bool:
        a, b = self.live_confidence, self.offline_confidence
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, abs_tol=CONFIDENCE_TOLERANCE)

    @property
    def broken(self) -> bool:
        """The same draft, judged differently live and offline: the offline evaluation is wrong."""
        return self.same_draft and not (self.decision_agrees and self.confidence_agrees)


def replay(cascade: Cascade, items: Sequence[Item], small: dict[str, Trace], large: dict[str, Trace],
           offline: OfflineRule, cross_check_latency: Callable[[Trace], float], *, max_tokens: int,
           on_item: Callable[[ReplayRow], None] | None = None) -> list[ReplayRow]:
    """Answer each item with the live cascade (greedy, the traced request) and compare."""
    if len(cascade.tiers) != 2:
        raise ValueError("replay compares a two-tier cascade with the benchmark's offline rule")
    first, last = cascade.tiers[0].name, cascade.tiers[-1].name

    async def go() -> list[ReplayRow]:
        rows = []
        for item in items:
            s, lg = small[item.id], large[item.id]
            result = await cascade.run(item.prompt, max_tokens=max_tokens, temperature=0.0, seed=0)
            draft = result.attempts[0]
            d = offline.decision(s, item.prompt)
            kept = s if d.accepted else lg
            spent = s.latency_s + (cross_check_latency(s) if offline.cross_checks(s, item.prompt) else 0.0)
            row = ReplayRow(
                item_id=item.id,
                same_draft=draft.completion is not None and draft.completion.text == s.answer,
                live_confidence=draft.confidence, offline_confidence=d.confidence,
                live_accepted=draft.accepted, offline_accepted=d.accepted,
                live_tier=result.tier, offline_tier=first if d.accepted else last,
                same_answer=result.content == kept.answer,
                live_correct=await asyncio.to_thread(grade, item, result.content), offline_correct=kept.correct,
                live_s=result.latency_ms / 1000, offline_s=spent + (0.0 if d.accepted else lg.latency_s),
            )
            rows.append(row)
            if on_item:
                on_item(row)
        return rows

    return asyncio.run(go())


def summarize(rows: Sequence[ReplayRow]) -> dict[str, Any]:
    n = len(rows)
    same = [r for r in rows if r.same_draft]
    gaps = [abs(r.live_confidence - r.offline_confidence) for r in same
            if r.live_confidence is not None and r.offline_confidence is not None]
    return {
        "items": n,
        "same_draft": len(same),
        "decision_agrees": sum(r.decision_agrees for r in rows),
        "decision_agrees_on_same_draft": sum(r.decision_agrees for r in same),
        "max_confidence_gap_on_same_draft": max(gaps, default=0.0),
        "same_answer": sum(r.same_answer for r in rows),
        "live_accuracy": sum(r.live_correct for r in rows) / max(n, 1),
        "offline_accuracy": sum(r.offline_correct for r in rows) / max(n, 1),
        "live_small_share": sum(r.live_accepted for r in rows) / max(n, 1),
        "offline_small_share": sum(r.offline_accepted for r in rows) / max(n, 1),
        "live_median_s": statistics.median(r.live_s for r in rows) if rows else 0.0,
        "offline_median_s": statistics.median(r.offline_s for r in rows) if rows else 0.0,
        "broken": [r.item_id for r in rows if r.broken],
        "rows": [asdict(r) for r in rows],
    }
