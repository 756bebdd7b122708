"""The replay of traced items through a live cascade (scripted tiers, real engine and offline rule):
what counts as the offline evaluation being wrong, and what is only a different run."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecascade import AcceptRule, CascadeSettings, ScriptedProvider, ScriptedReply, Tier
from edgecascade.benchmarks.replay import OfflineRule, replay, summarize
from edgecascade.benchmarks.traces import Trace
from edgecascade.datasets import Item
from edgecascade.engine import Cascade
from edgecascade.errors import ProviderError
from edgecascade.quality.calibration import CROSS_CHECK_FEATURES, FEATURE_NAMES, Calibration
from edgecascade.quality.crosscheck import CrossCheck

QUESTION = "Tom has 3 boxes of 4 apples and eats 2. How many apples are left?"
DRAFT = "3 * 4 = 12 and 12 - 2 = 10. The answer is 10."


def _calibration() -> Calibration:
    """P = 0.88 when the cross-check agrees, 0.5 otherwise (nothing else counts)."""
    names = [*FEATURE_NAMES, *CROSS_CHECK_FEATURES]
    coef = [0.0] * len(names)
    coef[names.index("cross_check_agrees")] = 2.0
    return Calibration("m", names, [0.0] * len(names), [1.0] * len(names), coef, 0.0)


def _cascade(program: str, large: list[ScriptedReply], threshold: float = 0.8) -> Cascade:
    def reply(request):  # type: ignore[no-untyped-def]
        return ScriptedReply(program if "solution()" in request.messages[-1].content else DRAFT, logprob=-0.1)

    rule = AcceptRule(confidence="calibrated", min_confidence=threshold, checks=())
    return Cascade([Tier("draft", ScriptedProvider(reply, model="small"), rule, calibration=_calibration()),
                    Tier("strong", ScriptedProvider(large, model="big"))], CascadeSettings(cross_check=True))


def _trace(item: str, tier: str, answer: str, correct: bool, latency: float, result: float | None = None) -> Trace:
    completion = ScriptedReply(answer, logprob=-0.1)
    t = Trace("synth", item, "math", tier, "m", "k", answer, correct, "stop", 10, 5, latency, None, 0.0,
              tokens=[answer], logprobs=[completion.logprob], top_logprobs=[[completion.logprob, -5.0]])
    t.result = result
    return t


ITEMS = [Item(f"q{i}", QUESTION, "10", "math", {"dataset": "synth", "grader": "number"}) for i in range(2)]


def _run(program: str, traced_result: float | None, large: list[ScriptedReply]):  # type: ignore[no-untyped-def]
    cascade = _cascade(program, large)
    small = {i.id: _trace(i.id, "draft", DRAFT, True, 2.0) for i in ITEMS}
    big = {i.id: _trace(i.id, "strong", "The answer is 10.", True, 5.0) for i in ITEMS}
    checks = {i.id: _trace(i.id, "cross-check", "```python\n...\n```", True, 1.5, traced_result) for i in ITEMS}
    offline = OfflineRule(cascade, lambda t: CrossCheck.of(t.answer, checks[t.item_id].result))
    return replay(cascade, ITEMS, small, big, offline, lambda t: checks.get(t.item_id), max_tokens=64)


AGREES = "```python\ndef solution():\n    return 3 * 4 - 2\n```"
DISAGREES = "```python\ndef solution():\n    return 3 * 4\n```"


def test_a_live_run_as_traced_agrees_and_pays_for_its_cross_check() -> None:
    rows = _run(AGREES, 10.0, [])
    for r in rows:
        assert r.same_draft and r.same_evidence and r.live_cross_check == r.offline_cross_check == 10.0
        assert r.live_accepted and r.offline_accepted and r.live_tier == r.offline_tier == "draft"
        assert r.live_confidence == pytest.approx(r.offline_confidence) and not r.broken
        assert r.offline_s == pytest.approx(2.0 + 1.5)  # the draft and its cross-check, as traced
    s = summarize(rows, "draft")
    assert s["broken"] == [] and s["same_evidence"] == 2 and s["live_small_share"] == 1.0


def test_a_program_that_gives_another_number_live_is_a_different_run_not_a_wrong_evaluation() -> None:
    # traced, the program agreed (accepted); live it gives 12 (rejected, escalated): the same draft, other evidence
    rows = _run(DISAGREES, 10.0, [ScriptedReply("The answer is 10.", logprob=-0.1)] * 2)
    for r in rows:
        assert r.same_draft and not r.same_evidence and r.live_cross_check == 12.0
        assert not r.live_accepted and r.offline_accepted and not r.decision_agrees
        assert not r.broken
        assert r.offline_s == pytest.approx(3.5) and r.live_tier == "strong"
    assert summarize(rows, "draft")["broken"] == []


def test_an_offline_rule_that_judges_the_same_evidence_otherwise_is_broken() -> None:
    # the same draft and cross-check live and traced, but judged offline by a stricter rule than the
    # live one: what a bug in the offline rule would look like
    cascade = _cascade(AGREES, [])
    strict = _cascade(AGREES, [], threshold=0.95)
    small = {i.id: _trace(i.id, "draft", DRAFT, True, 2.0) for i in ITEMS}
    big = {i.id: _trace(i.id, "strong", "The answer is 10.", True, 5.0) for i in ITEMS}
    check = _trace("q0", "cross-check", "", True, 1.5, 10.0)
    offline = OfflineRule(strict, lambda t: CrossCheck.of(t.answer, 10.0))
    rows = replay(cascade, ITEMS, small, big, offline, lambda t: check, max_tokens=64)
    assert all(r.same_evidence and r.broken for r in rows)
    assert summarize(rows, "draft")["broken"] == ["q0", "q1"]


def test_a_draft_judged_otherwise_is_broken_even_when_a_later_tier_fails_or_no_answer_comes() -> None:
    """A later tier's failure (or every tier rejected, on_all_rejected = "error") hid a draft judged
    otherwise live and offline: "same evidence" had required no error anywhere, and replay exited 0."""
    small = {i.id: _trace(i.id, "draft", DRAFT, True, 2.0) for i in ITEMS}
    big = {i.id: _trace(i.id, "strong", "The answer is 10.", True, 5.0) for i in ITEMS}
    check = _trace("q0", "cross-check", "", True, 1.5, 10.0)
    offline = OfflineRule(_cascade(AGREES, []), lambda t: CrossCheck.of(t.answer, 10.0))  # keeps the draft
    down = [ScriptedReply("", error=ProviderError("down"))] * 2
    strict = _cascade(AGREES, down, threshold=0.95)  # rejects it live; then the strong tier fails
    rows = replay(strict, ITEMS, small, big, offline, lambda t: check, max_tokens=64)
    assert all(r.error is not None and r.same_evidence and r.broken for r in rows)
    assert summarize(rows, "draft")["broken"] == ["q0", "q1"]
    strict_draft = _cascade(AGREES, [], threshold=0.95).tiers[0]
    unsure = Tier("strong", ScriptedProvider([ScriptedReply("Lyon.", logprob=-3.0)] * 2, model="big"),
                  AcceptRule(min_confidence=0.99))  # rejected too: no tier's answer met its rule
    refusing = Cascade([strict_draft, unsure], CascadeSettings(cross_check=True, on_all_rejected="error"))
    rows = replay(refusing, ITEMS, small, big, offline, lambda t: check, max_tokens=64)
    assert all(r.error is not None and "AllTiersFailedError" in r.error and r.broken for r in rows)
    # a draft that was never made is no evidence either way
    failing = Cascade([Tier("draft", ScriptedProvider([ScriptedReply("", error=ProviderError("down"))] * 2)),
                       Tier("strong", ScriptedProvider([ScriptedReply("The answer is 10.", logprob=-0.1)] * 2))],
                      CascadeSettings(cross_check=True))
    rows = replay(failing, ITEMS, small, big, offline, lambda t: check, max_tokens=64)
    assert all(r.draft_failed and not r.same_evidence and not r.broken for r in rows)


def test_a_tier_that_fails_live_is_recorded_and_the_replay_goes_on() -> None:
    # the draft is rejected live and offline; the strong tier fails on the first item, answers the second
    rows = _run(DISAGREES, 12.0, [ScriptedReply("", error=ProviderError("down")),
                                  ScriptedReply("The answer is 10.", logprob=-0.1)])
    first, second = rows
    assert first.error is not None and "down" in first.error and not first.broken
    assert first.live_tier == "draft"  # the cascade answered with the rejected draft
    assert second.error is None and second.live_tier == "strong" and second.decision_agrees
    s = summarize(rows, "draft")
    assert s["failed_live"] == ["q0"] and s["broken"] == [] and s["live_small_share"] == 0.5


def test_the_replay_table_is_whole_when_its_output_is_piped(capsys: pytest.CaptureFixture[str]) -> None:
    """Piped (80 columns), the table's unwrapped cells were cut: 'gsm8k/11…' for every item."""
    from edgecascade.cli.bench import _print_replay

    rows = _run(AGREES, 10.0, [])
    for r in rows:
        r.item_id = f"gsm-symbolic-20/t{r.item_id}-21"  # as long as real ids get
    _print_replay({"dataset": "gsm-symbolic-20", "config": "calibrated", **summarize(rows, "draft")})
    text = capsys.readouterr().out
    assert "…" not in text
    assert all(r.item_id in text for r in rows) and "0.881/0.881" in text


def test_a_draft_whose_backend_sent_an_empty_logprob_list_is_judged_offline_as_live(tmp_path: Path) -> None:
    """Stored, an empty logprob list read as no logprobs at all: offline the draft passed on its checks
    alone, while the cascade had rejected it (it has no tokens to judge)."""
    import numpy as np

    from edgecascade.benchmarks.traces import TraceStore, _trace_from
    from edgecascade.config import AcceptRule, RepetitionCheck
    from edgecascade.datasets import Item
    from edgecascade.quality.policy import decide
    from edgecascade.types import Completion, Timings, TokenLogprobs, Usage

    empty = TokenLogprobs(tokens=[], logprobs=np.zeros(0), top_tokens=[], top_logprobs=np.zeros((0, 0)))
    live = Completion("3 + 4 = 7. The answer is 7.", "m", "stop", Usage(9, 9), Timings(total_s=0.1), empty)
    item = Item("q1", "What is 3 + 4?", "7", "math", {"grader": "number"})
    store = TraceStore(tmp_path)
    store.append(_trace_from(item, "draft", "k", live, 0.1, 0.0, True))
    [stored] = store.load(item.dataset, "m", "k").values()
    rule = AcceptRule(confidence="geo_mean_prob", min_confidence=0.5)
    now, then = decide(live, rule, RepetitionCheck()), decide(stored.completion(), rule, RepetitionCheck())
    assert (now.accepted, now.reason) == (then.accepted, then.reason) == (
        False, "rejected: geo_mean_prob cannot be computed for this draft: the draft has no tokens to judge")
    # a draft without logprobs is stored as before (no new key), and passes on its checks alone as live
    store.append(_trace_from(Item("q2", "What is 3 + 4?", "7", "math", {"grader": "number"}), "draft", "k",
                             Completion("The answer is 7.", "m", "stop", Usage(9, 9), Timings(total_s=0.1)),
                             0.1, 0.0, True))
    assert "empty_logprobs" not in store.path(item.dataset, "m", "k").read_text().splitlines()[1]
    assert decide(store.load(item.dataset, "m", "k")["q2"].completion(), rule, RepetitionCheck()).accepted
