"""What the cross-check of math drafts tells, on GSM8K's first N items (a study of traces; generates nothing).

The cross-check (edgecascade/quality/crosscheck.py) asks the drafting model for a `solution()`
program and compares its result with the draft's final number. This reads the traced cross-checks
(`edgecascade bench run --dataset gsm8k --config calibrated`) of GSM8K's first N items only (all
inside the 1,100 a report fits on with `--fresh-from gsm8k=1100`; no item from 1,100 on is read)
and prints how often the draft was right when its program agreed and when not, and, by 5-fold
cross-validation repeated 20 times, the AUROC of the calibrator on the shipped features with and
without the cross-check's:

    .venv/bin/python scripts/study_cross_check.py --first 400
    .venv/bin/python scripts/study_cross_check.py --first 1100
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=1100, help="GSM8K's first N items (at most 1,100)")
    args = ap.parse_args()
    if not 10 <= args.first <= 1100:
        ap.error("--first must be between 10 and 1100: the items from 1,100 on are the fresh test")

    from study_common import cross_validated_gain

    from edgecascade.benchmarks.report import DraftFeatures
    from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets
    from edgecascade.quality.calibration import CROSS_CHECK_FEATURES, auroc

    ns = argparse.Namespace(config="calibrated", datasets=["gsm8k"], fresh_from=[("gsm8k", 1100)], traces=None,
                            max_tokens=None, seed=20261125)
    cascade, _, _ = _bench_cascade("calibrated")
    [d], _ = _traced_datasets(ns, cascade, judges=False)  # the first 1,100 items; no fresh one is read
    feats = DraftFeatures([d], False)
    wanted = {f"gsm8k/{i}" for i in range(args.first)}
    drafts = [p[0] for p in d.calibration if p[0].item_id in wanted]
    missing = [t.item_id for t in drafts if t.item_id not in d.cross_checks]
    if missing:
        raise SystemExit(f"{len(missing)} of these items have no traced cross-check (e.g. {missing[0]}): run "
                         f"`edgecascade bench run --dataset gsm8k --config calibrated --limit {args.first}`")
    rows = [feats(t) for t in drafts]
    y = np.array([t.correct for t in drafts])
    agree = np.array([r["cross_check_agrees"] for r in rows])
    got = np.array([r["cross_checked"] for r in rows])
    seconds = np.array([d.cross_checks[t.item_id].latency_s for t in drafts])
    program_right = np.array([d.cross_checks[t.item_id].correct for t in drafts])
    print(f"{len(y)} items: draft right {y.mean():.1%}; its program gave a number on {got.mean():.1%} and was right "
          f"on {program_right.mean():.1%}; they agree on {agree.mean():.1%}; the draft was right "
          f"{y[agree == 1].mean():.1%} of the time when they agree, {y[agree == 0].mean():.1%} when not; AUROC of "
          f"agreement alone {auroc(agree, y):.3f}; a cross-check took {seconds.mean():.2f} s on average")
    base, more, gain, positive = cross_validated_gain(rows, y, CROSS_CHECK_FEATURES)
    print(f"cross-validated AUROC (5-fold x 20): shipped features {base:.3f}, with the cross-check {more:.3f}; "
          f"paired gain {gain:+.3f}, positive in {positive:.0%} of folds")

if __name__ == "__main__":
    main()
