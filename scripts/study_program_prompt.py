"""Would another way of asking for the cross-check's program make it a stronger second opinion?
(A study; it generates programs, on GSM8K items inside the 1,100 a report fits on, and changes nothing shipped.)

The cross-check (edgecascade/quality/crosscheck.py) asks the 0.5B, zero-shot, for a `solution()`
program. On GSM8K's first 1,100 items that program was right on 21.2% of items, less often than the
draft (25.5%), and agreed with 41% of the drafts that were right. A program that is right
more often agrees with more right drafts, and its agreement means more. This asks for programs in
other ways, on the same items, with the same model, settings and allowlist, and compares each with
the shipped prompt's traced programs: how often the program gives a number and is right, how often
it agrees with the draft, how often the draft is right when it agrees and when not, and the
calibrator's cross-validated AUROC (5-fold x 20) with each variant's agreement in place of the
shipped one's. Programs are cached in bench/studies/gsm8k-program-prompts.jsonl, so a rerun only
generates what is missing:

    .venv/bin/python scripts/study_program_prompt.py --start 400 --limit 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path

import numpy as np

from edgecascade.types import Role

CACHE = Path(__file__).resolve().parents[1] / "bench" / "studies" / "gsm8k-program-prompts.jsonl"
_ASK = ("Write a Python function `solution()` that computes and returns the numeric answer to this problem. "
        "Reply with only the code in one ```python block, no explanation.\n\nProblem: {problem}")
#: a worked example of our own (not from any dataset): quantities named, one step per line
_EXAMPLE = ("A farmer has 3 fields. Each field has 12 rows of 8 apple trees, and each tree gives 15 apples. "
            "He sells the apples in bags of 10 for $4 a bag. How much money does he make?")
_EXAMPLE_CODE = ("```python\ndef solution():\n    fields = 3\n    rows_per_field = 12\n    trees_per_row = 8\n"
                 "    apples_per_tree = 15\n    apples_per_bag = 10\n    price_per_bag = 4\n"
                 "    trees = fields * rows_per_field * trees_per_row\n    apples = trees * apples_per_tree\n"
                 "    bags = apples / apples_per_bag\n    return bags * price_per_bag\n```")
_STEPS = ("Write a Python function `solution()` that solves this problem. First assign each quantity the problem "
          "gives to a variable named for what it is, then compute each intermediate result in a variable of its "
          "own, and return the final numeric answer. Reply with only the code in one ```python block, no "
          "explanation.\n\nProblem: {problem}")


def variant_messages(name: str, problem: str) -> list[tuple[Role, str]]:
    """The user/assistant turns each variant sends (after the config's system prompt)."""
    if name == "one-shot":
        return [("user", _ASK.format(problem=_EXAMPLE)), ("assistant", _EXAMPLE_CODE),
                ("user", _ASK.format(problem=problem))]
    if name == "steps":
        return [("user", _STEPS.format(problem=problem))]
    raise ValueError(name)


VARIANTS = ("one-shot", "steps")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=int, default=400)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = ap.parse_args()
    if not (args.start >= 0 and args.start + args.limit <= 1100):
        ap.error("items must lie inside GSM8K's first 1,100: the items from 1,100 on are the fresh test")

    from study_common import cross_validated_gain

    from edgecascade.benchmarks.report import DraftFeatures
    from edgecascade.benchmarks.traces import grade_number
    from edgecascade.cli.bench_traces import _bench_cascade, _traced_datasets
    from edgecascade.datasets import load
    from edgecascade.quality.calibration import CROSS_CHECK_FEATURES, auroc
    from edgecascade.quality.crosscheck import CROSS_CHECK_MAX_TOKENS, CrossCheck, problem_text, program_result
    from edgecascade.types import Message, Request

    ns = argparse.Namespace(config="calibrated", datasets=["gsm8k"], fresh_from=[("gsm8k", 1100)], traces=None,
                            max_tokens=None, seed=20261125)
    cascade, _, _ = _bench_cascade("calibrated")
    [d], _ = _traced_datasets(ns, cascade, judges=False)  # the first 1,100 items; no fresh one is read
    items = {i.id: i for i in load("gsm8k", 1100)}
    wanted = [f"gsm8k/{i}" for i in range(args.start, args.start + args.limit)]
    drafts = {p[0].item_id: p[0] for p in d.calibration}
    drafts_in = [drafts[k] for k in wanted if k in drafts and k in d.cross_checks]

    cache: dict[tuple[str, str], dict] = {}
    if CACHE.exists():
        for cached in CACHE.read_text().splitlines():
            r = json.loads(cached)
            cache[(r["variant"], r["item_id"])] = r
    provider = cascade.tiers[0].provider
    system = cascade.settings.system_prompt
    todo = [(v, t) for v in args.variants for t in drafts_in if (v, t.item_id) not in cache]
    if todo:
        print(f"generating {len(todo)} programs ({len(cache)} cached)", flush=True)

    async def go() -> None:
        with CACHE.open("a") as out:
            for n, (v, t) in enumerate(todo, 1):
                item = items[t.item_id]
                turns = variant_messages(v, problem_text(item.prompt))
                messages = [*([Message("system", system)] if system else []), *(Message(r, c) for r, c in turns)]
                t0 = time.perf_counter()
                c = await provider.complete(Request(messages=messages, max_tokens=CROSS_CHECK_MAX_TOKENS,
                                                    temperature=0.0, seed=0))
                result = await asyncio.to_thread(program_result, c.text)
                seconds = time.perf_counter() - t0
                right = grade_number(item, result)
                r = {"variant": v, "item_id": t.item_id, "program": c.text, "result": result, "correct": right,
                     "seconds": round(seconds, 3), "completion_tokens": c.usage.completion_tokens}
                out.write(json.dumps(r) + "\n")
                out.flush()
                cache[(v, t.item_id)] = r
                if n % 20 == 0 or n == len(todo):
                    print(f"  {n}/{len(todo)}", flush=True)

    if todo:
        asyncio.run(go())

    feats = DraftFeatures([d], False)
    rows = [feats(t) for t in drafts_in]
    y = np.array([t.correct for t in drafts_in])
    print(f"\n{len(y)} GSM8K items {args.start}..{args.start + args.limit - 1}: the draft right on {y.mean():.1%}")
    print("| program prompt | gave a number | right | agrees | draft right when it agrees / when not "
          "| agreement's AUROC | CV AUROC with it (shipped features alone) | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")

    def line(name: str, results: list[float | None], right: list[bool], seconds: list[float]) -> None:
        agree = np.array([CrossCheck.of(t.answer, r).agrees for t, r in zip(drafts_in, results)], dtype=float)
        got = np.array([r is not None for r in results], dtype=float)
        swapped = [{**row, "cross_checked": g, "cross_check_agrees": a} for row, g, a in zip(rows, got, agree)]
        base, more, _, _ = cross_validated_gain(swapped, y, CROSS_CHECK_FEATURES)
        when = (f"{y[agree == 1].mean():.1%} ({int(agree.sum())}) / {y[agree == 0].mean():.1%}"
                if agree.any() else "-")
        print(f"| {name} | {got.mean():.1%} | {np.mean(right):.1%} | {agree.mean():.1%} | {when} "
              f"| {auroc(agree, y):.3f} | {more:.3f} ({base:.3f}) | {np.mean(seconds):.2f} |", flush=True)

    shipped = [d.cross_checks[t.item_id] for t in drafts_in]
    line("shipped (traced)", [c.result for c in shipped], [c.correct for c in shipped],
         [c.latency_s for c in shipped])
    for v in args.variants:
        rs = [cache[(v, t.item_id)] for t in drafts_in]
        line(v, [r["result"] if r["result"] is None or math.isfinite(r["result"]) else None for r in rs],
             [r["correct"] for r in rs], [r["seconds"] for r in rs])


if __name__ == "__main__":
    main()
