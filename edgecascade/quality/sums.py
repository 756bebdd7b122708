"""Bare sums: a question that is only arithmetic ("What is 17 * 23?") has one right answer, which
edgecascade can work out itself, exactly.

Why: asked `What is 17 * 23?`, the 0.5B answered "17 * 23 equals 411." and the calibrated rule
accepted it at 0.994. A bare answer shows no working, states no "the answer is" and is fluent, all of
which the calibrators learned to read as good signs on worked answers. Reading arithmetic out of the
*answer* to catch this rejects right answers in every other form an answer takes (percentages,
powers, ranges, dates, rounded constants, hex, resolutions: two reviews found dozens), so the
arithmetic is read from the *question*, only where the question is nothing but a sum, and the
answer is only asked whether it writes the value anywhere, in any common notation. When in doubt,
the check does not judge: a wrong rejection costs a call to a larger model.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

# "What is", "How much is" (which may also ask about a name: "What is 7-11?") or a verb that can only
# mean arithmetic ("Calculate", "Compute") before the sum; "= ?", "?", "." after it
_ASK = re.compile(r"^(?:please\s+)?(?:(?P<what>(?:what|how\s+much)(?:'s|’s|\s+is|\s+are)?)|"
                  r"(?P<verb>calculate|compute|evaluate|work\s+out))\b\s*:?\s*", re.IGNORECASE)
_END = re.compile(r"\s*(?:=\s*\??|\?|\.)?\s*$")
_WORDS = ((re.compile(r"\s+multiplied\s+by\s+", re.I), " * "), (re.compile(r"\s+divided\s+by\s+", re.I), " / "),
          (re.compile(r"\s+times\s+", re.I), " * "), (re.compile(r"\s+plus\s+", re.I), " + "),
          (re.compile(r"\s+minus\s+", re.I), " - "))
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "−": "-", "·": "*", "⋅": "*"})
_SPACED_X = re.compile(r"(?<=\d)\s+[xX]\s+(?=\d)")
# "7-11", "80/20", "24/7", "9-5", "1920x1080", "0x10", "12-25-2024": names, ratios, dates and codes as
# often as sums, so read only after a verb that can only mean arithmetic ("Calculate 100-58")
_UNSPACED = re.compile(r"\d[-/xX]\d")
_PURE = re.compile(r"[\d\s.,+\-*/()]+")
# "2,5" (a decimal comma) and "1.000" (a dot between thousands): the writer's meaning is unclear
_AMBIGUOUS_NUMBER = re.compile(r"\d,(?!\d{3}(?!\d))|\d\.\d{3}(?!\d)")
_OPERATOR_BETWEEN = re.compile(r"[\d)]\s*[+\-*/]\s*[\d(]")
_MAX_QUESTION = 200


@dataclass(frozen=True, slots=True)
class Sum:
    """A question's arithmetic, as it reads once normalised ("17 * 23"), its operands in order and
    its exact value."""

    expr: str
    operands: tuple[Fraction, ...]
    value: Fraction

    def shown(self) -> str:
        return show(self.value)


def bare_sum(question: str) -> Sum | None:
    """The sum a question consists of, or None when it is anything more (a word problem, a sentence
    around the sum, a power, a variable, a name or date that only looks like a sum): those are left
    to the calibrator."""
    text = question.strip()
    if not text or len(text) > _MAX_QUESTION:
        return None
    ask = _ASK.match(text)
    verb = bool(ask and ask.group("verb"))
    text = _END.sub("", text[ask.end():] if ask else text)
    text = text.translate(_SYMBOLS)
    for pattern, symbol in _WORDS:
        text = pattern.sub(symbol, text)
    text = _SPACED_X.sub(" * ", text)
    if _UNSPACED.search(text) and not verb:
        return None
    if not _PURE.fullmatch(text) or _AMBIGUOUS_NUMBER.search(text) or not _OPERATOR_BETWEEN.search(text):
        return None
    source = text.replace(",", "")
    try:
        tree = ast.parse(source, mode="eval").body
        value = _exact(tree, source)
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError, MemoryError):
        return None
    constants = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Constant)), key=lambda n: n.col_offset)
    return Sum(" ".join(text.split()), tuple(_written(n, source) for n in constants), value)


def _written(node: ast.AST, source: str) -> Fraction:
    """A number as the question writes it: its digits, not the float Python parsed them into (which
    keeps about 16 digits: 12345678901234567.5 would read as ...568)."""
    return Fraction(ast.get_source_segment(source, node) or ast.unparse(node))


def _exact(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return _written(node, source)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _exact(node.operand, source)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _exact(node.left, source), _exact(node.right, source)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left / right  # ZeroDivisionError: not a sum with an answer
    raise ValueError("not plain arithmetic")


# --------------------------------------------------------------------------- what an answer writes

# a number as answers write it: a sign ("-", "−", "minus", "negative"), digits in groups (thousands
# written with ",", ".", "'", "’", spaces or LaTeX "{,}" / "\,"), decimals (".75" too), scientific
# notation ("3.91e2", "3.91 × 10^2") or a scale word ("83.8 million", "60k"), and a trailing "%"
_NUMBER = re.compile(
    r"(?P<sign>-|−|\bminus\s+|\bnegative\s+)?(?<![\w.])"
    r"(?P<digits>\d{1,3}(?:(?:,|\.|'|’|\{,\}|\\,|[ \u00a0\u2009\u202f])\d{2,3})+(?:[.,]\d+)?"
    r"|\d+(?:[.,]\d+)?|\.\d+)(?!\d)"
    r"(?:(?P<e>[eE][+\-]?\d{1,3})\b|\s*(?:×|x|\*|\\times|\\cdot)\s*10\s*\^\s*\{?(?P<pow>[+\-−]?\d{1,3})\}?"
    r"|\s*(?P<scale>thousand|million|billion|trillion|k|bn)\b)?"
    r"(?P<pct>\s*%|\s*percent\b)?", re.IGNORECASE)
_SCALES = {"thousand": 3, "k": 3, "million": 6, "billion": 9, "bn": 9, "trillion": 12}
_MARKS = re.compile(r"\{,\}|\\,|[ \u00a0\u2009\u202f'’]")
_MAX_DIGITS = 200  # past this a "number" is a draft looping on digits, not a value it states
_NUMBER_WORD = re.compile(r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
                          r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
                          r"seventy|eighty|ninety|hundred|thousand|million|billion|half|third|quarter)\b",
                          re.IGNORECASE)
# "= - 3" (LaTeX and some models space a result's sign): the sign belongs to the number
_SPACED_SIGN = re.compile(r"=\s*([-−])\s+(?=\d)")


@dataclass(frozen=True, slots=True)
class _Written:
    """One reading of a number an answer writes: its value and how precisely it is written."""

    value: Fraction
    #: the value of one unit of its last written digit (0.01 for "3.33", 100,000 for "83.8 million")
    unit: Fraction


def _numbers(answer: str) -> Iterator[list[_Written]]:
    """Each number ``answer`` writes, as every reading it may be meant in ("1.500" is 1500 or 1.5;
    "60 k" is 60 or 60,000; "391 100%" may be 391 followed by 100%)."""
    for m in _NUMBER.finditer(answer):
        digits = m.group("digits")
        if len(digits) > _MAX_DIGITS:
            continue
        sign = -1 if m.group("sign") else 1
        exponents = {0}
        if m.group("e"):
            exponents = {int(m.group("e")[1:])}
        elif m.group("pow"):
            exponents = {int(m.group("pow").replace("−", "-"))}
        elif m.group("scale"):
            exponents.add(_SCALES[m.group("scale").lower()])
        if m.group("pct"):
            exponents = {e - 2 for e in exponents} | exponents
        mantissas = list(_mantissas(digits))
        if " " in digits:  # "391 100": perhaps two numbers ("2,000 100-dollar bills": the first may have marks)
            mantissas.extend(_mantissas(digits.split(" ")[0]))
        yield [_Written(sign * mantissa * Fraction(10) ** e, Fraction(10) ** e / 10**decimals)
               for mantissa, decimals in mantissas for e in exponents]


def _mantissas(digits: str) -> Iterator[tuple[Fraction, int]]:
    """The numbers ``digits`` may stand for, each with its count of decimals."""
    plain = _MARKS.sub(",", digits)
    groups = re.split(r"[,.]", plain)
    if groups[0] == "":  # ".75"
        yield Fraction(int(groups[1]), 10 ** len(groups[1])), len(groups[1])
        return
    if len(groups) == 1 or all(len(g) in (2, 3) for g in groups[1:]) and len(groups[-1]) == 3:
        yield Fraction("".join(groups)), 0  # every mark a thousands mark ("1,250", "1,00,000")
    last_mark = re.findall(r"\D", digits)[-1:] or [""]
    if len(groups) > 1 and last_mark[0] in ".," and all(len(g) == 3 for g in groups[1:-1]):  # a decimal point
        decimals = groups[-1]
        yield Fraction(int("".join(groups[:-1]))) + Fraction(int(decimals), 10 ** len(decimals)), len(decimals)


def states(answer: str, question: Sum) -> bool | None:
    """Whether the answer writes the question's value (rounded or cut short to the precision it is
    written with), once the operands it opens by repeating are set aside ("4 - 2 = 3" does not state
    2 by repeating the operand). None when that cannot be told: the answer writes no digit (words,
    "Four."), writes the operands and then the result in words ("2 + 2 equals four."), or the value
    is not whole and the answer writes no decimal (a fraction, "3 1/3")."""
    if not any(ch.isdigit() for ch in answer):
        return None
    numbers = _read_numbers(answer)
    value, operands = question.value, question.operands
    if value.denominator != 1 and not any(r.unit < 1 for n in numbers for r in n):
        return None
    skip = 0
    while skip < min(len(operands), len(numbers)) and any(r.value == operands[skip] for r in numbers[skip]):
        skip += 1
    rest = numbers[skip:] if skip == len(operands) else numbers
    if not rest and _NUMBER_WORD.search(answer):  # the operands, then the result in words ("2 + 2 equals four.")
        return None
    return any(_near(r, value) for n in rest for r in n)


def _read_numbers(answer: str) -> list[list[_Written]]:
    """Every number an answer writes, in order, with each way it can be read (a spaced sign, "= - 3",
    read as the number's own): what :func:`states` judges."""
    return list(_numbers(_SPACED_SIGN.sub(r"= \1", answer)))


def written(answer: str) -> list[Fraction]:
    """The numbers an answer writes, in order, each as first read: what :func:`states` looked at."""
    return [n[0].value for n in _read_numbers(answer) if n]


def _near(r: _Written, value: Fraction) -> bool:
    """``r`` writes ``value`` to its precision: rounded, cut short (toward zero), or as a float prints
    it (0.30000000000000004 for 0.1 + 0.2, 2.3333333333333335 for 7 / 3)."""
    gap = abs(r.value - value)
    if gap <= r.unit / 2:
        return True
    if r.unit < 1 and (r.value >= 0) == (value >= 0) and abs(r.value) <= abs(value) and gap < r.unit:
        return True
    return r.unit < Fraction(1, 10**12) and gap <= abs(value) * Fraction(1, 10**12)


def show(x: Fraction) -> str:
    """A value as a message shows it: whole numbers exactly, others to ten significant digits."""
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.10g}"
