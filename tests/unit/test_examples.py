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


def test_examples_are_parsed_as_values() -> None:
    ex = prompt_examples(PROMPT)
    assert ex[:2] == [">>> (add([1, 2], 1)) == ([2, 3])\nTrue\n", ">>> (add([], 5)) == ([])\nTrue\n"]
    assert ">>> (add([0], -1)) == ([-1])\nTrue\n" in ex
    assert len(ex) == 3  # '"two"?' is not a literal result: not an example we can check
    assert prompt_examples("Write a function that adds numbers.") == []


def test_pass_rate_runs_the_draft_in_a_subprocess() -> None:
    right = "```python\ndef add(xs, y):\n    return [x + y for x in xs]\n```"
    half = "```python\ndef add(xs, y):\n    return [x + 1 for x in xs]\n```"  # right only when y == 1 ... or empty
    assert examples_pass_rate(PROMPT, right) == 1.0
    assert examples_pass_rate(PROMPT, half) == pytest.approx(2 / 3)
    assert examples_pass_rate(PROMPT, "def add(xs, y) return xs") == 0.0  # does not even parse
    loop = "```python\ndef add(xs, y):\n    while True:\n        pass\n```"
    assert examples_pass_rate(PROMPT, loop, timeout_s=1.0) == 0.0
    assert examples_pass_rate("no examples here", right) is None


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
