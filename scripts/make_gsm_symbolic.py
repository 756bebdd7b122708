"""Write `bench/datasets/gsm-symbolic.jsonl`: GSM8K-shaped problems no method here has been judged
on, for a clean test of the GSM8K calibrations.

Every item of GSM8K's test split has been read by the benchmark and its studies, so none is left for
a clean test. GSM-Symbolic (Mirzadeh et al. 2024) turned GSM8K test problems into templates whose
names and numbers are drawn afresh; reasoning-gym (Apache-2.0) ships 85 of them that its authors
checked (``tasks_ok``), each computing its own answer. This script draws two instances of each
(seeded, so the file is the same on every run), states each question with the GSM8K prompt
(:func:`edgecascade.datasets.gsm8k_prompt`), and writes one `bench run --dataset FILE` line per
item: ``id`` (template-instance), ``prompt``, ``reference`` (the number), ``grader`` number,
``domain`` math. All first instances come before all second ones, so `--limit 85` is one of each.

The file is committed, so the benchmark needs neither this script nor reasoning-gym; to make it
again (the same bytes):

    python3 -m venv /tmp/rgv && /tmp/rgv/bin/pip install reasoning-gym==0.1.25
    PYTHONPATH=. /tmp/rgv/bin/python scripts/make_gsm_symbolic.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from random import Random

from edgecascade.datasets import gsm8k_prompt

SEED = 20261126
INSTANCES = 2
OUT = Path("bench/datasets/gsm-symbolic.jsonl")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--instances", type=int, nargs=2, default=[0, INSTANCES], metavar=("FROM", "TO"),
                    help="draw instances FROM..TO-1 of each template (default 0 2; a later draw, e.g. 2 3 to "
                    "another --out, gives items none of the earlier ones is)")
    args = ap.parse_args()
    try:
        from reasoning_gym.arithmetic.gsm_symbolic import gsm_symbolic
    except ImportError:
        raise SystemExit("needs reasoning-gym 0.1.25: pip install reasoning-gym==0.1.25") from None
    generators = gsm_symbolic.GSMSymbolicDataset(gsm_symbolic.GSMSymbolicDatasetConfig(seed=SEED, size=1)).generators
    lines = []
    for k in range(*args.instances):
        for t in gsm_symbolic.tasks_ok:
            ex = generators[t](Random(SEED + 1000 * k + t), 1.0)
            float(ex["answer"])  # every reference is a number the grader can compare
            lines.append(json.dumps({"id": f"t{t:02d}-{k}", "prompt": gsm8k_prompt(ex["question"]),
                                     "reference": ex["answer"], "grader": "number", "domain": "math"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} items from {len(gsm_symbolic.tasks_ok)} templates to {args.out}")


if __name__ == "__main__":
    main()
