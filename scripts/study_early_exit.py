"""Could the cascade stop a draft early, after its first k tokens, when they already say it will be
escalated? A record of an idea measured and not built.

On GSM8K most drafts are escalated (the default rule keeps about 15% of them), and an escalated
query pays for the whole draft before the large model starts: on these 2 cores the default rule
costs ~25 s per GSM8K query against ~16 s for the large model alone. A draft that loops could be
cut when the loop shows, but loops are rare here (4 of 1,319 GSM8K drafts end in one). This study
asks whether a calibrator that reads only the first k tokens (the default rule's features computed
on the prefix: logprob statistics, the arithmetic shown so far, the question) can pick drafts to
abort without losing drafts the full rule would have kept.

For each k, on GSM8K's first 1,100 items (the items the shipped calibrations were fitted on), a
prefix calibrator is fitted and each item scored out of fold, as `bench report` scores calibration
items; the abort threshold is the highest that aborts at most --lose of the drafts the shipped
default rule keeps (0, 2% and 5%). Reported: the AUROC of the prefix score for "the draft is right",
the share of drafts aborted, the kept and right drafts lost, and the time saved per query (the
draft's time after its k-th token, from the traced per-token time). `--fresh` also scores GSM8K's
items 1,100-1,318 with the calibrator fitted on the first 1,100 and the threshold chosen there;
those items have been read many times (docs/benchmarks.md, *How the numbers moved*), so that
reading is not a clean test.

    .venv/bin/python scripts/study_early_exit.py --fresh
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from study_prior_shift import gsm8k  # a sibling script (python puts scripts/ on the path)

from edgecascade.benchmarks.report import _VARIANTS, CALIBRATED, DEFAULT_SEED, out_of_fold_scores
from edgecascade.benchmarks.traces import Trace
from edgecascade.quality.calibration import Calibration, auroc, draft_features, fit_calibration

SHIPPED = Path("models/qwen2.5-coder-0.5b.calibration.json")


def prefix(t: Trace, k: int) -> Trace | None:
    """The draft as it stood after k tokens, or None when it had finished by then (nothing to abort)."""
    if len(t.tokens) <= k:
        return None
    toks = t.tokens[:k]
    return dataclasses.replace(t, tokens=toks, logprobs=t.logprobs[:k], top_logprobs=t.top_logprobs[:k],
                               answer="".join(toks), finish_reason="length", completion_tokens=k)


def saved_s(t: Trace, k: int) -> float:
    """The draft's time after its k-th token: what aborting there saves."""
    first = t.first_token_s or 0.0
    return (t.latency_s - first) * (len(t.tokens) - k) / max(1, len(t.tokens))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, nargs="+", default=[32, 64, 96, 128, 192], help="prefix lengths in tokens")
    ap.add_argument("--lose", type=float, nargs="+", default=[0.0, 0.02, 0.05],
                    help="the share of the full rule's kept drafts an abort threshold may cut")
    ap.add_argument("--fresh", action="store_true", help="also judge on GSM8K's items 1,100-1,318 (read before)")
    args = ap.parse_args()

    cal_items, fresh, feats = gsm8k("default", 1100)
    judge = Calibration.load(SHIPPED).for_domain("math")
    t_rule = judge.thresholds["0.95"]
    names = _VARIANTS[CALIBRATED]

    def rule_keeps(items: Sequence[Sequence[Trace]]) -> np.ndarray:
        return judge.predict_many([feats(p[0]) for p in items]) >= t_rule

    def prefix_rows(items: Sequence[Sequence[Trace]], k: int) -> tuple[list[int], list[dict[str, float]]]:
        idx, rows = [], []
        for i, p in enumerate(items):
            t = prefix(p[0], k)
            if t is not None:
                idx.append(i)
                rows.append(draft_features(t.completion(), prompt=feats.prompt(p[0]), run_examples=False))
        return idx, rows

    sets = {"first 1,100 (out of fold)": cal_items, **({"items 1,100-1,318": fresh} if args.fresh else {})}
    keeps = {name: rule_keeps(items) for name, items in sets.items()}
    for name, items in sets.items():
        n = len(items)
        loops = sum(feats(p[0])["repetition"] > 0 for p in items)
        print(f"{name}: {n} drafts, {np.mean([p[0].correct for p in items]):.1%} right, {loops} ending in a loop; "
              f"the default rule keeps {keeps[name].mean():.1%}; {sum(p[0].latency_s for p in items) / n:.1f} s of "
              "draft per query")
    for k in args.k:
        idx_c, rows_c = prefix_rows(cal_items, k)
        y_c = [cal_items[i][0].correct for i in idx_c]
        oof = out_of_fold_scores(rows_c, y_c, None, [None] * len(rows_c), seed=DEFAULT_SEED, model="prefix",
                                 features=names, source="the prefixes").pooled
        scores = {"first 1,100 (out of fold)": (idx_c, np.asarray(oof))}
        if args.fresh:
            fitted = fit_calibration(rows_c, y_c, model="prefix", features=names, seed=DEFAULT_SEED)
            idx_f, rows_f = prefix_rows(fresh, k)
            scores["items 1,100-1,318"] = (idx_f, fitted.predict_many(rows_f))
        kept_oof = np.sort(scores["first 1,100 (out of fold)"][1][keeps["first 1,100 (out of fold)"][idx_c]])
        print(f"\nk = {k} tokens")
        for name, (idx, s) in scores.items():
            y = np.array([sets[name][i][0].correct for i in idx])
            print(f"  {name}: {len(idx)} drafts unfinished at k; AUROC of the prefix score {auroc(s, y):.3f}")
        for lose in args.lose:
            tau = float(kept_oof[int(np.floor(lose * len(kept_oof)))]) if len(kept_oof) else 0.0
            for name, (idx, s) in scores.items():
                items = sets[name]
                aborted = [i for i, v in zip(idx, s) if v < tau]
                lost_kept = sum(bool(keeps[name][i]) for i in aborted)
                lost_right = sum(items[i][0].correct for i in aborted)
                acc_change = sum(int(items[i][-1].correct) - int(items[i][0].correct)
                                 for i in aborted if keeps[name][i]) / len(items)
                saved = sum(saved_s(items[i][0], k) for i in aborted) / len(items)
                print(f"  cut <= {lose:.0%} of kept, threshold {tau:.3f}, {name}: aborts "
                      f"{len(aborted) / len(items):.1%} of drafts; loses {lost_kept} of {int(keeps[name].sum())} "
                      f"kept ({lost_right} right drafts aborted); accuracy {acc_change:+.1%}; "
                      f"saves {saved:.2f} s per query")


if __name__ == "__main__":
    main()
