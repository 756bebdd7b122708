"""Does the draft's code pass the examples its own prompt gives?

Coding prompts often carry examples (``>>> f(2)`` followed by ``4``, or ``f(2) == 4``). Running
the draft against them is the cheapest strong check there is: a function that gets its documented
examples wrong is wrong. It executes model-written code, so:

- it runs only in a separate, killable process with a minimal environment (:mod:`edgecascade.sandbox`),
  and only where a caller asks for it (the benchmark's calibration features, and the engine when
  a config sets ``[cascade] run_examples = true``);
- nothing from the prompt is executed: an example is used only when it is a call of a plain name
  with literal arguments and a literal expected value (parsed with ``ast``, passed as literals);
  from the prompt's code only ``import`` lines of well-known standard modules are kept; the called
  function must be defined by the draft itself. An example that fails only because the draft calls
  a function the prompt defines (and the draft does not) says nothing, as the prompt's code never runs.
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from dataclasses import dataclass

from ..sandbox import run_python
from .structure import _FENCE, defines_function, extract_code

#: ``call  SEP  expected``; the separators prompts use, longest first (``==>`` before ``==``, a
#: lone ``=`` last), optionally after a ``#`` (``f(1)  # => 2``)
_ARROW = re.compile(r"^(.+?\))\s*(?:#\s*)?(?:==>|=>|->|➞|==|=(?!=)|should return|returns?)\s*(\S.*)$")
#: what may precede an example on its line: a bullet, ``assert``, ``for``, ``e.g.``, ``Example:``
_LEAD = re.compile(r"^(?:[*\-•]\s+|assert\s+|for\s+|e\.g\.,?\s*|examples?\s*[:,]?\s+)+", re.IGNORECASE)
#: prose spellings of Python's constants (``f(3) => true``)
_PROSE_CONSTANTS = {"true": "True", "false": "False", "none": "None", "null": "None"}
_END = ('"""', "'''", "```", ">>>")


@dataclass(frozen=True)
class Example:
    function: str
    args: tuple[str, ...]  # literal source of each positional argument
    kwargs: tuple[tuple[str, str], ...]
    expected: str  # literal source


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _expected_literal(text: str) -> str | None:
    """The literal an example's result side states: the whole text, or the text before a trailing
    comment or parenthetical remark (``'No' (it must start with a letter)``)."""
    text = text.strip()
    for cand in (text, text.split(" #", 1)[0], re.split(r"\s+\(", text, maxsplit=1)[0]):
        cand = cand.strip().rstrip(".,;").strip()
        cand = _PROSE_CONSTANTS.get(cand.lower(), cand) if cand.isalpha() else cand
        if cand and _literal(cand):
            return cand
    return None


def _arrow_example(line: str) -> Example | None:
    if line.startswith("assert "):  # real Python: `assert f(1) == 2, "message"`
        try:
            node = ast.parse(line[:2000]).body[0]
        except (SyntaxError, ValueError, MemoryError, RecursionError, IndexError):
            node = None
        if isinstance(node, ast.Assert):
            t = node.test
            if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
                left, right = _unparse(t.left), _unparse(t.comparators[0])
                return _example(left, right) if left is not None and right is not None else None
            return None
    m = _ARROW.match(_LEAD.sub("", line))
    return _example(m.group(1), m.group(2)) if m else None


def _unparse(node: ast.AST) -> str | None:
    """The source of a node, or None where it nests too deep to write back (``f(-----...1)``): a
    prompt like that is no example, and must not crash the query that reads it."""
    try:
        return ast.unparse(node)
    except (RecursionError, MemoryError):
        return None


def _example(call_src: str, expected: str) -> Example | None:
    """An example when ``call_src`` is ``name(literal, ..., key=literal)`` and ``expected`` a literal."""
    if len(call_src) > 2000:
        return None
    want = _expected_literal(expected)
    if want is None:
        return None
    try:
        node = ast.parse(call_src.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    parts = [*node.args, *(k.value for k in node.keywords)]
    if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
        return None
    written = [_unparse(a) for a in parts]
    srcs = [x for x in written if x is not None and _literal(x)]
    if len(srcs) < len(written):
        return None
    n = len(node.args)
    return Example(node.func.id, tuple(srcs[:n]), tuple((k.arg or "", v) for k, v in zip(node.keywords, srcs[n:])),
                   want)


def prompt_examples(prompt: str) -> list[Example]:
    """The checkable examples a prompt states: ``>>> f(1, 2)`` followed by one literal result
    line, or a line like ``f(1, 2) == 3`` (also ``==>``, ``=>``, ``->``, ``➞``, ``=``, ``# =>``,
    ``returns``), possibly bulleted or after ``assert``/``for``/``Example:``. Parsed line by line:
    prompts mix docstrings, fences and prose."""
    lines, out, i = prompt.splitlines(), [], 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if line.startswith(">>> "):
            want = []  # the doctest form: the result is on the next line
            while i < len(lines) and (t := lines[i].strip()) and not t.startswith(_END) and not _ARROW.match(t):
                want.append(t)
                i += 1
            if (ex := _arrow_example(line[4:])) is not None:
                # `>>> f(4) == 2` checks itself, unless the output shown says the comparison fails
                ex = ex if want in ([], ["True"]) else None
            else:
                ex = _example(line[4:], want[0]) if len(want) == 1 else None
        else:
            ex = _arrow_example(line)
        if ex is not None:
            out.append(ex)
    return out


#: standard-library modules a prompt's code may import for the draft (importing runs a module's
#: code, so only these): what coding prompts use for type hints and helpers
_SAFE_MODULES = frozenset({
    "typing", "math", "cmath", "collections", "itertools", "functools", "re", "string", "heapq", "bisect",
    "fractions", "decimal", "statistics", "operator", "dataclasses", "enum", "hashlib", "random", "copy",
    "datetime", "numbers", "array",
})


_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError)


def _prompt_code(prompt: str) -> ast.Module | None:
    """The prompt's code: its first fenced block, or where it has none (a plain-text prompt), each
    line that starts with ``import`` or ``from`` and each ``def`` with its indented body, parsed one
    by one (a line of prose that starts with "from" is skipped, not fatal)."""
    m = _FENCE.search(prompt)
    if m:
        try:
            return ast.parse(m.group(2))
        except _PARSE_ERRORS:
            return None
    chunks: list[list[str]] = []
    inside = False
    for line in prompt.splitlines():
        if re.match(r"(?:import|from)\s+\w", line):
            chunks.append([line])
            inside = False
        elif re.match(r"(?:async\s+)?def\s+\w", line):
            chunks.append([line])
            inside = True
        elif inside and (line.startswith((" ", "\t")) or not line.strip()):
            chunks[-1].append(line)
        else:
            inside = False
    body: list[ast.stmt] = []
    for chunk in chunks:
        try:
            body += ast.parse("\n".join(chunk)).body
        except _PARSE_ERRORS:
            continue
    return ast.Module(body=body, type_ignores=[])


def _imports(tree: ast.Module | None) -> str:
    """The prompt code's imports of well-known standard modules (e.g. ``from typing import List``);
    nothing else from the prompt runs."""
    if tree is None:
        return ""
    keep = [n for n in tree.body
            if (isinstance(n, ast.Import) and all(a.name.split(".")[0] in _SAFE_MODULES for a in n.names))
            or (isinstance(n, ast.ImportFrom) and n.level == 0 and (n.module or "").split(".")[0] in _SAFE_MODULES)]
    return "\n".join(ast.unparse(n) for n in keep)


def _prompt_functions(tree: ast.Module | None) -> list[str]:
    """The names of the functions the prompt's code defines (never run: a draft that calls one it
    does not define itself cannot be judged by running it)."""
    if tree is None:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


# What the result is judged and written with is taken before the draft runs, and a result is read
# as plain built-in values (a subclass's stored value, by the base type's own methods) before it is
# compared: a draft that replaced json.dumps or math.isclose, or returned an object whose == says yes
# to anything, passed every example. A value of another type (a numpy integer, a Decimal) passes none;
# a bytearray is read as the bytes it holds. This
# contains mistakes and cheap tricks, not hostile code (see edgecascade.sandbox).
_RUNNER = """\
import ast, inspect, json, math, os, sys, types
_imports, _code, _examples, _token, _unrun = json.loads({payload!r})
_literal, _isclose, _dumps, _write, _out = ast.literal_eval, math.isclose, json.dumps, os.write, os.dup(1)
_type, _isinstance, _exit, _function = type, isinstance, os._exit, types.FunctionType
_list, _tuple, _dict, _set, _frozenset = list, tuple, dict, set, frozenset
_iter, _items, _index, _float, _str = list.__iter__, dict.items, int.__index__, float.__float__, str.__str__
_titer, _siter, _fiter, _view = tuple.__iter__, set.__iter__, frozenset.__iter__, memoryview


class _NotPlain(Exception):
    pass


def _plain(x, depth=0):
    if depth > 100:
        raise _NotPlain
    t = _type(x)
    if x is None or t is bool or t is complex or t is bytes:
        return x
    if _isinstance(x, (bytes, bytearray)):
        return bytes(_view(x))
    if _isinstance(x, int):
        return _index(x)
    if _isinstance(x, float):
        return _float(x)
    if _isinstance(x, str):
        return _str(x)
    if _isinstance(x, list):
        return _list(_plain(v, depth + 1) for v in _iter(x))
    if _isinstance(x, tuple):
        return _tuple(_plain(v, depth + 1) for v in _titer(x))
    if _isinstance(x, dict):
        return _dict((_plain(k, depth + 1), _plain(v, depth + 1)) for k, v in _items(x))
    if _isinstance(x, set):
        return _set(_plain(v, depth + 1) for v in _siter(x))
    if _isinstance(x, frozenset):
        return _frozenset(_plain(v, depth + 1) for v in _fiter(x))
    raise _NotPlain


# a module Python can find by its name: dataclasses with string annotations and pickle look it up
_module = types.ModuleType("draft")
sys.modules["draft"] = _module
_g = _module.__dict__
_g["__builtins__"] = __builtins__
_unwrap, _NameError = inspect.unwrap, NameError
try:
    exec(compile(_imports, "imports.py", "exec"), _g)
except Exception:
    pass
exec(compile(_code, "draft.py", "exec"), _g)
_failed = _attempted = 0
for _fn, _args, _kwargs, _want in _examples:
    _f = _g.get(_fn)
    try:  # a decorated function (functools.cache, lru_cache, wraps) is called through its wrapper
        _inner = _unwrap(_f) if callable(_f) else None
    except Exception:
        _inner = None
    if not (_isinstance(_inner, _function) and _inner.__code__.co_filename == "draft.py"):
        continue  # not a function the draft's own code defines: this example says nothing
    try:
        _got = _plain(_f(*[_literal(a) for a in _args], **{{k: _literal(v) for k, v in _kwargs}}))
        _exp = _literal(_want)
        _ok = _got == _exp or (_type(_got) is float and _type(_exp) in (int, float)
                               and _isclose(_got, _exp, rel_tol=1e-6, abs_tol=1e-9))
    except _NameError as _e:
        if getattr(_e, "name", None) in _unrun:
            continue  # it calls the prompt's own helper, which never runs here: this example says nothing
        _ok = False
    except Exception:
        _ok = False
    _attempted += 1
    _failed += not _ok
_write(_out, (_token + _dumps([_failed, _attempted])).encode())
_exit(0)  # the draft's atexit handlers or live threads must not turn a result into a crash or a timeout
"""


def examples_pass_rate(prompt: str, answer: str, *, timeout_s: float = 5.0) -> float | None:
    """Share of the prompt's examples the answer's code gets right; None when there is nothing to
    check (no examples, or the draft defines none of the functions they call).

    Code that does not run, loops past the timeout or crashes passes none of them.
    """
    code = extract_code(answer)
    # only calls of functions the draft itself defines: a name from the prompt (or a builtin) is never called
    examples = [e for e in prompt_examples(prompt) if defines_function(code, e.function)]
    if not examples:
        return None
    token = f"EDGECASCADE-EX-{secrets.token_hex(6)}"
    tree = _prompt_code(prompt)
    unrun = [name for name in _prompt_functions(tree) if not defines_function(code, name)]
    payload = json.dumps([_imports(tree), code, [[e.function, list(e.args), list(e.kwargs), e.expected]
                                                    for e in examples], token, unrun])
    run = run_python(_RUNNER.format(payload=payload), timeout_s=timeout_s, memory_bytes=1 << 30)
    if run.returncode != 0 or token not in run.stdout:
        return 0.0
    try:
        failed, attempted = json.JSONDecoder().raw_decode(run.stdout.split(token, 1)[1])[0]
    except (ValueError, TypeError):
        return 0.0
    return 1.0 - failed / attempted if attempted else None
