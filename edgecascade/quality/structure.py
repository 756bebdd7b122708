"""Answer-structure features: look at the answer itself, not only at whole-answer averages.

Measured here (issue 3): the mean token logprob of a whole 0.5B GSM8K answer separates right from
wrong drafts poorly (AUROC 0.68), because most tokens of a wrong answer are fluent restatements of
the problem. What a wrong draft gives away is narrower: the tokens that state the final number are
less certain, the stated result disagrees with the last computed one, the answer never states one,
or code does not parse. These features read those spans; each is a plain float so a calibrator
can weigh them.
"""

from __future__ import annotations

import ast
import math
import re
import textwrap

import numpy as np

from ..types import Completion, TokenLogprobs
from .features import percentile

# the stated final result: "The answer is 18" or LaTeX "\boxed{18}" (what small models write)
# (a currency before the number, "£77.20", "€760", and a LaTeX "\(37\)" are read as the grader reads them)
# (each run of whitespace can be read one way only: "\s*:?\s*" and its like let a long run be split
# every way, and a draft that ends in thousands of newlines after "The answer is" took minutes)
_AFTER_MARK = r"(?:\\\(\s*(?:[$£€]\s*)?|[$£€]\s*)"  # "\(" then a currency, or a currency, each with its spaces
_ANSWER_IS = re.compile(rf"(?:answer\s+is\s*(?::\s*)?(?:\*+(?:{_AFTER_MARK}|\s*)|{_AFTER_MARK})?"
                        r"|\\boxed\{\s*(?:(?:\\\$?|\$)\s*)?)"
                        r"(-?\d[\d,]*(?:\.\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# the result of "= <number>" when nothing on its line carries the expression on; read whole (not cut
# back into its own digits when the next line opens with "2." or "- ")
_RESULT = r"=\s*(?:\$\s*)?(-?\d[\d,]*(?:\.\d+)?)(?!\d|[.,]\d)(?![ \t]*(?:[\d*/+\-(]|\.\d))"
_EQUALS_NUMBER = re.compile(_RESULT)
# the info string is taken whole and split later: a pattern like [\w+-]*[^\n]* backtracks
# quadratically on a long line that never ends. A fence opens a line (indented, in a list item, too),
# as Markdown has it: one that could open anywhere made a line of k backticks cost k times its length
# (35 s on 100 KB), and an inline ```pip install x``` hid the code block after it
_FENCE = re.compile(r"^[ \t]*```([^\n]*)\n(.*?)(?:```|\Z)", re.DOTALL | re.MULTILINE)
# where no fence opens a line, one after text on its line ("Here is the code: ```python"): its info
# string stops at a backtick, so each opening is tried once, in a scan as long as the text
_INLINE_FENCE = re.compile(r"```([^\n`]*)\n(.*?)(?:```|\Z)", re.DOTALL)


_PYTHON_TAGS = ("python", "py", "python3")


def _code_block(text: str) -> re.Match[str] | None:
    """The fenced block that holds the answer's code: the first ```python block, else the first
    ``` block; None when there is no fence. One choice, so that the code graded, run and scored is
    the same code (a draft that shows a shell command first and its Python second is scored on the
    Python it is judged by)."""
    for fence in (_FENCE, _INLINE_FENCE):
        first = None
        for m in fence.finditer(text):
            if (m.group(1).strip().split() or [""])[0].lower() in _PYTHON_TAGS:
                return m
            first = first or m
        if first is not None:
            return first
    return None


def extract_code(text: str) -> str:
    """The code in a model's answer: the first ```python block, else the first ``` block, else the
    whole text. A block cut off by the token limit (no closing fence) runs to the end."""
    m = _code_block(text)
    if m is None:
        return text
    # a block indented with its fence (in a list item) is its code indented as much: dedented, it runs;
    # but a function's bare body stays as written, to continue the prompt's signature
    code = m.group(2)
    if m.group(0)[:1] in (" ", "\t") and _parses(dedented := textwrap.dedent(code)):
        return dedented
    return code


def _parses(code: str) -> bool:
    """Whether ``code`` compiles as a module (a bare ``return`` does not, where ast.parse takes it)."""
    try:
        compile(code, "<draft>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def defines_function(code: str, name: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _token_bounds(lp: TokenLogprobs, text: str) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each token in ``text``, which the tokens spell (leading whitespace aside)."""
    joined = "".join(lp.tokens)
    offset = (len(joined) - len(joined.lstrip())) - (len(text) - len(text.lstrip()))  # a leading space the text lacks
    lengths = np.array([len(t) for t in lp.tokens])
    starts = np.concatenate(([0], np.cumsum(lengths[:-1]))) - offset
    return starts, starts + lengths


def _span_logprobs(c: Completion, start: int, end: int) -> np.ndarray:
    """Logprobs of the tokens overlapping text[start:end]; empty when they cannot be located: no
    logprobs, or tokens that do not spell the text (traces made before tokens were decoded
    together hold a replacement character for each byte of a character split across tokens, and
    every span after it would be misread)."""
    lp = c.logprobs
    if lp is None or len(lp) == 0 or "".join(lp.tokens).strip() != c.text.strip():
        return np.zeros(0)
    starts, ends = _token_bounds(lp, c.text)
    return lp.logprobs[(ends > start) & (starts < end)]


#: a number as written in digits: "1,250" and "4.5" whole, but not a sign, a hyphen ("3-4") or a comma
#: that ends a clause ("3, 4"): their tokens are punctuation, not the number
_DIGITS = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def _numbers_logprobs(c: Completion) -> np.ndarray:
    """Logprobs of every token that writes a number in the answer. The numbers are found in the
    tokens' own text, so each span lines up with its tokens by construction; one vectorised pass
    marks them (a cumulative count of span starts minus span ends)."""
    lp = c.logprobs
    if lp is None or len(lp) == 0:
        return np.zeros(0)
    spans = [m.span() for m in _DIGITS.finditer("".join(lp.tokens))]
    if not spans:
        return np.zeros(0)
    lengths = np.array([len(t) for t in lp.tokens])
    ends = np.cumsum(lengths)
    starts = ends - lengths
    s, e = np.array(spans).T
    # tokens i with ends[i] > s and starts[i] < e form the index range [lo, hi) of each span
    lo = np.searchsorted(ends, s, side="right")
    hi = np.searchsorted(starts, e, side="left")
    marks = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.add.at(marks, lo, 1)
    np.add.at(marks, hi, -1)
    return lp.logprobs[np.cumsum(marks[:-1]) > 0]


def _num(s: str) -> float | None:
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


_OPS = {"×": "*", "\\times": "*", "\\cdot": "*", "÷": "/", "\\div": "/", "−": "-",
        "\\(": " ", "\\)": " ", "\\[": " ", "\\]": " "}  # LaTeX math delimiters are not brackets
_FRAC = re.compile(r"\\frac\{([^{}]+)\}\{([^{}]+)\}")
# "= <number>" that does not go on into another expression (a chain is checked link by link); the
# left side is then found by walking back over arithmetic characters: linear time, no backtracking
_STATED = re.compile(_RESULT)
_EXPR_CHARS = frozenset("0123456789.,$()+-*/ \t")
_MAX_EXPR = 200
_STEP = re.compile(r"^\s*\d+\.\s+")  # "1. 16 - 3 = 13": a numbered step, not part of the sum
_BULLET = re.compile(r"^[-*]\s+")  # "- 8 * 30 = 240": a list item, not a negative product


def _arith(expr: str) -> float | None:
    """Evaluate plain arithmetic (numbers, + - * /, brackets) without eval; None if it is not that."""
    import ast as _ast
    import operator

    ops = {_ast.Add: operator.add, _ast.Sub: operator.sub, _ast.Mult: operator.mul, _ast.Div: operator.truediv}

    def ev(node: _ast.AST) -> float:
        if isinstance(node, _ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, _ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, _ast.UnaryOp) and isinstance(node.op, _ast.USub):
            return -ev(node.operand)
        raise ValueError("not arithmetic")

    try:
        return ev(_ast.parse(expr.replace(",", "").replace("$", "").strip(), mode="eval").body)
    except (ValueError, SyntaxError, ZeroDivisionError, OverflowError, RecursionError, MemoryError):
        return None


def arithmetic_checks(text: str) -> tuple[int, int]:
    """(equations checked, equations whose stated result is wrong) in a worked answer: small models
    often reason in the right direction and then multiply wrongly."""
    for k, v in _OPS.items():
        text = text.replace(k, v)
    text = _FRAC.sub(r"(\1)/(\2)", text)
    checked = wrong = 0
    prev_end = 0
    for m in _STATED.finditer(text):
        start = m.start()
        lo = start
        while lo > prev_end and start - lo < _MAX_EXPR and text[lo - 1] in _EXPR_CHARS:
            lo -= 1
        cut = start - lo >= _MAX_EXPR and lo > prev_end and text[lo - 1] in _EXPR_CHARS
        prev_end = m.end(1)
        if cut:  # longer than the limit: only its tail is in hand, and a right sum would read as wrong
            continue
        expr = _STEP.sub("", text[lo:start]).strip().strip(".,").strip()
        if lo == 0 or text[lo - 1] == "\n":  # a markdown bullet opening the line is not a minus sign
            expr = _BULLET.sub("", expr)
        if not (expr and any(ch in "+-*/" for ch in expr[1:]) and (expr[-1].isdigit() or expr[-1] == ")")):
            continue
        value, stated_text = _arith(expr), m.group(1).rstrip(".,")
        stated = _num(stated_text)
        if value is None or stated is None:
            continue
        checked += 1
        decimals = len(stated_text.split(".")[1]) if "." in stated_text else 0
        # a stated 3.3 for 10 / 3 is rounded, not wrong: tolerance half a unit of its last digit
        if abs(value - stated) > 0.5 * 10 ** -decimals + 1e-9:
            wrong += 1
    return checked, wrong


def math_features(c: Completion) -> dict[str, float]:
    text = c.text
    matches = list(_ANSWER_IS.finditer(text))
    m = matches[-1] if matches else None  # the last statement of the answer is the final one
    checked, wrong = arithmetic_checks(text)
    numbers_lp = _numbers_logprobs(c)
    feats = {"has_final_number": 0.0, "final_integer": 0.0, "final_negative": 0.0, "final_lp_min": 0.0,
             "final_lp_mean": 0.0, "reasoning_agrees": 0.0,
             "n_numbers_log": math.log1p(len(_NUMBER.findall(text))), "arith_checked_log": math.log1p(checked),
             "arith_wrong": float(wrong > 0),
             # the weak tail of the tokens that state numbers: a worked answer's prose is fluent whether
             # or not it is right; its numbers are where a small model hesitates when it is guessing
             "numbers_lp_p10": percentile(numbers_lp, 0.10) if numbers_lp.size else 0.0}
    if m is None:
        return feats
    feats["has_final_number"] = 1.0
    lps = _span_logprobs(c, m.start(1), m.end(1))
    if lps.size:
        feats["final_lp_min"] = float(lps.min())
        feats["final_lp_mean"] = float(lps.mean())
    stated = _num(m.group(1))
    # word problems mostly have whole-number answers; a small model's fraction is often a slip
    feats["final_integer"] = 1.0 if stated is not None and math.isfinite(stated) and stated.is_integer() else 0.0
    feats["final_negative"] = 1.0 if stated is not None and stated < 0 else 0.0  # rarely how many of something
    computed = [x for x in (_num(y) for y in _EQUALS_NUMBER.findall(text[: m.start()])) if x is not None]
    if stated is not None and computed:
        feats["reasoning_agrees"] = 1.0 if math.isclose(computed[-1], stated, rel_tol=1e-9, abs_tol=1e-6) else -1.0
    return feats


def _values(text: str) -> set[float]:
    """The distinct magnitudes of the numbers written in digits ("-5" in "10 -5" is the 5 subtracted)."""
    return {abs(v) for v in (_num(x) for x in _NUMBER.findall(text)) if v is not None}


def prompt_features(prompt: str | None, answer: str) -> dict[str, float]:
    """How much the question asks, and how much of it the answer used.

    ``prompt_numbers_log``: the number of distinct quantities the question states. Measured on the
    GSM8K calibration half, a 0.5B draft is right far less often when the problem juggles many
    numbers, whatever its answer's logprobs say. ``prompt_numbers_used``: the share of them the
    answer writes down; a wrong draft often leaves a given quantity out. When the prompt is unknown
    or states no numbers they are 0 and 1: constant in data without prompts, so a calibrator fitted
    there gives them no weight; one fitted with prompts reads 1 as "used every quantity".
    """
    if not prompt:
        return {"prompt_numbers_log": 0.0, "prompt_numbers_used": 1.0}
    given = _values(prompt)
    used = len(given & _values(answer)) / len(given) if given else 1.0
    return {"prompt_numbers_log": math.log1p(len(given)), "prompt_numbers_used": used}


def code_features(c: Completion) -> dict[str, float]:
    """Signals of a code draft: is there a fenced block, does it parse, does it define a function,
    how sure was the model of the code's own tokens, and how much prose surrounds it. The block is
    the one :func:`extract_code` picks, which is what the examples check runs and the grader tests."""
    text = c.text
    m = _code_block(text)
    code = m.group(2) if m else text
    start, end = (m.start(2), m.end(2)) if m else (0, len(text))
    feats = {"code_block": 1.0 if m else 0.0, "code_parses": 0.0, "defines_function": 0.0,
             "code_lp_mean": 0.0, "code_lp_p10": 0.0, "prose_chars_log": math.log1p(len(text) - len(code))}
    try:
        tree = ast.parse(code)
        feats["code_parses"] = 1.0
        feats["defines_function"] = float(any(isinstance(n, ast.FunctionDef) for n in ast.walk(tree)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # "x = ----...1" nests past the parser's limit
        pass
    lps = _span_logprobs(c, start, end)
    if lps.size:
        feats["code_lp_mean"] = float(lps.mean())
        feats["code_lp_p10"] = percentile(lps, 0.10)
    return feats
