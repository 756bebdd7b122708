"""Benchmark datasets (GSM8K, HumanEval): loaders, prompts and graders.

The data lives outside the package, in ``$EDGECASCADE_DATA`` or ``<repo>/../shared/data``
(see that folder's README for sources and licenses); nothing here downloads anything.

Prompts are written for small local models: they ask for a short answer in a fixed shape, so a
0.5B model spends its token budget on the answer rather than on prose, and graders can find it.

HumanEval completions are untrusted model output. :func:`grade_humaneval` never executes them in
this process: each runs through :func:`edgecascade.sandbox.run_python`, in a fresh ``python -I``
subprocess, in its own session and process group (so a timeout kills everything it spawned that
stayed in that group), in a throw-away working directory, with a wall-clock timeout and, on POSIX, limits on
address space (memory) and on the size of a file it writes. There is no CPU-time limit: the
wall-clock timeout is what stops a busy loop. That is containment against accidents (infinite
loops, ``os._exit``, runaway memory), not a security sandbox against hostile code.
"""

from __future__ import annotations

import codecs
import difflib
import gzip
import json
import math
import os
import re
import secrets
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .paths import default_data_dir
from .quality.structure import defines_function, extract_code
from .sandbox import run_python

__all__ = [
    "DATASETS",
    "GRADERS",
    "GRADER_VERSIONS",
    "HumanEvalOutcome",
    "Item",
    "data_dir",
    "extract_code",
    "extract_gsm8k_answer",
    "grade",
    "grade_gsm8k",
    "grade_humaneval",
    "grader_name",
    "gsm8k_prompt",
    "humaneval_prompt",
    "load",
    "load_gsm8k",
    "load_humaneval",
    "number_value",
    "run_humaneval",
]


@dataclass(frozen=True)
class Item:
    """One benchmark question.

    ``prompt`` is the user message to send to a model; ``reference`` is the gold answer (GSM8K: the
    final number as text; HumanEval: the canonical solution body); ``meta`` holds what the grader
    needs (``dataset`` always; HumanEval: ``prompt``, ``test``, ``entry_point``).
    """

    id: str
    prompt: str
    reference: str
    domain: str  # "math" | "code"
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def dataset(self) -> str:
        return str(self.meta.get("dataset", ""))


# --------------------------------------------------------------------------- locating the data


def data_dir() -> Path:
    """``$EDGECASCADE_DATA``, else ``<repo root>/../shared/data`` in a checkout; ConfigError when it
    is missing (an installed package has no default)."""
    env = os.environ.get("EDGECASCADE_DATA")
    fix = "set EDGECASCADE_DATA to the folder holding gsm8k/test.jsonl and humaneval/HumanEval.jsonl.gz"
    if env:
        p = Path(env).expanduser()
        where = f"$EDGECASCADE_DATA={env}"
    elif (default := default_data_dir()) is not None:
        p = default
        where = "the default location (<repo root>/../shared/data)"
    else:
        raise ConfigError(f"no benchmark data folder: an installed edgecascade has no default one; {fix}")
    if not p.is_dir():
        raise ConfigError(f"benchmark data folder {p} does not exist (looked in {where}): {fix}")
    return p


def _data_file(relative: str) -> Path:
    p = data_dir() / relative
    if not p.is_file():
        raise ConfigError(f"benchmark file {p} does not exist: the data folder {p.parents[1]} is incomplete")
    return p


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit is {limit!r}: pass None (all items) or an integer >= 0")


def _jsonl(lines: Iterator[str], path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL stream, blank lines skipped; errors name the file's line."""
    try:
        for _, row in _numbered_jsonl(lines, path):
            yield row
    except UnicodeDecodeError as e:  # a stream decodes in chunks: no reliable position to name
        raise ConfigError(f"{path} is not UTF-8 text ({e.reason}): save it as UTF-8 JSONL") from None


def _numbered_jsonl(lines: Iterable[str], path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as e:  # ValueError: bad JSON, or an integer past Python's 4,300 digits
            raise ConfigError(f"{path}:{n} is not valid JSON: {e}") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{path}:{n} is a JSON {type(row).__name__}, not an object: each line must be one "
                              'JSON object, such as {"prompt": "...", "reference": "..."}')
        yield n, row


def read_utf8(path: Path) -> str:
    """A whole text file, or a ConfigError naming the line and byte where it stops being UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark (Windows' "UTF-8 with BOM") is not text
    except UnicodeDecodeError as e:
        at = e.start + (len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0)  # counted after the mark
        line = raw[:at].count(b"\n") + 1
        raise ConfigError(f"{path}:{line} is not UTF-8 text ({e.reason} at byte {at} of the file): save it "
                          "as UTF-8") from None


# --------------------------------------------------------------------------- GSM8K

GSM8K_PROMPT = (
    "Solve this math word problem. Reason briefly, in a few short steps, then end with a final line "
    "of the form `The answer is N.` where N is just the number (no units).\n\n"
    "Problem: {question}"
)


def gsm8k_prompt(question: str) -> str:
    return GSM8K_PROMPT.format(question=question.strip())


def _gsm8k_reference(answer: str) -> str:
    _, sep, tail = answer.rpartition("#### ")
    if not sep:
        raise ValueError("no '#### ' line")
    return tail.strip().replace(",", "")


def load_gsm8k(limit: int | None = None) -> list[Item]:
    """The first ``limit`` (default all 1,319) GSM8K test problems, in file order."""
    _check_limit(limit)
    path = _data_file("gsm8k/test.jsonl")
    items: list[Item] = []
    with path.open(encoding="utf-8") as f:
        for i, row in enumerate(islice(_jsonl(f, path), limit)):
            try:
                reference = _gsm8k_reference(row["answer"])
                question = row["question"]
            except (KeyError, ValueError) as e:
                raise ConfigError(f"{path}: row {i} has no question or final '#### ' answer ({e})") from None
            items.append(Item(
                id=f"gsm8k/{i}",
                prompt=gsm8k_prompt(question),
                reference=reference,
                domain="math",
                meta={"dataset": "gsm8k", "question": question, "solution": row["answer"]},
            ))
    return items


# a number in running text: optional sign, digits with optional thousands separators, optional decimals,
# an optional exponent (``1e5`` read as its first digit had graded right against a reference of 1)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\$\s?)?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
# the same, whole and strict: at most one sign (before or after the $), commas only between groups of 3
_STRICT_NUMBER = re.compile(
    r"(?:(?P<sign>[-+]?)(?:\$\s?)?|\$\s?(?P<sign_after>[-+]))(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?"
    r"(?P<exp>[eE][-+]?\d+)?"
)
# where an answer states its result: "The answer is", or LaTeX's \boxed{...} (the last of either counts:
# "... \(\boxed{7}\) more weeks to save $60" states 7, not the 60 after it)
_ANSWER_IS = re.compile(r"the\s+(?:final\s+)?answer\s+is|\\boxed\{", re.IGNORECASE)
# a stated number that is a fraction's numerator: "3/4", "\frac{5}{13}" (read whole, not as 3 or 5)
_FRACTION_AFTER = re.compile(r"\s*/\s*(\d+(?:\.\d+)?)(?![\d,])|\s*\}\s*\{\s*(\d+(?:\.\d+)?)\s*\}")
_FRAC_BEFORE = re.compile(r"\\[dt]?frac\s*\{\s*$")
# where an answer sentence stops: its line's end, or a full stop, "!", "?" or ";" (not the point in 3.5)
_SENTENCE_END = re.compile(r"\n|[.!?;](?=\s|$)")
# working written out from the stated number on: "5 + 3 = ", "2 * (4 + 5) = ", "45 + 25 = 70 = "; at
# least one operator between numbers before each "=", so "18 (x = 3)", "60 minutes = 1 hour" or
# "12, where n = 2" are not working (x is "times" only between numbers)
# (a bracket takes its spaces with it, so each run of spaces is read one way only: with "\(?\s*" and
# "\s*\)?" beside the spaces around operators, a long sum with no "=" after it took minutes)
_OPERAND = r"(?:\(\s*)?-?\$?\d[\d,]*(?:\.\d+)?(?:\s*\))?"
_OPERATOR = r"(?:\*\*|[-+*/×÷−^·⋅]|\\times|\\cdot|\\div|(?<=[\d\s)])x(?=[\s\d(]))"
_WORKING = re.compile(rf"(?:{_OPERAND}\s*(?:{_OPERATOR}\s*{_OPERAND}\s*)+=\s*)+")


def _to_float(text: str, *, exponent: bool = False) -> float | None:
    """The value of a number written as :data:`_STRICT_NUMBER` reads it (``-$5``, ``$-5``, ``1,234.50``),
    else None. Strict, because a looser reading turns other text into a wrong number: stripping every
    "-" read ``1e-5`` as -100000 and ``5-3`` as -53. An exponent is read only with ``exponent`` (an
    answer's ``1e5``): a reference is written plainly, and ``1e-5`` there is a mistake to refuse.
    Normalise the text first (:func:`_normalise_text`: a unicode minus)."""
    m = _STRICT_NUMBER.fullmatch(text.strip())
    if m is None or (m["exp"] and not exponent):
        return None
    value = float(m["int"].replace(",", "") + (m["frac"] or "") + (m["exp"] or ""))
    return -value if "-" in (m["sign"] or m["sign_after"] or "") else value


def number_value(text: str) -> float | None:
    """A reference or answer that is a number written plainly (``42``, ``-$5``, ``1,234.50``), as a
    float; None otherwise."""
    return _to_float(_normalise_text(str(text)).strip())


def _normalise_text(text: str) -> str:
    # unicode minus / dashes used as minus, and LaTeX thousands separators like 1{,}234
    return text.replace("\u2212", "-").replace("{,}", ",").replace("\\$", "$")


def extract_gsm8k_answer(answer_text: str) -> float | None:
    """The final number of an answer: the number the last "The answer is" states (see
    :func:`_stated_number`), else the last number anywhere in the text; None when there is no number
    at all."""
    text = _normalise_text(answer_text)
    marks = list(_ANSWER_IS.finditer(text))
    if marks:
        tail = text[marks[-1].end():]
        paragraph = tail.split("\n\n", 1)[0]  # the number belongs to the same sentence/paragraph
        m = _NUMBER.search(paragraph)
        if m:
            stated = _stated_number(paragraph, m)
            value = _to_float(stated.group(), exponent=True)
            return _as_fraction(paragraph, stated, value) if value is not None else None
    numbers = _NUMBER.findall(text)
    for candidate in reversed(numbers):
        v = _to_float(candidate, exponent=True)
        if v is not None:
            return v
    return None


def _as_fraction(paragraph: str, stated: re.Match[str], value: float) -> float | None:
    """``value``, or the fraction's value where the stated number is its numerator (``3/4`` is 0.75,
    ``\\frac{5}{13}`` 5/13: read as 3 and 5 they had matched references 3 and 5); None for a zero
    denominator. A slash in working ("60 / 2 = 30") never gets here: the result after it is stated."""
    after = _FRACTION_AFTER.match(paragraph, stated.end())
    if after is None or (after.group(2) is not None and not _FRAC_BEFORE.search(paragraph, 0, stated.start())):
        return value
    denominator = float(after.group(1) or after.group(2))
    return value / denominator if denominator else None


def _stated_number(paragraph: str, first: re.Match[str]) -> re.Match[str]:
    """The number an answer sentence states. The sentence runs from ``first`` (the first number after
    "The answer is") to the end of its line or a full stop. Usually that first number is the answer;
    but a sentence that starts with its working ("The answer is 5 + 3 = 8.") states the result after
    it: the number right after the working's last "=". Anything else after the first number (a
    side note "(x = 3)", a unit "60 minutes = 1 hour") leaves the first number, as does working cut
    off after its "="."""
    end = _SENTENCE_END.search(paragraph, first.end())
    stop = end.start() if end else len(paragraph)
    working = _WORKING.match(paragraph, first.start(), stop)
    if working is not None:
        result = _NUMBER.match(paragraph, working.end(), stop)
        if result is not None:
            return result
    return first


def grade_gsm8k(answer_text: str, reference: str) -> bool:
    """Whether the answer's final number equals the reference number (commas, ``$`` and a
    trailing ``.0`` do not matter)."""
    want = number_value(reference)
    if want is None:
        raise ValueError(f"reference {reference!r} is not a number")
    got = extract_gsm8k_answer(answer_text)
    if got is None or not math.isfinite(got):
        return False
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6)


# --------------------------------------------------------------------------- HumanEval

HUMANEVAL_PROMPT = (
    "Complete this Python function. Reply with the complete function (its signature, any imports "
    "it needs, and its body) in a single ```python code block, with no explanation and no "
    "example usage.\n\n```python\n{prompt}```"
)


def humaneval_prompt(function_prompt: str) -> str:
    return HUMANEVAL_PROMPT.format(prompt=function_prompt if function_prompt.endswith("\n")
                                   else function_prompt + "\n")


def load_humaneval(limit: int | None = None) -> list[Item]:
    """The first ``limit`` (default all 164) HumanEval problems, in file order."""
    _check_limit(limit)
    path = _data_file("humaneval/HumanEval.jsonl.gz")
    items: list[Item] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for i, row in enumerate(islice(_jsonl(f, path), limit)):
                try:
                    task_id, fprompt, test, entry = row["task_id"], row["prompt"], row["test"], row["entry_point"]
                except KeyError as e:
                    raise ConfigError(f"{path}: row {i} lacks the field {e}") from None
                items.append(Item(
                    id=task_id,
                    prompt=humaneval_prompt(fprompt),
                    reference=row.get("canonical_solution", ""),
                    domain="code",
                    meta={"dataset": "humaneval", "task_id": task_id, "prompt": fprompt, "test": test,
                          "entry_point": entry},
                ))
    # a cut-off download ends early (EOFError); another file under that name is not gzip (BadGzipFile,
    # an OSError); damaged compressed data fails to inflate (zlib.error)
    except (EOFError, OSError, zlib.error) as e:
        raise ConfigError(f"{path} could not be read as gzip-compressed JSONL ({type(e).__name__}: {e}): the "
                          "file is cut off, damaged or unreadable; restore it (see the data folder's README for "
                          "its source)") from None
    return items


def _defines(code: str, name: str) -> bool:
    return defines_function(code, name)


@dataclass(frozen=True)
class HumanEvalOutcome:
    passed: bool
    reason: str  # "passed" | "failed" | "timeout" | "crashed" | "no_code"
    detail: str = ""  # the end of stderr, for debugging a failure


# After the token, os._exit: a normal shutdown would still run the candidate's code (atexit handlers
# printing enough to push the token out of the output tail that comes back; non-daemon threads that
# keep the process alive until the timeout), turning a pass into a crash or a timeout.
_RUNNER = """\
import os, sys, types
_src = {src!r}
# a module Python can find by its name: dataclasses with string annotations and pickle look it up
_m = types.ModuleType("humaneval_candidate")
sys.modules["humaneval_candidate"] = _m
_g = _m.__dict__
_g["__builtins__"] = __builtins__
_out = os.dup(1)  # the token goes here even if the candidate replaced sys.stdout (a right answer may)
exec(compile(_src, "candidate.py", "exec"), _g)
try:
    sys.stdout.flush()
except Exception:
    pass
os.write(_out, {token!r}.encode())
sys.stderr.flush()
os._exit(0)
"""


def _program(code: str, item: Item) -> str:
    meta = item.meta
    fprompt, test, entry = meta["prompt"], meta["test"], meta["entry_point"]
    # A complete function goes after the whole prompt, which brings the imports and helper functions
    # it may rely on (its own definition, coming later, replaces the prompt's stub); a bare body
    # continues the prompt's signature and docstring.
    sep = "\n\n" if _defines(code, entry) else ""
    # a `from __future__` import must open the program: after the prompt it is a SyntaxError, and a
    # right answer that starts with one failed
    future = "".join(m.group(0).strip() + "\n" for m in _FUTURE.finditer(code))
    return future + fprompt + sep + _FUTURE.sub("", code) + "\n" + test + f"\ncheck({entry})\n"


_FUTURE = re.compile(r"^from __future__ import [^\n]*$", re.MULTILINE)


def run_humaneval(answer_text: str, item: Item, timeout_s: float = 10.0,
                  memory_bytes: int = 2 << 30) -> HumanEvalOutcome:
    """Run an answer against the item's tests in a separate, killable Python process."""
    code = extract_code(answer_text)
    if not code.strip():
        return HumanEvalOutcome(False, "no_code")
    # exit code 0 alone is not enough: the answer could call sys.exit(0) before the tests ran, so
    # the runner prints a random token after check() returned, and we require it.
    token = f"EDGECASCADE-PASS-{secrets.token_hex(8)}"
    run = run_python(_RUNNER.format(src=_program(code, item), token=token), timeout_s=timeout_s,
                     memory_bytes=memory_bytes)
    rc = run.returncode
    if run.timed_out:
        return HumanEvalOutcome(False, "timeout", f"no result within {timeout_s:g} s")
    if rc == 0 and token in run.stdout:
        return HumanEvalOutcome(True, "passed")
    if rc is not None and rc < 0:
        return HumanEvalOutcome(False, "crashed", f"killed by signal {-rc}\n{run.stderr}")
    if rc == 0:
        return HumanEvalOutcome(False, "crashed", "exited with status 0 before the tests ran")
    return HumanEvalOutcome(False, "failed", run.stderr)


def grade_humaneval(answer_text: str, item: Item, timeout_s: float = 10.0) -> bool:
    """Whether the answer's code passes the item's tests (see :func:`run_humaneval`)."""
    return run_humaneval(answer_text, item, timeout_s=timeout_s).passed


# --------------------------------------------------------------------------- registry


def _grade_gsm8k_item(answer_text: str, item: Item) -> bool:
    return grade_gsm8k(answer_text, item.reference)


#: name -> loader(limit=None) -> list[Item]
DATASETS: dict[str, Callable[..., list[Item]]] = {"gsm8k": load_gsm8k, "humaneval": load_humaneval}
#: name -> grader(answer_text, item) -> bool
GRADERS: dict[str, Callable[[str, Item], bool]] = {"gsm8k": _grade_gsm8k_item, "humaneval": grade_humaneval}


# --------------------------------------------------------------------------- your own JSONL

#: graders a JSONL dataset may name per line (``"grader"``), each (answer_text, reference) -> bool
JSONL_GRADERS: dict[str, Callable[[str, str], bool]] = {
    "number": grade_gsm8k,  # the stated final number equals the reference number
    "exact": lambda text, ref: _normalise_text(text).strip().lower() == _normalise_text(ref).strip().lower(),
    "contains": lambda text, ref: _normalise_text(ref).strip().lower() in _normalise_text(text).lower(),
    "regex": lambda text, ref: re.search(ref, text, re.IGNORECASE | re.DOTALL) is not None,
}


#: the keys of a dataset line :func:`load_jsonl` reads
_JSONL_KEYS = frozenset({"id", "prompt", "reference", "grader", "domain"})
#: those a near-miss is taken for a typo of ("grade", "prompts", "Reference"); a short one ("id") is
#: too close to keys of the user's own ("uid", "idx")
_TYPO_PRONE = ("prompt", "reference", "grader")


def load_jsonl(path: Path, limit: int | None = None) -> list[Item]:
    """A labelled dataset of your own: one JSON object per line with ``prompt``, ``reference`` and
    optionally ``id``, ``grader`` (number, exact, contains or regex; default number) and ``domain``
    (math, code or anything else). The dataset's name is the file's stem. Every line is checked, those
    past ``limit`` too, so a file is valid or not whichever part of it a command reads."""
    _check_limit(limit)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a dataset file: name the .jsonl file in it")
    if not path.is_file():
        raise ConfigError(f"no dataset file at {path}")
    items: list[Item] = []
    seen: dict[str, int] = {}
    for n, (line, row) in enumerate(_numbered_jsonl(read_utf8(path).split("\n"), path), 1):
        where = f"{path}:{line}"
        for key in row.keys() - _JSONL_KEYS:  # other keys are yours (a source, a note, a uid); a misspelt one is not
            if close := difflib.get_close_matches(str(key).lower(), _TYPO_PRONE, n=1, cutoff=0.85):
                raise ConfigError(f"{where}: {key!r} is no key of a dataset line: did you mean {close[0]!r}? (the "
                                  f"keys read are {', '.join(sorted(_JSONL_KEYS))})")
        grader = str(row.get("grader", "number"))
        if grader not in JSONL_GRADERS:
            raise ConfigError(f"{where}: unknown grader {grader!r}: use {', '.join(JSONL_GRADERS)}")
        if not isinstance(row.get("prompt"), str) or "reference" not in row:
            raise ConfigError(f"{where}: each line needs a 'prompt' (text) and a 'reference'")
        if not row["prompt"].strip():
            raise ConfigError(f"{where}: the prompt is empty: give the question the models should answer")
        try:  # a "\udce9" escape: no model can be sent it, and tracing it had crashed on its digest
            row["prompt"].encode("utf-8")
        except UnicodeEncodeError as e:
            raise ConfigError(f"{where}: the prompt holds a lone surrogate at character {e.start} (an escape such as "
                              "\\udce9, from text that was not UTF-8): write the character itself") from None
        reference = _reference_text(where, row["reference"])
        _check_reference(where, grader, reference)
        item_id = str(n if row.get("id") is None else row["id"])  # by default the n-th object (blank lines not counted)
        if item_id in seen:
            raise ConfigError(f"{where}: id {item_id!r} is also the id of line {seen[item_id]}: give every item "
                              "its own id (traces are stored by id)")
        seen[item_id] = line
        if limit is None or len(items) < limit:
            items.append(Item(id=item_id, prompt=row["prompt"], reference=reference,
                              domain=str(row.get("domain") or ("math" if grader == "number" else "general")),
                              meta={"dataset": path.stem, "grader": grader}))
    return items


def _reference_text(where: str, value: object) -> str:
    """A line's reference as text. Refused: null and true/false (str() would make them the words "None"
    and "True"), anything but text or a number, and empty text (every answer contains "", so the
    grader 'contains' or 'regex' would call every answer right)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):  # bool: an int to isinstance
        raise ConfigError(f"{where}: the reference is {json.dumps(value)}, not text or a number: give the right "
                          "answer as text (\"reference\": \"Paris\") or a number (\"reference\": 42)")
    # a JSON number as written, not as Python prints it: 0.00001 is "1e-05" to str(), which no grader reads
    text = format(Decimal(repr(value)), "f") if isinstance(value, float) else str(value)
    if not text.strip():
        raise ConfigError(f"{where}: the reference is empty, so every answer would grade as right: give the right "
                          "answer, or remove the line")
    return text


def _check_reference(where: str, grader: str, reference: str) -> None:
    """Refuse a reference its grader could not use, when the file is read rather than after a model
    has answered the item."""
    number = number_value(reference)
    if grader == "number" and (number is None or not math.isfinite(number)):
        raise ConfigError(f"{where}: reference {reference!r} is not a finite number, which the grader 'number' (the "
                          "default) compares the answer's final number with: write it plainly, as digits with an "
                          "optional sign, $, thousands commas and decimals (such as 42, -3.5, $1,080 or 0.00001; "
                          "not 1e-5 or 5-3), or name another grader (\"grader\": \"exact\", \"contains\" or \"regex\")")
    if grader == "regex":
        try:
            re.compile(reference)
        except (re.error, OverflowError, RecursionError) as e:  # a{4294967296}; thousands of nested groups
            raise ConfigError(f"{where}: reference {reference!r} is not a valid regular expression ({e})") from None
        if JSONL_GRADERS["regex"]("", reference):  # x*, a|, (Paris)?: found in any answer
            raise ConfigError(f"{where}: reference {reference!r} matches empty text, so every answer would grade as "
                              "right: write a pattern that needs something of the right answer (x+, not x*)")


def _known(name: str) -> str:
    key = name.strip().lower()
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}: use one of {', '.join(sorted(DATASETS))} or a .jsonl file")
    return key


def dataset_name(given: str) -> str:
    """The name a dataset is traced and reported under: a built-in's as `load` reads it ("GSM8K " is
    gsm8k), a .jsonl file's stem. A file named like a built-in dataset is refused: its traces would
    share (and keep replacing) the built-in's."""
    if not given.endswith(".jsonl"):
        return given.strip().lower()
    stem = Path(given).stem
    if stem.strip().lower() in DATASETS:
        raise ConfigError(f"{given}: a dataset file named like the built-in dataset {stem.strip().lower()!r} would "
                          "share its traces, each run replacing the other's: rename the file")
    return stem


def load(name: str, limit: int | None = None) -> list[Item]:
    """Items of a dataset: "gsm8k", "humaneval", or the path of a .jsonl file (see load_jsonl)."""
    if name.endswith(".jsonl"):
        dataset_name(name)
        return load_jsonl(Path(name).expanduser(), limit)
    return DATASETS[_known(name)](limit=limit)


#: grader name (a key of GRADERS or JSONL_GRADERS, as :func:`grader_name` gives it) -> the version of how
#: it reads an answer. Bump a grader's version when a change can grade a stored answer differently, so
#: grades cached with an older version can be found and recomputed. 2: "gsm8k" and "number" read the
#: result of an answer sentence that does its working ("The answer is 5 + 3 = 8." is 8, was 5). 3: they
#: read a \boxed{...} answer as stated (the last number after it had been read), a stated fraction whole
#: ("3/4" is 0.75, "\frac{5}{13}" 5/13: both had been read as their numerator) and LaTeX working
#: ("3 \times 6 = 18" is 18). 4: working with powers, LaTeX division, a middle dot or a negative first
#: number ("2^5 = 32", "3 * 2**3 = 24", "12 \div 4 = 3", "4 · 3 = 12", "-5 + 12 = 7" had been read as
#: their first number); no committed grade changed. 5: a number with an exponent ("1e5" had been read
#: as 1, graded right against a reference of 1); none of the 8,738 committed math answers changed.
GRADER_VERSIONS: dict[str, int] = {"gsm8k": 5, "humaneval": 1, "number": 5, "exact": 1, "contains": 1, "regex": 1}


def grader_name(item: Item) -> str:
    """The name of the grader :func:`grade` uses for an item: its JSONL line's ``grader``, else its
    dataset's name ("gsm8k", "humaneval")."""
    if "grader" in item.meta:
        return str(item.meta["grader"])
    return _known(item.dataset)


def grade(item: Item, answer_text: str) -> bool:
    """Grade an answer to an item with its dataset's grader."""
    name = grader_name(item)
    if "grader" in item.meta:
        return JSONL_GRADERS[name](answer_text, item.reference)
    return GRADERS[name](answer_text, item)
