"""What the `arithmetic` check changes on the traced benchmarks: drafts kept before and after.

The check rejects an answer whose final number is only ever stated as the result of arithmetic the
answer got wrong ("17 * 23 equals 411"). It was added for bare answers, where the calibrator has
little else to go on. This counts, for each shipped rule (`default`, `calibrated`) and each traced
dataset: how many drafts the check rejects in all (and how many of those were right), how many the
rule kept without the check, and how many of those the check rejects (and how many were right). A
study of traces already read, not a test; it generates nothing (about half a minute here).

    .venv/bin/python scripts/study_arithmetic_check.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edgecascade.benchmarks.replay import OfflineRule
from edgecascade.benchmarks.report import DEFAULT_SEED, DraftFeatures
from edgecascade.benchmarks.traces import Trace
from edgecascade.cli import _bench_cascade, _traced_datasets
from edgecascade.quality.checks import Check, check_arithmetic

ROOT = Path(__file__).resolve().parents[1]


class WithoutArithmetic(OfflineRule):
    """The same rule with the arithmetic check left out: what it decided before the check existed."""

    def checks_of(self, t: Trace) -> list[Check]:
        return [c for c in super().checks_of(t) if c.name != "arithmetic"]


def _line(name: str, row: list[int]) -> None:
    print(f"  {name:18s} {row[0]:5d} · {row[1]:4d} ({row[2]}) · {row[3]:4d} · {row[4]:3d} ({row[5]})")


def datasets() -> list[str]:
    draws = sorted((ROOT / "bench" / "datasets").glob("gsm-symbolic*.jsonl"),
                   key=lambda p: int(p.stem.rpartition("-")[2]) if p.stem[-1].isdigit() else 1)
    return ["gsm8k", "humaneval", *(str(p) for p in draws)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=["default", "calibrated"])
    args = ap.parse_args(argv)
    for config in args.configs:
        cascade, _, _ = _bench_cascade(config)
        ns = argparse.Namespace(config=config, datasets=datasets(), fresh_from=None, traces=None, max_tokens=None,
                                seed=DEFAULT_SEED)
        data, _ = _traced_datasets(ns, cascade)
        feats = DraftFeatures(data, False)
        with_check, without = OfflineRule(cascade, feats.cross_check), WithoutArithmetic(cascade, feats.cross_check)
        print(f"\n{config}: drafts · rejected by the check (right) · kept without it · of those, rejected by it "
              "(right)")
        totals = [0, 0, 0, 0, 0, 0]
        for d in data:
            drafts = [p[0] for p in (*d.calibration, *d.held_out)]
            before = [t for t in drafts if without.keep(t, d.prompts.get(t.item_id))]
            dropped = [t for t in before if not with_check.keep(t, d.prompts.get(t.item_id))]
            failing = [t for t in drafts if not check_arithmetic(t.completion()).passed]
            row = [len(drafts), len(failing), sum(t.correct for t in failing), len(before), len(dropped),
                   sum(t.correct for t in dropped)]
            totals = [a + b for a, b in zip(totals, row, strict=True)]
            _line(d.name, row)
        _line("all", totals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
