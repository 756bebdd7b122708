"""Would a second, sampled draft tell right drafts from wrong ones better? (a study; nothing shipped)

Self-consistency is the best-known signal for math answers: a draft whose final number a second,
sampled answer repeats is more often right. This study measures what one more 0.5B answer adds to
the shipped features, on GSM8K's first N items only (all inside the 1,100 the calibration is fitted
on; no fresh item is read):

    .venv/bin/python scripts/study_second_sample.py sample --first 400    # ~11 s an item here, resumable
    .venv/bin/python scripts/study_second_sample.py analyze

``sample`` asks the default drafter each question once more (temperature 0.7, seed 1234, the same
384-token limit and prompt as `bench run`) and appends the answers to
bench/studies/gsm8k-second-sample.jsonl. ``analyze`` compares, by 5-fold cross-validation repeated
20 times, the calibrator on the shipped features with the same plus "the sample's final number
equals the greedy draft's".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

STUDY = Path("bench/studies/gsm8k-second-sample.jsonl")


def sample(first: int) -> None:
    from edgecascade import Cascade
    from edgecascade.datasets import grade, load

    done = {json.loads(x)["item_id"] for x in STUDY.read_text().splitlines()} if STUDY.exists() else set()
    cascade = Cascade.from_config()
    provider = cascade.tiers[0].provider
    items = [i for i in load("gsm8k", first) if i.id not in done]
    STUDY.parent.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        with STUDY.open("a", encoding="utf-8") as f:
            for n, item in enumerate(items):
                request = cascade.build_request(item.prompt, 384, 0.7, None, 1234, None)
                t0 = time.perf_counter()
                c = await provider.complete(request)
                f.write(json.dumps({"item_id": item.id, "answer": c.text, "correct": grade(item, c.text),
                                    "finish": c.finish_reason, "s": round(time.perf_counter() - t0, 2)}) + "\n")
                f.flush()
                if n % 20 == 0:
                    print(f"{n}/{len(items)}", flush=True)

    asyncio.run(go())


def analyze() -> None:
    from study_common import cross_validated_gain

    from edgecascade.benchmarks.report import DraftFeatures
    from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets
    from edgecascade.datasets import extract_gsm8k_answer
    from edgecascade.quality.calibration import auroc

    args = argparse.Namespace(config="default", datasets=["gsm8k"], fresh_from=[("gsm8k", 1100)], traces=None,
                              max_tokens=None, seed=20261125)
    cascade, _, _ = _bench_cascade("default")
    datasets, _ = _traced_datasets(args, cascade, judges=False)  # the first 1,100 items; no fresh one is read
    feats = DraftFeatures(datasets, False)
    by_id = {p[0].item_id: p for p in datasets[0].calibration}
    rows, labels, agree, seconds = [], [], [], []
    for line in STUDY.read_text(encoding="utf-8").splitlines():
        s = json.loads(line)
        draft = by_id[s["item_id"]][0]
        g, a = extract_gsm8k_answer(draft.answer), extract_gsm8k_answer(s["answer"])
        same = 1.0 if g is not None and a is not None and abs(g - a) < 1e-6 else 0.0
        rows.append({**feats(draft), "sample_agrees": same})
        labels.append(draft.correct)
        agree.append(same)
        seconds.append(s["s"])
    y, ag = np.array(labels), np.array(agree)
    print(f"{len(y)} items: greedy draft right {y.mean():.1%}; the sample agrees with it on {ag.mean():.1%}; right "
          f"when it agrees {y[ag == 1].mean():.1%}, when not {y[ag == 0].mean():.1%}; AUROC of agreement alone "
          f"{auroc(ag, y):.3f}; a second answer took {np.mean(seconds):.1f} s on average")
    base, more, gain, positive = cross_validated_gain(rows, y, ["sample_agrees"])
    print(f"cross-validated AUROC (5-fold x 20): shipped features {base:.3f}, with the sample's agreement "
          f"{more:.3f}; paired gain {gain:+.3f}, positive in {positive:.0%} of folds")

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    s = sub.add_parser("sample", help="ask the drafter once more on GSM8K's first N items (resumable)")
    s.add_argument("--first", type=int, default=400)
    sub.add_parser("analyze", help="what the sample's agreement adds, by cross-validation")
    args = ap.parse_args()
    if args.step == "sample":
        sample(args.first)
    else:
        analyze()


if __name__ == "__main__":
    main()
