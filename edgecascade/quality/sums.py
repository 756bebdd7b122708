"""Bare sums: a question that is only arithmetic ("What is 17 * 23?") has one right answer, which
edgecascade can work out itself, exactly.

Why: asked `What is 17 * 23?`, the 0.5B answered "17 * 23 equals 411." and the calibrated rule
accepted it at 0.994. A bare answer shows no working, states no "the answer is" and is fluent, all of
which the calibrators learned to read as good signs on worked answers. Reading arithmetic out of the
*answer* to catch this rejects right answers in every other form an answer takes (percentages,
powers, ranges, dates, rounded constants, hex, resolutions: two reviews found dozens), so the
arithmetic is read from the *question*, and only where the question is nothing but a sum.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from fractions import Fraction

# "What is", "Calculate", "How much is", "Compute:" ... before the sum; "= ?", "?", "." after it
_ASK = re.compile(r"^(?:please\s+)?(?:(?:what|how\s+much)(?:'s|\s+is|\s+are)?|calculate|compute|evaluate|"
                  r"work\s+out)\b\s*:?\s*", re.IGNORECASE)
_END = re.compile(r"\s*(?:=\s*\??|\?|\.)?\s*$")
_WORDS = ((re.compile(r"\s+multiplied\s+by\s+", re.I), " * "), (re.compile(r"\s+divided\s+by\s+", re.I), " / "),
          (re.compile(r"\s+times\s+", re.I), " * "), (re.compile(r"\s+plus\s+", re.I), " + "),
          (re.compile(r"\s+minus\s+", re.I), " - "))
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-", "·": "*", "⋅": "*"})
_X = re.compile(r"(?<=\d)\s*[xX]\s*(?=\d)")
_PURE = re.compile(r"[\d\s.,+\-*/()]+")
# a comma inside a number that is not a thousands separator ("2,5"): ambiguous, so not a sum we read
_ODD_COMMA = re.compile(r"\d,(?!\d{3}(?!\d))")
_OPERATOR_BETWEEN = re.compile(r"[\d)]\s*[+\-*/]\s*[\d(]")
_MAX_QUESTION = 200
# every number an answer writes, its thousands commas included ("-1,234.5")
_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:,\d{3})*(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Sum:
    """A question's arithmetic, as it reads once normalised ("17 * 23"), and its exact value."""

    expr: str
    value: Fraction

    def shown(self) -> str:
        return _show(self.value)


def bare_sum(question: str) -> Sum | None:
    """The sum a question consists of, or None when it is anything more (a word problem, a sentence
    around the sum, a power, a variable, a decimal comma): those are left to the calibrator."""
    text = question.strip()
    if not text or len(text) > _MAX_QUESTION:
        return None
    text = _END.sub("", _ASK.sub("", text, count=1))
    text = text.translate(_SYMBOLS)
    for pattern, symbol in _WORDS:
        text = pattern.sub(symbol, text)
    text = _X.sub(" * ", text)
    if not _PURE.fullmatch(text) or _ODD_COMMA.search(text) or not _OPERATOR_BETWEEN.search(text):
        return None
    try:
        value = _exact(ast.parse(text.replace(",", ""), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return None
    return Sum(" ".join(text.split()), value)


def _exact(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(ast.unparse(node))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _exact(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _exact(node.left), _exact(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left / right  # ZeroDivisionError: not a sum with an answer
    raise ValueError("not plain arithmetic")


def states(answer: str, value: Fraction) -> bool | None:
    """Whether the answer writes ``value`` among its numbers: rounded or cut short to the decimals it
    writes, and a negative result also as its magnitude ("minus 3"). None when that cannot be told:
    the value is not whole and the answer writes no decimal (a fraction, "3 1/3", words)."""
    written = [m.group() for m in _NUMBER.finditer(answer)]
    if value.denominator != 1 and not any("." in w for w in written):
        return None
    for w in written:
        n = Fraction(w.replace(",", ""))
        decimals = len(w.partition(".")[2])
        if _near(n, value, decimals) or (value < 0 and _near(abs(n), -value, decimals)):
            return True
    return False


def _near(n: Fraction, value: Fraction, decimals: int) -> bool:
    """``n`` is ``value`` written to ``decimals`` places: rounded, or (with decimals) cut short."""
    gap = abs(n - value)
    return gap <= Fraction(1, 2 * 10**decimals) or (decimals > 0 and gap < Fraction(1, 10**decimals))


def _show(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.6f}".rstrip("0").rstrip(".")
