"""Offline policy evaluation: any acceptance policy judged from stored traces, no generation.

A two-tier policy sees, for every item, the small model's draft and decides to keep it or to
escalate; escalating costs the small call *and* the large one (both latencies, both bills), exactly
as the engine counts it. Because every item was traced on both tiers, every policy is evaluated on
the same answers, so differences between policies are differences of policy, not of luck.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..quality.thresholds import threshold_for_target
from .traces import Trace


@dataclass(frozen=True)
class PolicyResult:
    name: str
    small_share: float  # share of queries answered by the small model
    accuracy: float
    cost: float  # dollars per query
    latency_s: float  # seconds per query
    threshold: float | None = None

    def to_dict(self) -> dict[str, float | str | bool | None]:
        """As JSON holds it. A threshold that keeps no draft (+inf) has no JSON number: it is written
        as null, as a policy without a threshold is, with ``keeps_none`` to tell the two apart."""
        d: dict[str, float | str | bool | None] = dict(asdict(self))
        if self.threshold is not None and math.isinf(self.threshold):
            d["threshold"], d["keeps_none"] = None, True
        return d


def evaluate(name: str, pairs: Sequence[Sequence[Trace]], keep: np.ndarray,
             threshold: float | None = None, extra: tuple[np.ndarray, np.ndarray] | None = None) -> PolicyResult:
    """Outcome of keeping the small draft where ``keep`` is true (pairs: [small, large] per item).
    ``extra``: per item, the seconds and dollars the policy's judge spends besides the draft (a
    cross-check's generation), paid whether the draft is kept or not."""
    n = len(pairs)
    if n == 0:
        return PolicyResult(name, float("nan"), float("nan"), float("nan"), float("nan"), threshold)
    small_ok = np.array([p[0].correct for p in pairs])
    large_ok = np.array([p[-1].correct for p in pairs])
    small_cost = np.array([p[0].cost for p in pairs])
    large_cost = np.array([p[-1].cost for p in pairs])
    small_lat = np.array([p[0].latency_s for p in pairs])
    large_lat = np.array([p[-1].latency_s for p in pairs])
    keep = np.asarray(keep, dtype=bool)
    correct = np.where(keep, small_ok, large_ok)
    if extra is not None:
        small_lat, small_cost = small_lat + extra[0], small_cost + extra[1]
    cost = small_cost + np.where(keep, 0.0, large_cost)
    lat = small_lat + np.where(keep, 0.0, large_lat)
    return PolicyResult(name, float(keep.mean()), float(correct.mean()), float(cost.mean()), float(lat.mean()),
                        threshold)


def always_large(pairs: Sequence[Sequence[Trace]]) -> PolicyResult:
    """The baseline: the large model answers everything and the small one is never called."""
    n = len(pairs)
    return PolicyResult("always large", 0.0, float(np.mean([p[-1].correct for p in pairs])) if n else float("nan"),
                        float(np.mean([p[-1].cost for p in pairs])) if n else float("nan"),
                        float(np.mean([p[-1].latency_s for p in pairs])) if n else float("nan"))


def always_small(pairs: Sequence[Sequence[Trace]]) -> PolicyResult:
    return evaluate("always small", pairs, np.ones(len(pairs), dtype=bool))


def oracle(pairs: Sequence[Sequence[Trace]]) -> PolicyResult:
    """Keep the small draft exactly when it is right: the upper bound of any policy."""
    return evaluate("oracle", pairs, np.array([p[0].correct for p in pairs], dtype=bool))


def oracle_share_at_target(pairs: Sequence[Sequence[Trace]], target: float) -> float:
    """The most drafts any policy could keep while meeting ``target`` x the large model's accuracy.

    With perfect knowledge: keep every draft that costs nothing (the draft is right, or the large
    model is wrong too), then as many of the remaining ones (draft wrong, large right) as the
    accuracy budget allows, each costing 1/n. This, not the plain oracle's share, bounds a policy
    that is allowed to lose (1 - target) of the large model's accuracy.
    """
    n = len(pairs)
    if n == 0:
        return float("nan")
    costly = sum(1 for p in pairs if not p[0].correct and p[-1].correct)
    free = n - costly
    best_accuracy = sum(1 for p in pairs if p[0].correct or p[-1].correct) / n
    goal = target * always_large(pairs).accuracy
    if best_accuracy < goal - 1e-12:
        return float("nan")  # no policy can reach this target
    k = min(costly, max(0, int(math.floor((best_accuracy - goal) * n + 1e-9))))
    return (free + k) / n


def random_routing(pairs: Sequence[Sequence[Trace]], share: float) -> PolicyResult:
    """Keep a random ``share`` of drafts: reported in expectation (exact, no sampling noise)."""
    s, lg = always_small(pairs), always_large(pairs)
    small_lat = float(np.mean([p[0].latency_s for p in pairs]))
    small_cost = float(np.mean([p[0].cost for p in pairs]))
    return PolicyResult("random", share, share * s.accuracy + (1 - share) * lg.accuracy,
                        small_cost + (1 - share) * lg.cost, small_lat + (1 - share) * lg.latency_s)


#: the safety margin a chosen threshold keeps, in standard errors of the accuracy change (see
#: :func:`choose_threshold`): a one-sided 95% bound. ``bench report --margin`` changes it, ``bench
#: reliability`` measures it. It was 1 until `bench reliability` showed, on random splits of the
#: calibration halves alone, that a 1-SE threshold met the target on GSM8K in 61% of splits
#: (1.645: 81%), for 23% of drafts kept against 18%. Calibrators' thresholds are chosen on
#: out-of-fold scores (see ``report.out_of_fold_scores``), with which 1.645 SE met it in 87%.
DEFAULT_MARGIN_Z = 1.645


def choose_threshold(pairs: Sequence[Sequence[Trace]], scores: np.ndarray, target: float,
                     margin_z: float = DEFAULT_MARGIN_Z) -> float:
    """The lowest threshold (most drafts kept) that meets ``target`` x the large model's accuracy
    with a safety margin, chosen on the traced pairs given (the calibration split, never the
    held-out one): :func:`..quality.thresholds.threshold_for_target` on their outcomes."""
    small = np.array([p[0].correct for p in pairs], dtype=np.float64)
    large = np.array([p[-1].correct for p in pairs], dtype=np.float64)
    return threshold_for_target(np.asarray(scores), small, large, target, margin_z)


def curve(pairs: Sequence[Sequence[Trace]], scores: np.ndarray,
          extra: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[float, float, float]]:
    """(small share, accuracy, latency) for every threshold: the policy's cost-quality curve
    (``extra``: as in :func:`evaluate`)."""
    out = []
    for t in np.concatenate([np.unique(scores), [math.inf]]):
        r = evaluate("", pairs, np.asarray(scores) >= t, extra=extra)
        out.append((r.small_share, r.accuracy, r.latency_s))
    return out


# --------------------------------------------------------------------------- baseline scores


def mean_logprob_score(t: Trace) -> float:
    return float(np.mean(t.logprobs)) if t.logprobs else -math.inf


def cascadeflow_score(t: Trace, *, floor: bool = False) -> float:
    """A cascadeflow-style heuristic confidence (its documented recipe, as we read it):
    0.5 x geometric-mean token probability + 0.2 x harmonic mean of the top 80% token probabilities
    + 0.15 x the minimum token probability + 0.15 x (1 - a pseudo-entropy of the chosen tokens,
    mean of -p log p normalised by its maximum 1/e). The top 80% is ceil(0.8 n) tokens, as every
    reported number used; cascadeflow's own code takes floor(0.8 n), at least one (``floor``), which
    differs only where 0.8 n is not whole, by one token (``scripts/cascadeflow_rounding.py`` measures
    what it changes: at most 0.0003 of AUROC on the committed traces)."""
    if not t.logprobs:
        return 0.0
    lp = np.asarray(t.logprobs, dtype=np.float64)
    p = np.exp(lp)
    geo = float(np.exp(lp.mean()))
    top = np.sort(p)[::-1][: max(1, int(0.8 * len(p)) if floor else math.ceil(0.8 * len(p)))]
    harmonic = float(len(top) / np.sum(1.0 / np.maximum(top, 1e-12)))
    # -p log p, taken as 0 where p = 0 (a -inf logprob): its limit, where numpy would give NaN
    pseudo_entropy = float(np.mean(-p * np.where(p > 0, lp, 0.0))) * math.e
    return 0.5 * geo + 0.2 * harmonic + 0.15 * float(p.min()) + 0.15 * (1.0 - pseudo_entropy)

