"""Would fitting the math calibrator on the harder GSM-Symbolic drafts too keep more drafts at the target?

Tried after the ten clean draws were read, and not shipped. Leave one draw out: the default
calibration's math calibrator is fitted again (as `bench report` fits it: thresholds on out-of-fold
scores, margin 1.645) on GSM8K's first 1,100 items plus the other nine draws, and judged on the draw
left out. The shipped calibration and both logprob baselines (their thresholds chosen on the same
fitting items) are judged on each draw beside it; then the ten held-out draws are pooled. Every draw
has been read before, so this is a study, not a test.

    .venv/bin/python scripts/study_more_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from study_prior_shift import BASELINES, TARGET, fitted_calibrator, gsm8k, whole_datasets  # a sibling script

from edgecascade.benchmarks.policies import DEFAULT_MARGIN_Z, choose_threshold
from edgecascade.quality.calibration import Calibration, auroc

DRAWS = [f"bench/datasets/gsm-symbolic{s}.jsonl" for s in ("", "-2", "-3", "-4", "-5", "-6", "-7", "-8", "-9", "-10")]
SEED = 20261125


def main() -> None:
    items, _, gfeats = gsm8k("default", 1100)
    grows = [gfeats(p[0]) for p in items]
    draws = []
    for f in DRAWS:
        pairs, feats = whole_datasets("default", [f])
        draws.append((pairs, [feats(p[0]) for p in pairs]))
    key = f"{TARGET:g}"
    shipped = Calibration.load(Path("models/qwen2.5-coder-0.5b.calibration.json")).for_domain("math")
    kept: dict[str, int] = {}
    right: dict[str, int] = {}
    met: dict[str, int] = {}
    large_right = n = 0
    for d, (pairs, rows) in enumerate(draws):
        fit_pairs = list(items) + [p for j, (ps, _) in enumerate(draws) if j != d for p in ps]
        fit_rows = grows + [r for j, (_, rs) in enumerate(draws) if j != d for r in rs]
        cal = fitted_calibrator(fit_rows, fit_pairs, SEED)
        small = np.array([p[0].correct for p in pairs])
        large = np.array([p[-1].correct for p in pairs])
        s_new, s_old = cal.predict_many(rows), shipped.predict_many(rows)
        keeps = {"fitted with the other draws": s_new >= cal.thresholds[key],
                 "shipped default": s_old >= shipped.thresholds[key]}
        for name, score in BASELINES.items():
            fitted = np.array([score(p[0]) for p in fit_pairs])
            keeps[name] = np.array([score(p[0]) for p in pairs]) >= choose_threshold(fit_pairs, fitted, TARGET,
                                                                                      DEFAULT_MARGIN_Z)
        need = int(np.ceil(TARGET * large.sum() - 1e-9))
        line = []
        for name, keep in keeps.items():
            got = int(np.where(keep, small, large).sum())
            kept[name] = kept.get(name, 0) + int(keep.sum())
            right[name] = right.get(name, 0) + got
            met[name] = met.get(name, 0) + (got >= need)
            line.append(f"{name} {keep.mean():.1%} ({got - need:+d})")
        large_right += int(large.sum())
        n += len(pairs)
        print(f"draw {d + 1}: threshold {cal.thresholds[key]:.3f}, AUROC {auroc(s_new, small):.3f} "
              f"(shipped {auroc(s_old, small):.3f}); kept (answers to spare): " + "; ".join(line))
    need = int(np.ceil(TARGET * large_right - 1e-9))
    print(f"\nthe ten held-out draws pooled ({n} items, {need} right answers needed):")
    for name in kept:
        print(f"  {name:28s} kept {kept[name] / n:5.1%}, {right[name]} right ({right[name] - need:+d}); "
              f"met the target on {met[name]} draws of {len(draws)}")


if __name__ == "__main__":
    main()
