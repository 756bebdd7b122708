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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..datasets import Item, grade
from ..engine import Cascade
from ..errors import EdgecascadeError
from ..quality.checks import Check
from ..quality.crosscheck import CrossCheck
from ..quality.policy import Decision, decide, run_checks
from ..result import Attempt
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

    def checks_of(self, t: Trace, prompt: str | None) -> list[Check]:
        key = (t.dataset, t.item_id)
        if key not in self._checks:
            self._checks[key] = run_checks(t.completion(), self.rule.checks, self.cascade.settings.repetition,
                                           prompt)
        return self._checks[key]

    def cross_checks(self, t: Trace, prompt: str | None) -> bool:
        """Whether the engine would cross-check this draft (and so pay for it)."""
        key = (t.dataset, t.item_id)
        if key not in self._ran:
            self._ran[key] = self.cascade.cross_checks(self.first, t.completion(), prompt or "",
                                                       self.checks_of(t, prompt))
        return self._ran[key]

    def decision(self, t: Trace, prompt: str | None) -> Decision:
        check = self._cross_check_of(t) if self.cross_checks(t, prompt) else None
        return decide(t.completion(), self.rule, self.cascade.settings.repetition, self.first.calibration,
                      prompt=prompt, allow_examples=self.cascade.settings.run_examples, cross_check=check,
                      checks=self.checks_of(t, prompt))

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
    #: the cross-check's program result live and as traced, where the draft was cross-checked
    live_cross_check: float | None = None
    offline_cross_check: float | None = None
    #: a live tier's failure (the cascade answered without it), or the whole live answer's
    error: str | None = None
    #: the live draft itself was not made (the first tier failed, or the cascade stopped before it):
    #: there is no live decision to compare. A later tier's failure leaves the draft's decision whole
    draft_failed: bool = False

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
    def same_evidence(self) -> bool:
        """The live decision saw what the offline one did: the same draft and, where it was
        cross-checked, the same program result (a program run again can time out on a busy machine)."""
        same_check = (self.live_cross_check is None and self.offline_cross_check is None) or (
            self.live_cross_check is not None and self.offline_cross_check is not None
            and math.isclose(self.live_cross_check, self.offline_cross_check, rel_tol=1e-9, abs_tol=1e-6))
        return self.same_draft and same_check and not self.draft_failed

    @property
    def broken(self) -> bool:
        """The same evidence, judged differently live and offline: the offline evaluation is wrong."""
        return self.same_evidence and not (self.live_accepted == self.offline_accepted and self.confidence_agrees)


def _result_of(check: CrossCheck | None) -> float | None:
    return None if check is None else check.result


def replay(cascade: Cascade, items: Sequence[Item], small: dict[str, Trace], large: dict[str, Trace],
           offline: OfflineRule, cross_check_of: Callable[[Trace], Trace | None], *, max_tokens: int,
           on_item: Callable[[ReplayRow], None] | None = None) -> list[ReplayRow]:
    """Answer each item with the live cascade (greedy, the traced request) and compare. An item the
    live cascade cannot answer (every tier failed) is recorded with its error, and the rest go on."""
    if len(cascade.tiers) != 2:
        raise ValueError("replay compares a two-tier cascade with the benchmark's offline rule")
    first, last = cascade.tiers[0].name, cascade.tiers[-1].name

    async def one(item: Item) -> ReplayRow:
        s, lg = small[item.id], large[item.id]
        d = offline.decision(s, item.prompt)
        kept = s if d.accepted else lg
        traced_check = cross_check_of(s) if d.cross_check is not None else None
        spent = s.latency_s + (traced_check.latency_s if traced_check is not None else 0.0)
        base = ReplayRow(item.id, same_draft=False, live_confidence=None, offline_confidence=d.confidence,
                         live_accepted=False, offline_accepted=d.accepted, live_tier="(none)",
                         offline_tier=first if d.accepted else last, same_answer=False, live_correct=False,
                         offline_correct=kept.correct, live_s=0.0,
                         offline_s=spent + (0.0 if d.accepted else lg.latency_s),
                         offline_cross_check=_result_of(d.cross_check))
        def drafted(attempts: Sequence[Attempt]) -> dict[str, Any]:
            """What the live draft was and how it was judged: compared whatever later tiers did."""
            draft = attempts[0] if attempts else None
            if draft is None or draft.completion is None or draft.decision is None:
                return {"draft_failed": True}
            return {"same_draft": draft.completion.text == s.answer, "live_confidence": draft.confidence,
                    "live_accepted": draft.accepted, "live_cross_check": _result_of(draft.decision.cross_check)}

        t0 = time.perf_counter()
        try:
            result = await cascade.run(item.prompt, max_tokens=max_tokens, temperature=0.0, seed=0)
        except EdgecascadeError as e:  # every tier failed or was rejected (on_all_rejected = "error")
            return replace(base, live_s=time.perf_counter() - t0, error=f"{type(e).__name__}: {e}",
                           **drafted(getattr(e, "attempts", None) or []))
        failed = next((a for a in result.attempts if a.error is not None), None)
        return replace(
            base, **drafted(result.attempts), live_tier=result.tier,
            same_answer=result.content == kept.answer,
            live_correct=await asyncio.to_thread(grade, item, result.content), live_s=result.latency_ms / 1000,
            error=None if failed is None else f"tier {failed.tier}: {failed.error}",
        )

    async def go() -> list[ReplayRow]:
        rows = []
        for item in items:
            row = await one(item)
            rows.append(row)
            if on_item:
                on_item(row)
        return rows

    return asyncio.run(go())


def summarize(rows: Sequence[ReplayRow], first_tier: str) -> dict[str, Any]:
    n = len(rows)
    same = [r for r in rows if r.same_evidence]
    gaps = [abs(r.live_confidence - r.offline_confidence) for r in same
            if r.live_confidence is not None and r.offline_confidence is not None]
    return {
        "items": n,
        "same_draft": sum(r.same_draft for r in rows),
        "same_evidence": len(same),
        "decision_agrees": sum(r.decision_agrees for r in rows),
        "decision_agrees_on_same_evidence": sum(r.decision_agrees for r in same),
        "max_confidence_gap_on_same_evidence": max(gaps, default=0.0),
        "same_answer": sum(r.same_answer for r in rows),
        "failed_live": [r.item_id for r in rows if r.error is not None],
        "live_accuracy": sum(r.live_correct for r in rows) / max(n, 1),
        "offline_accuracy": sum(r.offline_correct for r in rows) / max(n, 1),
        "live_small_share": sum(r.live_tier == first_tier for r in rows) / max(n, 1),
        "offline_small_share": sum(r.offline_accepted for r in rows) / max(n, 1),
        "live_median_s": statistics.median(r.live_s for r in rows) if rows else 0.0,
        "offline_median_s": statistics.median(r.offline_s for r in rows) if rows else 0.0,
        "broken": [r.item_id for r in rows if r.broken],
        "rows": [asdict(r) for r in rows],
    }
