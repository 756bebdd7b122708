"""Checks and logprob features, on hand-made drafts with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgecascade import AcceptRule, Completion, Timings, TokenLogprobs, Usage
from edgecascade.config import RepetitionCheck
from edgecascade.quality import decide, logprob_features
from edgecascade.quality.checks import check_arithmetic, check_refusal, check_repetition


def completion(text: str, finish: str = "stop", lps: list[float] | None = None,
               top: list[list[float]] | None = None) -> Completion:
    lp = None
    if lps is not None:
        rows = top if top is not None else [[x] for x in lps]
        top_arr = np.asarray(rows, dtype=float).reshape(len(lps), -1 if lps else 1)
        lp = TokenLogprobs([f"t{i}" for i in range(len(lps))], np.asarray(lps, dtype=float),
                           [["a"] * top_arr.shape[1]] * len(lps), top_arr)
    return Completion(text, "m", finish, Usage(3, len(lps or [])), Timings(), lp)  # type: ignore[arg-type]


def test_features_match_hand_computation() -> None:
    lps = [-0.1, -0.2, -0.3, -2.0]
    top = [[-0.1, -2.4], [-0.2, -1.8], [-0.3, -1.5], [-2.0, -0.5]]  # last step: chosen was not the best
    f = logprob_features(completion("x", lps=lps, top=top).logprobs)  # type: ignore[arg-type]
    assert f is not None
    assert f.n_tokens == 4
    assert f.mean_logprob == pytest.approx(-0.65)
    assert f.min_logprob == pytest.approx(-2.0)
    assert f.p10_logprob == pytest.approx(np.percentile(lps, 10))
    assert f.mean_margin == pytest.approx(np.mean([2.3, 1.6, 1.2, -1.5]))
    p = np.exp(np.array(top))
    p /= p.sum(axis=1, keepdims=True)
    assert f.mean_entropy == pytest.approx(float(np.mean(-(p * np.log(p)).sum(axis=1))))
    assert f.score("geo_mean_prob") == pytest.approx(math.exp(-0.65))
    assert f.score("min_prob") == pytest.approx(math.exp(-2.0))


def test_no_tokens_means_no_features() -> None:
    assert logprob_features(completion("", lps=[]).logprobs) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "I cannot assist with this request.",
    "As an AI language model, I cannot browse the internet.",
    "I’m sorry, but I am unable to comply.",
])
def test_refusals_are_caught(text: str) -> None:
    assert not check_refusal(completion(text)).passed


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.",
    "The function returns None. I cannot stress enough that inputs must be sorted.",
    "Sorry for the wait: the answer is 42.",
])
def test_ordinary_answers_are_not_refusals(text: str) -> None:
    assert check_refusal(completion(text)).passed


@pytest.mark.parametrize(("text", "detail"), [
    ("17 * 23 equals 411.", "its final answer 411 comes from 17 * 23 = 411, which is 391"),
    ("First 12 + 7 = 19. Then 19 * 2 = 40.\nThe answer is 40.", "comes from 19 * 2 = 40, which is 38"),
    (r"Total: \(4 + 6 + 8 = 20\) hours. The answer is \(\boxed{20}\).", "comes from 4 + 6 + 8 = 20, which is 18"),
    ("144 divided by 12 equals 13.", "comes from 144 / 12 = 13, which is 12"),
    ("17 times 23 is 411.", "comes from 17 * 23 = 411, which is 391"),
    ("1234 minus 234 is 1100.", "which is 1,000"),
    ("17 x 23 = 411", "which is 391"),
    ("17 × 23 = **411**", "which is 391"),
    ("$$17 \\times 23 = 411$$", "comes from 17 * 23 = 411, which is 391"),
    ("1. 17 * 23 = 411\n2. The answer is 411.", "which is 391"),
    ("1000000 + 234567 = 1234567.5", "its final answer 1,234,567.5 comes from 1000000 + 234567 = 1,234,567.5, "
                                     "which is 1,234,567"),
])
def test_a_final_answer_from_wrong_arithmetic_is_rejected(text: str, detail: str) -> None:
    ch = check_arithmetic(completion(text))
    assert (ch.name, ch.passed) == ("arithmetic", False)
    assert detail in ch.detail


@pytest.mark.parametrize("text", [
    "17 * 23 is 391.",
    "1234 plus 5678 equals 6912.",
    "3 * 4 = 13 at first, but 3 * 4 = 12, so the answer is 12.",  # a slip, corrected: 12 is stated rightly
    "She makes 3 * 5 = 16 cakes, then sells 10 for $2: the answer is 20.",  # the final number is not from it
    "Tickets:\n- $250 / $10 = 25\nThe answer is 25.",  # a bullet, not a minus sign
    "```python\n# 2 * 3 = 7\nprint(7)\n```",  # code: its numbers are not stated results
    "Paris is the capital of France.",
    # right answers that only look like wrong sums (found by review): percentages and scales after the result,
    "45 / 60 = 75%", "3/4 is 75 percent.", "5000 * 12 = 60k", "2,000,000 * 0.6 = 1.2 million", "150000 * 2 = 3e5",
    # powers, functions and exponents before the part a parser reads,
    "2^10 - 1 = 1023", "5^2 - 4*1*6 = 1", "sqrt(9 + 16) = 5", "√(9 + 16) = 5", "log(100) + 1 = 3", "1.5e3 * 2 = 3000",
    ".25 * 4 = 1",
    # ranges, dates, times and ratios,
    "Pages 10-20 is 11 pages.", "A 9-5 is 8 hours.", "From 9 - 5 is 8 hours.", "Experience: 2015-2020 = 5 years",
    "12/25/2024 is 10 days away.", "Running 24/7 is 168 hours a week.", "Your score 45/50 is 90.", "10:30 + 2 = 12:30",
    # rounding to what the question needs, decimals cut short, decimal commas,
    "You need 25 / 8 = 4 buses.", "19 / 5 = 3 full bags", "2 / 3 = 0.66", "10 / 3 = 3.33", "2,5 + 2,5 = 5",
    # and chains said in words, whose precedence is the writer's guess
    "12 plus 8 divided by 4 is 5",
])
def test_answers_whose_final_number_is_not_from_wrong_arithmetic_pass(text: str) -> None:
    assert check_arithmetic(completion(text)).passed


def test_repetition_catches_loops_even_cut_mid_unit() -> None:
    loop = "The answer is: " + "la femme au martyre, " * 6 + "la fem"
    ch = check_repetition(completion(loop), min_period=8, min_repeats=4)
    assert not ch.passed and "loops" in ch.detail
    code = "def f(x):\n    return x + 1\n\nprint(f(1))\nprint(f(2))\n"
    assert check_repetition(completion(code), min_period=8, min_repeats=4).passed
    assert check_repetition(completion("ha" * 40), min_period=8, min_repeats=4).passed is False
    assert check_repetition(completion("short"), min_period=8, min_repeats=4).passed


def test_decide_runs_checks_before_confidence_and_says_why() -> None:
    rule = AcceptRule(min_confidence=0.5)
    rep = RepetitionCheck()
    d = decide(completion("fine answer", finish="length", lps=[-0.01, -0.01]), rule, rep)
    assert not d.accepted and "truncated" in d.reason
    d = decide(completion("fine answer", lps=[-0.01, -0.01]), rule, rep)
    assert d.accepted and d.confidence == pytest.approx(math.exp(-0.01))
    d = decide(completion("fine answer", lps=[-2.0, -2.0]), rule, rep)
    assert not d.accepted and "< 0.5" in d.reason
    d = decide(completion("   ", lps=[-0.01]), rule, rep)
    assert not d.accepted and "empty" in d.reason
    # checks can be switched off per tier
    d = decide(completion("fine answer", finish="length", lps=[-0.01, -0.01]),
               AcceptRule(min_confidence=0.5, checks=("empty",)), rep)
    assert d.accepted


@pytest.mark.parametrize("n", [1, 2, 3, 7, 50, 384])
def test_fast_percentile_equals_numpy(n: int) -> None:
    from edgecascade.quality.features import percentile

    x = np.random.default_rng(n).normal(size=n)
    assert percentile(x, 0.10) == pytest.approx(float(np.percentile(x, 10)))


def test_calibration_survives_extreme_features_and_saves_strict_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from edgecascade.quality.calibration import Calibration

    cal = Calibration("m", ["min_logprob"], [0.0], [1.0], [1.0], 0.0, thresholds={"0.95": math.inf},
                      meta={"held_out": {"auroc": math.nan}})
    assert cal.predict({"min_logprob": -9999.0}) == pytest.approx(0.0, abs=1e-200)  # no OverflowError
    assert cal.predict({"min_logprob": 9999.0}) == pytest.approx(1.0)
    path = tmp_path / "c.json"
    cal.save(path)
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    back = Calibration.load(path)
    assert back.threshold_for(0.95) == math.inf  # a threshold that keeps no draft survives the round trip
    assert back.meta["held_out"]["auroc"] is None
