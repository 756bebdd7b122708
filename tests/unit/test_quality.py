"""Checks and logprob features, on hand-made drafts with known answers."""

from __future__ import annotations

import math
from typing import Any

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
    # the apostrophe forms and apologies without "but" had slipped through
    "I'm unable to help with that.",
    "I’m not able to provide that.",
    "I'm sorry, I can't help with that.",
    "Sorry, I can’t assist with that request.",
    "I apologize, but I cannot help with that.",
    # more a review found slipping through
    "I'm afraid I can't help with that.",
    "Unfortunately, I can't assist with that request.",
    "I'm really sorry, but I can't help with that.",
    "As an AI assistant, I cannot provide medical advice.",
    "I can't create content that promotes violence.",
    "Sorry — I can't help with that.",
])
def test_refusals_are_caught(text: str) -> None:
    assert not check_refusal(completion(text)).passed


def test_a_cut_answer_of_a_backend_that_sent_no_counts_is_not_said_to_be_0_tokens() -> None:
    from dataclasses import replace

    from edgecascade.quality.checks import check_truncated

    c = completion("The answer is", finish="length", lps=[-0.1, -0.2, -0.3])
    assert check_truncated(c).detail == "cut off at the token limit (3 tokens)"
    unreported = replace(c, usage=Usage(0, 0, reported=False))
    assert check_truncated(unreported).detail == "cut off at the token limit (3 tokens)"  # counted from logprobs
    assert check_truncated(replace(unreported, logprobs=None)).detail == "cut off at the token limit"


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.",
    "The function returns None. I cannot stress enough that inputs must be sorted.",
    "Sorry for the wait: the answer is 42.",
    "I'm sorry to hear that. Here is a plan: first, rest.",
    "I apologize for the mistake: the answer is 7.",
    "I can help with that! The answer is 5.",
    # answers a review found rejected as refusals
    "I can't help but notice that the loop runs one time too many. Here's the fix: use range(n).",
    "As an AI, I don't have personal preferences, but here is a comparison of the two options.",
    "As an AI language model, I do not have feelings, but I can explain how they work.",
    # an apology that hedges is an answer (the review of the first version of the new phrasings)
    "Unfortunately, I can't see any bug: the code is correct and returns 42.",
    "I'm afraid I can't be more precise than 3.14 here.",
    "I cannot give an exact closed form, but numerically the answer is 2.718.",
    "Sorry, I can't help but notice the off-by-one: use range(n).",
])
def test_ordinary_answers_are_not_refusals(text: str) -> None:
    assert check_refusal(completion(text)).passed


@pytest.mark.parametrize(("question", "expr", "value"), [
    ("What is 17 * 23?", "17 * 23", "391"),
    ("what's 17 x 23", "17 * 23", "391"),
    ("Calculate 100-58", "100-58", "42"),  # unspaced, after a verb that can only mean arithmetic
    ("Calculate 144 divided by 12.", "144 / 12", "12"),
    ("How much is 1,250 + 750?", "1,250 + 750", "2000"),
    ("(3 + 4) × 2 = ?", "(3 + 4) * 2", "14"),
    ("What is 10 / 4?", "10 / 4", "2.5"),
    ("17 minus 20", "17 - 20", "-3"),
    ("What is 18352945809101941 + 71368231235855828?", "18352945809101941 + 71368231235855828",
     "89721177044957769"),  # exact, beyond a float's 53 bits
])
def test_a_question_that_is_only_a_sum_is_read_exactly(question: str, expr: str, value: str) -> None:
    from edgecascade.quality.sums import bare_sum

    got = bare_sum(question)
    assert got is not None and (got.expr, got.shown()) == (expr, value)


@pytest.mark.parametrize("question", [
    "What is the capital of France?",
    "Janet has 16 eggs and eats 3. How many are left?",  # a word problem: the calibrator's
    "What is 17 * 23? Answer in one sentence.",  # more than a sum
    "Why does 0.1 + 0.2 = 0.30000000000000004 in Python?",
    "Solve 2x + 3 = 7",
    "What is 2^10?", "What is 2**10?",  # powers are not read
    "What is 2,5 + 2,5?",  # a decimal comma, or a list: ambiguous
    "What is 5 / 0?",
    "What is 17?",
    # names, ratios, dates and codes that only look like sums (found by review)
    "What is 7-11?", "What is 80/20?", "What is 24/7?", "What is 1920x1080?", "What is 0x10 + 0x10?",
    "What is 12-25-2024?", "what's 17x23",
    "What is 1.000 + 1?",  # a dot between thousands, or a decimal point
    "",
])
def test_anything_more_than_a_sum_is_left_to_the_calibrator(question: str) -> None:
    from edgecascade.quality.sums import bare_sum

    assert bare_sum(question) is None


@pytest.mark.parametrize(("question", "answer", "detail"), [
    ("What is 17 * 23?", "17 * 23 equals 411.",
     "the question asks for 17 * 23, which is 391; the answer never says so (its last number is 411)"),
    ("Calculate 2736 / 24.", "2736 / 24 = 111", "which is 114; the answer never says so (its last number is 111)"),
    ("What is 497 * 16?", "You can compute it in Python:\n```python\nprint(497 * 16)\n```", "which is 7952"),
    ("What is 5 + 5?", "It is 11, obviously.", "the answer never says so (its last number is 11)"),
    ("What is 17 - 20?", "17 - 20 = 3", "which is -3"),  # a sign slip
    ("What is 4 - 2?", "4 - 2 = 3", "which is 2"),  # the operand it repeats is not the value it states
    ("What is 10 / 3?", "10 / 3 = 3.5", "which is 3.333333333"),
    ("What is 2 / 7?", "0.2858", "which is 0.2857142857"),  # cut short is toward zero
])
def test_an_answer_that_never_states_the_sum_is_rejected(question: str, answer: str, detail: str) -> None:
    ch = check_arithmetic(completion(answer), question)
    assert (ch.name, ch.passed) == ("arithmetic", False)
    assert detail in ch.detail


@pytest.mark.parametrize(("question", "answer"), [
    ("What is 17 * 23?", "17 * 23 = 391."),
    ("What is 17 * 23?", "The product of 17 and 23 is **391**."),
    ("What is 17 * 23?", "17 * 23 = 411. Sorry: 17 * 23 = 391."),
    ("What is 17 * 23?", "391 (17 × 20 = 340, plus 17 × 3 = 51)"),  # stated, then worked
    ("What is 1,250 + 750?", "That makes 2,000."),
    ("What is 10 / 3?", "About 3.33."),  # rounded
    ("What is 2 / 3?", "0.66"),  # cut short
    ("What is 10 / 3?", "3 1/3"),  # a form it cannot read: not judged
    ("What is 17 minus 20?", "Minus 3."),
    ("What is 17 - 20?", "-3"),
    ("What is 17 - 20?", "17 − 20 = −3"),
    ("What is 5 + 5?", "Ten, obviously."),  # no digit at all: not judged
    # the value in the notations answers use (found by review)
    ("What is 500 * 2?", "$1{,}000$"), ("What is 500 * 2?", r"\(1\,000\)"), ("What is 1000 * 1000?", "1 000 000"),
    ("What is 1000 * 1000?", "1.000.000"), ("What is 1000 * 1000?", "One million: 1 million."),
    ("What is 1000 * 100?", "1,00,000"), ("What is 17 * 23?", "3.91e2"), ("What is 17 * 23?", "3.91 × 10^2"),
    ("What is 9155 * 9155?", "about 83.8 million"), ("What is 3 / 4?", "75.0%"), ("What is 1 / 8?", "12.5 percent"),
    ("What is 7 / 3?", "2.3333333333333335"), ("What is 0.1 + 0.2?", "0.30000000000000004"),
    ("What is 0.5 + 0.25?", "0.5 + 0.25 = .75"), ("What is 17 * 23?", "391 m"), ("What is 17 * 23?", "391 100% sure"),
    ("What is 18352945809101941 + 71368231235855828?", "89721177044957769"),
    # operands read as written, not through a float (which made this ...569 and rejected the answer)
    ("What is 12345678901234567.5 + 1?", "12345678901234568.5"),
    # questions that are not only a sum are not judged at all, whatever the answer says
    ("Janet has 16 eggs and eats 3. How many are left?", "She has 12 eggs left."),
    ("What is 45 / 60 as a percentage?", "75%"),
    ("What is 17 * 23?", "17 * 23 = 391"),
    # found by a review: the result in words after the operands (not judged, it had been rejected),
    # a spaced sign after "=", and a number with marks before a space (it had crashed the query)
    ("What is 2 + 2?", "2 + 2 equals four."), ("What is 5 - 8?", "$5 - 8 = - 3$"),
    ("What is 2,000 * 100?", "2,000 100-dollar bills make 200,000 dollars."),
    ("What is 1000 * 250?", "1{,}000 250-gram bags: 250{,}000 grams."),
])
def test_an_answer_that_states_the_sum_or_a_question_that_is_more_passes(question: str, answer: str) -> None:
    assert check_arithmetic(completion(answer), question).passed


def test_without_a_question_there_is_nothing_to_check() -> None:
    assert check_arithmetic(completion("17 * 23 equals 411."), None).passed


def test_a_draft_looping_on_digits_is_judged_without_failing() -> None:
    """A number too long to be a stated value (past Python's int-parsing limit) is skipped, not raised."""
    ch = check_arithmetic(completion("0." + "6" * 5000), "What is 2 / 3?")
    assert ch.name == "arithmetic"


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


def test_scripted_alternatives_are_listed_best_first_as_a_backend_lists_them() -> None:
    """A scripted token less likely than its alternatives was listed first, so the top-1/top-2
    margin went negative and `mean_margin_prob` reported a confidence of -1.32."""
    import asyncio

    from edgecascade import Request, ScriptedProvider, ScriptedReply
    from edgecascade.types import Message

    for p in (0.3, 0.5, 0.9):
        c = asyncio.run(ScriptedProvider([ScriptedReply("a b c", logprob=math.log(p), top_k=3)]).complete(
            Request([Message("user", "q")])))
        assert c.logprobs is not None
        top = c.logprobs.top_logprobs
        assert (np.diff(top, axis=1) <= 0).all()  # best first
        f = logprob_features(c.logprobs)
        assert f is not None and f.mean_margin >= 0 and 0 <= f.score("mean_margin_prob") <= 1
        # the chosen token is still among the alternatives, under its own name
        assert all(t in row for t, row in zip(c.logprobs.tokens, c.logprobs.top_tokens, strict=True))


def test_a_score_the_logprobs_cannot_give_escalates_the_draft() -> None:
    """With one alternative per token the margin is nan: the draft was "accepted on checks alone",
    however unlikely its tokens (geometric-mean probability 0.05 here, against a 0.9 threshold)."""
    rule = AcceptRule(confidence="mean_margin_prob", min_confidence=0.9)
    d = decide(completion("The capital is Paris.", lps=[-3.0] * 5), rule, RepetitionCheck())
    assert not d.accepted and d.confidence is None
    assert "mean_margin_prob cannot be computed for this draft" in d.reason and "top_logprobs >= 2" in d.reason
    # a tier that gives no logprobs at all is still judged on its checks, and says so
    d = decide(completion("The capital is Paris."), rule, RepetitionCheck())
    assert d.accepted and d.reason == "accepted on checks alone: this draft came without logprobs"


def test_a_draft_with_an_empty_logprob_list_escalates_rather_than_pass_unjudged() -> None:
    """A server that answers `"logprobs": {"content": []}`, or a whitespace-only draft, has logprobs
    for no token: no score can be computed, and the draft was "accepted on checks alone", whatever
    the threshold, as if its tier gave no logprobs."""
    for rule in (AcceptRule(confidence="geo_mean_prob", min_confidence=0.99),
                 AcceptRule(confidence="min_prob", min_confidence=0.01)):
        for text in ("Lyon, probably.", ""):
            d = decide(completion(text, lps=[]), rule, RepetitionCheck(), checks=[])
            assert not d.accepted and d.confidence is None
            assert d.reason == (f"rejected: {rule.confidence} cannot be computed for this draft: "
                                "the draft has no tokens to judge")
    # with no threshold set the checks alone decide, as before
    d = decide(completion("Lyon.", lps=[]), AcceptRule(confidence="geo_mean_prob"), RepetitionCheck(), checks=[])
    assert d.accepted and d.reason.startswith("accepted: all checks passed")


# -- found by a review of the query-time checks (2026-11-28): each failed on the code before --------


@pytest.mark.parametrize("text", [
    "I cannot fulfill this request.",  # "fulfil" missed the American spelling (Llama's usual refusal)
    "I can't fulfill that request.",
    "I apologize, but I'm unable to assist with that.",  # after an apology, "I'm unable to" had needed "i 'm"
    "Sorry, I'm unable to help with that.",
    "Unfortunately, I'm unable to provide that information.",
    "I'm afraid I'm not able to share that.",
])
def test_more_refusal_phrasings_are_caught(text: str) -> None:
    assert not check_refusal(completion(text)).passed


@pytest.mark.parametrize("text", [
    "10**40 = 1" + "0" * 40,  # a big number written out
    "1/7 = 0." + "142857" * 9,  # a repeating decimal to 54 places
    "Sign here: " + "_" * 40,
    "+----------" * 5 + "+",  # a table's border line
])
def test_digits_and_marks_that_repeat_in_a_finished_answer_are_no_loop(text: str) -> None:
    """Any 32 identical characters had period 8: right answers were rejected as loops."""
    assert check_repetition(completion(text), min_period=8, min_repeats=4).passed
    # cut off at the token limit, the same run is a loop (a model that lost the thread)
    assert not check_repetition(completion(text, finish="length"), min_period=8, min_repeats=4).passed


def test_words_that_repeat_are_still_a_loop() -> None:
    # the last: a heading and a rule repeated, whose rule alone is a run of marks (the first version
    # stopped at that run and passed the loop)
    for text in ("ha" * 40, "abcdefgh" * 5, "很好" * 30, "The end. " * 10, ("Next step:\n" + "-" * 40 + "\n") * 6):
        assert not check_repetition(completion(text), min_period=8, min_repeats=4).passed, text


def test_a_value_written_as_a_power_is_not_called_wrong() -> None:
    """"10^6" for 1000 * 1000 was rejected: its last number is 6."""
    for question, answer in (("What is 1000 * 1000?", "10^6"), ("What is 1000 * 1000?", "It is 10⁶."),
                             ("What is 17 * 23?", "About 3.91×10²")):
        assert check_arithmetic(completion(answer), question).passed, answer
    assert not check_arithmetic(completion("17 * 23 = 411"), "What is 17 * 23?").passed
    # a power that is not the value is no excuse (the first version passed any answer with a power)
    for wrong in ("17 * 23 = 411, i.e. 4.11x10^2", "The answer is 2^9 = 512", "About 3.9×10³"):
        assert not check_arithmetic(completion(wrong), "What is 17 * 23?").passed, wrong


def test_a_null_logprob_leaves_the_p10_score_unknown_and_the_draft_escalates() -> None:
    """The tail was read from the known values alone: a draft with 12 of 20 logprobs missing was
    accepted on p10_prob 0.990."""
    lps = [-0.01] * 8 + [float("nan")] * 12
    assert math.isnan(logprob_features(completion("x", lps=lps).logprobs).p10_logprob)  # type: ignore[arg-type, union-attr]
    d = decide(completion("An answer.", lps=lps), AcceptRule(confidence="p10_prob", min_confidence=0.9),
               RepetitionCheck())
    assert not d.accepted and "p10_prob cannot be computed" in d.reason and "missing (null)" in d.reason


def test_a_margin_with_a_null_alternative_is_not_blamed_on_too_few_alternatives() -> None:
    top = [[-0.01, -5.0, -6.0, -7.0, -8.0]] * 3 + [[-0.01, float("nan"), -6.0, -7.0, -8.0]]
    d = decide(completion("An answer.", lps=[-0.01] * 4, top=top),
               AcceptRule(confidence="mean_margin_prob", min_confidence=0.5), RepetitionCheck())
    assert not d.accepted and "missing (null)" in d.reason and "at least 2 alternatives" not in d.reason
    one = decide(completion("An answer.", lps=[-0.01] * 4),
                 AcceptRule(confidence="mean_margin_prob", min_confidence=0.5), RepetitionCheck())
    assert not one.accepted and "at least 2 alternatives" in one.reason


def test_a_repetition_setting_the_check_could_never_fire_with_is_refused() -> None:
    """min_period x min_repeats past the 2,000 characters read had switched the check off silently."""
    with pytest.raises(ValueError, match="could never fire"):
        RepetitionCheck(min_period=600, min_repeats=4)
    assert RepetitionCheck(min_period=500, min_repeats=4).min_period == 500


def test_an_answer_of_characters_that_print_nothing_is_empty() -> None:
    from edgecascade.quality.checks import check_empty
    from edgecascade.types import Completion, Timings, Usage

    def answer(text: str) -> Completion:
        return Completion(text, "m", "stop", Usage(1, 1), Timings())

    assert not check_empty(answer("\u200b\ufeff \u2060\n")).passed  # zero-width and BOM: it had passed
    assert not check_empty(answer(" \ufeff\n\u200b\n\u200d \u200b")).passed  # mixed with whitespace, in layers
    assert check_empty(answer("\u200b42")).passed


def test_a_calibration_file_whose_meta_or_domains_are_wrong_is_refused_when_loaded(tmp_path: Any) -> None:
    """"meta": null loaded, then the cascade's build failed with an AttributeError; a domain calibrator
    reading a feature the pooled one does not (the examples) failed at the first query of its domain,
    after the draft was paid for."""
    import json
    from pathlib import Path

    from edgecascade.errors import ConfigError
    from edgecascade.quality.calibration import Calibration

    shipped = json.loads((Path(__file__).parents[2] / "models" / "qwen2.5-coder-0.5b.calibration.json").read_text())
    for name, bad, said in (("meta", None, "'meta' is not a JSON object"),
                            ("domains", {"math": {**shipped["domains"]["math"],
                                                  "features": [*shipped["domains"]["math"]["features"][:-1],
                                                               "examples_pass"]}},
                             "a domain calibrator reads examples_pass, which the pooled one does not")):
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps({**shipped, name: bad}))
        with pytest.raises(ConfigError, match=said):
            Calibration.load(f)
