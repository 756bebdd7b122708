"""Adapting a calibration to new traffic from its drafts alone: no labels.

A calibration's thresholds keep a quality promise on traffic like the traffic they were chosen on.
When the questions get harder for the small model, fewer of its drafts are right, the same scores
mean less, and the promise breaks: on GSM8K's items 1,100-1,318 the 0.5B was right on 16.9%
against 25.5% of the items the shipped calibration learned from, and its threshold missed the
target. Labels fix that (:mod:`.adapt`), but labels are what a deployment rarely has. Its drafts it
always has.

If what makes a draft look right is the same on the new traffic and only how often drafts are
right has changed (label shift: p(features | right) and p(features | wrong) unchanged), then the
new base rate can be estimated from the calibrated probabilities of unlabelled drafts alone, by
maximum likelihood (Saerens, Latinne and Decaestecker, Neural Computation 2002: the EM they give
converges to the maximum found here directly). With it:

* the calibrator's probabilities are moved to the new base rate (its intercept shifts by the
  change in log-odds), so that, under the assumption, the confidence a decision reports fits the
  new traffic;
* each quality-target threshold is chosen again, by the same rule and margin as before, on the
  same calibration items, each weighted by how common its kind of draft (right or wrong) is on the
  new traffic. That is what the target means there: the large model's accuracy, and so what 95% of
  it asks, moves with the mix too.

When the assumption fails (the new traffic's drafts look different in kind, not only in how often
they are right) the estimate is biased; the study ``scripts/study_prior_shift.py`` measures both
cases. The table each threshold was chosen on travels in the calibration file
(:class:`.calibration.ThresholdTable`), so no traces are needed to adapt.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .adapt import judged_by, root_of_increasing
from .calibration import Calibration, logit, sigmoid

#: a calibrator is adapted only with this many unlabelled drafts of its own; fewer, and it is left
#: as it was. Even so the estimate is rough: with the shipped math calibrator its standard error was
#: 0.047 on GSM8K's 219 later drafts (0.042 with the cross-check), so about 0.07 on 100 (the output
#: prints it)
MIN_UNLABELLED_DRAFTS = 100
#: the base rate is estimated within [EDGE, 1 - EDGE]: a maximum at the boundary means the drafts
#: look all wrong (or all right) to the calibrator
EDGE = 1e-6


@dataclass(frozen=True)
class PriorEstimate:
    """The share of drafts that are right on some traffic, estimated from their probabilities."""

    prior: float
    se: float  # from the Fisher information of the mixture likelihood
    source_prior: float  # the share right on the items the probabilities were calibrated on
    drafts: int

    @property
    def shift(self) -> float:
        """The change in log-odds: what moves each probability to the estimated base rate."""
        return logit(self.prior) - logit(self.source_prior)


def estimate_prior(logits: np.ndarray, source_prior: float) -> PriorEstimate:
    """The maximum-likelihood base rate of drafts whose calibrated log-odds are ``logits``, for a
    calibrator whose probabilities were right for a base rate of ``source_prior``.

    Under label shift each draft's likelihood is q * a + (1 - q) * b, with a = p / source_prior and
    b = (1 - p) / (1 - source_prior) (p its calibrated probability). The log-likelihood is concave
    in q, so its maximum is where the derivative, a decreasing function, crosses zero: found by
    bisection, or at the edge of [EDGE, 1 - EDGE] when it does not cross."""
    if not 0 < source_prior < 1:
        raise ValueError("the source base rate must be strictly between 0 and 1")
    lg = np.asarray(logits, dtype=np.float64)
    if lg.size == 0:
        raise ValueError("no drafts to estimate a base rate from")
    if not np.all(np.isfinite(lg)):
        raise ValueError("a logit is not a finite number")
    p = sigmoid(lg)
    a, b = p / source_prior, (1 - p) / (1 - source_prior)

    def slope(q: float) -> float:
        return float(np.sum((a - b) / (q * a + (1 - q) * b)))

    lo, hi = EDGE, 1 - EDGE
    if np.all(np.abs(a - b) <= 1e-9 * (a + b)):  # every draft at the source rate: a flat likelihood
        return PriorEstimate(source_prior, math.inf, source_prior, int(lg.size))
    if slope(lo) <= 0:
        q = lo
    elif slope(hi) >= 0:
        q = hi
    else:
        q = root_of_increasing(lambda x: -slope(x), lo, hi, 1e-12)
    info = float(np.sum(((a - b) / (q * a + (1 - q) * b)) ** 2))
    return PriorEstimate(q, 1 / math.sqrt(info) if info > 0 else math.inf, source_prior, int(lg.size))


@dataclass(frozen=True)
class PriorShift:
    """What adapting to unlabelled drafts did to one calibrator."""

    calibrator: str  # "calibrated" (the pooled one) or "calibrated[math]"
    drafts: int  # unlabelled drafts it judges
    source_prior: float | None  # the share right on the items its thresholds were chosen on
    prior: float | None  # estimated on the drafts; None: not adapted (the note says why)
    prior_se: float | None  # the estimate's standard error (a share, like prior)
    shift: float | None  # log-odds added to the intercept as fitted
    #: per quality target: the threshold before and after, and the share of these drafts each keeps
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""
    source_items: int = 0  # how many items the learned base rate was counted on
    #: the calibrator's mean P(correct) on these drafts as it learned them (no shift): the share right
    #: if the traffic differs only in which drafts come (covariate shift: a draft that looks like one
    #: the calibration learned from is right as often), where ``prior`` assumes label shift. Under
    #: label shift it lies between ``prior`` and ``source_prior``; None: not estimated
    mean_p: float | None = None

    @property
    def differs(self) -> bool | None:
        """Whether the estimate is 2 standard errors or more from the learned base rate, counting the
        uncertainty of both (the learned rate's is binomial over its items); None: not estimated."""
        if self.prior is None or self.prior_se is None or self.source_prior is None or not self.source_items:
            return None
        p = self.source_prior
        return abs(self.prior - p) >= 2 * math.hypot(self.prior_se, math.sqrt(p * (1 - p) / self.source_items))


def adapt_to_unlabelled(cal: Calibration, rows: Sequence[dict[str, float]], domains: Sequence[str | None], *,
                        min_drafts: int = MIN_UNLABELLED_DRAFTS,
                        meta: dict[str, Any] | None = None) -> tuple[Calibration, list[PriorShift]]:
    """A copy of ``cal`` moved to the base rate of the unlabelled drafts ``rows`` (each judged by the
    calibrator its ``domains`` entry picks, as deployed): each calibrator with a threshold table and
    at least ``min_drafts`` of them gets the intercept it was fitted with plus the estimated shift
    (an earlier adaptation's shift is replaced, not added to) and its thresholds chosen again on its
    table, reweighted to the estimated base rate. The others are left as they were, and the
    returned :class:`PriorShift` says why. ``meta`` is recorded in ``meta["adapted"]``."""
    if len(rows) != len(domains):
        raise ValueError("one domain per row")
    out = copy.deepcopy(cal)
    shifts = []
    for key, judge, idx in judged_by(cal, domains):
        n, table = len(idx), judge.threshold_table
        if not judge.thresholds:
            note = ("it has no quality_target thresholds to choose again (a calibration fitted by `calibrate "
                    "--traces`; `--adapt` with labels moves its probabilities)")
        elif table is None:
            note = ("its thresholds were saved without the table they were chosen on: refit it with "
                    "`edgecascade bench report --save-calibration`")
        elif not table.scores or not 0 < table.prior < 1:
            note = ("its threshold table is empty or holds drafts of one kind only: refit it with "
                    "`edgecascade bench report --save-calibration` on data with right and wrong drafts")
        elif n < min_drafts:
            note = f"{n} drafts: adapting without labels needs at least {min_drafts} answers per calibrator"
        else:
            note = ""
        if note:
            shifts.append(PriorShift(judge.label, n, None if table is None or not table.scores else table.prior,
                                     None, None, None, note=note))
            continue
        assert table is not None  # every case without one has a note
        # the drafts' log-odds as the calibrator had them when its table was made
        current = judge.logits([rows[i] for i in idx])
        logits = current - (judge.intercept - table.intercept)
        # the probabilities stand for the calibrator's own mean on the table's items; the shift found
        # against it moves the table's base rate (what its thresholds are chosen again for) by as much
        fitted = table.fitted_prior if table.fitted_prior is not None else table.prior
        est = estimate_prior(logits, fitted)
        if not 2 * EDGE < est.prior < 1 - 2 * EDGE:
            # at the edge the traffic is either that easy (or hard) or unlike anything the calibrator
            # learned from (drafts cut off far earlier than its data looked all right to it); thresholds
            # chosen for a base rate of 1 would keep every draft, so nothing is moved without labels
            look = "wrong" if est.prior <= 2 * EDGE else "right"
            shifts.append(PriorShift(judge.label, n, table.prior, None, None, None, note=(
                f"to the calibrator these drafts look all {look} (the estimate sits at a base rate of "
                f"{round(est.prior)}): either your traffic is that {'hard' if look == 'wrong' else 'easy'}, or "
                "its drafts are unlike those the calibration learned from; label a few tens to tell (--adapt "
                "without --unlabelled)")))
            continue
        target = out if key is None else out.domains[key]
        target.intercept = table.intercept + est.shift
        target.thresholds = table.thresholds_at(est.shift, judge.thresholds)
        before_p, after_p = sigmoid(current), sigmoid(logits + est.shift)
        done = {k: {"before": before, "after": target.thresholds[k],
                    "kept_before": float(np.mean(before_p >= before)),
                    "kept_after": float(np.mean(after_p >= target.thresholds[k]))}
                for k, before in judge.thresholds.items()}
        # the estimate on the table's scale, its standard error carried by the delta method
        here = table.prior_at(est.shift)
        se = est.se * here * (1 - here) / (est.prior * (1 - est.prior))
        # the unshifted mean, on the table's scale as the estimate is: traffic like the table's items
        # reads as the table's own base rate
        unshifted = table.prior_at(logit(float(np.mean(sigmoid(logits)))) - logit(fitted))
        shifts.append(PriorShift(judge.label, n, table.prior, here, se, est.shift, done,
                                 source_items=len(table.scores), mean_p=unshifted))
    record = {**(meta or {}), "kind": "base rate from unlabelled drafts", "date": _dt.date.today().isoformat(),
              "calibrators": [asdict(s) for s in shifts]}
    out.meta = {**out.meta, "adapted": [*out.meta.get("adapted", []), record]}
    return out, shifts
