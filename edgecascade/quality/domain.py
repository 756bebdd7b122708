"""Which kind of task a prompt is: the key a calibration uses to pick its per-domain calibrator.

Why per domain: a feature means different things on different tasks. A 0.5B model's code is
usually right and its word-problem answers usually wrong, and the logprob level that separates
right from wrong differs between them; one calibrator fitted on both bends to the average. On the
GSM8K calibration half (5-fold cross-validation, issue 3) a calibrator fitted on math alone kept
clearly more drafts at the same quality target than one fitted on math and code together.

The domain must be read from the request alone, at query time, so it is decided from the prompt
with plain cues. A prompt with no clear cue has no domain: the calibration's pooled calibrator
(fitted on everything) answers for it.
"""

from __future__ import annotations

import re

CODE = "code"
MATH = "math"

# a code block, a Python definition or import line, or an explicit request for code
_CODE_CUES = re.compile(
    r"```|^[ \t]*(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(|^[ \t]*class[ \t]+\w+[ \t]*[:(]"
    r"|^[ \t]*(?:import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import[ \t])"
    r"|\b(?:write|complete|implement|fix|refactor)\b[^.?!\n]{0,40}\b(?:function|method|class|program|script)\b",
    re.IGNORECASE | re.MULTILINE,
)
# a question that asks for a quantity, or says it is a problem to solve
_MATH_ASKS = re.compile(r"\bhow\s+(?:many|much|long|far|old|fast)\b|\b(?:solve|calculate|compute)\b", re.IGNORECASE)
# weaker: it asks "what is" / about a total; counted only with two or more numbers in the prompt
_MATH_MENTIONS = re.compile(r"\bwhat\s+(?:is|was|are|were)\b|\b(?:total|sum|average|percent(?:age)?)\b",
                            re.IGNORECASE)
_NUMBER = re.compile(
    r"\d+(?:[.,]\d+)*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty"
    r"|fifty|hundred|thousand|million|dozen|twice|thrice|half|quarter)\b",
    re.IGNORECASE,
)


def prompt_domain(prompt: str | None) -> str | None:
    """``"code"``, ``"math"`` or None (no clear cue) for a prompt.

    Code first: a coding task often contains numbers and questions too. Math needs a number in the
    prompt (digits or a word: word problems often spell them) and a question for a quantity ("how
    many", "solve"), or two numbers and a weaker cue ("what is", "total"): "How old is the
    universe?" or a chat message that mentions a year is not a word problem.
    """
    if not prompt:
        return None
    if _CODE_CUES.search(prompt):
        return CODE
    numbers = len({m.lower() for m in _NUMBER.findall(prompt)})
    if (numbers >= 1 and _MATH_ASKS.search(prompt)) or (numbers >= 2 and _MATH_MENTIONS.search(prompt)):
        return MATH
    return None
