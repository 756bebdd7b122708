"""Does the draft's code pass the examples its own prompt gives?

Coding prompts often carry examples (``>>> f(2)`` followed by ``4``). Running the draft against
them is the cheapest strong check there is: a function that gets its documented examples wrong is
wrong. It executes model-written code, so it runs only in a separate, killable process
(:mod:`edgecascade.sandbox`) and only where a caller asks for it: the benchmark's calibration
features, and the engine when a config sets ``[cascade] run_examples = true``.
"""

from __future__ import annotations

import ast
import json
import re
import secrets

from ..sandbox import run_python

_FENCE = re.compile(r"```[ \t]*[\w+-]*[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)

_RUNNER = """\
import doctest, json, sys
_pre, _code, _examples = json.loads({payload!r})
_g = {{"__name__": "draft", "__builtins__": __builtins__}}
try:
    exec(compile(_pre, "prompt.py", "exec"), _g)
except Exception:
    pass
exec(compile(_code, "draft.py", "exec"), _g)
_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
_failed = _attempted = 0
for _n, _src in enumerate(_examples):
    try:
        _test = doctest.DocTestParser().get_doctest(_src, _g, f"example{{_n}}", "examples", 0)
    except ValueError:
        continue  # an example the parser cannot read says nothing about the draft
    _r = doctest.DocTestRunner(optionflags=_flags, verbose=False).run(_test, out=lambda s: None)
    _failed += _r.failed
    _attempted += _r.attempted
sys.stdout.write({token!r} + json.dumps([_failed, _attempted]))
"""


_ARROW = re.compile(r"^([A-Za-z_]\w*\(.*\))\s*(?:==|➞|=>|->|should return|returns?)\s*(\S.*)$")
_END = ('"""', "'''", "```", ">>>")


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def prompt_examples(prompt: str) -> list[str]:
    """The examples of a prompt that state an expected result, each as clean doctest source
    (``>>>`` lines, and ``f(x) == y`` / ``f(x) ➞ y`` / ``f(x) => y`` lines with a literal result).
    Parsed line by line: prompts mix docstrings, fences and prose, which doctest's own parser
    rejects for inconsistent indentation."""
    lines, out, i = prompt.splitlines(), [], 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        m = _ARROW.match(line)
        if m and not line.startswith(">>>"):  # "f(2) == 4", "f(2) ➞ 4", "f(2) => 4", "f(2) should return 4"
            value = m.group(2).rstrip(".").strip()
            if _literal(value):  # prose like "19 - 5 - 6 = 8" or "true" is no checkable example
                out.append(f">>> ({m.group(1)}) == ({value})\nTrue\n")
            continue
        if not line.startswith(">>> "):
            continue
        src = [line[4:]]
        while i < len(lines) and lines[i].strip().startswith("... "):
            src.append(lines[i].strip()[4:])
            i += 1
        want = []
        while i < len(lines) and (t := lines[i].strip()) and not t.startswith(_END) and not _ARROW.match(t):
            want.append(t)
            i += 1
        if want and len(src) == 1 and len(want) == 1 and "#" not in src[0] and _literal(want[0]):
            # compare values, not text: '21' and "21", 0.5 and .5 are the same answer
            out.append(f">>> ({src[0]}) == ({want[0]})\nTrue\n")
        elif want:
            out.append(">>> " + "\n... ".join(src) + "\n" + "\n".join(want) + "\n")
    return out


def _code(text: str) -> str:
    m = _FENCE.search(text)
    return m.group(1) if m else text


def examples_pass_rate(prompt: str, answer: str, *, timeout_s: float = 5.0) -> float | None:
    """Share of the prompt's examples the answer's code gets right; None when the prompt has none.

    Code that does not run, loops past the timeout or crashes passes none of them.
    """
    examples = prompt_examples(prompt)
    if not examples:
        return None
    token = f"EDGECASCADE-EX-{secrets.token_hex(6)}"
    payload = json.dumps([_code(prompt), _code(answer), examples])
    run = run_python(_RUNNER.format(payload=payload, token=token), timeout_s=timeout_s, memory_bytes=1 << 30)
    if run.returncode != 0 or token not in run.stdout:
        return 0.0
    failed, attempted = json.loads(run.stdout.split(token, 1)[1])
    return 1.0 - failed / attempted if attempted else None
