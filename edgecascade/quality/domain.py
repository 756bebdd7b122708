"""Which kind of task a prompt is: the key a calibration uses to pick its per-domain calibrator.

Why per domain: a feature means different things on different tasks. A 0.5B model's code is
usually right and its word-problem answers usually wrong, and the logprob level that separates
right from wrong differs between them; one calibrator fitted on both bends to the average. On the
GSM8K calibration half of the first 400 items (5-fold cross-validation repeated 20 times, an ad-hoc
script; issue 3) a calibrator fitted on math alone kept 23% of drafts at the quality target, one
fitted on math and code together 17%. On the held-out halves of the shipped benchmark the gain was
small (see the README's "Benchmarks": its "one for all domains" rows are the pooled calibrators).

The domain must be read from the request alone, at query time, so it is decided from the prompt
with plain cues. A prompt with no clear cue has no domain: the calibration's pooled calibrator
(fitted on everything) answers for it.
"""

from __future__ import annotations

import re

from .structure import _INLINE_FENCE

CODE = "code"
MATH = "math"

# a Python definition or import line (keywords are lower case: "Class A shares" or "Import tariffs
# rose" are prose)
_CODE_LINES = re.compile(
    r"^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(|^[ \t]*class[ \t]+\w+[ \t]*[:(]"
    r"|^[ \t]*(?:import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import[ \t])",
    re.MULTILINE,
)
# a code block: one tagged with a language, or whose text reads as code (braces, semicolons, calls,
# operators); an untagged block of prose ("Summarize this email: ```...```") is not code. A fence
# with its code on the same line (```x = f(1)```) has no tag
_ONE_LINE_FENCE = re.compile(r"```([^\n`]+)```")
_FENCE_LANGS = frozenset({
    "python", "py", "python3", "py3", "javascript", "js", "jsx", "typescript", "ts", "tsx", "java", "rust", "rs", "go",
    "golang", "c", "cpp", "c++", "cc", "h", "hpp", "csharp", "cs", "sql", "bash", "sh", "shell", "zsh", "ruby",
    "rb", "php", "kotlin", "kt", "swift", "scala", "r", "julia", "lua", "perl", "haskell", "hs", "html", "css",
    "scss", "powershell", "ps1", "dockerfile", "makefile",
})
_CODE_TEXT = re.compile(r"[;{}]\s*$|^\s*[}\]]|\w\([^()\n]*\)|==|!=|=>|->|\+=|<=|>=|^\s*(?:return|print|let|var|const|"
                        r"if|for|while|SELECT|select)\b", re.MULTILINE)


def _code_block(prompt: str) -> bool:
    for m in _INLINE_FENCE.finditer(prompt):
        words = m.group(1).split()
        tag = words[0].lower() if words else ""
        if tag in _FENCE_LANGS or (not tag and _CODE_TEXT.search(m.group(2))):
            return True
    return any(_CODE_TEXT.search(m.group(1)) for m in _ONE_LINE_FENCE.finditer(prompt))


# an explicit request for code: "write a (recursive Python) function", "complete this method",
# or a language named with what to write in it ("a Python script"); "an essay on the function
# of the kidneys" or "learn Python in 3 months" are not
_LANGS = r"python|javascript|typescript|java|rust|golang|c\+\+|c#|sql|bash|shell|ruby|php|kotlin|swift"
_CODE_ASKS = re.compile(
    r"\b(?:write|create|complete|implement|fix|refactor|debug)\s+(?:(?:a|an|the|this|that|my|me|us)\s+)?"
    r"(?:[\w+#-]+\s+){0,2}?(?:function|method)s?\b"
    # a program or code asked for without a language ("Write code to ...", "Write a program that ..."); not
    # "script", which is also a play's
    # only plain words between ("a short program", "a small computer program"): "a workout program",
    # "a code of conduct", "a query letter" or "a poem about code" are prose
    r"|\b(?:write|create|implement)\s+(?:(?:a|an|the|some|me)\s+)?"
    r"(?:(?:simple|short|small|quick|fast|tiny|basic|complete|working|full|little|new|sample|example|computer|"
    rf"recursive|efficient|following|two|three|several|few|\d+|{_LANGS})\s+){{0,2}}"
    r"(?:program|code(?!\s+of\b)|snippet|quer(?:y|ies)(?!\s+letters?\b)|regex(?:es)?|regular\s+expressions?"
    r"|one-liners?)s?\b"
    # a coding task named as one: "Solve this coding problem: given n = 5 ..." (a review found such
    # prompts, a SQL query and a regex asked for, read as math)
    r"|\bcoding\s+(?:problem|challenge|question|task|exercise|interview)s?\b"
    rf"|\b(?:{_LANGS})\s+(?:function|program|script|code|class|method|snippet)s?\b"
    rf"|\b(?:write|implement|code)\b[^.?!\n]{{0,60}}\bin\s+(?:{_LANGS})\b",
    re.IGNORECASE,
)
# a question that asks for a quantity, or says it is a problem to solve
_MATH_ASKS = re.compile(r"\bhow\s+(?:many|much|long|far|old|fast|tall|big|high|heavy|often)\b"
                        r"|\b(?:solve|calculate|compute)\b", re.IGNORECASE)
# the prompt says so
_MATH_SAYS = re.compile(r"\b(?:math(?:s|ematics)?|arithmetic|word)\s+problems?\b", re.IGNORECASE)
# weaker cues, counted only with two numbers written in digits: "15% of 80", "the total of 12 and 30";
# "what is" only with arithmetic written out ("what is 2+2") or a measured quantity ("$30", "80
# miles"): "What's the difference between Python 2 and 3?" or "Windows 10 vs Windows 11: what is
# new?" are chat
_MATH_MENTIONS = re.compile(r"\b(?:total|sum|average|percent(?:age)?)\b|%", re.IGNORECASE)
_WHAT = re.compile(r"\bwhat(?:\s+(?:is|was|are|were)|'s|’s)\b", re.IGNORECASE)
# a number, an operator, a number: "2+2", "17 * 23", "10 - 3", "3 / 4", "3 x 4"; "-", "/" and "x"
# only with spaces around them, since "10-20" is a range, "24/7", "9/11" and "80/20" are names and
# "3x2" is a size
_ARITHMETIC = re.compile(r"\d\s*[+*×÷^]\s*\d|\d\s+[-−/xX]\s+\d")
# a measured quantity, as word problems state them: money, or a number with its unit
_MEASURE = re.compile(
    r"\$\s?\d|\d\s*(?:miles?|pounds?|lbs?|feet|foot|ft|yards?|inch(?:es)?|meters?|metres?|km|kg|grams?|liters?"
    r"|litres?|gallons?|ounces?|oz|hours?|minutes?|seconds?|days?|weeks?|months?|years?|dollars?|cents?|degrees?)\b",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred"
    r"|thousand|million|dozen|once|twice|thrice|half|halves|thirds?|quarters?|fourths?|fifths?|tenths?)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(?:1[5-9]|20)\d\d$")  # "in 1990", "of 2023": a date, not a quantity to work with


def _digit_numbers(prompt: str) -> int:
    return sum(1 for m in _DIGITS.findall(prompt) if not _YEAR.match(m))


def prompt_domain(prompt: str | None) -> str | None:
    """``"code"``, ``"math"`` or None (no clear cue) for a prompt.

    Code first: a coding task often contains numbers and questions too. Math: the prompt says it is
    a math (or word) problem, or it has two numbers in the prompt (years do not count) and either a
    question for a quantity ("how many", "solve"; the numbers may be words, as word problems spell
    them) or a weaker cue with the numbers in digits ("total", "%", or "what is" with arithmetic
    written out or a measured quantity). "How long should I boil 2 eggs?", "What were the top 10
    films of 2023?", "What's the difference between Python 2 and 3?" or "the difference between
    one- and two-phase commit" are not word problems.
    """
    if not prompt:
        return None
    if _CODE_LINES.search(prompt) or _code_block(prompt) or _CODE_ASKS.search(prompt):
        return CODE
    if _MATH_SAYS.search(prompt):
        return MATH
    digits = _digit_numbers(prompt)
    if digits + len(_WORDS.findall(prompt)) >= 2 and _MATH_ASKS.search(prompt):
        return MATH
    weak = _MATH_MENTIONS.search(prompt) or (
        _WHAT.search(prompt) and (_ARITHMETIC.search(prompt) or _MEASURE.search(prompt)))
    if digits >= 2 and weak:
        return MATH
    return None
