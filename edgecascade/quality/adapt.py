"""Adapting a calibration to new traffic from a few labelled answers.

A calibrator learned on one mix of questions ranks drafts on another mix about as well, but its
probabilities carry the base rate it learned from. On the GSM8K items traced after the shipped
calibration was fitted, the 0.5B was right on 16.9% of them against 25.5% of the items it learned
from; the drafts the calibrated rule kept there looked 63% likely to be right, and 48.5% were, so
the rule missed its quality target (see the README's *Benchmarks*). Refitting a calibrator needs
hundreds of labels (``edgecascade calibrate --traces`` without ``--adapt``); moving each
calibrator's intercept, the one number that carries the base rate, needs tens. What the calibrator
learned about which drafts are better than others (its weights) is kept.

The thresholds are kept too, as probabilities: a draft is still kept when it is at least that
likely to be right, now by probabilities that match the new traffic. They were chosen for a quality
target on the benchmark's mix, so on traffic whose large-model accuracy differs they are an
approximation; choosing them anew needs both tiers' answers (``bench run`` and ``bench report`` on
your own dataset). Choosing them again from the calibration's threshold table for the new base rate,
as adapting to unlabelled drafts does (:mod:`.prior_shift`), was tried: on GSM8K's items
1,100-1,318, where the 1.5B was also right more often than on the items the table holds, it met the
target in 28-34% of random draws of 30-100 labels, against 43-51% with the thresholds kept
(``scripts/study_adapt.py --rechoose-thresholds``; a further look at those items), so they are kept.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .calibration import Calibration, sigmoid

#: a calibrator is adapted only with this many labelled drafts of its own (each intercept's
#: standard error is then about 0.5 logits at a 25% base rate): fewer, and it is left as it was
MIN_ADAPT_ITEMS = 20
#: a shift whose standard error is larger than this (logits) is not applied: the labels barely
#: inform it (drafts the calibrator is already all but certain about, right or wrong)
MAX_SHIFT_SE = 2.0


@dataclass(frozen=True)
class Shift:
    """What adapting did to one calibrator."""

    calibrator: str  # "calibrated" (the pooled one) or "calibrated[math]"
    items: int  # labelled drafts it judges
    right: int
    shift: float | None  # logits added to its intercept; None: left as it was
    se: float | None  # the shift's standard error (from the Fisher information)
    note: str  # why it was left as it was, or ""


def intercept_shift(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The maximum-likelihood ``b`` for P = sigmoid(logit + b) on labelled drafts, and its standard
    error. At the maximum the mean adapted probability equals the share of drafts that were right;
    that sum grows with ``b``, so bisection finds it. Needs drafts of both kinds (with one kind the
    maximum is at infinity)."""
    y = float(np.sum(labels))
    if y <= 0 or y >= len(labels):
        raise ValueError("an intercept shift needs both right and wrong drafts")
    if not np.all(np.isfinite(logits)):
        raise ValueError("a logit is not a finite number")

    def excess(b: float) -> float:
        return float(sigmoid(logits + b).sum()) - y

    lo, hi = -1.0, 1.0
    while excess(lo) > 0:
        lo *= 2
    while excess(hi) < 0:
        hi *= 2
    b = root_of_increasing(excess, lo, hi, 1e-10)
    p = sigmoid(logits + b)
    info = float(np.sum(p * (1 - p)))
    return b, (1 / math.sqrt(info) if info > 0 else math.inf)


def root_of_increasing(f: Callable[[float], float], lo: float, hi: float, tol: float) -> float:
    """Where an increasing ``f`` crosses zero in [lo, hi] (f(lo) <= 0 <= f(hi)), by bisection."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return (lo + hi) / 2


def judged_by(cal: Calibration, domains: Sequence[str | None]) -> list[tuple[str | None, Calibration, list[int]]]:
    """Each calibrator of ``cal`` (with the domain key it answers for, None: the pooled one) and the
    rows it judges, each row by the calibrator its domain picks, as deployed."""
    picked = [cal.for_domain(d) for d in domains]
    return [(key, judge, [i for i, j in enumerate(picked) if j is judge])
            for key, judge in ((None, cal), *cal.domains.items())]


def adapt_calibration(cal: Calibration, rows: Sequence[dict[str, float]], labels: Sequence[bool],
                      domains: Sequence[str | None], *, min_items: int = MIN_ADAPT_ITEMS,
                      meta: dict[str, Any] | None = None) -> tuple[Calibration, list[Shift]]:
    """A copy of ``cal`` with each calibrator's intercept moved so that its probabilities match the
    labelled drafts it judges (each row by the calibrator its ``domains`` entry picks, as deployed).
    A calibrator with fewer than ``min_items`` of them, or with only one kind, is left as it was
    and the returned :class:`Shift` says why. ``meta`` is recorded as the last entry of the list
    ``meta["adapted"]`` (after those of any earlier adaptation)."""
    if not (len(rows) == len(labels) == len(domains)):
        raise ValueError("one label and one domain per row")
    out = copy.deepcopy(cal)
    y = np.asarray(labels, dtype=bool)
    shifts = []
    for key, judge, idx in judged_by(cal, domains):
        n, right = len(idx), int(y[idx].sum())
        note = ""
        if n < min_items:
            note = f"{n} labelled drafts, fewer than {min_items}: left as it was"
        elif right in (0, n):
            kind = "right" if right else "wrong"
            note = f"all {n} labelled drafts are {kind}: a shift needs both kinds; left as it was"
        if note:
            shifts.append(Shift(judge.label, n, right, None, None, note))
            continue
        b, se = intercept_shift(judge.logits([rows[i] for i in idx]), y[idx])
        if not se <= MAX_SHIFT_SE:
            shifts.append(Shift(judge.label, n, right, None, None,
                                f"the labels barely inform a shift (standard error {se:.3g} logits, over "
                                f"{MAX_SHIFT_SE:g}): left as it was"))
            continue
        target = out if key is None else out.domains[key]
        target.intercept += b
        shifts.append(Shift(judge.label, n, right, b, se, ""))
    # each adaptation is recorded after any earlier one: an adapted calibration may be adapted again
    done = {**(meta or {}), "date": _dt.date.today().isoformat(), "calibrators": [asdict(s) for s in shifts]}
    out.meta = {**out.meta, "adapted": [*out.meta.get("adapted", []), done]}
    return out, shifts


@dataclass(frozen=True)
class AdaptCheck:
    """Out-of-fold evidence for one calibrator: each labelled draft scored before adapting and by an
    adaptation fitted without it, so the gain is not measured on the labels that made it."""

    calibrator: str
    labels: np.ndarray
    before: np.ndarray
    after: np.ndarray
    thresholds: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """Mean P against the share right, log loss, and at each of the calibrator's thresholds the
        share kept and how many of those were right (NaN: none kept), before and after adapting."""
        def at(p: np.ndarray, t: float) -> tuple[float, float]:
            kept = p >= t
            return float(kept.mean()), float(self.labels[kept].mean()) if kept.any() else float("nan")

        out: dict[str, Any] = {
            "mean_p_before": float(self.before.mean()), "mean_p_after": float(self.after.mean()),
            "right_share": float(self.labels.mean()),
            "log_loss_before": log_loss(self.before, self.labels), "log_loss_after": log_loss(self.after, self.labels),
            "at_thresholds": {}}
        for key, t in self.thresholds.items():
            (kb, ab), (ka, aa) = at(self.before, t), at(self.after, t)
            out["at_thresholds"][key] = {"before_kept": kb, "before_accuracy": ab, "after_kept": ka,
                                         "after_accuracy": aa}
        return out


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(y, np.log(q), np.log(1 - q))))


def out_of_fold_check(cal: Calibration, rows: Sequence[dict[str, float]], labels: Sequence[bool],
                domains: Sequence[str | None], *, seed: int, folds: int = 5,
                min_items: int = MIN_ADAPT_ITEMS) -> list[AdaptCheck]:
    """Per calibrator that judges any labelled draft: every draft's probability before adapting and
    after an adaptation fitted on the other folds (seeded). A fold fits on (folds - 1) / folds of
    each calibrator's drafts, right and wrong alike (the folds are dealt within each calibrator's
    drafts and each label), so its minimum is scaled by as much: a calibrator the whole file adapts
    is adapted in the folds too (unless one kind is too rare to be in every fold's part), and the
    check shows what adapting changes. Folds drawn over all drafts at once left a calibrator with
    20 to 25 labels beside a bigger one under the scaled minimum in some folds, and its drafts there
    unadapted."""
    n = len(rows)
    y = np.asarray(labels, dtype=bool)
    before = cal.predict_each(rows, domains)
    after = before.copy()
    k = max(2, min(folds, n))
    rng = np.random.default_rng(seed)
    fold = np.zeros(n, dtype=int)
    start = 0  # where the next stratum's dealing starts, so the folds stay within one draft of each other
    for _, _, idx in judged_by(cal, domains):
        for kind in (True, False):
            stratum = rng.permutation(np.array([i for i in idx if y[i] == kind], dtype=int))
            fold[stratum] = (start + np.arange(len(stratum))) % k
            start = (start + len(stratum)) % k
    for f in range(k):
        test, train = np.flatnonzero(fold == f).tolist(), np.flatnonzero(fold != f).tolist()
        if not len(test):
            continue
        adapted, _ = adapt_calibration(cal, [rows[i] for i in train], y[train].tolist(),
                                       [domains[i] for i in train], min_items=math.ceil(min_items * (k - 1) / k))
        after[test] = adapted.predict_each([rows[i] for i in test], [domains[i] for i in test])
    # a calibrator the whole file leaves as it was shows no change: the scaled minimum can let a fold
    # adapt one with just under the whole file's minimum (19 labels: folds of 15 or 16 against 16)
    _, whole = adapt_calibration(cal, rows, labels, domains, min_items=min_items)
    unadapted = {s.calibrator for s in whole if s.shift is None}
    for _, judge, idx in judged_by(cal, domains):
        if judge.label in unadapted:
            after[idx] = before[idx]
    return [AdaptCheck(judge.label, y[idx], before[idx], after[idx], dict(judge.thresholds))
            for _, judge, idx in judged_by(cal, domains) if idx]
