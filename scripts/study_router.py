"""Would a router reach the issue's bar where the calibrated rule does not? A clean test, planned.

The shipped rules keep a draft when P(the draft is right) clears a threshold chosen for the quality
target. But the target counts answers, not drafts: a wrong draft costs nothing when the 1.5B would
have been wrong too. `bench report` has carried an experiment since early on, the *router*, the
same logistic regression trained instead on "keeping the draft loses nothing" (the draft is right,
or the large model is wrong too). On GSM8K's fresh items 1,100-1,318 (a row of the README's table,
read there by every report since) it met the target keeping 14.6% of drafts, where the calibrated
rules missed it; no clean test has read it. The nineteen GSM-Symbolic draws (1,784 items) have
never been scored by a router.

Plan, fixed in the commit that adds this script, before any router scored any draw:

- Two routers, each fitted on GSM8K's first 1,100 items alone (the items the shipped math
  calibrators were fitted on), label "draft right, or the 1.5B wrong too", by `fit_calibration`
  (seed 20261125) as `bench report` fits its router: (a) on the default rule's features, (b) on
  them plus the cross-check's (config `calibrated`). Each threshold is chosen as every threshold
  in the report is: `choose_threshold` on the router's out-of-fold scores (`out_of_fold_scores`),
  target 95% of the 1.5B's accuracy, margin 1.645 standard errors.
- Judged on the nineteen draws pooled (`bench/datasets/gsm-symbolic.jsonl` and `-2` to `-19`, 1,784 items), beside
  the shipped rule of the same features (the default calibration, and the cross-check one), with
  the bar as `study_prior_shift.py symbolic` sets it (baselines' thresholds chosen on the same
  1,100 items; random routing; the oracle) and the items drawn again 2,000 times (seed 7). Also
  draw by draw (how many of 19 meet the target and reach their bar), and the AUROC of each score
  for "the draft is right" and for "keeping it loses nothing". GSM8K's fresh items are shown
  beside as a re-read, not a test.
- It would be worth offering as a rule (an opt-in `accept.confidence = "router"`) only if, pooled,
  it meets the target and reaches the bar, and it meets the target on at least as many draws as
  the shipped rule of the same features (16 of 19 default, 14 of 19 cross-check).
- Expected: a toss-up. The router trades ranking right drafts (its AUROC for "right" will be lower)
  for keeping wrong drafts the 1.5B gets wrong too; the 1.5B is wrong on half of these items, so
  there are many such drafts, but the draft alone says little about whether the 1.5B will fail.

    .venv/bin/python scripts/study_router.py
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from study_prior_shift import (
    BASELINES,
    SHIPPED,
    TARGET,
    gsm8k,
    judged,
    resampled_verdicts,
    template,
    whole_datasets,
)

from edgecascade.benchmarks.policies import DEFAULT_MARGIN_Z, choose_threshold, random_routing
from edgecascade.benchmarks.report import (
    _VARIANTS,
    CALIBRATED,
    CALIBRATED_CROSS_CHECK,
    DEFAULT_SEED,
    DraftFeatures,
    max_random_share,
    out_of_fold_scores,
)
from edgecascade.benchmarks.traces import Trace
from edgecascade.quality.calibration import Calibration, auroc, fit_calibration

DRAWS = ["bench/datasets/gsm-symbolic.jsonl", *(f"bench/datasets/gsm-symbolic-{k}.jsonl" for k in range(2, 20))]


@dataclass
class Rules:
    """The router and the shipped rule of the same features, with the baselines, as fitted on GSM8K."""

    router: Calibration
    t_router: float
    shipped: Calibration
    base_t: dict[str, float]

    def keeps(self, pairs: Sequence[Sequence[Trace]], f: DraftFeatures) -> dict[str, np.ndarray]:
        """Which drafts each rule keeps (and the two scores) on ``pairs``."""
        rows = [f(p[0]) for p in pairs]
        doms = [f.domain(p[0]) for p in pairs]
        key = f"{TARGET:g}"
        t_shipped = np.array([self.shipped.for_domain(d).thresholds[key] for d in doms])
        router, shipped = self.router.predict_many(rows), self.shipped.predict_each(rows, doms)
        return {"router": router >= self.t_router, "shipped": shipped >= t_shipped,
                "router score": router, "shipped score": shipped,
                **{n: np.array([s(p[0]) for p in pairs]) >= self.base_t[n] for n, s in BASELINES.items()},
                "oracle": np.array([p[0].correct for p in pairs])}


def harmless(pairs: Sequence[Sequence[Trace]]) -> np.ndarray:
    return np.array([p[0].correct or not p[-1].correct for p in pairs], dtype=bool)


def verdict(keeps: dict[str, np.ndarray], pairs: Sequence[Sequence[Trace]], random_share: float) -> dict[str, str]:
    """Each rule's share, whether it met the target, and whether it reached the issue's bar."""
    small = np.array([p[0].correct for p in pairs])
    large = np.array([p[-1].correct for p in pairs])
    got = {r: judged(keeps[r], small, large) for r in ("router", "shipped", *BASELINES)}
    rand = random_routing(pairs, random_share)
    rand_met = rand.accuracy >= TARGET * float(large.mean()) - 1e-12
    best = max([got[b][0] for b in BASELINES if got[b][1]] + ([random_share] if rand_met else []), default=0.0)
    orc = float(small.mean())
    bar = best + (orc - best) / 2
    out = {"bar": f"{bar:.1%}"}
    for r in ("router", "shipped"):
        share, met = got[r]
        right = int(np.where(keeps[r], small, large).sum())
        need = int(np.ceil(TARGET * large.mean() * len(pairs) - 1e-9))
        gap = f", {(share - best) / (orc - best):.0%} of the gap" if met and orc > best else ""
        out[r] = (f"kept {share:5.1%}, {right - need:+d} answers, "
                  + ("reached" if met and share >= bar - 1e-12 else "not reached") + gap)
        out[r + " met"] = str(met)
        out[r + " reached"] = str(met and share >= bar - 1e-12)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=1100)
    ap.add_argument("--bootstrap", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    for (config, path), variant in zip(SHIPPED, (CALIBRATED, CALIBRATED_CROSS_CHECK), strict=True):
        items, fresh, feats = gsm8k(config, args.first)
        rows = [feats(p[0]) for p in items]
        label = harmless(items).tolist()
        router = fit_calibration(rows, label, model="m", features=_VARIANTS[variant], seed=DEFAULT_SEED,
                                 meta={"label": "draft right, or large model wrong too"})
        oof = out_of_fold_scores(rows, label, None, [None] * len(rows), seed=DEFAULT_SEED, model="m",
                                 features=_VARIANTS[variant], source="GSM8K's first items").pooled
        t_router = choose_threshold(items, np.asarray(oof), TARGET, DEFAULT_MARGIN_Z)
        shipped = Calibration.load(Path(path))
        base_t = {n: choose_threshold(items, np.array([s(p[0]) for p in items]), TARGET, DEFAULT_MARGIN_Z)
                  for n, s in BASELINES.items()}
        random_share = max_random_share(items, TARGET)
        right = np.mean([p[0].correct for p in items])
        print(f"\n{config} features ({len(_VARIANTS[variant])}): router threshold {t_router:.4g} "
              f"(on GSM8K's first {len(items)}: {np.mean(label):.1%} harmless, {right:.1%} right)")

        keeps = Rules(router, t_router, shipped, base_t).keeps

        for what, pairs, f in (("GSM8K's items 1,100-1,318 (a re-read, not a test)", fresh, feats),
                               ("the nineteen draws pooled", *whole_datasets(config, DRAWS))):
            k = keeps(pairs, f)
            small = np.array([p[0].correct for p in pairs])
            print(f"  {what} ({len(pairs)} items; 0.5B right {small.mean():.1%}, "
                  f"harmless {harmless(pairs).mean():.1%}):")
            print("    AUROC, for right / for harmless: " + ", ".join(
                f"{n} {auroc(k[n + ' score'], small):.3f} / {auroc(k[n + ' score'], harmless(pairs)):.3f}"
                for n in ("router", "shipped")))
            v = verdict(k, pairs, random_share)
            print(f"    bar {v['bar']}; router {v['router']}; shipped {v['shipped']}")
        pairs, f = whole_datasets(config, DRAWS)
        small = np.array([p[0].correct for p in pairs])
        large = np.array([p[-1].correct for p in pairs])
        k = keeps(pairs, f)
        for r in ("router", "shipped"):
            print(f"  {r}, resampled:", end="")
            resampled_verdicts({"shipped": k[r], **{n: k[n] for n in (*BASELINES, "oracle")}}, small, large,
                               random_share, pairs, args.bootstrap, args.seed,
                               [template(p[0].item_id) for p in pairs])  # whole templates, as the study draws
        tally = {"router met": 0, "router reached": 0, "shipped met": 0, "shipped reached": 0}
        for draw in DRAWS:
            dp, df = whole_datasets(config, [draw])
            v = verdict(keeps(dp, df), dp, random_share)
            for name in tally:
                tally[name] += v[name] == "True"
            print(f"    {Path(draw).stem:16s} bar {v['bar']:>6s}; router {v['router']}; shipped {v['shipped']}")
        print("  draw by draw: " + ", ".join(f"{k_} {n} of {len(DRAWS)}" for k_, n in tally.items()))


if __name__ == "__main__":
    main()
