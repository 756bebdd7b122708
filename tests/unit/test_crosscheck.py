"""The cross-check of math drafts: its prompt, its program's result, its features, and how the engine
and the benchmark use it (real subprocesses; scripted models)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from edgecascade import AcceptRule, CascadeSettings, ConfigError, ScriptedProvider, ScriptedReply, Tier
from edgecascade.engine import Cascade
from edgecascade.quality.calibration import CROSS_CHECK_FEATURES, FEATURE_NAMES, Calibration
from edgecascade.quality.crosscheck import CrossCheck, cross_check_prompt, problem_text, program_result
from tests.fakes.check_runs import count_check_runs

QUESTION = "Tom has 3 boxes of 4 apples and eats 2. How many apples are left?"
PROGRAM = "```python\ndef solution():\n    return 3 * 4 - 2\n```"


def test_the_problem_is_what_follows_the_last_problem_label() -> None:
    wrapped = "Solve step by step and end with `The answer is N.`\n\nProblem: " + QUESTION
    assert problem_text(wrapped) == QUESTION
    assert problem_text(QUESTION) == QUESTION  # a bare question is the problem
    assert problem_text("Problem:   ") == "Problem:"  # an empty tail: the whole prompt, not nothing
    # a label inside a line is prose, not the problem's start
    inline = QUESTION + " Reply as Problem: <restated> Answer: <n>"
    assert problem_text(inline) == inline
    asked = cross_check_prompt(wrapped)
    assert asked.endswith("Problem: " + QUESTION) and "solution()" in asked and "The answer is" not in asked


def test_program_result_runs_the_program_in_its_own_process() -> None:
    assert program_result(PROGRAM) == 10.0
    assert program_result("def solution():\n    print('thinking')\n    return '7'\n") == 7.0  # prints ignored
    assert program_result("def solution():\n    return 2.5\n") == 2.5
    assert program_result("The answer is 10.") is None  # no program
    assert program_result("def other():\n    return 1\n") is None  # no solution()
    assert program_result("def solution():\n    return 1 / 0\n") is None  # it fails
    assert program_result("def solution():\n    return 'many'\n") is None  # not a number
    assert program_result("def solution():\n    return float('inf')\n") is None  # not finite
    assert program_result("def solution():\n    import os\n    os._exit(0)\n") is None  # dies quietly
    assert program_result("def solution():\n    while True:\n        pass\n", timeout_s=1.0) is None  # killed
    # output left unfinished does not hide the result
    assert program_result("def solution():\n    print('x', end='')\n    return 4\n") == 4.0
    assert program_result("import math\ndef solution():\n    return math.floor(7 / 2)\n") == 3.0


@pytest.mark.parametrize("code", [
    "import os\ndef solution():\n    return len(os.environ)\n",
    "from subprocess import run\ndef solution():\n    return 1\n",
    "def solution():\n    return len(open('/etc/hostname').read())\n",
    "def solution():\n    return len(__import__('os').environ)\n",
    "def solution():\n    return len(().__class__.__base__.__subclasses__())\n",
    "def solution():\n    return eval('1 + 1')\n",
    "from . import x\ndef solution():\n    return 1\n",
    # an allowed module's own imports: statistics.sys is the interpreter's sys, whose modules hold os
    "import statistics\ndef solution():\n    return statistics.sys.modules['os'].getpid()\n",
    "from statistics import sys\ndef solution():\n    return sys.modules['os'].getpid()\n",
    "import fractions\ndef solution():\n    return len(fractions.re.__name__)\n",
    # the module's builtins by their global name, and attributes read by name from a string
    "def solution():\n    return len(__builtins__.open('/etc/hostname').read())\n",
    "def solution():\n    return len('{0.__class__}'.format(1))\n",
    # the harness's own import, and builtins outside arithmetic
    "def solution():\n    resource.setrlimit(resource.RLIMIT_CPU, (1, 1))\n    return 1\n",
    "def solution():\n    return len(type(1).mro())\n",
    "class Box:\n    pass\ndef solution():\n    return 1\n",
    # builtins the runner's interpreter has (site adds help), read directly or after a binding in
    # another scope; the limits' own names; double-underscore names wherever a name is bound
    "def solution():\n    help('this')\n    return 1\n",
    "def f():\n    help = 1\n    return help\ndef solution():\n    help('this')\n    return 1\n",
    "def solution():\n    return len(str(resource))\n",
    "def solution():\n    try:\n        return 1 / 0\n"
    "    except ZeroDivisionError as __builtins__:\n        return 1\n",
    "def solution():\n    return len(dict(__builtins__=1))\n",
])
def test_a_program_that_reaches_outside_arithmetic_is_not_run(code: str) -> None:
    from edgecascade.quality.crosscheck import allowed_program

    assert not allowed_program(code) and program_result(code) is None


def test_an_escape_through_an_allowed_module_does_not_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The program is refused before it runs: the file it would write is never written."""
    target = tmp_path / "written"
    code = (f"import statistics\ndef solution():\n    statistics.sys.modules['os'].system('touch {target}')\n"
            "    return 1\n")
    assert program_result(code) is None
    assert not target.exists()


def test_a_program_cannot_forge_its_result_line() -> None:
    """The result is written with the builtins as they were before the program ran."""
    assert program_result("def float(x):\n    return 42.0\ndef solution():\n    return 7\n") == 7.0
    assert program_result("def print(*a, **k):\n    pass\ndef solution():\n    return 7\n") == 7.0


def test_arithmetic_programs_are_allowed() -> None:
    from edgecascade.quality.crosscheck import allowed_program

    code = ("import math\nfrom fractions import Fraction\nfrom statistics import mean\n"
            "def solution():\n    total = 0\n    for _ in range(3):\n        total += math.ceil(2.5)\n"
            "    prices = {'a': 2, 'b': 4}\n    avg = mean(v for v in prices.values())\n"
            "    return float(Fraction(total, 2)) + round(avg, 2) + max([1, 2]) + sum(x * 2 for x in [1, 2])\n")
    assert allowed_program(code)
    assert program_result(code) == 4.5 + 3.0 + 2 + 6
    # an allowed builtin's name as a variable (one traced program counts rounds in `round`)
    counted = "def solution():\n    t = 0\n    for round in range(3):\n        t += round\n    return t\n"
    assert program_result(counted) == 3


@pytest.mark.parametrize("result", ["True", "False", "1 == 1"])
def test_a_program_that_returns_a_truth_value_gives_none(result: str) -> None:
    """float() made a number of a truth value (True was 1.0)."""
    assert program_result(f"```python\ndef solution():\n    return {result}\n```") is None
    assert program_result("```python\ndef solution():\n    return 6 * 7\n```") == 42.0


def test_a_program_with_a_main_guard_gives_its_number() -> None:
    """Reading __name__ made the program "not allowed": a right draft's cross-check gave no number."""
    from edgecascade.quality.crosscheck import allowed_program

    guarded = "def solution():\n    return 12\n\nif __name__ == '__main__':\n    print(solution())\n"
    assert allowed_program(guarded) and program_result(guarded) == 12
    assert not allowed_program("__name__ = 'x'\ndef solution():\n    return 1\n")  # binding it is not


def test_no_allowed_attribute_is_a_module_on_an_allowed_module() -> None:
    """Attribute names are allowed on every object alike, so none may lead to a module."""
    import importlib
    import types

    from edgecascade.quality.crosscheck import _ATTRIBUTES, _MODULES

    for name in _MODULES:
        module = importlib.import_module(name)
        assert not [a for a in _ATTRIBUTES if isinstance(getattr(module, a, None), types.ModuleType)], name
    assert {"sys", "os", "modules", "format", "system"}.isdisjoint(_ATTRIBUTES)
    assert {"ceil", "comb", "floor", "sqrt", "limit_denominator", "append", "items"} <= _ATTRIBUTES


def test_every_traced_program_that_gave_a_number_is_still_allowed() -> None:
    """The filter decides the cross-check's features (a refused program gives no number), so it must
    not refuse a program the shipped calibration's traces ran: they were made with a looser filter."""
    import json
    from pathlib import Path

    from edgecascade.quality.crosscheck import allowed_program
    from edgecascade.quality.structure import extract_code

    files = sorted((Path(__file__).parents[2] / "bench" / "traces").glob("*/qwen2.5-coder-0.5b-c010e024795e.jsonl"))
    assert files, "the cross-check traces are committed under bench/traces"
    ran = [extract_code(t["answer"]) for f in files for line in f.read_text(encoding="utf-8").splitlines()
           if line.strip() and (t := json.loads(line))["result"] is not None]
    assert len(ran) >= 2000
    assert [c for c in ran if not allowed_program(c)] == []


def test_agreement_is_the_draft_final_number_against_the_program() -> None:
    yes = CrossCheck.of("3 * 4 = 12, 12 - 2 = 10. The answer is 10.", 10.0)
    assert yes.agrees and yes.features == {"cross_checked": 1.0, "cross_check_agrees": 1.0}
    assert "also gives 10" in yes.summary
    no = CrossCheck.of("The answer is 12.", 10.0)
    assert not no.agrees and no.features == {"cross_checked": 1.0, "cross_check_agrees": 0.0}
    assert "gives 10, the draft 12" in no.summary
    none = CrossCheck.of("The answer is 12.", None)
    assert none.features == {"cross_checked": 0.0, "cross_check_agrees": 0.0} and "no number" in none.summary
    assert CrossCheck.of("It costs $1,234.", 1234.0).agrees  # read as the grader reads it
    # two numbers that differ never print alike (both had printed as 1.25e+06)
    assert "gives 1250000, the draft 1250001" in CrossCheck.of("The answer is 1,250,001.", 1250000.0).summary


def _calibration() -> Calibration:
    """A calibrator that only looks at the cross-check: P = 0.88 when it agrees, 0.5 otherwise."""
    names = [*FEATURE_NAMES, *CROSS_CHECK_FEATURES]
    coef = [0.0] * len(names)
    coef[names.index("cross_check_agrees")] = 2.0
    return Calibration("m", names, [0.0] * len(names), [1.0] * len(names), coef, 0.0)


def _cascade(draft: str, program: str, cross_check: bool = True,
             price: float = 0.0) -> tuple[Cascade, ScriptedProvider]:
    from edgecascade.config import Price

    def reply(request):  # type: ignore[no-untyped-def]
        asked = request.messages[-1].content
        return ScriptedReply(program if "solution()" in asked else draft, logprob=-0.1)

    small = ScriptedProvider(reply, model="small")
    big = ScriptedProvider([ScriptedReply("The answer is 10.", logprob=-0.1)], model="big")
    rule = AcceptRule(confidence="calibrated", min_confidence=0.8, checks=())
    tiers = [Tier("draft", small, rule, Price(input_per_mtok=price, output_per_mtok=price), calibration=_calibration()),
             Tier("strong", big)]
    return Cascade(tiers, CascadeSettings(cross_check=cross_check)), small


def test_the_engine_cross_checks_math_drafts_and_bills_the_program() -> None:
    cascade, small = _cascade("3 * 4 = 12 and 12 - 2 = 10. The answer is 10.", PROGRAM, price=1.0)
    r = asyncio.run(cascade.run(QUESTION))
    assert r.tier == "draft" and r.confidence == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert "cross-check: its program also gives 10" in r.reason
    assert len(small.requests) == 2 and "solution()" in small.requests[1].messages[-1].content
    assert small.requests[1].temperature == 0.0
    # the attempt records the cross-check: its result, its program, its tokens and its time
    record = r.attempts[0].to_dict()["cross_check"]
    assert record["result"] == 10.0 and record["draft_number"] == 10.0 and record["agrees"] is True
    assert "def solution" in record["program"] and record["tokens"]["completion"] > 0
    # the program's generation is the tier's time; its run, like the checks, is the engine's
    assert 0 < record["generation_ms"] <= r.attempts[0].latency_ms and record["latency_ms"] > record["generation_ms"]
    assert record["latency_ms"] - record["generation_ms"] <= r.overhead_ms
    assert sum(a.latency_ms for a in r.attempts) + r.overhead_ms == pytest.approx(r.latency_ms)
    draft = r.attempts[0].completion
    assert draft is not None
    # both generations are billed to the tier: the draft's tokens and the program's
    assert r.attempts[0].cost > (draft.usage.prompt_tokens + draft.usage.completion_tokens) / 1e6

    cascade, _ = _cascade("The answer is 12.", PROGRAM)
    r = asyncio.run(cascade.run(QUESTION))
    assert r.tier == "strong" and "its program gives 10, the draft 12" in r.attempts[0].reason


def test_a_cross_check_that_fails_is_named_in_the_reason_and_timed_as_the_tiers() -> None:
    """A provider error while writing the program had been swallowed: the draft was judged without
    it and the reason read as if no cross-check had been tried."""
    from edgecascade import ProviderTimeoutError

    def reply(request):  # type: ignore[no-untyped-def]
        if "solution()" in request.messages[-1].content:
            return ScriptedReply(error=ProviderTimeoutError("the model took too long"), delay_s=0.05)
        return ScriptedReply("3 * 4 = 12 and 12 - 2 = 10. The answer is 10.", logprob=-0.1)

    rule = AcceptRule(confidence="calibrated", min_confidence=0.8, checks=())
    cascade = Cascade([Tier("draft", ScriptedProvider(reply, model="small"), rule, calibration=_calibration()),
                       Tier("strong", ScriptedProvider([ScriptedReply("The answer is 10.", logprob=-0.1)]))],
                      CascadeSettings(cross_check=True))
    r = asyncio.run(cascade.run(QUESTION))
    first = r.attempts[0]
    assert first.decision is not None and first.decision.cross_check is None
    assert first.reason.endswith("(cross-check failed: timeout; judged without it)")
    assert first.latency_ms >= 50  # the failed generation was time inside the provider
    # a timed-out generation a provider may still bill: unpriced, nothing is unknown; priced, the
    # attempt says its cost is not known, as a failed draft call's does (it said nothing)
    assert not first.cost_unknown and r.cost_unknown == []
    from edgecascade.config import Price

    cascade.tiers[0].price = Price(input_per_mtok=1.0, output_per_mtok=1.0)
    r = asyncio.run(cascade.run(QUESTION))
    assert r.attempts[0].cost_unknown and r.cost_unknown == ["draft"]


async def test_a_query_stopped_while_the_program_runs_counts_the_program_it_paid_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The program's generation had ended and reported its usage, but its cost was added only after
    the program ran: a query cancelled meanwhile accounted for the draft alone."""
    import threading

    import edgecascade.quality.crosscheck as crosscheck_mod

    started, release = threading.Event(), threading.Event()

    def slow_program(text: str) -> float | None:
        started.set()
        release.wait(10)
        return 10.0

    monkeypatch.setattr(crosscheck_mod, "program_result", slow_program)
    cascade, small = _cascade("3 * 4 = 12 and 12 - 2 = 10. The answer is 10.", PROGRAM, price=1.0)
    task = asyncio.ensure_future(cascade.run(QUESTION))
    try:
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as cancelled:
            await task
    finally:
        release.set()
    stopped = cancelled.value if hasattr(cancelled.value, "cost") else cancelled.value.__context__
    assert len(small.requests) == 2  # the draft and the program, both answered
    # what the same query pays when it is not stopped: the draft and the program (it is accepted)
    monkeypatch.setattr(crosscheck_mod, "program_result", lambda text: 10.0)
    whole, _ = _cascade("3 * 4 = 12 and 12 - 2 = 10. The answer is 10.", PROGRAM, price=1.0)
    r = await whole.run(QUESTION)
    [drafted] = r.attempts
    assert drafted.completion is not None and r.cost > (drafted.completion.usage.prompt_tokens
                                                         + drafted.completion.usage.completion_tokens) / 1e6
    [attempt] = stopped.attempts  # type: ignore[union-attr]
    assert attempt.error_kind == "interrupted" and attempt.cost == pytest.approx(r.cost)
    assert stopped.cost == pytest.approx(r.cost)  # type: ignore[union-attr]


def test_no_cross_check_where_its_verdict_would_not_count() -> None:
    # a draft a configured check rejects is not worth a program
    cascade, small = _cascade("The answer is 10.", PROGRAM)
    cascade.tiers[0].accept = AcceptRule(confidence="calibrated", min_confidence=0.8, checks=("empty",))
    small.replies = lambda request: ScriptedReply("", logprob=-0.1)  # type: ignore[assignment]
    asyncio.run(cascade.run(QUESTION))
    assert len(small.requests) == 1
    # a draft without logprobs is decided on its checks alone: no program either
    cascade, small = _cascade("The answer is 10.", PROGRAM)
    small.replies = lambda request: ScriptedReply("The answer is 10.")  # type: ignore[assignment]
    r = asyncio.run(cascade.run(QUESTION))
    assert len(small.requests) == 1 and "checks alone" in r.attempts[0].reason
    # nor a draft whose logprobs cover no token (a server's empty list): it is rejected unjudged, so
    # a program could not count; one with logprobs is worth one
    from edgecascade import Completion, Timings, TokenLogprobs, Usage

    def draft(n: int) -> Completion:
        lp = TokenLogprobs(["x"] * n, np.full(n, -0.1), [["x"]] * n, np.full((n, 1), -0.1))
        return Completion("The answer is 10.", "small", "stop", Usage(9, n), Timings(), lp)

    assert not cascade.cross_checks(cascade.tiers[0], draft(0), QUESTION, checks=[])
    assert cascade.cross_checks(cascade.tiers[0], draft(5), QUESTION, checks=[])


def test_a_cross_checked_draft_runs_its_checks_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the checks decide whether the program is worth making and then judge the draft: one run serves both
    calls = count_check_runs(monkeypatch)
    cascade, small = _cascade("3 * 4 = 12 and 12 - 2 = 10. The answer is 10.", PROGRAM)
    cascade.tiers[0].accept = AcceptRule(confidence="calibrated", min_confidence=0.8, checks=("empty", "truncated"))
    r = asyncio.run(cascade.run(QUESTION))
    assert r.tier == "draft" and len(small.requests) == 2  # cross-checked, and accepted
    assert calls == ["3 * 4 = 12 and 12 - 2 = 10. The answer is 10."]


def test_a_failed_cross_check_leaves_the_draft_judged_without_it() -> None:
    from edgecascade.errors import ProviderError

    def reply(request):  # type: ignore[no-untyped-def]
        if "solution()" in request.messages[-1].content:
            return ScriptedReply(error=ProviderError("the server went away"))
        return ScriptedReply("The answer is 10.", logprob=-0.1)

    cascade, small = _cascade("", PROGRAM)
    small.replies = reply
    r = asyncio.run(cascade.run(QUESTION))
    assert len(small.requests) == 2 and r.attempts[0].confidence == pytest.approx(0.5)  # neutral features
    assert r.attempts[0].to_dict()["cross_check"] is None


def test_no_cross_check_where_the_prompt_is_not_math() -> None:
    cascade, small = _cascade("Paris.", PROGRAM)
    r = asyncio.run(cascade.run("What is the capital of France?"))
    assert len(small.requests) == 1 and "cross-check" not in r.attempts[0].reason
    assert r.attempts[0].confidence == pytest.approx(0.5)  # the neutral features, as in fitting


def test_a_calibration_that_cross_checks_needs_the_opt_in() -> None:
    with pytest.raises(ConfigError, match="cross_check = true"):
        _cascade("The answer is 10.", PROGRAM, cross_check=False)


def test_report_pays_for_the_cross_check_only_where_it_ran() -> None:
    from edgecascade.benchmarks.policies import evaluate
    from edgecascade.benchmarks.report import DatasetPairs
    from edgecascade.benchmarks.traces import Trace

    def t(item: str, tier: str, correct: bool, latency: float, cost: float) -> Trace:
        return Trace("d", item, "math", tier, "m", "k", "", correct, "stop", 1, 1, latency, None, cost)

    pairs = [[t("a", "s", True, 1.0, 0.0), t("a", "l", True, 10.0, 1.0)],
             [t("b", "s", False, 1.0, 0.0), t("b", "l", True, 10.0, 1.0)]]
    d = DatasetPairs("d", [], pairs, cross_checks={"a": t("a", "cross-check", True, 0.5, 0.25)})
    lat, cost = d.cross_check_spend()
    assert list(lat) == [0.5, 0.0] and list(cost) == [0.25, 0.0]
    assert list(d.cross_check_spend([False, True])[0]) == [0.0, 0.0]
    # keep a, escalate b: (1 + 0.5) and (1 + 10) seconds; (0.25) and (1) dollars
    r = evaluate("p", pairs, np.array([True, False]), extra=d.cross_check_spend())
    assert r.latency_s == pytest.approx((1.5 + 11.0) / 2) and r.cost == pytest.approx(1.25 / 2)
    assert r.accuracy == 1.0 and r.small_share == 0.5


def test_a_tier_loads_the_strongest_calibration_its_config_allows(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from edgecascade.config import parse_config
    from edgecascade.engine import calibration_file

    monkeypatch.setenv("EDGECASCADE_MANIFESTS", str(tmp_path))
    tier = parse_config({"tiers": [{"model": "m", "accept": {"confidence": "calibrated", "min_confidence": 0.5}}]}
                        ).tiers[0]
    plain, examples, both = (tmp_path / f"m{s}.calibration.json" for s in ("", ".examples", ".examples.cross-check"))
    for p in (plain, examples, both):
        p.write_text("{}")
    assert calibration_file(tier) == plain
    assert calibration_file(tier, run_examples=True) == examples
    assert calibration_file(tier, run_examples=True, cross_check=True) == both
    assert calibration_file(tier, cross_check=True) == plain  # the shipped cross-check one also runs examples
    both.unlink()
    assert calibration_file(tier, run_examples=True, cross_check=True) == examples
