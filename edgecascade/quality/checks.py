"""Cheap validators: reasons to reject a draft that no confidence score can rescue.

Each returns a :class:`Check` with a human-readable detail, so a rejection always says why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..types import Completion
from .structure import Equation, equations


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def check_empty(c: Completion) -> Check:
    if not c.text.strip():
        return Check("empty", False, "the answer is empty")
    return Check("empty", True)


def check_truncated(c: Completion) -> Check:
    if c.finish_reason == "length":
        return Check(
            "truncated", False, f"cut off at the token limit ({c.usage.completion_tokens} tokens)"
        )
    return Check("truncated", True)


# Refusals are only looked for at the start of an answer: a refusal is how an answer opens, while
# "I cannot" in the middle of a long explanation is ordinary prose.
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry,? but|i am sorry,? but|sorry,? but i|i (?:can ?not|can't|won't|am unable to|"
    r"'m unable to|am not able to|'m not able to) (?:help|assist|answer|provide|do|comply|fulfil)|"
    r"as an ai(?: language model)?,? i (?:can ?not|can't|don't|do not))",
    re.IGNORECASE,
)


def check_refusal(c: Completion) -> Check:
    head = c.text.strip()[:200].replace("\u2019", "'")
    if _REFUSAL.search(head):
        return Check("refusal", False, f"the answer is a refusal: {head[:60]!r}")
    return Check("refusal", True)


_TAIL_CHARS = 2000  # only the end of an answer is searched: loops show there, and it bounds the cost


def check_repetition(c: Completion, *, min_period: int, min_repeats: int) -> Check:
    """Reject an answer whose end is a loop: the last ``p * min_repeats`` characters have period p.

    Periodicity (``s[p:] == s[:-p]``) also catches a loop cut off in the middle of its unit, which
    is how a looping draft usually ends (at the token limit).
    """
    tail = c.text[-_TAIL_CHARS:].rstrip()
    for p in range(min_period, len(tail) // min_repeats + 1):
        if tail[-1] != tail[-1 - p]:  # cheap filter: a period-p tail repeats its last character
            continue
        s = tail[-p * min_repeats :]
        if s[p:] == s[:-p]:
            unit = s[-p:]
            return Check(
                "repetition", False,
                f"the answer loops: {unit[:40]!r} repeats at least {min_repeats} times at its end",
            )
    return Check("repetition", True)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x.is_integer() else f"{x:,.6f}".rstrip("0").rstrip(".")


# what a stated result may go on into: it was not the whole result ("75%", "1.2 million", "60k", "3e5",
# "12:30", "1/2")
_GOES_ON = re.compile(r"[ \t]*(?:%|percent\b|per cent\b|[kmb]\b|thousand|million|billion|trillion)|[e:/]\d",
                      re.IGNORECASE)
# "10-20", "12/25/2024", "24/7", "45/50": a range, a date or a ratio as often as a sum
_RANGE_OR_DATE = re.compile(r"\d[-/]\d")
# "2,5 + 2,5": a decimal comma, where the parser reads every comma as a thousands separator
_DECIMAL_COMMA = re.compile(r"\d,(?!\d{3}(?!\d))")


def _judged(e: Equation) -> bool:
    """Whether the check may judge an equation: it reads, whole and as written, as a sum. When in
    doubt, no: a wrong rejection costs a call to a larger model, and the score still judges."""
    expr = e.as_written[0]
    if e.glued or _GOES_ON.match(e.after) or _RANGE_OR_DATE.search(expr) or _DECIMAL_COMMA.search(expr):
        return False
    # "9 - 5 is 8 hours", "pages 10 - 20 is 11": said in words, a difference is as often a range
    return not (e.worded and "-" in expr)


def _misstated(e: Equation) -> bool:
    """Wrong beyond rounding, with a list bullet read as a bullet: 25 / 8 = 4 buses is rounded up,
    2 / 3 = 0.66 cut short."""
    value, stated = e.as_written[1], e.stated
    cut_short = 2 * e.tolerance if e.tolerance < 0.5 else e.tolerance  # a last decimal dropped, not rounded
    if abs(value - stated) <= cut_short:
        return False
    return not (stated.is_integer() and math.floor(value) <= stated <= math.ceil(value))


def check_arithmetic(c: Completion) -> Check:
    """Reject an answer whose final number (as a grader reads it: after "the answer is", else the
    last number) is only ever stated as the result of arithmetic the answer got wrong: "17 * 23
    equals 411", "144 divided by 12 is 13". A calibrator weighs a wrong step among other signals (a
    worked answer may slip and recover; on the traced GSM8K drafts the shipped rules kept one of the
    drafts this rejects); a bare answer gives it nothing else to go on, and there its logprobs read
    as confident. It judges only what reads unambiguously as a sum (see ``_judged``). Answers with a
    code block are left alone: their numbers are code, not stated results."""
    if "```" in c.text:
        return Check("arithmetic", True)
    from ..datasets import extract_gsm8k_answer  # datasets imports this package's structure module

    final = extract_gsm8k_answer(c.text)
    if final is None:
        return Check("arithmetic", True)
    stating = [e for e in equations(c.text, checked=True) if abs(e.stated - final) <= e.tolerance]
    if stating and all(_judged(e) and _misstated(e) for e in stating):
        expr, value = stating[-1].as_written
        return Check("arithmetic", False, f"its final answer {_fmt(final)} comes from {expr.strip('$ ')} = "
                     f"{_fmt(stating[-1].stated)}, which is {_fmt(value)}")
    return Check("arithmetic", True)
