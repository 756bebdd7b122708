"""Cheap validators: reasons to reject a draft that no confidence score can rescue.

Each returns a :class:`Check` with a human-readable detail, so a rejection always says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..types import Completion
from .structure import equations


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
    return f"{x:,.0f}" if x.is_integer() else f"{x:,.6g}"


def check_arithmetic(c: Completion) -> Check:
    """Reject an answer whose final number (as a grader reads it: after "the answer is", else the
    last number) is only ever stated as the result of arithmetic the answer got wrong: "17 * 23
    equals 411", "144 divided by 12 is 13". A calibrator weighs a wrong step among other signals (a
    worked answer may slip and recover; on the traced GSM8K drafts the shipped rules kept one of the
    209 this rejects); a bare answer gives it nothing else to go on, and there its logprobs read as
    confident. Answers with a code block are left alone: their numbers are code, not stated results."""
    if "```" in c.text:
        return Check("arithmetic", True)
    from ..datasets import extract_gsm8k_answer  # datasets imports this package's structure module

    final = extract_gsm8k_answer(c.text)
    if final is None:
        return Check("arithmetic", True)
    stating = [e for e in equations(c.text, spoken=True) if abs(e.stated - final) <= e.tolerance]
    if stating and all(e.wrong_as_written for e in stating):
        expr, value = stating[-1].as_written
        return Check("arithmetic", False, f"its final answer {_fmt(final)} comes from {expr} = "
                     f"{_fmt(stating[-1].stated)}, which is {_fmt(value)}")
    return Check("arithmetic", True)
