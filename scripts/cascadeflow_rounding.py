"""How much the cascadeflow-style baseline's rounding of "the top 80%" matters: its AUROC for "the
0.5B draft is right" with ceil(0.8 n) tokens (every reported number) and with floor(0.8 n), at least
one (cascadeflow's own code), on the committed traces of each dataset, graded as reports grade them
now. Reads traces and datasets only.

    .venv/bin/python scripts/cascadeflow_rounding.py [--exclude gsm-symbolic-35 gsm-symbolic-36]
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

from edgecascade.benchmarks.policies import cascadeflow_score
from edgecascade.benchmarks.traces import Trace, regraded
from edgecascade.datasets import load
from edgecascade.paths import bench_dir
from edgecascade.quality.calibration import auroc

ROOT = Path(__file__).resolve().parents[1]
DRAFTS = "qwen2.5-coder-0.5b-25f540b049c8.jsonl"  # the 0.5B's drafts, as every report reads them


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exclude", nargs="*", default=[], help="trace folders to leave out (draws not read yet)")
    args = ap.parse_args()
    traces = bench_dir() / "traces"
    groups = {"gsm-symbolic (every draw)": "gsm-symbolic*", "gsm8k": "gsm8k", "humaneval": "humaneval"}
    for name, pattern in groups.items():
        rows: list[Trace] = []
        for path in sorted(glob.glob(str(traces / pattern / DRAFTS))):
            folder = path.split("/")[-2]
            if folder in args.exclude:
                continue
            with open(path, encoding="utf-8") as f:
                stored = {t.item_id: t for line in f if (t := Trace.from_dict(json.loads(line))).logprobs}
            # graded as every report grades them now (a stored grade may be an older grader's)
            own = ROOT / "bench" / "datasets" / f"{folder}.jsonl"
            source = folder if folder in ("gsm8k", "humaneval") else str(own)
            rows += regraded(stored, {i.id: i for i in load(source)}).values()
        labels = [bool(t.correct) for t in rows]
        ceil = auroc([cascadeflow_score(t) for t in rows], labels)
        floor = auroc([cascadeflow_score(t, floor=True) for t in rows], labels)
        print(f"{name}: {len(rows)} drafts, AUROC ceil {ceil:.4f}, floor {floor:.4f}, difference {floor - ceil:+.4f}")


if __name__ == "__main__":
    main()
