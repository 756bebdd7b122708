"""The prompt-examples check: parse the examples a coding prompt states, run a draft against them."""

from __future__ import annotations

import pytest

from edgecascade.quality.examples import examples_pass_rate, prompt_examples

PROMPT = '''Complete this function.

```python
from typing import List


def add(xs: List[int], y: int) -> List[int]:
    """Add y to every element.
    >>> add([1, 2], 1)
    [2, 3]
    >>> add([], 5)
    []
    add([0], -1) == [-1]
    add([1], 1) ➞ "two"?
    """
```'''


def test_only_literal_calls_are_examples() -> None:
    ex = prompt_examples(PROMPT)
    assert [(e.function, e.args, e.expected) for e in ex] == [
        ("add", ("[1, 2]", "1"), "[2, 3]"), ("add", ("[]", "5"), "[]"), ("add", ("[0]", "-1"), "[-1]")]
    assert prompt_examples("Write a function that adds numbers.") == []
    # nothing that is not a plain call with literal arguments and a literal result is ever run
    hostile = """>>> __import__('os').system('touch /tmp/pwned')\n0\n>>> add(open('/etc/passwd'), 1)\n[]\n
    >>> x = [3, 1]\n>>> add(x, 1)\n[4, 2]\n>>> print(add([1], 1))\n[2]\nf(1) == 1, f(2) == 4"""
    assert prompt_examples(hostile) == []


def test_the_example_spellings_prompts_use() -> None:
    prompt = """
    choose_num(12, 15) = 14
    move_one_ball([3, 4, 5, 1, 2])==>True
    * eat(5, 6, 10) -> [11, 4]
    assert list_sort(["aa", "a"]) => ["aa"]
    for x_or_y(7, 34, 12) == 34
    file_name_check("1example.dll") # => 'No' (the name should start with a letter)
    decimal_to_binary(15)   # returns "db1111db"
    is_simple_power(3, 2) => false
    >>> count_nums([-1, 11, -11]) == 1
    Example: f(x=2) ➞ 4
    is_happy(a) => False
    fruit_distribution("5 apples", 19) ->19 - 5 = 14
    """
    got = [(e.function, e.args, e.kwargs, e.expected) for e in prompt_examples(prompt)]
    assert got == [
        ("choose_num", ("12", "15"), (), "14"),
        ("move_one_ball", ("[3, 4, 5, 1, 2]",), (), "True"),
        ("eat", ("5", "6", "10"), (), "[11, 4]"),
        ("list_sort", ("['aa', 'a']",), (), '["aa"]'),
        ("x_or_y", ("7", "34", "12"), (), "34"),
        ("file_name_check", ("'1example.dll'",), (), "'No'"),
        ("decimal_to_binary", ("15",), (), '"db1111db"'),
        ("is_simple_power", ("3", "2"), (), "False"),
        ("count_nums", ("[-1, 11, -11]",), (), "1"),
        ("f", (), (("x", "2"),), "4"),
    ]  # the last two are not literal: `a` is a name, `19 - 5 = 14` an expression


def test_pass_rate_runs_the_draft_in_a_subprocess() -> None:
    right = "```python\ndef add(xs, y):\n    return [x + y for x in xs]\n```"
    half = "```python\ndef add(xs, y):\n    return [x + 1 for x in xs]\n```"  # wrong only for y != 1 on non-empty xs
    assert examples_pass_rate(PROMPT, right) == 1.0
    assert examples_pass_rate(PROMPT, half) == pytest.approx(2 / 3)
    assert examples_pass_rate(PROMPT, "```python\ndef add(xs, y) return xs\n```") == 0.0  # does not even parse
    loop = "```python\ndef add(xs, y):\n    while True:\n        pass\n```"
    assert examples_pass_rate(PROMPT, loop, timeout_s=1.0) == 0.0
    noisy = ("```python\nimport atexit\natexit.register(print, 'bye')\n"
             "def add(xs, y):\n    return [x + y for x in xs]\n```")
    assert examples_pass_rate(PROMPT, noisy) == 1.0  # output after the verdict does not break it
    # nor a thread that would keep the process alive past its timeout (it read as a failure, 0.0)
    lingering = ("```python\nimport threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
                 "def add(xs, y):\n    return [x + y for x in xs]\n```")
    assert examples_pass_rate(PROMPT, lingering, timeout_s=3.0) == 1.0
    assert examples_pass_rate("no examples here", right) is None
    assert examples_pass_rate(PROMPT, "```python\ndef other():\n    pass\n```") is None  # nothing to check


def test_prompt_names_are_never_called(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a prompt that imports a builtin and states an "example" calling it: only functions the draft
    # itself defines are ever called, and only well-known standard modules are imported
    marker = tmp_path / "pwned"
    hostile = (f"```python\nfrom builtins import exec\nimport antigravity\nfrom typing import List\n```\n"
               f"exec(\"open({str(marker)!r}, 'w').write('x')\") == None\nf(1) == 2\n")
    draft = "```python\ndef f(x):\n    return x + 1\n```"
    assert examples_pass_rate(hostile, draft) == 1.0  # f's example ran, exec's did not
    assert not marker.exists()
    from edgecascade.quality.examples import _imports, _prompt_code

    assert _imports(_prompt_code(hostile)) == "from typing import List"
    # a draft that only re-exports a name does not make the prompt's call run either
    assert examples_pass_rate(hostile, "```python\nfrom builtins import exec\n```") is None
    assert not marker.exists()


def test_doctest_results_and_asserts_are_read_as_written() -> None:
    prompt = """
    >>> is_prime(4) == True
    False
    >>> is_prime(5) == True
    True
    >>> is_prime(7) == True
    assert f(1) == 2, "f(1) should be 2"
    assert f(2)
    For example, g(3) == 9
    """
    got = [(e.function, e.args, e.expected) for e in prompt_examples(prompt)]
    # the first says is_prime(4) is not True: no example; an assert's message is not its expected value
    assert got == [("is_prime", ("5",), "True"), ("is_prime", ("7",), "True"), ("f", ("1",), "2"),
                   ("g", ("3",), "9")]


def test_the_sandbox_sees_no_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgecascade.sandbox import run_python

    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-be-visible")
    run = run_python("import os, sys; sys.stdout.write(str(sorted(os.environ)))", timeout_s=10)
    assert run.returncode == 0 and "OPENAI_API_KEY" not in run.stdout and "PATH" in run.stdout


def test_the_sandbox_keeps_its_file_size_limit_under_a_lower_inherited_memory_limit() -> None:
    """Both limits were set in one try: where the parent's hard address-space limit was below the
    sandbox's, setting it failed and the file-size limit was never set (a program wrote 20 MB)."""
    import subprocess
    import sys

    parent = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"  # below the sandbox's 4 GiB here
        "from edgecascade.sandbox import run_python\n"
        "r = run_python('import resource\\n"
        "print(resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_FSIZE))\\n"
        "open(\"big\", \"wb\").write(bytes(20 << 20))\\n"
        "print(\"wrote\")', memory_bytes=4 << 30)\n"
        "sys.stdout.write(r.stdout + '|' + r.stderr[-300:])\n"
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    said, _, errors = out.stdout.partition("|")
    assert said.startswith(f"({3 << 30}, {3 << 30}) ({1 << 24}, {1 << 24})")  # memory clamped, file size kept
    assert "wrote" not in said and "File too large" in errors


def test_calibrations_that_run_examples_need_the_opt_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from edgecascade import ConfigError
    from edgecascade.config import parse_config
    from edgecascade.engine import Cascade
    from edgecascade.quality.calibration import EXAMPLE_FEATURES, FEATURE_NAMES, Calibration

    names = list(FEATURE_NAMES + EXAMPLE_FEATURES)
    n = len(names)
    cal = Calibration("m", names, [0.0] * n, [1.0] * n, [0.0] * n, 0.0)
    assert cal.runs_examples
    path = tmp_path / "c.json"
    cal.save(path)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    tiers = [{"model": str(gguf), "accept": {"confidence": "calibrated", "calibration": str(path),
                                             "min_confidence": 0.5}}]
    with pytest.raises(ConfigError, match="run_examples = true"):
        Cascade.from_config(parse_config({"tiers": tiers}))
    c = Cascade.from_config(parse_config({"cascade": {"run_examples": True}, "tiers": tiers}))
    assert c.tiers[0].calibration is not None
    # a cascade built in code is held to the same opt-in
    from edgecascade import AcceptRule, CascadeSettings, ScriptedProvider, ScriptedReply, Tier

    rule = AcceptRule(confidence="calibrated", min_confidence=0.5)
    tier = Tier("t", ScriptedProvider([ScriptedReply("x", logprob=-0.1)]), rule, calibration=cal)
    with pytest.raises(ConfigError, match="run_examples = true"):
        Cascade([tier])
    assert Cascade([tier], CascadeSettings(run_examples=True)).run_sync("q").tier == "t"


def test_an_opt_in_no_calibration_uses_says_it_does_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`cross_check = true` alone picked the calibration that runs no code (the shipped one with the
    cross-check also runs the examples), and nothing said the setting did nothing."""
    from edgecascade.config import parse_config
    from edgecascade.engine import Cascade
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    names = list(FEATURE_NAMES)
    plain = Calibration("m", names, [0.0] * len(names), [1.0] * len(names), [0.0] * len(names), 0.0)
    plain.save(tmp_path / "c.json")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    tiers = [{"model": str(gguf), "accept": {"confidence": "calibrated", "calibration": str(tmp_path / "c.json"),
                                             "min_confidence": 0.5}}]
    for key in ("cross_check", "run_examples"):
        with pytest.warns(UserWarning, match=f"{key} = true, but no tier's calibration uses it"):
            Cascade.from_config(parse_config({"cascade": {key: True}, "tiers": tiers}))


def test_an_example_nested_past_the_limit_is_no_example_and_no_crash() -> None:
    """`f(------...1) == 2` parsed, then raised RecursionError when written back: any prompt could
    crash a query on a config that runs the examples."""
    deep = "-" * 500 + "1"
    for line in (f"f({deep}) == 2", f"assert f({deep}) == 2", f"assert f(1) == {deep}"):
        assert prompt_examples("Write f.\n" + line) == []
    assert prompt_examples("Write f.\nassert f(-1) == 2") != []  # a plain one is still read


@pytest.mark.parametrize("trick", [
    "import json\njson.dumps = lambda x: '[0, 2]'\n",  # the verdict written by the draft's json.dumps
    "import math\nmath.isclose = lambda *a, **k: True\n",
    "import ast\nast.literal_eval = lambda s: 0\n",
    # the verdict's token read from the program's own file, and written as the verdict
    "import re, os\nfor _n in os.listdir('.'):\n    _m = re.search(r'EDGECASCADE-EX-[0-9a-f]+', open(_n).read())\n"
    "    if _m:\n        os.write(1, (_m.group() + '[0, 2]').encode()); os._exit(0)\n",
])
def test_a_wrong_draft_cannot_pass_by_changing_how_it_is_judged(trick: str) -> None:
    """Each of these wrong drafts (every element minus y) had passed all examples: a draft with the
    examples check on was accepted at the draft tier."""
    wrong = f"```python\n{trick}\ndef add(xs, y):\n    return [x - y for x in xs]\n```"
    assert examples_pass_rate(PROMPT, wrong) == pytest.approx(1 / 3)  # add([], 5) == [] holds either way


def test_a_result_is_compared_as_plain_values_not_by_its_own_equality() -> None:
    """An object whose == says yes to anything passed every example; a subclass of a built-in type is
    read as its stored value (a Counter is the dict it holds), whatever it says it equals."""
    anything = ("```python\nclass Yes(list):\n    def __eq__(self, other):\n        return True\n\n"
                "def add(xs, y):\n    return Yes([0])\n```")
    assert examples_pass_rate(PROMPT, anything) == 0.0
    yes = "```python\nclass Yes:\n    __eq__ = lambda self, other: True\n\ndef add(xs, y):\n    return Yes()\n```"
    assert examples_pass_rate(PROMPT, yes) == 0.0
    subclass = ("```python\nclass L(list):\n    pass\n\ndef add(xs, y):\n    return L(x + y for x in xs)\n```")
    assert examples_pass_rate(PROMPT, subclass) == 1.0


def test_a_draft_whose_examples_cannot_be_run_is_judged_without_them(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A process that could not be started (EAGAIN, ENOMEM, no temp dir) raised out of the whole
    query; the cross-check already judged its draft without its program."""
    from edgecascade.quality import calibration
    from edgecascade.types import Completion, Timings, Usage

    def no_process(*a: object, **k: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr("edgecascade.sandbox.subprocess.Popen", no_process)
    draft = Completion(text="```python\ndef add(xs, y):\n    return [x + y for x in xs]\n```", model="m",
                       finish_reason="stop", usage=Usage(10, 20), timings=Timings(total_s=1.0))
    f = calibration.draft_features(draft, prompt=PROMPT, run_examples=True)
    assert f["has_examples"] == 0.0 and f["examples_pass"] == 0.0
    assert "could not be run" in caplog.text


FIB = ('Write fib(n).\n```python\ndef fib(n: int) -> int:\n    """\n    >>> fib(10)\n    55\n    >>> fib(1)\n    1\n'
       '    """\n```')


def test_a_decorated_function_is_checked_through_its_decorator() -> None:
    """A draft memoized with functools.cache was no plain function: a wrong one was read as having no
    examples (None) instead of failing them."""
    right = ("```python\nfrom functools import lru_cache\n@lru_cache(None)\ndef fib(n):\n"
             "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```")
    wrong = "```python\nfrom functools import cache\n@cache\ndef fib(n):\n    return 0\n```"
    assert examples_pass_rate(FIB, right) == 1.0
    assert examples_pass_rate(FIB, wrong) == 0.0


def test_a_draft_that_needs_its_module_by_name_runs() -> None:
    """The draft ran under a module name Python could not find: a dataclass under string
    annotations broke, and the right draft passed none of its examples."""
    draft = ("```python\nfrom __future__ import annotations\nfrom dataclasses import dataclass\n@dataclass\n"
             "class P:\n    x: int\ndef fib(n):\n    return P(n if n < 2 else fib(n - 1) + fib(n - 2)).x\n```")
    assert examples_pass_rate(FIB, draft) == 1.0


def test_an_example_that_needs_the_prompts_own_helper_says_nothing() -> None:
    """The prompt's helper never runs: a right draft that called it failed its examples (1 of 3)."""
    prompt = ('```python\ndef is_palindrome(s: str) -> bool:\n    return s == s[::-1]\n\n'
              'def make_palindrome(s: str) -> str:\n    """\n    >>> make_palindrome(\'\')\n    \'\'\n'
              '    >>> make_palindrome(\'cat\')\n    \'catac\'\n    """\n```')
    uses_helper = ("```python\ndef make_palindrome(s):\n    for i in range(len(s) + 1):\n"
                   "        if is_palindrome(s[i:]):\n            return s + s[:i][::-1]\n```")
    assert examples_pass_rate(prompt, uses_helper) is None
    own_helper = uses_helper.replace("```python\n", "```python\ndef is_palindrome(s):\n    return s == s[::-1]\n\n")
    assert examples_pass_rate(prompt, own_helper) == 1.0
    assert examples_pass_rate(prompt, own_helper.replace("s + s[:i][::-1]", "s")) == 0.5
    # a name the prompt does not define is the draft's own mistake: it fails
    assert examples_pass_rate(prompt, "```python\ndef make_palindrome(s):\n    return helper(s)\n```") == 0.0


def test_a_plain_text_prompt_s_imports_are_kept() -> None:
    """Only a fenced block's imports were kept: a right draft of an unfenced prompt that relies on
    its `from typing import List` failed every example."""
    prompt = ("Write total(xs) that sums a list.\nfrom typing import List\nfrom the list, add the numbers.\n\n"
              ">>> total([1, 2])\n3\n")
    assert examples_pass_rate(prompt, "```python\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n```") == 1.0
    assert examples_pass_rate(prompt, "```python\ndef total(xs: List[int]) -> int:\n    return 0\n```") == 0.0
