"""Datasets: loaders read the real shared data; graders grade real answers.

The HumanEval grader runs candidate code in a subprocess: these tests check that right code
passes and that wrong, looping, self-killing and broken code all fail (and quickly).
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgecascade import datasets
from edgecascade.datasets import (
    GRADER_VERSIONS,
    GRADERS,
    JSONL_GRADERS,
    Item,
    data_dir,
    extract_code,
    extract_gsm8k_answer,
    grade,
    grade_gsm8k,
    grade_humaneval,
    grader_name,
    load,
    load_gsm8k,
    load_humaneval,
    run_humaneval,
)
from edgecascade.errors import ConfigError

try:
    data_dir()
    HAVE_DATA = True
except ConfigError:
    HAVE_DATA = False

needs_data = pytest.mark.skipif(not HAVE_DATA, reason="benchmark data (../shared/data) not present")


# --------------------------------------------------------------------------- GSM8K grader


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\nThe answer is 18.", "18", True),
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\nThe answer is 20.", "18", False),
        ("The answer is 1,234.", "1234", True),
        ("The answer is 1,234.", "1,234", True),
        ("She makes $18.00 every day.", "18", True),
        ("The answer is $18.00.", "18", True),
        ("The answer is 18.0", "18", True),
        ("The answer is -5.", "-5", True),
        ("The answer is 2.5.", "2.5", True),
        ("The answer is 2.5.", "2", False),
        # "The answer is" wins over a later number, and the last "The answer is" wins
        ("The answer is 7.\nCheck: 7 * 3 = 21", "7", True),
        ("The answer is 5. Wait, no. The answer is 6.", "6", True),
        # no marker: the last number in the text
        ("First 3 + 4 = 7, then 7 * 2 = 14", "14", True),
        ("\\boxed{42}", "42", True),
        ("10%", "10", True),
        # \boxed{} states the answer like "The answer is": a number after it is not the answer (v3)
        ("Therefore, Jane needs \\(\\boxed{7}\\) more weeks to save a total of $60.", "7", True),
        ("so \\(\\boxed{1400}\\) bananas to last for 2 months", "2", False),
        # a stated fraction is read whole, never as its numerator (v3)
        ("The answer is \\(\\boxed{\\frac{5}{13}}\\).", "5", False),
        ("The answer is 3/4.", "3", False),
        ("The answer is 3/4.", "0.75", True),
        ("The answer is \\dfrac{3}{4}.", "0.75", True),
        ("The answer is 60 / 2 = 30.", "30", True),  # working, not a fraction
        # LaTeX working: the result after it (v3)
        ("The answer is \\(3 \\times 6 = 18\\).", "18", True),
        ("The answer is \\(3 \\times 6 = 18\\).", "3", False),
    ],
)
def test_grade_gsm8k(answer: str, reference: str, expected: bool) -> None:
    assert grade_gsm8k(answer, reference) is expected


@pytest.mark.parametrize("answer", ["", "I do not know.", "The answer is unclear.", "```\n```"])
def test_grade_gsm8k_malformed_is_false(answer: str) -> None:
    assert extract_gsm8k_answer(answer) is None
    assert grade_gsm8k(answer, "18") is False


def test_grade_gsm8k_bad_reference_raises() -> None:
    with pytest.raises(ValueError):
        grade_gsm8k("The answer is 3.", "three")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # the answer sentence starts with its working: the number after the working is the answer
        ("The answer is 5 + 3 = 8.", 8),
        ("The answer is 2 * 9 = 18.", 18),
        ("The answer is 18 - 2 = 16", 16),
        ("The answer is 1.5 + 2 = 3.5.", 3.5),  # the point in 3.5 does not end the sentence
        ("\\text{The answer is} = 14 + 11 + 11 = 3", 3),  # cut off mid-working: what it wrote
        # a "=" after the sentence, or before its first number, is not its working
        ("The answer is 8. Because 5 + 3 = 8", 8),
        ("The answer is 7.\nCheck: 7 * 3 = 21", 7),
        ("The answer is 42 (since 6 x 7 = 42).", 42),
        ("The answer is: x = 5", 5),
        ("The answer is \\boxed{18}.", 18),
        ("The answer is $1,080.", 1080),
        ("The answer is 5 + 3 =", 5),  # nothing after the "=": the first number
        ("The answer is 3 x 4 = 12.", 12), ("The answer is 2 * (4 + 5) = 18.", 18),
        ("The answer is $45 + $25 = $70.", 70),
        # after the stated number, a "=" that is not its working leaves that number (from a review:
        # "the number after the last '='" had read these as 3, 2, 1 and 9)
        ("The answer is 18 (x = 3).", 18),
        ("The answer is 12, where 4 x 3 = 12 and n = 2.", 12),
        ("The answer is 60 minutes = 1 hour.", 60),
        ("The answer is 2 + 2 = 4! Then x = 9", 4),
        # grader v4: powers, LaTeX division, a middle dot and a negative first number are working too
        # (each had been read as its first number)
        ("The answer is 2^5 = 32.", 32), ("The answer is 3 * 2**3 = 24.", 24),
        ("The answer is 1000 * 1.1^2 = 1210.", 1210), ("The answer is \\(12 \\div 4 = 3\\).", 3),
        ("The answer is 4 · 3 = 12.", 12), ("The answer is -5 + 12 = 7.", 7),
        ("The answer is -7.", -7), ("The answer is 5 - -3 = 8.", 8),
        # grader v5: a number with an exponent is read whole (1e5 had been read as 1, 2.5e3 as 2.5)
        ("The answer is 1e5.", 100000), ("The answer is 2.5e3", 2500), ("The answer is 1E+2.", 100),
        ("The answer is 6 eggs.", 6), ("The answer is 6e.", 6),
    ],
)
def test_answer_sentence_with_working_states_its_result(answer: str, expected: float) -> None:
    assert extract_gsm8k_answer(answer) == expected


@pytest.mark.parametrize(("reference", "answer"),
                         [("-$5", "-5"), ("$-5", "-5"), ("\u22123", "-3"), ("1,234.50", "1234.5"), ("+4", "4")])
def test_signed_dollar_and_grouped_references_still_read(reference: str, answer: str) -> None:
    assert grade_gsm8k(f"The answer is {answer}.", reference)
    assert not grade_gsm8k("The answer is 1.", reference)


@pytest.mark.parametrize(("reference", "misread"),
                         [("1e-5", "-100000"), ("5-3", "-53"), ("-$-5", "5"), ("12,34", "1234")])
def test_a_reference_that_is_not_a_plain_number_is_refused(reference: str, misread: str) -> None:
    # it used to be read by dropping every "-" (and ","): 1e-5 was -100000 and 5-3 was -53
    with pytest.raises(ValueError, match="is not a number"):
        grade_gsm8k(f"The answer is {misread}.", reference)


# --------------------------------------------------------------------------- code extraction


def test_extract_code_prefers_python_block() -> None:
    text = "Here:\n```\nplain\n```\nand\n```python\ndef f():\n    return 1\n```\nDone."
    assert extract_code(text) == "def f():\n    return 1\n"


def test_extract_code_falls_back_to_any_block_then_raw_text() -> None:
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("```py\nx = 2\n```") == "x = 2\n"
    assert extract_code("x = 3") == "x = 3"


def test_extract_code_unclosed_block_runs_to_end() -> None:
    assert extract_code("```python\ndef f():\n    return") == "def f():\n    return"


def test_a_fence_opens_a_line() -> None:
    """A fence could open anywhere: an inline ```pip install numpy``` hid the code block after it,
    and a long line of backticks took seconds (each could open a block, scanned to the line's end)."""
    import subprocess
    import sys

    text = "Install it with ```pip install numpy``` first.\n```python\nimport numpy\nx = 1\n```"
    assert extract_code(text) == "import numpy\nx = 1\n"
    # a block in a list item is indented with its fence: it is read dedented, so it runs
    listed = "1. Define it:\n   ```python\n   def add(a, b):\n       return a + b\n   ```\n2. Call it."
    assert extract_code(listed) == "def add(a, b):\n    return a + b\n"
    # ... but a function's bare body stays as written, to continue the prompt (dedented, it had failed)
    body = " ```python\n    for x in xs:\n        pass\n    return False\n ```"
    assert extract_code(body).startswith("    for x in xs:")
    # where no fence opens a line, one after text on its line still counts (a review found it dropped)
    assert extract_code("Here is the code: ```python\ndef f():\n    return 1\n```") == "def f():\n    return 1\n"
    # linear: 100 KB of backticks on one line (35 s before), in a child with a time limit
    code = "from edgecascade.quality.structure import extract_code; extract_code('`' * 100_000 + '``` ' * 25_000)"
    subprocess.run([sys.executable, "-c", code], timeout=20, check=True)


# --------------------------------------------------------------------------- HumanEval grader


@pytest.fixture(scope="module")
def he0() -> Item:
    item = load_humaneval(limit=1)[0]
    assert item.id == "HumanEval/0"
    return item


def _full(item: Item, body: str) -> str:
    return "```python\n" + item.meta["prompt"] + body + "```"


@needs_data
def test_canonical_solution_passes(he0: Item) -> None:
    assert grade_humaneval(_full(he0, he0.reference), he0)  # a complete function in a block
    assert grade_humaneval(he0.reference, he0)  # a bare body, which continues the prompt


@needs_data
def test_complete_function_without_imports_passes(he0: Item) -> None:
    # the answer forgets `from typing import List`: the prompt's header supplies it
    code = (
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)\n"
        "               for j, b in enumerate(numbers) if i != j)\n"
    )
    assert grade_humaneval(f"Sure!\n```python\n{code}```\nThis works.", he0)


@needs_data
def test_wrong_body_fails(he0: Item) -> None:
    out = run_humaneval(_full(he0, "    return False\n"), he0)
    assert not out.passed and out.reason == "failed"
    assert "AssertionError" in out.detail


@needs_data
def test_infinite_loop_times_out(he0: Item) -> None:
    t0 = time.perf_counter()
    out = run_humaneval(_full(he0, "    while True:\n        pass\n"), he0, timeout_s=2)
    elapsed = time.perf_counter() - t0
    assert not out.passed and out.reason == "timeout"
    assert elapsed < 6


@needs_data
def test_timeout_also_kills_children(he0: Item, tmp_path: Path) -> None:
    """A child the candidate started dies with it at the timeout. (This test's candidate had been a
    SyntaxError, a quoted path inside a quoted string: it failed at once and started no child.)"""
    started, marker = tmp_path / "child-started", tmp_path / "child-alive"
    child = (f"import time, pathlib; pathlib.Path({str(started)!r}).write_text('x'); time.sleep(3); "
             f"pathlib.Path({str(marker)!r}).write_text('x')")
    body = (
        "    import os, subprocess, sys\n"
        f"    subprocess.Popen([sys.executable, '-c', {child!r}])\n"
        f"    while not os.path.exists({str(started)!r}):\n        pass\n"  # the child runs before the timeout
        "    while True:\n        pass\n"
    )
    out = run_humaneval(_full(he0, body), he0, timeout_s=3)
    assert out.reason == "timeout" and started.exists(), out
    time.sleep(3.5)  # past the moment the child, had it lived, would have written the marker
    assert not marker.exists()


@needs_data
@pytest.mark.parametrize(
    "body",
    [
        "    import os\n    os._exit(1)\n",
        "    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n",
        "    import os\n    os._exit(0)\n",  # exit 0 before the tests ran is not a pass
        "    import sys\n    sys.exit(0)\n",
    ],
)
def test_self_terminating_code_fails(he0: Item, body: str) -> None:
    out = run_humaneval(_full(he0, body), he0, timeout_s=5)
    assert not out.passed
    assert out.reason in ("crashed", "failed")


@needs_data
def test_syntax_error_fails(he0: Item) -> None:
    out = run_humaneval(_full(he0, "    return (((\n"), he0)
    assert not out.passed and out.reason == "failed"
    assert "SyntaxError" in out.detail


@needs_data
def test_empty_answer_fails(he0: Item) -> None:
    assert run_humaneval("", he0).reason == "no_code"


@needs_data
def test_main_block_in_answer_does_not_run(he0: Item) -> None:
    body = he0.reference + "\nif __name__ == '__main__':\n    input()\n    raise SystemExit(3)\n"
    assert grade_humaneval(_full(he0, body), he0, timeout_s=5)


def _add_item() -> Item:
    """A HumanEval-shaped item that needs no data files."""
    return Item("t/add", "p", "    return a + b\n", "code",
                {"dataset": "humaneval", "prompt": 'def add(a: int, b: int) -> int:\n    """a + b"""\n',
                 "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add"})


def test_a_right_answer_that_replaces_sys_stdout_still_passes() -> None:
    """The pass token was written through sys.stdout: a right completion that swapped it (to capture
    output, say) was graded "crashed"."""
    answer = ("```python\nimport io\nimport sys\n\ndef add(a, b):\n    return a + b\n\n"
              "sys.stdout = io.StringIO()\n```")
    out = run_humaneval(answer, _add_item(), timeout_s=5)
    assert out.passed and out.reason == "passed", out
    wrong = answer.replace("return a + b", "return a - b")
    assert run_humaneval(wrong, _add_item(), timeout_s=5).reason == "failed"


def test_a_right_answer_that_needs_its_module_by_name_passes() -> None:
    """The completion ran under a module name Python could not find: a dataclass under string
    annotations (`from __future__ import annotations`) and pickle of its own class failed a right
    answer."""
    dataclass_answer = ("```python\nfrom __future__ import annotations\nfrom dataclasses import dataclass\n\n"
                        "@dataclass\nclass Pair:\n    a: int\n    b: int\n\n"
                        "def add(a, b):\n    return Pair(a, b).a + b\n```")
    out = run_humaneval(dataclass_answer, _add_item(), timeout_s=5)
    assert out.passed and out.reason == "passed", out
    pickle_answer = ("```python\nimport pickle\n\nclass Box:\n    def __init__(self, v):\n        self.v = v\n\n"
                     "def add(a, b):\n    return pickle.loads(pickle.dumps(Box(a + b))).v\n```")
    out = run_humaneval(pickle_answer, _add_item(), timeout_s=5)
    assert out.passed and out.reason == "passed", out
    assert run_humaneval(pickle_answer.replace("a + b", "a - b"), _add_item(), timeout_s=5).reason == "failed"


def test_output_at_exit_after_passing_tests_does_not_hide_the_pass() -> None:
    # an atexit handler printing more than the 2 kB of output that comes back used to push the pass
    # token out of it: "crashed" although the tests had passed
    answer = ("```python\nimport atexit\n\ndef add(a, b):\n    return a + b\n\n"
              "atexit.register(lambda: print('x' * 3600))\n```")
    out = run_humaneval(answer, _add_item(), timeout_s=5)
    assert out.passed and out.reason == "passed", out


def test_a_thread_left_running_after_passing_tests_is_not_a_timeout() -> None:
    # a non-daemon thread used to keep the finished program alive until the timeout
    answer = ("```python\nimport threading, time\n\ndef add(a, b):\n    return a + b\n\n"
              "threading.Thread(target=time.sleep, args=(60,)).start()\n```")
    out = run_humaneval(answer, _add_item(), timeout_s=5)
    assert out.passed and out.reason == "passed", out  # a timeout would read "timeout"


@needs_data
def test_candidate_exit_does_not_reach_our_process(he0: Item) -> None:
    # SystemExit / os._exit in the candidate end only its subprocess, never the test run
    assert not grade_humaneval("raise SystemExit(1)\n", he0)
    assert not grade_humaneval("import os\nos._exit(0)\n", he0)


# --------------------------------------------------------------------------- loaders


@needs_data
def test_load_gsm8k_counts_and_reference() -> None:
    items = load_gsm8k()
    assert len(items) == 1319
    first = items[0]
    assert first.id == "gsm8k/0" and first.domain == "math" and first.reference == "18"
    assert "Janet" in first.prompt and "The answer is" in first.prompt
    assert all("," not in it.reference and it.reference.lstrip("-").replace(".", "").isdigit()
               for it in items)
    # every reference grades its own worked solution as right
    assert all(grade_gsm8k(it.meta["solution"].replace("####", "The answer is"), it.reference)
               for it in items[:50])


@needs_data
def test_load_humaneval_counts_and_meta() -> None:
    items = load_humaneval()
    assert len(items) == 164
    assert [it.id for it in items[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    it = items[0]
    assert it.domain == "code"
    assert set(it.meta) >= {"prompt", "test", "entry_point"}
    assert it.meta["entry_point"] == "has_close_elements"
    assert it.meta["prompt"] in it.prompt and "```python" in it.prompt


@needs_data
def test_limit_and_load_by_name() -> None:
    assert [i.id for i in load("gsm8k", 3)] == ["gsm8k/0", "gsm8k/1", "gsm8k/2"]
    assert len(load("HumanEval", 2)) == 2
    assert load_gsm8k(limit=0) == []
    with pytest.raises(ValueError):
        load_gsm8k(limit=-1)
    with pytest.raises(ConfigError, match="unknown dataset"):
        load("mmlu")


@needs_data
def test_graders_registry() -> None:
    g = load("gsm8k", 1)[0]
    h = load("humaneval", 1)[0]
    assert set(GRADERS) == {"gsm8k", "humaneval"}
    assert grade(g, "The answer is 18.") and not grade(g, "The answer is 17.")
    assert grade(h, h.reference) and not grade(h, "    return None\n")


def test_items_are_hashable() -> None:
    a = Item("x", "p", "r", "math", {"k": [1]})
    assert hash(a) == hash(Item("x", "p", "r", "math", {}))


def test_missing_data_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("EDGECASCADE_DATA", str(missing))
    with pytest.raises(ConfigError, match="nope"):
        data_dir()
    with pytest.raises(ConfigError, match="EDGECASCADE_DATA"):
        load_gsm8k(1)


def test_missing_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGECASCADE_DATA", str(tmp_path))
    with pytest.raises(ConfigError, match="test.jsonl"):
        datasets.load_gsm8k(1)


def _humaneval_gz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, bytes]:
    """A small, valid HumanEval.jsonl.gz where load_humaneval looks ($EDGECASCADE_DATA), and its bytes."""
    monkeypatch.setenv("EDGECASCADE_DATA", str(tmp_path))
    rows = [{"task_id": f"T/{i}", "prompt": f"def f{i}(x):\n", "test": "def check(c):\n    assert c(1) == 1\n",
             "entry_point": f"f{i}", "canonical_solution": "    return x\n"} for i in range(3)]
    path = tmp_path / "humaneval" / "HumanEval.jsonl.gz"
    path.parent.mkdir()
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # a cut-off download: EOFError
        lambda data: b'{"task_id": "HumanEval/0"}\n',  # not gzip at all: gzip.BadGzipFile
        lambda data: data[:20] + bytes(b ^ 0xFF for b in data[20:40]) + data[40:],  # corrupt: zlib.error
    ],
    ids=["truncated", "not-gzip", "corrupt"],
)
def test_damaged_humaneval_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  damage: Callable[[bytes], bytes]) -> None:
    path, data = _humaneval_gz(tmp_path, monkeypatch)
    assert [i.id for i in load_humaneval()] == ["T/0", "T/1", "T/2"]  # intact, it loads
    path.write_bytes(damage(data))
    with pytest.raises(ConfigError, match=r"HumanEval\.jsonl\.gz could not be read.*restore it"):
        load_humaneval()


@pytest.mark.parametrize(
    ("grader", "reference", "says"),
    [
        ("contains", None, "the reference is null"),  # it used to be the text "None"
        ("exact", True, "the reference is true"),
        ("number", None, "the reference is null"),
        ("contains", "", "the reference is empty"),  # every answer contains "": all would be right
        ("exact", "", "the reference is empty"),
        ("regex", "", "the reference is empty"),  # "" matches anything too
        ("contains", "  ", "the reference is empty"),
        ("contains", ["Paris"], "the reference is \\[\"Paris\"\\]"),
    ],
)
def test_null_bool_or_empty_reference_is_refused(tmp_path: Path, grader: str, reference: object, says: str) -> None:
    p = tmp_path / "mine.jsonl"
    rows = [{"prompt": "2+2?", "reference": 4}, {"prompt": "Capital of France?", "reference": reference,
                                                 "grader": grader}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ConfigError, match=f"mine.jsonl:2: {says}"):
        load(str(p))
    p.write_text(json.dumps(rows[0]) + "\n")
    assert load(str(p))[0].reference == "4"  # a JSON number is still a reference


@pytest.mark.parametrize("reference", ["(", "a{4294967296}", "(" * 2000 + ")" * 2000])
def test_a_regex_reference_python_cannot_compile_is_a_config_error(tmp_path: Path, reference: str) -> None:
    """A repetition past Python's limit raised OverflowError, thousands of nested groups a
    RecursionError: a traceback, not the file's line and what is wrong with it."""
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"prompt": "Which letter?", "reference": reference, "grader": "regex"}) + "\n")
    with pytest.raises(ConfigError, match="mine.jsonl:1: reference .* is not a valid regular expression"):
        load(str(p))


@pytest.mark.parametrize("reference", ["1e-5", "5-3", "18.", "1,2345"])
def test_jsonl_number_reference_must_be_a_plain_number(tmp_path: Path, reference: object) -> None:
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"prompt": "How much?", "reference": reference}) + "\n")
    with pytest.raises(ConfigError, match="mine.jsonl:1: reference .* is not a finite number.*not 1e-5 or 5-3"):
        load(str(p))
    p.write_text("\n".join(json.dumps({"id": str(i), "prompt": "How much?", "reference": r})
                           for i, r in enumerate(["-$5", "$-5", "\u22123", "1,234.50", "0.00001"])) + "\n")
    assert [grade(i, f"The answer is {a}.") for i, a in zip(load(str(p)), ["-5", "-5", "-3", "1234.5", "0.00001"])] \
        == [True] * 5
    # a JSON number is read as written, not as Python prints it (0.00001 is "1e-05" to str())
    p.write_text("\n".join(json.dumps({"id": str(i), "prompt": "How much?", "reference": r})
                           for i, r in enumerate([0.00001, 2e16, 42.5])) + "\n")
    assert [i.reference for i in load(str(p))] == ["0.00001", "20000000000000000", "42.5"]


def test_grader_versions_name_every_grader_and_grader_name_is_the_one_grade_uses(tmp_path: Path) -> None:
    assert set(GRADER_VERSIONS) == set(GRADERS) | set(JSONL_GRADERS)
    assert all(isinstance(v, int) and v >= 1 for v in GRADER_VERSIONS.values())
    # the number readers changed how they read "The answer is 5 + 3 = 8." (2), then \boxed{}, fractions
    # and LaTeX working (3), then powers, LaTeX division, a middle dot and a negative first number in
    # working (4): cached grades are stale
    assert GRADER_VERSIONS["gsm8k"] == GRADER_VERSIONS["number"] == 5
    p = tmp_path / "mine.jsonl"
    p.write_text("\n".join(json.dumps({"id": g, "prompt": "?", "reference": "4", "grader": g})
                           for g in JSONL_GRADERS) + "\n" + json.dumps({"id": "default", "prompt": "?",
                                                                          "reference": "4"}) + "\n")
    assert [grader_name(i) for i in load(str(p))] == [*JSONL_GRADERS, "number"]
    assert grader_name(Item("gsm8k/0", "p", "18", "math", {"dataset": "gsm8k"})) == "gsm8k"
    assert grader_name(_add_item()) == "humaneval"
    with pytest.raises(ConfigError, match="unknown dataset"):
        grader_name(Item("x", "p", "r", "math", {"dataset": "mmlu"}))


def test_jsonl_dataset_with_its_graders(tmp_path: Path) -> None:
    from edgecascade.datasets import grade, load

    p = tmp_path / "mine.jsonl"
    lines = [
        {"id": "a", "prompt": "2+2?", "reference": "4"},
        {"id": "b", "prompt": "Capital of France?", "reference": "paris", "grader": "contains"},
        {"id": "c", "prompt": "Say yes", "reference": "Yes", "grader": "exact"},
        {"id": "d", "prompt": "A date", "reference": r"\d{4}-\d{2}-\d{2}", "grader": "regex"},
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    items = load(str(p))
    assert [i.id for i in items] == ["a", "b", "c", "d"] and items[0].dataset == "mine"
    assert grade(items[0], "The answer is 4.") and not grade(items[0], "The answer is 5.")
    assert grade(items[1], "It is Paris.") and not grade(items[1], "Lyon")
    assert grade(items[2], " yes ") and not grade(items[2], "yes indeed")
    assert grade(items[3], "on 2024-01-31") and not grade(items[3], "soon")
    assert len(load(str(p), limit=2)) == 2
    assert load(str(p), limit=0) == []
    p.write_text(json.dumps({"prompt": "x", "reference": "y", "grader": "vibes"}) + "\n")
    with pytest.raises(ConfigError, match="unknown grader"):
        load(str(p))
    p.write_text(json.dumps({"reference": "y"}) + "\n")
    with pytest.raises(ConfigError, match="needs a 'prompt'"):
        load(str(p))


def test_committed_gsm_symbolic_test_set_is_whole_and_gradable() -> None:
    """The clean GSM8K-shaped test (`scripts/make_gsm_symbolic.py`): two instances of each of 85
    templates, stated with the GSM8K prompt (so a deployment reads them as math, as the shipped
    calibrations' math calibrators expect), each with a number its grader can compare."""
    from edgecascade.datasets import gsm8k_prompt
    from edgecascade.quality.domain import prompt_domain

    path = Path(__file__).parents[2] / "bench" / "datasets" / "gsm-symbolic.jsonl"
    items = load(str(path))
    assert len(items) == 170 and len({i.id for i in items}) == 170
    assert [i.id for i in items[:2]] == ["t00-0", "t01-0"] and items[85].id == "t00-1"
    assert {i.id.rsplit("-", 1)[0] for i in items[:85]} == {i.id.rsplit("-", 1)[0] for i in items[85:]}
    for item in items:
        question = item.prompt.rpartition("Problem: ")[2]
        assert item.prompt == gsm8k_prompt(question) and prompt_domain(item.prompt) == "math"
        assert grade(item, f"The answer is {item.reference}.")
        assert not grade(item, f"The answer is {float(item.reference) + 1:g}.")
    # later draws (instance 2, instances 3 and 4, then instances 5 to 44 one by one, of each template):
    # other items, stated the same way; the eighteenth, the twenty-second, the twenty-sixth, the
    # twenty-seventh, the twenty-eighth and the thirtieth leave out their one item that repeats an
    # earlier draw's problem (t06-19, the tenth draw's t06-11; t53-23, the first's t53-1; t53-27, the
    # sixteenth's t53-17; t52-28, the second's t52-2; t26-29, the third's t26-4; t53-31, the
    # eighteenth's t53-19), the thirty-first and thirty-second their two (t13-32, the tenth's t13-11;
    # t52-32, the fifteenth's t52-16; t33-33, the twenty-third's t33-24; t82-33, the third's t82-3),
    # and the thirty-fifth, thirty-eighth and thirty-ninth their one (t53-36, the third's t53-4;
    # t53-39, the twenty-first's t53-22; t53-40, the eighth's t53-9), and the forty-second its one
    # (t06-43, the thirty-fifth's t06-36), and the forty-third its one (t26-44, the thirty-first's t26-32)
    seen = {i.prompt for i in items}
    draws = [("gsm-symbolic-2.jsonl", 85, "t00-2"), ("gsm-symbolic-3.jsonl", 170, "t00-3"),
             *((f"gsm-symbolic-{k}.jsonl", 85, f"t00-{k + 1}") for k in range(4, 18)),
             ("gsm-symbolic-18.jsonl", 84, "t00-19"), ("gsm-symbolic-19.jsonl", 85, "t00-20"),
             ("gsm-symbolic-20.jsonl", 85, "t00-21"),
             ("gsm-symbolic-21.jsonl", 85, "t00-22"), ("gsm-symbolic-22.jsonl", 84, "t00-23"),
             ("gsm-symbolic-23.jsonl", 85, "t00-24"), ("gsm-symbolic-24.jsonl", 85, "t00-25"),
             ("gsm-symbolic-25.jsonl", 85, "t00-26"), ("gsm-symbolic-26.jsonl", 84, "t00-27"),
             ("gsm-symbolic-27.jsonl", 84, "t00-28"), ("gsm-symbolic-28.jsonl", 84, "t00-29"),
             ("gsm-symbolic-29.jsonl", 85, "t00-30"), ("gsm-symbolic-30.jsonl", 84, "t00-31"),
             ("gsm-symbolic-31.jsonl", 83, "t00-32"), ("gsm-symbolic-32.jsonl", 83, "t00-33"),
             ("gsm-symbolic-33.jsonl", 85, "t00-34"), ("gsm-symbolic-34.jsonl", 85, "t00-35"),
             ("gsm-symbolic-35.jsonl", 84, "t00-36"), ("gsm-symbolic-36.jsonl", 85, "t00-37"),
             ("gsm-symbolic-37.jsonl", 85, "t00-38"), ("gsm-symbolic-38.jsonl", 84, "t00-39"),
             ("gsm-symbolic-39.jsonl", 84, "t00-40"),
             ("gsm-symbolic-40.jsonl", 85, "t00-41"),
             ("gsm-symbolic-41.jsonl", 85, "t00-42"),
             ("gsm-symbolic-42.jsonl", 84, "t00-43"),
             ("gsm-symbolic-43.jsonl", 84, "t00-44")]
    for name, n, first in draws:
        later = load(str(path.with_name(name)))
        assert len(later) == n and later[0].id == first and len({i.id for i in later}) == n
        # the one known repeat, named in its plan: the fourteenth draw's t26-15 is the sixth's t26-7
        assert not {i.prompt for i in later if (name, i.id) != ("gsm-symbolic-14.jsonl", "t26-15")} & seen
        assert all(prompt_domain(i.prompt) == "math" and grade(i, f"The answer is {i.reference}.") for i in later)
        seen |= {i.prompt for i in later}


def test_grade_number_writes_a_program_result_as_the_grader_reads_it() -> None:
    from edgecascade.benchmarks.traces import grade_number

    def item(reference: str) -> Item:
        return Item("x", "p", reference, "math", {"grader": "number"})

    assert grade_number(item("18"), 18.0) and not grade_number(item("18"), 17.0)
    assert not grade_number(item("18"), None)
    # written out in full: 1e-05 in Python's repr would read as the number 1
    assert grade_number(item("0.00001"), 1e-05) and not grade_number(item("1"), 1e-05)
    assert grade_number(item("2.5"), 2.5)
    # a math item graded as text: the program's number against the reference's ("exact" compared
    # the sentence "The answer is 6" with "6"; "contains" found "6" in 16 and in 0.6)
    for grader in ("exact", "contains"):
        six = Item("x", "p", "6", "math", {"grader": grader})
        assert grade_number(six, 6.0) and not grade_number(six, 16.0) and not grade_number(six, 0.6)
    word = Item("x", "p", "six", "math", {"grader": "contains"})  # not a number: its grader reads the result
    assert not grade_number(word, 6.0)


def test_the_arithmetic_check_reads_no_benchmark_question() -> None:
    """It reads only questions that are nothing but a sum; every benchmark question is a word problem
    or a function to write, so the check leaves every traced decision as it was."""
    from edgecascade.quality.sums import bare_sum

    draws = sorted((Path(__file__).parents[2] / "bench" / "datasets").glob("gsm-symbolic*.jsonl"))
    questions = [i.prompt for name in ("gsm8k", "humaneval", *map(str, draws)) for i in load(name)]
    assert len(questions) > 1319 + 164 + 1700
    assert [q for q in questions if bare_sum(q) is not None] == []
    # the same questions stripped of the benchmark's instruction line are still more than a sum
    assert [q for q in questions if bare_sum(q.rpartition("Problem: ")[2]) is not None] == []


def test_odd_jsonl_input_is_read_or_refused_clearly(tmp_path: Path) -> None:
    """An integer past Python's 4,300 digits and deep nesting raised bare ValueError/RecursionError; a
    byte-order mark was refused; a null id or domain became the text "None"."""
    big = tmp_path / "big.jsonl"
    big.write_text('{"prompt": "q", "reference": "1", "n": ' + "9" * 5000 + "}\n")
    with pytest.raises(ConfigError, match=r"big.jsonl:1 is not valid JSON"):
        load(str(big))
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"prompt": "q", "reference": "1", "n": ' + "[" * 100000 + "]" * 100000 + "}\n")
    with pytest.raises(ConfigError, match=r"deep.jsonl:1 is not valid JSON"):
        load(str(deep))
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "What is 2 + 2?", "reference": "4"}).encode() + b"\n")
    assert [i.reference for i in load(str(bom))] == ["4"]
    # a bad byte after a mark is placed where it is in the file, not three bytes early
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "q", "reference": "4"}).encode() + b"\n\xff\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2 is not UTF-8 text .* at byte 37 of the file"):
        load(str(bad))
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text(json.dumps({"id": None, "prompt": "What is 2 + 2?", "reference": "4", "domain": None}) + "\n")
    (item,) = load(str(nulls))
    assert item.id == "1" and item.domain == "math"


def test_a_right_answer_opening_with_a_future_import_passes() -> None:
    """Put after the prompt, the import was a SyntaxError: a right answer failed."""
    answer = "```python\nfrom __future__ import annotations\n\ndef add(a: int, b: int) -> int:\n    return a + b\n```"
    out = run_humaneval(answer, _add_item(), timeout_s=5)
    assert out.passed and out.reason == "passed", out
    assert run_humaneval(answer.replace("a + b", "a - b"), _add_item(), timeout_s=5).reason == "failed"


def test_an_answer_cannot_pass_by_reading_the_pass_token_from_its_program() -> None:
    """The program's file sat in the answer's working folder, pass token and all: an answer that
    printed the token from it and exited passed without a test run."""
    answer = ("```python\nimport os, re\n\ndef add(a, b):\n    return 0\n\nfor name in os.listdir('.'):\n"
              "    m = re.search(r'EDGECASCADE-PASS-[0-9a-f]+', open(name).read())\n"
              "    if m:\n        os.write(1, m.group().encode())\n        os._exit(0)\n```")
    out = run_humaneval(answer, _add_item(), timeout_s=5)
    assert not out.passed and out.reason == "failed", out


def test_a_dataset_line_no_model_could_be_sent_or_a_pattern_every_answer_matches_is_refused(tmp_path: Path) -> None:
    """A prompt with a lone surrogate ("\\udce9") loaded, then crashed `bench run` on its digest; a regex
    reference matching empty text (x*, a|, (Paris)?) graded every answer right, which the loader
    already refused for an empty reference."""
    from edgecascade.datasets import load_jsonl

    p = tmp_path / "mine.jsonl"
    p.write_text('{"prompt": "caf\\udce9 costs 3 + 4?", "reference": 7}\n')  # JSON's escape of a lone surrogate
    with pytest.raises(ConfigError, match=r"mine.jsonl:1: the prompt holds a lone surrogate"):
        load_jsonl(p)
    for pattern in ("x*", "a|", "(Paris)?", ""):
        p.write_text(json.dumps({"prompt": "Capital of France?", "reference": pattern, "grader": "regex"}) + "\n")
        with pytest.raises(ConfigError, match=r"every answer would grade as right"):
            load_jsonl(p)
    p.write_text(json.dumps({"prompt": "Capital of France?", "reference": "Paris+", "grader": "regex"}) + "\n")
    [item] = load_jsonl(p)
    assert grade(item, "It is Paris.") and not grade(item, "It is Lyon.")
