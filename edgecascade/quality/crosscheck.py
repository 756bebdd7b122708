"""Cross-check a math draft by solving the problem a second way: as a program.

A small model's worked answer and a short program it writes for the same problem fail in different
ways (a slip in the prose arithmetic, a misread quantity in the code), so when the program's result
equals the draft's final number, the draft is far more often right. Measured on GSM8K's first 400
items (inside the data the shipped calibration is fitted on; ``scripts/study_cross_check.py --first
400``): the 0.5B's drafts were right 76.3% of the time when its program agreed and 17.3% when it did
not, and the cross-check's features raised the cross-validated AUROC of the calibrator from 0.836
to 0.871. A program is short: a cross-check took 3.4 s an item on 2 cores (generation and run),
where a second sampled answer took 11 s and gained less.

It costs one more generation by the drafting model and executes model-written code, so it runs only
where a config opts in (``[cascade] cross_check = true``), only on math prompts (read by
:func:`.domain.prompt_domain`) whose draft has logprobs and passed its checks, and the code runs in a
separate, killable process (:mod:`edgecascade.sandbox`). The program is written from the user's
prompt, so a prompt can steer what it does: before it runs, it must pass an allowlist
(:func:`allowed_program`: arithmetic constructs, a few arithmetic modules, a few builtins, public
attributes that lead to no module), else it is refused and counts as giving no number. A blocklist
stood here before and let ``statistics.sys.modules["os"]`` through. No way past the allowlist to
files, processes or the network is known here, but a filter over Python source is not a proven
sandbox: the run stays in its separate, limited process, and the check stays opt-in.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..providers.base import Provider
from ..sandbox import run_python
from ..types import Completion, Message, Request
from .structure import defines_function, extract_code

#: the features a cross-check adds (opt-in: it generates once more and executes code)
CROSS_CHECK_FEATURES = ("cross_checked", "cross_check_agrees")
#: bumped whenever the prompt or the way a result is read changes (traces carry it in their key)
CROSS_CHECK_VERSION = 1
#: a program for a word problem is a few lines: on GSM8K the 0.5B's averaged 61 tokens (14 of 1,319 hit 256)
CROSS_CHECK_MAX_TOKENS = 256
_TEMPLATE = ("Write a Python function `solution()` that computes and returns the numeric answer to this problem. "
             "Reply with only the code in one ```python block, no explanation.\n\nProblem: {problem}")
#: a ``Problem:`` label at the start of a line (the benchmark's prompt ends with one)
_PROBLEM = re.compile(r"^Problem:", re.MULTILINE)
#: the modules a program for a word problem may import
_MODULES = ("math", "fractions", "decimal", "statistics", "datetime", "time")
#: the builtins it may name (any other builtin, ``open``, ``getattr``, ``type``, ``__import__``, ..., is refused)
_BUILTINS = frozenset({
    "abs", "all", "any", "bin", "bool", "chr", "complex", "dict", "divmod", "enumerate", "filter", "float",
    "frozenset", "hex", "int", "isinstance", "len", "list", "map", "max", "min", "oct", "ord", "pow", "print",
    "range", "reversed", "round", "set", "sorted", "str", "sum", "tuple", "zip",
    "ArithmeticError", "Exception", "OverflowError", "TypeError", "ValueError", "ZeroDivisionError",
})
#: the value types whose methods a program may call (on numbers, strings, containers, dates)
_VALUE_TYPES: tuple[type, ...] = (int, float, complex, str, list, dict, set, frozenset, tuple, range)
#: public names left out all the same: methods that read attributes by name from a string
#: (``"{0.__class__}".format(x)``), setting the system clock (as root it would), a class factory that
#: runs ``exec`` inside, and a C capsule
_LEFT_OUT = frozenset({"format", "format_map", "clock_settime", "clock_settime_ns", "namedtuple", "datetime_CAPI"})
#: Python's constructs for arithmetic: statements, expressions, comprehensions; no class, no ``with``,
#: no ``global``, no generators, no ``async``; every operator, comparison and context node
_NODES: tuple[type, ...] = (
    ast.Module, ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign,
    ast.Expr, ast.If, ast.For, ast.While, ast.Break, ast.Continue, ast.Pass, ast.Try, ast.ExceptHandler,
    ast.Assert, ast.Import, ast.ImportFrom, ast.alias, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
    ast.Call, ast.keyword, ast.Constant, ast.Name, ast.Attribute, ast.List, ast.Tuple, ast.Dict, ast.Set,
    ast.Subscript, ast.Slice, ast.Starred, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp,
    ast.comprehension, ast.IfExp, ast.Lambda, ast.NamedExpr, ast.JoinedStr, ast.FormattedValue,
    ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context,
)


def problem_text(prompt: str) -> str:
    """The problem a prompt states: the text after its last ``Problem:`` label that starts a line (a
    prompt that wraps the problem in instructions for a worked answer, as the benchmark's does),
    else the whole prompt. Instructions to answer in words would fight the request for code."""
    labels = list(_PROBLEM.finditer(prompt))
    tail = prompt[labels[-1].end():].strip() if labels else ""
    return tail or prompt.strip()


def _safe_attributes() -> frozenset[str]:
    """The attribute names a program may use: the public names of the allowed modules that are not
    modules themselves (``statistics.sys`` is the interpreter's ``sys``, whose ``modules`` holds
    ``os``), and the public methods of plain values and of the allowed modules' classes (a
    ``Fraction``'s ``limit_denominator``, a date's ``weekday``), less a few (:data:`_LEFT_OUT`). A
    name is allowed on every object alike, so no allowed name may be a module on any allowed module
    (a test holds it to that)."""
    import importlib
    import types

    modules = [importlib.import_module(m) for m in _MODULES]
    names: set[str] = set()
    kinds: list[type] = list(_VALUE_TYPES)
    for m in modules:
        for name in dir(m):
            value = getattr(m, name)
            if name.startswith("_") or isinstance(value, types.ModuleType):
                continue
            names.add(name)
            if isinstance(value, type):
                kinds.append(value)
    for kind in kinds:
        names.update(n for n in dir(kind) if not n.startswith("_"))
    unsafe = {n for m in modules for n in names if isinstance(getattr(m, n, None), types.ModuleType)}
    return frozenset(names - unsafe - _LEFT_OUT)


_ATTRIBUTES = _safe_attributes()


def allowed_program(code: str) -> bool:
    """Whether a program stays within arithmetic, by an allowlist: it parses; it is made only of
    the constructs arithmetic needs (:data:`_NODES`); it imports only arithmetic modules, and from
    them only names :func:`_safe_attributes` allows; every name it reads is one it binds itself or a
    builtin of :data:`_BUILTINS` (not ``help``, not ``open``); it binds no other builtin's name and
    nothing that starts with two underscores; and every attribute it reads is an allowed, public
    one. (The result line is written with ``print``, ``float`` and ``repr`` as they were before the
    program ran, so a ``print`` of its own cannot forge it.) On the 2,339
    cross-check programs traced here (GSM8K and GSM-Symbolic), every one of the 2,167 that gave a
    number passes (a test reads them)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    nodes = list(ast.walk(tree))
    bound = {name for node in nodes if (name := _bound(node)) is not None}
    if any(name.startswith("__") or name in _RESERVED for name in bound):
        return False
    for node in nodes:
        if not isinstance(node, _NODES):
            return False
        if isinstance(node, ast.Import) and any(a.name not in _MODULES for a in node.names):
            return False
        if isinstance(node, ast.ImportFrom) and (node.level or node.module not in _MODULES
                                                 or any(a.name not in _ATTRIBUTES for a in node.names)):
            return False
        if isinstance(node, ast.Attribute) and node.attr not in _ATTRIBUTES:
            return False
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound | _BUILTINS
                and node.id != "__name__"):  # a main guard (`if __name__ == "__main__":`) reads a string
            return False
        if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("__"):
            return False
    return True


#: names a program may not bind: every builtin it may not read (from this interpreter, and those ``site``
#: adds to the one that runs the program, which this one may lack). The check does not follow scopes, so
#: a name bound in one function would otherwise pass a read of the builtin in another
_RESERVED = (frozenset(dir(builtins)) | {"help", "exit", "quit", "license", "credits", "copyright"}) - _BUILTINS


def _bound(node: ast.AST) -> str | None:
    """The name a node binds (a variable, a function, a parameter, an import, an exception)."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return node.id
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.FunctionDef):
        return node.name
    if isinstance(node, ast.alias):
        return node.asname or node.name
    if isinstance(node, ast.ExceptHandler):
        return node.name
    return None


def cross_check_prompt(prompt: str) -> str:
    """The user message that asks the drafting model for a program instead of prose."""
    return _TEMPLATE.format(problem=problem_text(prompt))


def program_result(answer: str, *, timeout_s: float = 5.0) -> float | None:
    """What the ``solution()`` an answer defines returns, as a number: run in a separate,
    time-limited process. None when there is no such function, it is not allowed to run
    (:func:`allowed_program`), it fails, runs past the timeout or returns something that is not a
    finite number (a text that writes one, ``'7'``, is read as it; True or False is none)."""
    code = extract_code(answer)
    if not defines_function(code, "solution") or not allowed_program(code):
        return None
    mark = f"EDGECASCADE-CC-{secrets.token_hex(6)}"  # the result line, whatever else the code prints
    # on a line of its own, even after output the program left unfinished
    # the result line is written with the builtins as they were before the program ran
    # a truth value is no number, whatever float() makes of it (True would be 1.0); a text that
    # writes one ('7') is read as it
    run = run_python(f"__ec_print, __ec_float, __ec_repr, __ec_is = print, float, repr, isinstance\n{code}\n\n"
                     "__ec_r = solution()\n"
                     "if __ec_is(__ec_r, bool):\n    raise TypeError('a truth value, not a number')\n"
                     f"__ec_print('\\n' + {mark!r} + __ec_repr(__ec_float(__ec_r)))\n", timeout_s=timeout_s)
    if run.returncode != 0:
        return None
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith(mark)]
    if not lines:
        return None
    try:
        value = float(lines[-1][len(mark):])
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class CrossCheck:
    """A draft's cross-check: what its program returned, the draft's own final number, and the
    program's generation (its tokens are billed to the tier that drafted)."""

    result: float | None
    stated: float | None
    completion: Completion | None = None
    #: the generation and the program's run, in seconds
    latency_s: float = 0.0
    #: the generation alone (time inside the provider), in seconds
    generation_s: float = 0.0
    #: False when the program could not be started (no process, no temp dir): the draft is judged
    #: without a number, but a benchmark does not keep it as the program's outcome
    ran: bool = True

    @classmethod
    def of(cls, draft: str, result: float | None, completion: Completion | None = None,
           latency_s: float = 0.0, generation_s: float = 0.0) -> CrossCheck:
        from ..datasets import extract_gsm8k_answer  # here: datasets imports this package

        return cls(result, extract_gsm8k_answer(draft), completion, latency_s, generation_s)

    def to_dict(self) -> dict[str, Any]:
        u = self.completion.usage if self.completion is not None else None
        return {"result": self.result, "draft_number": self.stated, "agrees": self.agrees,
                "program": self.completion.text if self.completion is not None else None,
                "tokens": {"prompt": u.prompt_tokens if u else 0, "completion": u.completion_tokens if u else 0},
                "latency_ms": self.latency_s * 1000, "generation_ms": self.generation_s * 1000}

    @property
    def agrees(self) -> bool:
        """The program's result equals the draft's final number, as the GSM8K grader reads it (to
        1e-6, so 12 and 12.0 agree)."""
        return (self.result is not None and self.stated is not None
                and math.isclose(self.result, self.stated, rel_tol=1e-9, abs_tol=1e-6))

    @property
    def features(self) -> dict[str, float]:
        """``cross_checked``: the program gave a number; ``cross_check_agrees``: it equals the draft's."""
        return {"cross_checked": 0.0 if self.result is None else 1.0, "cross_check_agrees": float(self.agrees)}

    @property
    def summary(self) -> str:
        if self.result is None:
            return "cross-check: its program gave no number"
        if self.agrees:
            return f"cross-check: its program also gives {self.result:.15g}"
        # to 15 digits: two numbers that differ must not print alike (1,250,001 and 1,250,000 did, as 1.25e+06)
        draft = "states no number" if self.stated is None else f"{self.stated:.15g}"
        return f"cross-check: its program gives {self.result:.15g}, the draft {draft}"


async def run_cross_check(provider: Provider, request: Request, draft: str,
                          on_written: Callable[[Completion, float], None] | None = None) -> CrossCheck:
    """Ask ``provider`` (the drafting tier's) for a program for the problem ``request`` states
    (greedy, with the request's system prompt and seed) and run it in a separate process. A program
    that cannot be started (the system refused a process) gives no number, like one that fails.
    ``on_written(program, generation_s)`` is called as soon as the program is written, before it
    runs: a caller that accounts for calls counts this one even when it is stopped while the
    program runs."""
    user = request.question
    messages = [*(m for m in request.messages if m.role == "system"), Message("user", cross_check_prompt(user))]
    t0 = time.perf_counter()
    c = await provider.complete(Request(messages=messages, max_tokens=CROSS_CHECK_MAX_TOKENS, temperature=0.0,
                                        seed=request.seed))
    generation = time.perf_counter() - t0
    if on_written is not None:
        on_written(c, generation)
    try:
        result = await asyncio.to_thread(program_result, c.text)
    except OSError:  # no temp dir, no process (EAGAIN, ENOMEM): the draft is still judged
        return replace(CrossCheck.of(draft, None, c, time.perf_counter() - t0, generation), ran=False)
    return CrossCheck.of(draft, result, c, time.perf_counter() - t0, generation)
