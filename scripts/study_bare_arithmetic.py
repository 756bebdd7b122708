"""Bare arithmetic, as users type it: what the default rule keeps with and without the arithmetic check.

The `arithmetic` check reads only questions that are nothing but a sum (`What is 17 * 23?`), so
it never touches the benchmarks' word problems (a test holds it to that). Such questions get bare
answers, with no working for the calibrator to read. This asks the default config's drafting model (the 0.5B,
greedy, in process) N such questions drawn with a fixed seed (two- and three-digit operands; +, -,
*, and / with a whole quotient; phrased a few ways), grades each draft's final number against the
true result, and judges each draft by the default rule twice: with every check it ships, and
without `arithmetic`. Nothing is fitted or chosen here; the 1.5B is never loaded. About 8 minutes
for 200 questions on 2 cores.

    .venv/bin/python scripts/study_bare_arithmetic.py --n 200
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence

from rich.progress import Progress

from edgecascade.datasets import extract_gsm8k_answer
from edgecascade.engine import Cascade
from edgecascade.quality.policy import decide, run_checks

PHRASES = ("What is {a} {op} {b}?", "Calculate {a} {op} {b}.", "{a} {op} {b} = ?", "How much is {a} {op} {b}?")
WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}


def questions(n: int, seed: int) -> list[tuple[str, int]]:
    """``n`` questions with their true results; a quarter of them say the operator in words."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        op = "+-*/"[i % 4]
        a, b = rng.randint(12, 999), rng.randint(12, 99)
        if op == "/":
            a = a * b  # a whole quotient
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]
        said = WORDS[op] if rng.random() < 0.25 else op
        out.append((rng.choice(PHRASES).format(a=a, op=said, b=b), value))
    return out


async def study(n: int, seed: int) -> None:
    cascade = Cascade.from_config("default")
    tier = cascade.tiers[0]
    rule, repetition = tier.accept, cascade.settings.repetition
    without = tuple(name for name in rule.checks if name != "arithmetic")
    counts = {k: 0 for k in ("right", "kept", "kept_wrong", "kept_without", "kept_without_wrong",
                             "rejected_by_check", "rejected_by_check_right")}
    examples: list[str] = []
    missed: list[str] = []
    with Progress() as bar:
        task = bar.add_task("bare arithmetic", total=n)
        for prompt, value in questions(n, seed):
            request = cascade.build_request(prompt, None, None, None, None, None)
            draft = await tier.provider.complete(request)
            got = extract_gsm8k_answer(draft.text)
            right = got is not None and got == value
            both = decide(draft, rule, repetition, tier.calibration, prompt=prompt)
            alone = decide(draft, rule, repetition, tier.calibration, prompt=prompt,
                           checks=run_checks(draft, without, repetition, prompt))
            fired = any(c.name == "arithmetic" and not c.passed for c in both.checks)
            counts["right"] += right
            counts["kept"] += both.accepted
            counts["kept_wrong"] += both.accepted and not right
            counts["kept_without"] += alone.accepted
            counts["kept_without_wrong"] += alone.accepted and not right
            counts["rejected_by_check"] += fired
            counts["rejected_by_check_right"] += fired and right
            if both.accepted and not right and len(missed) < 5:
                missed.append(f"  {prompt!r} -> {draft.text.strip()[:100]!r} (true: {value})")
            if fired and len(examples) < 5:
                examples.append(f"  {prompt!r} -> {draft.text.strip()[:80]!r} ({'right' if right else 'wrong'})")
            bar.advance(task)
    c = counts
    print(f"{n} bare arithmetic questions (seed {seed}), drafts by {tier.provider.model}:")
    print(f"  right: {c['right']} ({c['right'] / n:.1%})")
    print(f"  kept without the arithmetic check: {c['kept_without']}, of them wrong {c['kept_without_wrong']}")
    print(f"  kept with it (as shipped):        {c['kept']}, of them wrong {c['kept_wrong']}")
    print(f"  rejected by the check: {c['rejected_by_check']}, of them right {c['rejected_by_check_right']}")
    print("rejected by the check, for example:\n" + "\n".join(examples))
    print("wrong and kept all the same, for example:\n" + "\n".join(missed))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="questions (default 200)")
    ap.add_argument("--seed", type=int, default=20261127)
    args = ap.parse_args(argv)
    asyncio.run(study(args.n, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
