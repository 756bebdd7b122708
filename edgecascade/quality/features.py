"""Features of a draft computed from its per-token log-probabilities.

A handful of vectorised numpy reductions over arrays the provider already holds, so scoring a
draft costs microseconds. Whole-answer averages are a weak signal on their own (see issue 3);
these are the first-version features the acceptance rule and, later, the calibrator read.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..types import TokenLogprobs


@dataclass(frozen=True, slots=True)
class LogprobFeatures:
    n_tokens: int
    mean_logprob: float
    min_logprob: float
    p10_logprob: float  # 10th percentile: the weak tail, less noisy than the single minimum
    mean_margin: float  # mean of (top-1 minus top-2 logprob): how decisive each step was
    mean_entropy: float  # mean entropy (nats) of the renormalised top-k distribution

    def to_dict(self) -> dict[str, float | None]:
        """JSON-safe: a feature that could not be computed (NaN: fewer than 2 alternatives) is None."""
        return {k: (v if math.isfinite(v) else None) for k, v in asdict(self).items()}

    def score(self, name: str) -> float:
        """A confidence score in [0, 1] by name (the names an AcceptRule may use)."""
        if name == "geo_mean_prob":  # geometric-mean token probability
            return math.exp(self.mean_logprob)
        if name == "p10_prob":
            return math.exp(self.p10_logprob)
        if name == "min_prob":
            return math.exp(self.min_logprob)
        if name == "mean_margin_prob":  # 1 - exp(-margin): 0 for a coin flip, -> 1 when decisive
            return 1.0 - math.exp(-self.mean_margin)
        raise KeyError(f"unknown confidence score {name!r}")


def percentile(x: np.ndarray, q: float) -> float:
    """numpy's default (linear) percentile through one partial sort: np.percentile's generality
    costs ~20x more on the short arrays of a single answer, and this runs on every draft."""
    n = x.shape[0]
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    part = np.partition(x, (lo, hi)) if n > 2 else np.sort(x)
    return float(part[lo] + (part[hi] - part[lo]) * (pos - lo))


def logprob_features(lp: TokenLogprobs) -> LogprobFeatures | None:
    """Features of one draft, or None when it has no tokens to judge."""
    x = lp.logprobs
    n = x.shape[0]
    if n == 0:
        return None
    top = lp.top_logprobs
    if top.ndim == 2 and top.shape[1] >= 2:
        margin = float((top[:, 0] - top[:, 1]).sum()) / n
        p = np.exp(top)
        p /= p.sum(axis=1, keepdims=True)
        entropy = -float((p * np.log(np.maximum(p, 1e-30))).sum()) / n
    else:
        margin, entropy = float("nan"), float("nan")
    return LogprobFeatures(
        n_tokens=n,
        mean_logprob=float(x.sum()) / n,
        min_logprob=float(x.min()),
        # a missing (null) logprob leaves the tail unknown, as it leaves the mean and the minimum: a
        # partial sort moves NaN to the end, and the tail had been read from the known values alone
        p10_logprob=percentile(x, 0.10) if not np.isnan(x).any() else float("nan"),
        mean_margin=margin,
        mean_entropy=entropy,
    )
