"""Per-domain calibration: the domain read from a prompt, calibrators fitted per domain where the
data allows, and each draft judged by its own domain's calibrator and threshold."""

from __future__ import annotations

import numpy as np
import pytest

from edgecascade import Cascade, ScriptedProvider, Tier
from edgecascade.config import parse_config
from edgecascade.datasets import load
from edgecascade.errors import ConfigError
from edgecascade.providers.scripted import ScriptedReply
from edgecascade.quality.calibration import (
    MIN_DOMAIN_ITEMS,
    Calibration,
    auroc,
    fit_calibration,
)
from edgecascade.quality.domain import prompt_domain

MATH = "Solve this: Tom has 3 apples and buys 4 more. How many apples does he have?"
CODE = "Complete this Python function.\n\n```python\ndef add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n```"


@pytest.mark.parametrize("dataset,domain", [("gsm8k", "math"), ("humaneval", "code")])
def test_every_benchmark_prompt_gets_its_datasets_domain(dataset: str, domain: str) -> None:
    # the domain a deployment reads from the prompt alone matches the dataset's own label on every item
    items = load(dataset)
    assert len(items) > 100
    assert {prompt_domain(i.prompt) for i in items} == {domain}


def test_most_bare_word_problems_are_math_too() -> None:
    # without the benchmark's "Solve this math word problem" line, the question alone: a miss only
    # means the pooled calibrator judges it
    questions = [i.prompt.split("Problem: ", 1)[1] for i in load("gsm8k")]
    found = sum(prompt_domain(q) == "math" for q in questions)
    assert found >= 0.97 * len(questions)
    assert not any(prompt_domain(q) == "code" for q in questions)


@pytest.mark.parametrize("prompt,domain", [
    ("What is the capital of France?", None),
    # chat that mentions numbers or code words is neither (from a review of the first version)
    ("What were the top 10 movies of 2023?", None),  # a year is not a quantity
    ("How many people lived in Paris in 1900?", None),
    ("How long should I boil 2 eggs?", None),  # one number
    ("What is the difference between one and two-phase commit?", None),  # weak cue, no digits
    ("How can I learn Python in 3 months with 2 hours a day?", None),
    ("Write a short story about a class of 30 students.", None),
    ("Write an essay on the function of the kidneys.", None),
    ("Can you fix the script of my play?", None),
    ("Import tariffs rose 5% in 2024.", None),  # keywords are lower case at the start of a line
    ("Class A: shares rose.", None),
    # "what is" and two numbers were enough: chat like this got the math calibrator (and, with
    # cross_check = true, a program written and run) (from a review)
    ("What's the difference between Python 2 and 3?", None),
    ("What are the 7 wonders of the world? List 3 of them.", None),
    ("Explain Windows 10 vs Windows 11: what is new?", None),
    ("What is HTTP/2 and how does it differ from HTTP 1.1?", None),
    ("Summarize chapter 3 in 5 bullet points. What is the main theme?", None),
    ("If she works 50 weeks a year at $30 an hour, what's her annual salary?", "math"),  # a measured quantity
    ("What is 100 - 37?", "math"),
    ("What is 24/7 customer support?", None), ("What is the 80/20 rule?", None),
    ("What's the 3x2 grid layout in CSS Grid?", None),
    ("What is 3 / 4 + 1 / 4?", "math"), ("What is 3 X 4?", "math"),
    ("What's 15% of 80?", "math"),
    ("What is 2+2?", "math"),  # the same number twice is two numbers
    ("Solve this math problem: x + 1 = 3", "math"),
    ("Write a recursive function to compute fibonacci numbers.", "code"),
    ("Write a bash script that renames files.", "code"),
    ("Implement quicksort in Rust.", "code"),
    ("How old is the universe?", None),  # a quantity question with no number in it
    ("In 1990 what was the population of Paris?", None),  # one number and a weak cue
    ("Summarise the 2023 report in 3 bullet points.", None),
    ("", None),
    (None, None),
    ("If I have 3 apples and eat one, how many are left?", "math"),
    ("What is 17 * 23?", "math"),
    ("Jan has three times as many pets as Marcia, who has four. How many pets do they have?", "math"),
    ("Write a Python function that reverses a string.", "code"),
    # code asked for without a language or the word "function" (they had gone to the math calibrator)
    ("Write code to calculate the average of 10 and 20.", "code"),
    ("Write a program that prints the sum of all multiples of 3 or 5 below 1000.", "code"),
    ("Create a function that returns the sum of 2 and 3.", "code"),
    ("A programmer wrote a program that ran 3 times a day for 5 days. How many runs?", "math"),
    ("import numpy as np\nhow many elements does np.arange(10) have?", "code"),  # code wins over math
    # a query, a regex or a coding problem asked for (a review found them read as math)
    ("Write a SQL query to find the top 10 customers by total sales over the last 12 months.", "code"),
    ("Write a regex that matches a percentage like 45% or 100%.", "code"),
    ("Write a regular expression for 3 digits followed by 2 letters.", "code"),
    ("Solve this coding problem: given n = 5 and k = 2, return the number of ways.", "code"),
    # prose that names a program, a code, a query or a fenced text (a review found them read as code,
    # and judged by the code calibrator)
    ("Create a workout program for beginners.", None),
    ("Create a loyalty program for a cafe.", None),
    ("Write a code of conduct for our team.", None),
    ("Write a poem about code.", None),
    ("Write a query letter to a literary agent.", None),
    ("Summarize this email:\n```\nHi Bob, are we still on for lunch at noon?\n```", None),
    ("Write a short program that reads a file.", "code"),
    ("Write a SQL query to count the rows.", "code"),
    ("Write some code that parses JSON.", "code"),
    ("What does this print?\n```\nfor i in range(3):\n    print(i)\n```", "code"),
    ("Explain this:\n```js\nconst x = 1\n```", "code"),
    # code asked for with words the first version of that rule did not allow, and one-line fences
    ("Implement the following code: a stack with push and pop.", "code"),
    ("Write a Python 3 program that adds two numbers.", "code"),
    ("Write two programs that talk over a socket.", "code"),
    ("What does ```x = [1,2,3]; print(x[3])``` print?", "code"),
    ("Fix this:\n```py3\nprint(1)\n```", "code"),
    (MATH, "math"),
    (CODE, "code"),
])
def test_prompt_domain(prompt: str | None, domain: str | None) -> None:
    assert prompt_domain(prompt) == domain


def two_domains(n_math: int, n_code: int, seed: int = 0) -> tuple[list[dict[str, float]], list[bool], list[str]]:
    """Synthetic drafts whose feature means opposite things per domain: in math a high x means
    right, in code a high x means wrong (a known answer no pooled linear calibrator can fit)."""
    rng = np.random.default_rng(seed)
    rows, labels, prompts = [], [], []
    for dom, n, slope in (("math", n_math, 3.0), ("code", n_code, -3.0)):
        x = rng.normal(size=n)
        y = rng.random(n) < 1 / (1 + np.exp(-slope * x))
        rows += [{"mean_logprob": float(v)} for v in x]
        labels += y.tolist()
        prompts += [MATH if dom == "math" else CODE] * n
    return rows, labels, prompts


def test_domain_calibrators_recover_what_the_pooled_one_cannot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows, labels, prompts = two_domains(400, 400)
    cal = fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts)
    assert set(cal.domains) == {"math", "code"}
    m, c = cal.domains["math"], cal.domains["code"]
    assert m.domain == "math" and m.meta["items"] == 400 and m.label == "calibrated[math]"
    # the true slopes, on the original scale
    assert m.coef[0] / m.scale[0] == pytest.approx(3.0, abs=0.6)
    assert c.coef[0] / c.scale[0] == pytest.approx(-3.0, abs=0.6)
    assert abs(cal.coef[0] / cal.scale[0]) < 0.5  # pooled: the two cancel out
    # each prompt picks its own calibrator; a prompt with no domain gets the pooled one
    assert cal.for_prompt(MATH) is m and cal.for_prompt(CODE) is c
    assert cal.for_prompt("What is the capital of France?") is cal and cal.for_prompt(None) is cal
    # scoring many rows at once gives each the same probability as its own calibrator alone
    doms = [prompt_domain(p) for p in prompts[::50]] + [None]
    some = rows[::50] + [rows[0]]
    expect = [cal.for_domain(d).predict(r) for r, d in zip(some, doms)]
    assert cal.predict_each(some, doms) == pytest.approx(expect)
    assert expect[0] != pytest.approx(cal.predict(some[0]))  # the math row was not scored by the pooled one
    code_rows = [(r, y) for r, y, p in zip(rows, labels, prompts) if p == CODE]
    scores = [cal.for_prompt(CODE).predict(r) for r, _ in code_rows]
    assert auroc(scores, [y for _, y in code_rows]) > 0.8
    assert auroc(cal.predict_many([r for r, _ in code_rows]), [y for _, y in code_rows]) < 0.5
    # a file round trip keeps the domain calibrators, their thresholds and their predictions
    m.thresholds["0.95"] = 0.7
    cal.save(tmp_path / "c.json")
    back = Calibration.load(tmp_path / "c.json")
    assert set(back.domains) == {"math", "code"} and back.domains["math"].threshold_for(0.95) == 0.7
    assert back.for_prompt(CODE).predict(rows[-1]) == pytest.approx(c.predict(rows[-1]))
    assert back.for_prompt(CODE).domain == "code" and back.domain is None


def test_a_domain_gets_its_own_calibrator_only_where_the_data_allows() -> None:
    rows, labels, prompts = two_domains(400, MIN_DOMAIN_ITEMS - 1)
    cal = fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts)
    assert set(cal.domains) == {"math"}  # too few code drafts: code prompts get the pooled calibrator
    assert cal.for_prompt(CODE) is cal
    # enough drafts but all of one kind: nothing to learn from
    rows, labels, prompts = two_domains(400, 200)
    labels = [y if p == MATH else True for y, p in zip(labels, prompts)]
    assert set(fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts).domains) == {"math"}
    # without prompts there are no domains
    assert fit_calibration(rows, labels, model="m", features=["mean_logprob"]).domains == {}
    with pytest.raises(ValueError, match="one prompt per row"):
        fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts[:-1])


def test_a_malformed_domain_calibrator_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows, labels, prompts = two_domains(200, 200)
    cal = fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts)
    cal.domains["code"].coef = [1.0, 2.0]
    cal.save(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not a calibration file.*fit it again"):
        Calibration.load(tmp_path / "bad.json")
    # a target the pooled calibrator has and a domain one lacks would fail mid-query: refused at load
    cal = fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts)
    cal.thresholds["0.95"] = 0.5
    cal.domains["math"].thresholds["0.95"] = 0.6
    cal.save(tmp_path / "partial.json")
    with pytest.raises(ConfigError, match="code calibrator has no threshold for quality_target 0.95"):
        Calibration.load(tmp_path / "partial.json")
    # pooled() is a copy: thresholds written to it do not reach the calibration it came from
    solo = cal.pooled()
    solo.thresholds["0.9"] = 0.1
    assert solo.domains == {} and "0.9" not in cal.thresholds and cal.domains


def test_decide_uses_the_domain_calibrator_and_its_threshold() -> None:
    # the same draft, judged for a math prompt and for a code prompt: opposite verdicts, each
    # naming the calibrator that decided
    n = 1
    math_cal = Calibration("m", ["mean_logprob"], [0.0] * n, [1.0] * n, [5.0], 0.0, thresholds={"0.95": 0.6},
                           domain="math")
    code_cal = Calibration("m", ["mean_logprob"], [0.0] * n, [1.0] * n, [-5.0], 0.0, thresholds={"0.95": 0.6},
                           domain="code")
    pooled = Calibration("m", ["mean_logprob"], [0.0] * n, [1.0] * n, [0.0], 0.0, thresholds={"0.95": 0.4},
                         domains={"math": math_cal, "code": code_cal})
    rule = parse_config({"tiers": [{"model": "a.gguf", "accept": {"confidence": "calibrated",
                                                                  "quality_target": 0.95}}]}).tiers[0].accept
    def run(prompt: str):  # type: ignore[no-untyped-def]
        draft = ScriptedReply("The answer is 7.", logprob=-0.1)
        small = Tier("small", ScriptedProvider([draft]), rule, calibration=pooled)
        return Cascade([small, Tier("big", ScriptedProvider([ScriptedReply("ok", logprob=-0.01)]))]).run_sync(prompt)

    r_math, r_code, r_chat = run(MATH), run(CODE), run("Tell me a joke.")
    assert r_math.tier == "big" and "calibrated[math] 0.378 < 0.6" in r_math.attempts[0].reason
    assert r_code.tier == "small" and "calibrated[code] 0.622 >= 0.6" in r_code.reason
    assert r_chat.tier == "small" and "calibrated 0.500 >= 0.4" in r_chat.reason


@pytest.mark.parametrize(("damage", "said"), [
    (lambda d: d["features"].__setitem__(0, "bogus_feature"), "unknown features 'bogus_feature'"),
    (lambda d: d.__setitem__("scale", [0.0] * len(d["scale"])), "a feature.s scale is not above 0"),
    (lambda d: d.__setitem__("coef", ["x"] * len(d["coef"])), "its weights must all be finite numbers"),
    (lambda d: d["domains"]["math"].__setitem__("intercept", None), "its weights must all be finite numbers"),
])
def test_a_damaged_calibration_is_refused_when_loaded(damage, said: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Damage that used to load: an unknown feature was read as 0 for every draft, a zero scale gave
    a NaN logit read as a confident rejection, weights that are not numbers failed mid-query."""
    import json

    rows, labels, prompts = two_domains(200, 200)
    path = tmp_path / "c.json"
    fit_calibration(rows, labels, model="m", features=["mean_logprob", "min_logprob"], prompts=prompts).save(path)
    assert Calibration.load(path).model == "m"  # undamaged, it loads
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=f"damaged one \\({said}"):
        Calibration.load(path)


def test_a_threshold_that_is_nan_or_minus_infinity_is_refused_at_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A hand-edited NaN threshold rejected every draft "< nan", and -Infinity every draft as one that
    "keeps no draft", its opposite; null (keeps none) and any number load."""
    import json

    rows, labels, prompts = two_domains(200, 200)
    cal = fit_calibration(rows, labels, model="m", features=["mean_logprob"], prompts=prompts)
    cal.thresholds["0.95"] = 0.5
    for sub in cal.domains.values():
        sub.thresholds["0.95"] = 0.6
    path = tmp_path / "c.json"
    cal.save(path)
    good = json.loads(path.read_text())
    for bad in ("NaN", "-Infinity"):
        text = json.dumps({**good, "thresholds": {"0.95": "X"}}).replace('"X"', bad)
        path.write_text(text)
        with pytest.raises(ConfigError, match="a threshold is NaN or -Infinity"):
            Calibration.load(path)
    path.write_text(json.dumps({**good, "thresholds": {"0.95": 2.0}}))  # above any P: keeps no draft, as set
    assert Calibration.load(path).thresholds["0.95"] == 2.0
    path.write_text(json.dumps({**good, "thresholds": {"0.95": None}}))
    assert Calibration.load(path).thresholds["0.95"] == float("inf")
