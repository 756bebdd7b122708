"""Should a fresh test fit on all the items before it, or on a half of them?

`bench report --fresh-from gsm8k=N` fits the calibrators, and chooses their thresholds, on the
first N items and judges on the items from N on. This study asks, from the first N items alone
(items from N on are dropped before anything is computed, so running it reads no fresh item),
whether fitting on all of them beats fitting on a half (the seeded calibration half, as a plain
`bench report` does): it draws random test sets of the fresh test's size from the first N items,
fits once on all the other items (A) and once on their calibration half (B), and counts, per
safety margin, how often the default rule's threshold met the target on the test set, how many
drafts it kept, and how often it closed at least half the gap from the best baseline to the oracle.

    .venv/bin/python scripts/study_fresh_fit.py --first 1100 --test-size 219 --repeats 100
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from rich.progress import track

from edgecascade.benchmarks.report import CALIBRATED, DEFAULT_SEED, DatasetPairs, DraftFeatures, build_report, split_ids
from edgecascade.benchmarks.traces import TraceStore, paired, regraded, tier_specs
from edgecascade.cli.bench_traces import _bench_cascade
from edgecascade.datasets import load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=1100, help="use only GSM8K's first N items (default 1100)")
    ap.add_argument("--test-size", type=int, default=219, help="items per random test set (default 219)")
    ap.add_argument("--repeats", type=int, default=100)
    ap.add_argument("--margins", type=float, nargs="+", default=[1.0, 1.645, 2.0])
    ap.add_argument("--seed", type=int, default=7, help="seed of the random test sets")
    args = ap.parse_args()

    cascade, _, _ = _bench_cascade(None)
    specs = tier_specs(cascade, cascade.settings.max_tokens)
    small, large = specs[0], specs[-1]
    store = TraceStore()

    def pairs_of(name: str) -> tuple[list[list], dict[str, str]]:
        every = {i.id: i for i in load(name)}
        # graded by the graders as they are now (a stored grade made otherwise is made again)
        traces = {s.name: regraded(store.load(name, s.model, s.key), every) for s in (small, large)}
        return paired(traces, [small.name, large.name]), {k: i.prompt for k, i in every.items()}

    g_all, g_items = pairs_of("gsm8k")
    position = {k: i for i, k in enumerate(g_items)}
    g_pairs = [p for p in g_all if position[p[0].item_id] < args.first]  # the fresh items are never read
    if len(g_pairs) < args.test_size * 2:
        raise SystemExit(f"only {len(g_pairs)} of GSM8K's first {args.first} items are traced on both tiers")
    h_pairs, h_items = pairs_of("humaneval")  # split as every report splits it
    h_cal, h_held = split_ids([p[0].item_id for p in h_pairs], DEFAULT_SEED)
    he = DatasetPairs("humaneval", [p for p in h_pairs if p[0].item_id in h_cal],
                      [p for p in h_pairs if p[0].item_id in h_held], h_items)
    feats = DraftFeatures([DatasetPairs("gsm8k", g_pairs, [], g_items), he], False)

    rng = np.random.default_rng(args.seed)
    results: dict[tuple[str, float], list[tuple[bool, float, float]]] = defaultdict(list)
    for _ in track(range(args.repeats), description="random test sets"):
        order = rng.permutation(len(g_pairs))
        test = [g_pairs[i] for i in order[:args.test_size]]
        rest = [g_pairs[i] for i in order[args.test_size:]]
        half, _ = split_ids([p[0].item_id for p in rest], DEFAULT_SEED)
        for setting, fit in (("A: all the others", rest), ("B: their half", [p for p in rest if p[0].item_id in half])):
            g = DatasetPairs("gsm8k", fit, test, g_items, args.first)
            fits: dict = {}  # one fit per setting and test set; only the thresholds depend on the margin
            for z in args.margins:
                report, _ = build_report([g, he], model=small.model, target=0.95, seed=DEFAULT_SEED,
                                         command="study", features=feats, detail=False, margin_z=z, fits=fits)
                d = report["datasets"]["gsm8k"]
                at = d["at_target"]
                row = next(p for p in d["policies"] if p["name"] == CALIBRATED)
                meets = row["accuracy"] >= at["target_accuracy"] - 1e-12
                best, oracle = at["best_baseline_share"], at["oracle_share"]
                gap = max(0.0, (row["small_share"] - best) / (oracle - best)) if meets and oracle > best else 0.0
                results[(setting, z)].append((meets, row["small_share"], gap))

    print(f"GSM8K's first {args.first} items: {args.repeats} random tests of {args.test_size}, "
          f"fitted on the other {len(g_pairs) - args.test_size} (A) or their calibration half (B)")
    print(f"{'fitted on':20s} {'margin':>6s} {'met':>5s} {'kept':>6s} {'half gap':>9s}")
    for (setting, z), rows in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        met = np.mean([r[0] for r in rows])
        kept = np.mean([r[1] for r in rows])
        half_gap = np.mean([r[2] >= 0.5 for r in rows])
        print(f"{setting:20s} {z:6g} {met:5.0%} {kept:6.1%} {half_gap:9.0%}")


if __name__ == "__main__":
    main()
