"""Cheap validators: reasons to reject a draft that no confidence score can rescue.

Each returns a :class:`Check` with a human-readable detail, so a rejection always says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from ..config import REPETITION_TAIL_CHARS
from ..types import Completion
from .sums import bare_sum, show, states, written


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


#: characters that print nothing yet are no whitespace to str.strip(): an answer of them is empty
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def check_empty(c: Completion) -> Check:
    if all(ch.isspace() or ch in _INVISIBLE for ch in c.text):
        return Check("empty", False, "the answer is empty")
    return Check("empty", True)


def check_truncated(c: Completion) -> Check:
    if c.finish_reason == "length":
        n = c.usage.completion_tokens if c.usage.reported else (len(c.logprobs) if c.logprobs is not None else None)
        said = f" ({n} token{'s' * (n != 1)})" if n else ""  # a backend that sent no counts: no "0 tokens"
        return Check("truncated", False, f"cut off at the token limit{said}")
    if c.finish_reason == "error":  # the backend ended it for its own reasons (vLLM's "abort"): not whole
        return Check("truncated", False, "the backend did not finish the answer (it gave a finish reason other "
                     "than a stop, the token limit or a filter)")
    return Check("truncated", True)


# Refusals are only looked for at the start of an answer: a refusal is how an answer opens, while
# "I cannot" in the middle of a long explanation is ordinary prose.
# ("I'm unable to", with or without a typographic apostrophe, and "Sorry, I can't" / "I apologize, but
# I cannot" had slipped through: the apostrophe forms sat after "i " and the apologies needed "but")
# (A review found more: "I'm afraid I can't", "Unfortunately, I can't", "I'm really sorry, but",
# "Sorry — I can't", "As an AI assistant, I cannot", "I can't create/write/..." slipped through;
# "I can't help but notice ...", "As an AI, I don't have preferences, but here is ...", and an apology
# that hedges ("Unfortunately, I can't see any bug: ...", "I cannot give an exact form, but ...") are
# answers: a refusal names what it declines to do.
# None of the committed answers reads otherwise.)
# (A third: "fulfil" missed the American "fulfill", and after an apology the "I'm unable to" forms
# needed a space before the apostrophe: "Sorry, I'm unable to help with that" slipped through.)
# The phrasings are English: a refusal in another language is left to the confidence score.
_CANNOT = r"(?:can ?not|can['’]t|won['’]t|am unable to|am not able to)"
_SORRY = r"(?:i['’]?m |i am )?(?:really |truly |so |very )?sorry|i apologi[sz]e|i(?:['’]m| am) afraid|unfortunately"
_DECLINE = (r"(?:help(?! but\b)|assist|answer|provide|do|comply|fulfill?|create|write|generate|share|discuss|"
            r"engage|support)\b")
_REFUSAL = re.compile(
    rf"^\W*(?:i['’]?m (?:really |truly |so |very )?sorry,? but|i am (?:really |truly |so |very )?sorry,? but|"
    rf"sorry,? but i|"
    rf"(?:{_SORRY})[,;:\s—–-]*(?:but,? )?i(?: {_CANNOT}|['’]m unable to|['’]m not able to) {_DECLINE}|"
    rf"i(?: {_CANNOT}|['’]m unable to|['’]m not able to) {_DECLINE}|"
    rf"as an ai(?: [\w-]+){{0,3}},? i (?:can ?not|can['’]t|won['’]t|(?:don['’]t|do not)(?![^.!?\n]*\bbut\b)))",
    re.IGNORECASE,
)


def check_refusal(c: Completion) -> Check:
    if c.finish_reason == "filtered":  # what is there may be a partial answer that reads as a whole one
        return Check("refusal", False, "the backend withheld or cut the answer (a content filter or its refusal)")
    head = c.text.strip()[:200].replace("\u2019", "'")
    if _REFUSAL.search(head):
        return Check("refusal", False, f"the answer is a refusal: {head[:60]!r}")
    return Check("refusal", True)




def check_repetition(c: Completion, *, min_period: int, min_repeats: int) -> Check:
    """Reject an answer whose end is a loop: the last ``p * min_repeats`` characters have period p.

    Periodicity (``s[p:] == s[:-p]``) also catches a loop cut off in the middle of its unit, which
    is how a looping draft usually ends (at the token limit).
    """
    tail = c.text[-REPETITION_TAIL_CHARS:].rstrip()
    for p in range(min_period, len(tail) // min_repeats + 1):
        if tail[-1] != tail[-1 - p]:  # cheap filter: a period-p tail repeats its last character
            continue
        s = tail[-p * min_repeats :]
        if s[p:] == s[:-p]:
            unit = s[-p:]
            if not any(ch.isalpha() for ch in unit) and c.finish_reason != "length":
                # digits and marks without a word ("0000…" of 10**40, 1/7 to 50 places, a line of
                # underscores, a table's border) in a finished answer: how it is written, not a loop;
                # a longer period may still be one (a heading and a rule, repeated)
                continue
            return Check(
                "repetition", False,
                f"the answer loops: {unit[:40]!r} repeats at least {min_repeats} times at its end",
            )
    return Check("repetition", True)


#: a power written out ("10^6", "3.91×10²", "10⁶"): the number reader reads its parts as separate
#: numbers, so the check reads its value here
_POWER = re.compile(r"(?:(\d+(?:\.\d+)?)\s*[×x*]\s*)?(\d+(?:\.\d+)?)\s*(?:\^\s*([-−]?\d+)|([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))")
_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def _powers(text: str) -> list[Fraction]:
    """The values of the powers ``text`` writes: 10^6, 10⁶, 3.91×10², 2^9 (each exactly)."""
    out = []
    for m in _POWER.finditer(text):
        coef, base, caret, sup = m.groups()
        try:
            exp = int((caret or sup.translate(_SUPERSCRIPT)).replace("−", "-"))
            if abs(exp) > 64:
                continue
            value = Fraction(base) ** exp
        except (ValueError, ZeroDivisionError):
            continue
        out.append(value * Fraction(coef) if coef else value)
    return out


def check_arithmetic(c: Completion, prompt: str | None) -> Check:
    """Reject an answer to a question that is only a sum ("What is 17 * 23?", see :mod:`.sums`) when
    none of the numbers it writes is that sum's value, worked out exactly here: "17 * 23 equals
    411." A question that is anything more (a word problem, a sentence around the sum) is left to the
    calibrator, as is an answer whose form cannot be told (a fraction for 10 / 3)."""
    question = bare_sum(prompt) if prompt else None
    if question is None or states(c.text, question) is not False:
        return Check("arithmetic", True)
    if question.value in _powers(c.text):  # the value written as a power ("10^6", "3.91×10²")
        return Check("arithmetic", True)
    numbers = written(c.text)  # what states() read, so the reason names what was looked at
    said = "it writes no number" if not numbers else f"its last number is {show(numbers[-1])}"
    return Check("arithmetic", False, f"the question asks for {question.expr}, which is {question.shown()}; "
                 f"the answer never says so ({said})")
