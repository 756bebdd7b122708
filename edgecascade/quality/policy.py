"""The acceptance decision for one draft: checks first, then calibrated confidence.

Knows nothing about providers or cascades: it reads a Completion and a rule from the config and
returns a Decision that always carries its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..config import AcceptRule, RepetitionCheck
from ..types import Completion
from .calibration import Calibration, draft_features
from .checks import Check, check_arithmetic, check_empty, check_refusal, check_repetition, check_truncated
from .crosscheck import CrossCheck
from .features import LogprobFeatures, logprob_features


@dataclass(slots=True)
class Decision:
    accepted: bool
    reason: str
    confidence: float | None
    checks: list[Check] = field(default_factory=list)
    features: LogprobFeatures | None = None
    #: the draft's cross-check, where one was made (``[cascade] cross_check``)
    cross_check: CrossCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "reason": self.reason,
            "confidence": self.confidence,
            "checks": [c.to_dict() for c in self.checks],
            "features": self.features.to_dict() if self.features else None,
            "cross_check": self.cross_check.to_dict() if self.cross_check else None,
        }


def run_checks(c: Completion, names: tuple[str, ...], repetition: RepetitionCheck,
               prompt: str | None) -> list[Check]:
    """The named checks on a draft; ``prompt``: the question it answers (the arithmetic check reads it)."""
    out: list[Check] = []
    for name in names:
        if name == "empty":
            out.append(check_empty(c))
        elif name == "truncated":
            out.append(check_truncated(c))
        elif name == "refusal":
            out.append(check_refusal(c))
        elif name == "arithmetic":
            out.append(check_arithmetic(c, prompt))
        elif name == "repetition":
            out.append(
                check_repetition(c, min_period=repetition.min_period, min_repeats=repetition.min_repeats)
            )
        else:  # the config's Literal makes this unreachable from a config file
            raise ValueError(f"unknown check {name!r}")
    return out


def rule_label(rule: AcceptRule) -> str:
    """A rule in a few words, for reports: ``geo_mean_prob >= 0.886 + 4 checks``."""
    if rule.quality_target is not None:
        what = f"calibrated, quality_target {rule.quality_target:g}"
    elif rule.min_confidence is not None:
        what = f"{rule.confidence} >= {rule.min_confidence:g}"
    else:
        what = "no threshold"
    return f"{what} + {len(rule.checks)} checks" if rule.checks else what


def decide(c: Completion, rule: AcceptRule, repetition: RepetitionCheck,
           calibration: Calibration | None = None, prompt: str | None = None,
           allow_examples: bool = False, cross_check: CrossCheck | None = None, *,
           checks: list[Check] | None = None) -> Decision:
    """Accept the draft if every configured check passes and its confidence meets the rule.

    A draft without logprobs (a backend that gives none) is decided on its checks alone, and the
    reason says so; a draft with logprobs whose score cannot be computed from them (a margin from
    one alternative per token, or no tokens at all: a server's empty logprob list, a whitespace-only
    draft) is rejected, so it escalates rather than pass unjudged.
    ``calibration`` is required when the rule's confidence is "calibrated".
    ``cross_check``: the draft's cross-check, where the caller made one (a math prompt, under a
    calibration that uses it); a draft without one gets the neutral features, as in fitting.
    ``checks``: the rule's checks already run on this draft (the engine runs them once, to decide
    whether to cross-check); None runs them here.
    """
    if checks is None:
        checks = run_checks(c, rule.checks, repetition, prompt)
    failed = [ch for ch in checks if not ch.passed]
    feats = logprob_features(c.logprobs) if c.logprobs is not None else None
    confidence: float | None = None
    score_name: str = rule.confidence
    short = _fewer_alternatives(c, calibration) if rule.confidence == "calibrated" else None
    if calibration is not None:
        # the prompt's domain picks the calibrator (and its threshold) where the calibration has one
        calibration = calibration.for_prompt(prompt)
        if rule.confidence == "calibrated":
            score_name = calibration.label
    if feats is not None:
        if rule.confidence == "calibrated":
            if calibration is None:
                raise ValueError("a calibrated rule needs its Calibration")
            if calibration.runs_examples and not allow_examples:
                raise ValueError("this calibration runs the prompt's examples: it needs run_examples = true")
            # a draft already rejected by a check is not worth running
            run = calibration.runs_examples and not failed
            confidence = None if short else calibration.predict(draft_features(
                c, feats, prompt=prompt, run_examples=run,
                cross_check=cross_check.features if cross_check is not None else None))
        else:
            confidence = feats.score(rule.confidence)
        if confidence is not None and not math.isfinite(confidence):
            confidence = None  # e.g. a margin score when the tier captures fewer than 2 alternatives
    threshold = rule.min_confidence
    if rule.quality_target is not None:
        if calibration is None:
            raise ValueError("a quality_target rule needs its Calibration")
        threshold = calibration.threshold_for(rule.quality_target)
    if failed:
        reason = "; ".join(f"{ch.name}: {ch.detail}" for ch in failed)
        return Decision(False, f"rejected ({reason})", confidence, checks, feats)
    top = c.logprobs.top_logprobs if c.logprobs is not None else None
    alternatives = top is not None and top.ndim == 2 and top.shape[1] >= 2
    decision = _verdict(rule, score_name, confidence, threshold, feats, checks, c.logprobs is not None, alternatives,
                        short)
    if cross_check is not None:
        decision.reason += f" ({cross_check.summary})"
        decision.cross_check = cross_check
    return decision


def _fewer_alternatives(c: Completion, calibration: Calibration | None) -> str | None:
    """Why a calibration cannot judge this draft's alternatives, or None: it was fitted on drafts with
    K alternatives per token, and the backend sent fewer for this one (a step whose alternatives it
    cut, or collapsed into one key). Every step is read over the fewest, so the margin and entropy
    would mean something else, and with fewer than 2 they are missing: read as 0, which the shipped
    calibrators take for certainty on code, a wrong draft had passed."""
    fitted = calibration.meta.get("top_logprobs") if calibration is not None else None
    top = c.logprobs.top_logprobs if c.logprobs is not None else None
    if not isinstance(fitted, int) or fitted < 2 or top is None or top.ndim != 2 or len(top) == 0:
        return None
    assert calibration is not None
    if not calibration.reads_alternatives:
        return None
    if top.shape[1] >= fitted:
        return None
    return (f": its calibration was fitted on drafts with {fitted} alternatives per token, and the backend sent "
            f"{top.shape[1]} for at least one token of this draft")


def _verdict(rule: AcceptRule, score_name: str, confidence: float | None, threshold: float | None,
             feats: LogprobFeatures | None, checks: list[Check], has_logprobs: bool,
             alternatives: bool = True, short: str | None = None) -> Decision:
    if threshold is None:
        return Decision(True, "accepted: all checks passed (no confidence threshold set)", confidence,
                        checks, feats)
    if not has_logprobs:
        return Decision(True, "accepted on checks alone: this draft came without logprobs", None, checks, feats)
    if confidence is None:
        # logprobs came, but not what the score needs: the draft escalates rather than pass unjudged
        if feats is None:
            need = ": the draft has no tokens to judge"
        elif short:
            need = short
        elif rule.confidence == "mean_margin_prob" and not alternatives:
            need = (": a margin needs at least 2 alternatives per token (top_logprobs >= 2, from a backend that "
                    "returns them)")
        else:  # the logprobs are there, but one of those it reads is not a number
            need = ": a logprob the backend sent is missing (null) or not a number"
        return Decision(False, f"rejected: {score_name} cannot be computed for this draft{need}", None, checks, feats)
    if math.isinf(threshold):
        target = f"quality_target {rule.quality_target:g}" if rule.quality_target is not None else "its threshold"
        return Decision(False, f"rejected: {score_name} {confidence:.3f}, and its calibration keeps no draft at "
                        f"{target} (every draft escalates: choose a lower target, or refit on more data)",
                        confidence, checks, feats)
    accepted = confidence >= threshold
    shown, limit = _compared(confidence, threshold, accepted)
    if accepted:
        return Decision(True, f"accepted: {score_name} {shown} >= {limit}", confidence, checks, feats)
    return Decision(False, f"rejected: {score_name} {shown} < {limit}", confidence, checks, feats)


def _compared(confidence: float, threshold: float, accepted: bool) -> tuple[str, str]:
    """The confidence (3 decimals) and the threshold (4 significant digits) as a reason prints them,
    with more digits where fewer would contradict the verdict ("0.900 < 0.9", "0.886 >= 0.8865")."""
    for extra in range(0, 15):
        shown, limit = f"{confidence:.{3 + extra}f}", f"{threshold:.{4 + extra}g}"
        if (float(shown) >= float(limit)) == accepted:
            return shown, limit
    return repr(confidence), repr(threshold)
