"""Answer-structure features read the right spans of the answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgecascade import Completion, Timings, TokenLogprobs, Usage
from edgecascade.quality.calibration import FEATURE_NAMES, draft_features
from edgecascade.quality.structure import code_features, extract_code, math_features, prompt_features


def completion(tokens: list[str], lps: list[float], finish: str = "stop") -> Completion:
    lp = TokenLogprobs(tokens, np.asarray(lps, dtype=float), [[t] for t in tokens], np.asarray(lps)[:, None])
    return Completion("".join(tokens), "m", finish, Usage(5, len(tokens)), Timings(), lp)  # type: ignore[arg-type]


def test_math_features_read_the_final_number_tokens() -> None:
    toks = ["3", " *", " 6", " =", " 18", ".\n", "The", " answer", " is", " ", "1", "8", "."]
    lps = [-0.1] * 10 + [-2.0, -0.5, -0.1]
    f = math_features(completion(toks, lps))
    assert f["has_final_number"] == 1.0
    assert f["final_lp_min"] == -2.0 and f["final_lp_mean"] == -1.25  # only the tokens of "18"
    assert f["reasoning_agrees"] == 1.0
    f = math_features(completion(["2", " =", " 5", ".", " The", " answer", " is", " 7", "."], [-0.1] * 9))
    assert f["reasoning_agrees"] == -1.0  # the stated result disagrees with the last computed one
    f = math_features(completion(["I", " think", " so"], [-0.1] * 3))
    assert f["has_final_number"] == 0.0 and f["final_integer"] == 0.0


def test_final_integer_and_prompt_numbers() -> None:
    assert math_features(completion(["The", " answer", " is", " 18", "."], [-0.1] * 5))["final_integer"] == 1.0
    assert math_features(completion(["The", " answer", " is", " 4.5", "."], [-0.1] * 5))["final_integer"] == 0.0
    huge = completion(["The", " answer", " is", " " + "9" * 400, "."], [-0.1] * 5)  # a looping draft's number
    assert math_features(huge)["final_integer"] == 0.0
    # distinct quantities the question states (a repeated 3 counts once); unknown prompt -> 0
    question = "Tom has 3 apples, buys 3 more and 12 pears at $1.50 each."
    assert prompt_features(question, "")["prompt_numbers_log"] == np.log1p(3)
    assert prompt_features(None, "") == {"prompt_numbers_log": 0.0, "prompt_numbers_used": 1.0}
    c = completion(["The", " answer", " is", " 4", "."], [-0.1] * 5)
    assert draft_features(c, prompt="2 + 2?")["prompt_numbers_log"] == np.log1p(1)


def test_prompt_numbers_used_is_the_share_of_given_quantities_the_answer_writes() -> None:
    question = "Tom has 3 apples, buys 3 more and 12 pears at $1.50 each."
    assert prompt_features(question, "3 + 3 = 6 apples; 12 * 1.5 = 18. The answer is 18.")["prompt_numbers_used"] == 1.0
    # 1.50 is written 1.5 (the same quantity); 12 is left out: 2 of 3
    assert abs(prompt_features(question, "3 + 3 = 6, 6 * 1.5 = 9")["prompt_numbers_used"] - 2 / 3) < 1e-12
    assert prompt_features(question, "I don't know")["prompt_numbers_used"] == 0.0
    assert prompt_features("Say hello.", "Hello 2 you")["prompt_numbers_used"] == 1.0  # nothing to use
    assert prompt_features("From 10 take 5.", "10 -5 = 5")["prompt_numbers_used"] == 1.0  # "-5" is the 5 taken
    c = completion(["3", " +", " 4", " =", " 7"], [-0.1] * 5)
    assert draft_features(c, prompt="Add 3 and 9.")["prompt_numbers_used"] == 0.5


def test_numbers_lp_p10_reads_only_the_tokens_that_state_numbers() -> None:
    # prose tokens are certain; the digits of 1,250 and 7 hesitate
    toks = ["So", " she", " pays", " 1", ",", "2", "5", "0", " in", " total", " and", " 7", " more", "."]
    lps = [-0.01, -0.01, -0.01, -0.5, -0.2, -3.0, -0.1, -0.1, -0.01, -0.01, -0.01, -1.0, -0.01, -0.01]
    f = math_features(completion(toks, lps))
    number_lps = np.array([-0.5, -0.2, -3.0, -0.1, -0.1, -1.0])
    assert abs(f["numbers_lp_p10"] - np.percentile(number_lps, 10)) < 1e-12
    assert math_features(completion(["No", " numbers", " here"], [-2.0] * 3))["numbers_lp_p10"] == 0.0
    # a sign, a hyphen and a comma that ends a clause are punctuation, not part of the number; a
    # thousands comma is
    toks = ["Take", " -", "5", ",", " then", " 3", "-", "4", " and", " 1", ",", "0", "0", "0", "."]
    lps = [-0.01, -4.0, -0.3, -5.0, -0.01, -0.2, -6.0, -0.4, -0.01, -0.5, -0.6, -0.7, -0.8, -0.9, -0.01]
    f = math_features(completion(toks, lps))
    assert abs(f["numbers_lp_p10"] - np.percentile([-0.3, -0.2, -0.4, -0.5, -0.6, -0.7, -0.8, -0.9], 10)) < 1e-12
    # a leading space the text lacks (tokens " 4" for text "4") does not shift the spans
    c = completion([" 4", " cats", " and", " 5"], [-0.7, -0.01, -0.01, -0.9])
    c = Completion(c.text.lstrip(), c.model, c.finish_reason, c.usage, c.timings, c.logprobs)
    assert abs(math_features(c)["numbers_lp_p10"] - np.percentile([-0.7, -0.9], 10)) < 1e-12


def test_final_negative() -> None:
    assert math_features(completion(["The", " answer", " is", " -", "4", "."], [-0.1] * 6))["final_negative"] == 1.0
    assert math_features(completion(["The", " answer", " is", " 4", "."], [-0.1] * 5))["final_negative"] == 0.0
    assert math_features(completion(["No", " answer"], [-0.1] * 2))["final_negative"] == 0.0


def test_code_features() -> None:
    good = ["```python\n", "def f(x):\n", "    return x\n", "```"]
    f = code_features(completion(good, [-0.3, -0.1, -0.2, -0.4]))
    assert f["code_block"] == 1.0 and f["code_parses"] == 1.0 and f["defines_function"] == 1.0
    assert abs(f["code_lp_mean"] + 0.15) < 1e-9  # only the code tokens, not the fences
    bad = ["```python\n", "def f(x)\n", "    return x\n", "```"]
    assert code_features(completion(bad, [-0.1] * 4))["code_parses"] == 0.0


def test_code_features_score_the_block_the_grader_runs() -> None:
    """A draft that shows how to install first and its Python second was scored on the shell
    block (which does not parse, and defines nothing) while the grader and the examples check ran
    the Python block: the features now read the block extract_code picks."""
    toks = ["```bash\n", "pip install numpy\n", "```\n", "```python\n", "def f(x):\n", "    return x\n", "```"]
    c = completion(toks, [-0.1, -3.0, -0.1, -0.1, -0.2, -0.4, -0.1])
    f = code_features(c)
    assert extract_code(c.text) == "def f(x):\n    return x\n"
    assert f["code_parses"] == 1.0 and f["defines_function"] == 1.0
    assert abs(f["code_lp_mean"] + 0.3) < 1e-9  # the Python block's two tokens, not "pip install"'s -3.0
    assert f["prose_chars_log"] == pytest.approx(math.log1p(len(c.text) - len(extract_code(c.text))))
    untagged = ["```\n", "x = 1\n", "```\n", "```text\n", "not code\n", "```"]
    assert code_features(completion(untagged, [-0.1] * 6))["code_parses"] == 1.0  # no python tag: the first block


def test_a_backend_that_sends_no_token_counts_is_not_read_as_a_very_short_answer() -> None:
    """Usage(0, 0, reported=False) with logprobs read as n_tokens_log 0: the shipped math calibrator
    then gave every draft P ~ 1 (200 of 200 committed drafts accepted, against 27)."""
    import dataclasses
    from pathlib import Path

    from edgecascade.quality.calibration import Calibration

    toks = ["3", " *", " 6", " =", " 18", ".\n", "The", " answer", " is", " 18", "."] * 20
    c = completion(toks, [-0.4] * len(toks))
    silent = dataclasses.replace(c, usage=Usage(0, 0, reported=False))
    assert draft_features(silent)["n_tokens_log"] == draft_features(c)["n_tokens_log"] == math.log1p(len(toks))
    math_cal = Calibration.load(Path(__file__).parents[2] / "models" /
                                "qwen2.5-coder-0.5b.calibration.json").for_domain("math")
    prompt = "Solve: 3 * 6?"
    assert math_cal.predict(draft_features(silent, prompt=prompt)) == pytest.approx(
        math_cal.predict(draft_features(c, prompt=prompt)))


def test_draft_features_cover_every_name() -> None:
    f = draft_features(completion(["The", " answer", " is", " 4", "."], [-0.1] * 5, finish="length"))
    assert set(FEATURE_NAMES) <= set(f)
    assert f["truncated"] == 1.0 and f["has_final_number"] == 1.0


def test_arithmetic_checks_find_wrong_equations() -> None:
    from edgecascade.quality.structure import arithmetic_checks

    text = "She has 16 - 3 - 4 = 9 eggs. 9 * 2 = $18. Then 3 × 4 = 13. (2 + 3) * 4 = 20, 1,000 / 4 = 250."
    assert arithmetic_checks(text) == (5, 1)  # 3 × 4 = 13 is wrong
    latex = r"\[ 180 \times (1 - 0.30) = 180 \times 0.70 = 126 \] and \( \frac{2}{2} = 1 \)"
    assert arithmetic_checks(latex) == (2, 0)  # a chain is checked link by link; 0.70 is not read as 0
    assert arithmetic_checks("Total = price + tax = 12") == (0, 0)  # words are not arithmetic
    f = math_features(completion(["3", " *", " 6", " =", " 17", "."], [-0.1] * 6))
    assert f["arith_wrong"] == 1.0 and f["arith_checked_log"] > 0
    # a sum longer than the expression limit is not checked from its tail (a right one read as wrong)
    terms = list(range(120, 620, 15))
    assert arithmetic_checks(f"Total = {' + '.join(map(str, terms))} = {sum(terms):,}.") == (0, 0)
    assert arithmetic_checks(f"{' + '.join(map(str, range(1, 44)))} = 946. Then 2 + 2 = 5.") == (1, 1)


def test_results_at_the_end_of_a_line_bullets_and_currencies_are_read() -> None:
    """Found by a review: the lookahead after "= <number>" ran over the line break, so a result was
    dropped (or cut back into its own digits) when the next line opened with "2." or "- "; a markdown
    bullet was read as a minus sign; and the final answer was not found after "£", "€" or "\\(".
    """
    from edgecascade.quality.structure import arithmetic_checks

    assert arithmetic_checks("1. 18 * 3 = 50\n\n2. Then 50 + 4 = 54.") == (2, 1)  # the slip is seen
    assert arithmetic_checks("18 * 3 = 50\n- then add 4") == (1, 1)
    assert arithmetic_checks("3,650 + 365 = 4,015\n\n3. Determine the rest") == (1, 0)  # read as 4,015, not 4
    assert arithmetic_checks("   - 8 * 30 = 240 minutes") == (1, 0)  # a bullet, not -240
    assert arithmetic_checks("- 1 + 3 + 0.5 + 1.5 + 2 = 8 hours") == (1, 0)
    assert arithmetic_checks("2 + 3 = 5 * 2 = 10") == (1, 0)  # a chain is still checked link by link
    f = math_features(completion(["1. 6 * 4 = 24\n\n2. So the answer is 24."], [-0.1]))
    assert f["reasoning_agrees"] == 1.0
    for said, value in (("The answer is £77.20.", 77.2), ("The answer is €760.", 760.0),
                        ("The answer is \\(37\\).", 37.0), ("The answer is $5.", 5.0)):
        f = math_features(completion([said], [-0.1]))
        assert f["has_final_number"] == 1.0, said
        assert f["final_integer"] == float(value == int(value)), said


def test_arithmetic_checks_stay_fast_on_pathological_text() -> None:
    import time

    from edgecascade.quality.structure import arithmetic_checks

    texts = [" ".join(f"{n % 90 + 10} {'+-*/'[n % 4]}" for n in range(1700)),  # 8k chars, no '='
             "1" * 5000, "x: 1 " + "+-" * 3000 + "1 = 2", " = ".join(["1 + 1"] * 1000),
             " ".join(f"{n} +" for n in range(3000)) + " 1 = 7"]
    t0 = time.perf_counter()
    for t in texts:
        arithmetic_checks(t)
    assert time.perf_counter() - t0 < 1.0  # linear: the old regex took hours on the first one
    assert arithmetic_checks("10 / 3 = 3.3 and 200 / 3 = 66.7 and 50 / 3 = 17") == (3, 0)  # rounded, not wrong
    assert arithmetic_checks("1. 16 - 3 - 4 = 9") == (1, 0)  # a numbered step is not part of the sum


def test_boxed_final_answers_are_read() -> None:
    toks = ["2", " +", " 1", " =", " 3", ".", " \\(\\boxed{", "3", "}\\)"]
    f = math_features(completion(toks, [-0.1] * 7 + [-1.5, -0.1]))
    assert f["has_final_number"] == 1.0 and f["final_lp_min"] == -1.5 and f["reasoning_agrees"] == 1.0


def test_spans_are_not_misread_when_the_tokens_do_not_spell_the_text() -> None:
    # an older trace: "÷" split across two tokens, each decoded alone to a replacement character;
    # the text has one character where the tokens have two, so every later span would be shifted
    toks = ["8", " \ufffd", "\ufffd", " 2", " =", " 4", ".", " The", " answer", " is", " 4", "."]
    lps = [-0.1, -0.1, -0.1, -0.1, -0.1, -0.1, -0.1, -3.0, -3.0, -3.0, -0.7, -0.1]
    c = completion(toks, lps)
    c = Completion("8 ÷ 2 = 4. The answer is 4.", c.model, c.finish_reason, c.usage, c.timings, c.logprobs)
    f = math_features(c)
    assert f["has_final_number"] == 1.0 and f["final_lp_min"] == 0.0  # cannot be located: neutral, not " is"
    # the numbers are read in the tokens' own text, where they line up
    assert abs(f["numbers_lp_p10"] - np.percentile([-0.1, -0.1, -0.1, -0.7], 10)) < 1e-12


def test_code_nested_past_the_parser_limit_does_not_parse_and_does_not_crash() -> None:
    """`x = ----...1` raised RecursionError (MemoryError when longer) out of the features, and so
    out of the query whose draft it was."""
    import sys

    for n in (3000, 10_000):
        f = code_features(completion([f"x = {'-' * n}1"], [-0.1]))
        assert f["defines_function"] == 0.0
        if sys.version_info >= (3, 11):  # 3.10's parser takes this nesting whole, and parses it
            assert f["code_parses"] == 0.0


def test_answer_readers_stay_linear_on_long_runs_of_whitespace_and_unfinished_working() -> None:
    """Three patterns let a run of whitespace be split every way: a draft that ends in thousands of
    newlines after "The answer is" (what a model stuck at the token limit writes) took 44 s in the
    math features, "=" then spaces 0.4 s, and a sum of 14 terms after "The answer is" with no "=" 59 s
    in the grader, whose cross-check reading runs on the engine's event loop. Run in a child process,
    so that a regression fails on its time limit instead of hanging the suite."""
    import subprocess
    import sys

    code = """
from edgecascade import Completion, Usage, Timings
from edgecascade.datasets import extract_gsm8k_answer
from edgecascade.quality.structure import math_features
for text in ("The answer is" + "\\n" * 20000, "The answer is " + " " * 20000 + "x", "2 = " + " " * 20000,
             "The answer is " + " + ".join(str(5 * i) for i in range(1, 40)) + " dollars.",
             "The answer is " + " x ".join(str(i) for i in range(1, 40)) + " apples."):
    math_features(Completion(text, "m", "length", Usage(1, 1), Timings()))
    extract_gsm8k_answer(text)
print("done")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr
    # and they read what they read before: the stated result after working, the first number otherwise
    from edgecascade.datasets import extract_gsm8k_answer

    assert extract_gsm8k_answer("The answer is 45 + 25 = 70.") == 70
    assert extract_gsm8k_answer("The answer is (3 + 4) x 2 = 14 apples.") == 14
    assert extract_gsm8k_answer("The answer is 18 (x = 3).") == 18
    assert extract_gsm8k_answer("The answer is $5 + $3 = $8.") == 8
