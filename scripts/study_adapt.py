"""Does adapting the shipped calibration to a few labelled answers keep its quality promise on shifted traffic?

The shipped calibration (fitted on GSM8K's first 1,100 items) missed its quality target on the
items after them, where the 0.5B was right far less often. This study plays a user whose traffic
is those items: it takes K of them as the user's labelled answers, adapts the calibration to them
(`edgecascade calibrate --adapt`: each calibrator's intercept moved, weights and thresholds kept)
and judges every rule on the remaining items, against 95% of the 1.5B model's accuracy there. It
compares the shipped rule, the adapted one, and the baselines with their thresholds chosen on the
first 1,100 items (as `bench report --fresh-from gsm8k=1100` chooses them). The labelled items are
the first K after item 1,100 (the earliest traffic) and, to show the spread, K drawn at random.

It reads the fresh items (1,100 on), which `bench report --fresh-from gsm8k=1100` judged once: this
is a second look at them, not a clean test.

    .venv/bin/python scripts/study_adapt.py --ks 30 60 100 --draws 100
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgecascade.benchmarks.policies import (
    DEFAULT_MARGIN_Z,
    always_large,
    cascadeflow_score,
    choose_threshold,
    mean_logprob_score,
)
from edgecascade.benchmarks.report import DEFAULT_SEED, DraftFeatures
from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets
from edgecascade.quality.adapt import adapt_calibration
from edgecascade.quality.calibration import Calibration


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=1100, help="the calibration was fitted on GSM8K's first N items")
    ap.add_argument("--ks", type=int, nargs="+", default=[30, 60, 100], help="labelled answers to adapt on")
    ap.add_argument("--draws", type=int, default=100, help="random draws of the K labelled items")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--calibration", default="models/qwen2.5-coder-0.5b.calibration.json")
    ap.add_argument("--rechoose-thresholds", action="store_true",
                    help="an experiment, not what `calibrate --adapt` does: choose the adapted calibration's "
                    "thresholds again for its new base rate, from its threshold tables, as `--unlabelled` does")
    args = ap.parse_args()

    # the items the shipped calibration was fitted on, and the items after them in the dataset's order
    ns = argparse.Namespace(config="default", datasets=["gsm8k"], fresh_from=[("gsm8k", args.first)], traces=None,
                            max_tokens=None, seed=DEFAULT_SEED)
    cascade, _, _ = _bench_cascade("default")
    [data], _ = _traced_datasets(ns, cascade)
    position = {k: i for i, k in enumerate(data.prompts)}
    fitted = data.calibration
    fresh = sorted(data.held_out, key=lambda p: position[p[0].item_id])
    feats = DraftFeatures([data], False)
    cal = Calibration.load(Path(args.calibration))

    # the baselines' thresholds, chosen on the fitted items as a report chooses them
    baselines = {}
    for name, score in (("mean logprob", mean_logprob_score), ("cascadeflow-style", cascadeflow_score)):
        t = choose_threshold(fitted, np.array([score(p[0]) for p in fitted]), 0.95, DEFAULT_MARGIN_Z)
        baselines[name] = (np.array([score(p[0]) for p in fresh]), t)
    rows = [feats(p[0]) for p in fresh]
    domains = [feats.domain(p[0]) for p in fresh]
    shipped = cal.predict_each(rows, domains)
    shipped_t = np.array([cal.for_domain(d).threshold_for(0.95) for d in domains])
    small_ok = np.array([p[0].correct for p in fresh])
    large_ok = np.array([p[-1].correct for p in fresh])

    def outcome(keep: np.ndarray, judged: np.ndarray) -> tuple[float, float, bool]:
        acc = float(np.where(keep[judged], small_ok[judged], large_ok[judged]).mean())
        goal = 0.95 * always_large([fresh[i] for i in judged]).accuracy
        return float(keep[judged].mean()), acc, acc >= goal - 1e-12

    def rules(labelled: np.ndarray) -> dict[str, np.ndarray]:
        adapted, _ = adapt_calibration(cal, [rows[i] for i in labelled], small_ok[labelled].tolist(),
                                       [domains[i] for i in labelled])
        adapted_t = shipped_t
        if args.rechoose_thresholds:  # the experiment: thresholds chosen again for the adapted base rate
            for c in (adapted, *adapted.domains.values()):
                if c.threshold_table is not None and c.thresholds:
                    c.thresholds = c.threshold_table.thresholds_at(c.intercept - c.threshold_table.intercept,
                                                                   c.thresholds)
            adapted_t = np.array([adapted.for_domain(d).threshold_for(0.95) for d in domains])
        return {"shipped calibration": shipped >= shipped_t,
                "adapted": adapted.predict_each(rows, domains) >= adapted_t,
                **{name: s >= t for name, (s, t) in baselines.items()},
                "oracle": small_ok}

    n = len(fresh)
    print(f"GSM8K items {args.first}-{args.first + n - 1} ({n}): the 0.5B right on {small_ok.mean():.1%}, "
          f"the 1.5B on {large_ok.mean():.1%}; calibration {args.calibration}")
    for k in args.ks:
        rng = np.random.default_rng([args.seed, k])  # each K's draws reproduce alone (--ks 60)
        first = np.arange(k)
        judged = np.arange(k, n)
        goal = 0.95 * large_ok[judged].mean()
        print(f"\nK = {k}: adapted on items {args.first}-{args.first + k - 1}, judged on the {n - k} after them "
              f"(target {goal:.1%})")
        for name, keep in rules(first).items():
            share, acc, met = outcome(keep, judged)
            print(f"  {name:20s} kept {share:6.1%} at {acc:6.1%}  {'met' if met else 'MISSED'}")
        tally: dict[str, list[tuple[float, bool]]] = {}
        for _ in range(args.draws):
            perm = rng.permutation(n)
            labelled, judged = perm[:k], np.sort(perm[k:])
            for name, keep in rules(labelled).items():
                share, _, met = outcome(keep, judged)
                tally.setdefault(name, []).append((share, met))
        print(f"  {args.draws} random draws of {k} labelled items (judged on the other {n - k}):")
        for name, got in tally.items():
            shares = np.array([s for s, _ in got])
            lo, hi = np.percentile(shares, [10, 90])
            print(f"  {name:20s} met the target in {np.mean([m for _, m in got]):4.0%} of draws, "
                  f"kept {shares.mean():5.1%} (p10 {lo:.1%}, p90 {hi:.1%})")


if __name__ == "__main__":
    main()
