"""Choosing a confidence threshold for a quality target.

One rule serves both places a threshold is chosen: `bench report` (on the calibration items'
out-of-fold scores) and adapting a calibration to a user's traffic (the same scores, each item
weighted by how common its kind of draft is there: :mod:`.prior_shift`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def threshold_for_target(scores: np.ndarray, small_right: np.ndarray, large_right: np.ndarray, target: float,
                         margin_z: float, weights: np.ndarray | None = None) -> float:
    """The lowest threshold (most drafts kept) that meets ``target`` x the large model's accuracy
    with a safety margin, on the items given (calibration items, never held-out ones).

    Keeping a draft changes a query's correctness by +1 (draft right, large wrong), -1 (draft
    wrong, large right) or 0. A threshold qualifies only if the mean change minus ``margin_z``
    standard errors still stays within the allowed loss, (1 - target) x the large model's accuracy:
    without the margin a threshold picked at the edge on one half meets the target on the other
    half only about half the time (the lowest qualifying threshold is where the noise happened to
    be kind; `bench reliability` measures it). The scores must be ones the data did not shape: a
    calibrator's scores of its own fitting data are too good, so calibrators pass out-of-fold
    scores. When no threshold qualifies, none is kept (+inf).

    ``weights`` (one per item, positive) make the items stand for other traffic: the means are
    weighted, and the standard error uses the effective sample size (sum w)^2 / sum w^2 (Kish's; an
    approximation when, as here, the weights depend on the items' outcomes), which is n when the
    weights are equal (then the result is the unweighted one). Fewer than 2 items give no standard
    error, so no threshold.
    """
    n = len(scores)
    if n < 2:
        return math.inf
    s = np.asarray(scores, dtype=np.float64)
    delta = np.asarray(small_right, dtype=np.float64) - np.asarray(large_right, dtype=np.float64)
    large = np.asarray(large_right, dtype=np.float64)
    if weights is None:
        allowed = -(1.0 - target) * float(large.mean())
        # ascending: the first that qualifies keeps the most drafts; a nan score keeps no draft and is no
        # threshold (nan sorts last, and `s >= nan` keeps none, which would qualify as a change of nothing)
        for t in np.unique(s[np.isfinite(s)]):
            d = np.where(s >= t, delta, 0.0)
            if d.mean() - margin_z * d.std(ddof=1) / math.sqrt(n) >= allowed - 1e-12:
                return float(t)
        return math.inf
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != s.shape or not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("one positive, finite weight per item")
    w = w / w.sum()
    n_eff = 1.0 / float(np.sum(w * w))
    allowed = -(1.0 - target) * float(w @ large)
    for t in np.unique(s[np.isfinite(s)]):
        d = np.where(s >= t, delta, 0.0)
        m = float(w @ d)
        var = float(w @ (d - m) ** 2) * n_eff / (n_eff - 1) if n_eff > 1 else 0.0
        if m - margin_z * math.sqrt(var / n_eff) >= allowed - 1e-12:
            return float(t)
    return math.inf


def label_shift_weights(small_right: Sequence[bool], source_prior: float, prior: float) -> np.ndarray:
    """Per calibration item, how much more (or less) common its kind of draft is at base rate
    ``prior`` than at ``source_prior``: prior / source for a right draft, (1 - prior) / (1 - source)
    for a wrong one. Under label shift (right and wrong drafts keep their looks, only their mix
    changes) these weights make the calibration items stand for the new traffic."""
    right = np.asarray(small_right, dtype=bool)
    return np.where(right, prior / source_prior, (1 - prior) / (1 - source_prior))
