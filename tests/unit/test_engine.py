"""The cascade engine on scripted providers: acceptance, escalation, reasons, costs, failures."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from edgecascade import (
    AcceptRule,
    AllTiersFailedError,
    Cascade,
    CascadeSettings,
    InvalidRequestError,
    Price,
    ProviderTimeoutError,
    RateLimitedError,
    ScriptedProvider,
    ScriptedReply,
    Tier,
)
from edgecascade.money import usd

SURE = ScriptedReply("Paris is the capital of France.", logprob=math.log(0.95), prompt_tokens=10)
UNSURE = ScriptedReply("Lyon, probably.", logprob=math.log(0.30), prompt_tokens=10)
RULE = AcceptRule(confidence="geo_mean_prob", min_confidence=0.8)


def tier(name: str, reply: ScriptedReply, *, inp: float = 0.0, outp: float = 0.0) -> Tier:
    return Tier(name, ScriptedProvider([reply], model=f"model-{name}"), RULE, Price(input_per_mtok=inp,
                                                                                    output_per_mtok=outp))


async def test_confident_draft_is_accepted_at_first_tier_and_baseline_is_estimated() -> None:
    c = Cascade([tier("small", SURE, outp=1.0), tier("big", SURE, inp=2.0, outp=10.0)])
    r = await c.run("What is the capital of France?")
    assert r.content == SURE.text
    assert (r.tier, r.model, r.accepted) == ("small", "model-small", True)
    assert len(r.attempts) == 1 and not r.escalated
    assert r.confidence == pytest.approx(0.95)
    assert r.reason.startswith("accepted: geo_mean_prob 0.950 >= 0.8")
    # 6 whitespace tokens out at $1/M; the big tier did not run: its cost is estimated from the same usage
    assert r.cost == pytest.approx(6 * 1.0 / 1e6)
    assert r.baseline_estimated is True and r.baseline_tier == "big"
    assert r.baseline_cost == pytest.approx((10 * 2.0 + 6 * 10.0) / 1e6)
    assert r.saving == pytest.approx(r.baseline_cost - r.cost)
    # the big tier's provider was never called
    assert c.tiers[1].provider.requests == []  # type: ignore[attr-defined]


async def test_escalation_through_three_tiers_records_every_reason_and_cost() -> None:
    truncated = ScriptedReply("A long answer that was cut", logprob=math.log(0.99), finish_reason="length",
                              prompt_tokens=10)
    c = Cascade([
        tier("t1", UNSURE, inp=1.0, outp=1.0),
        tier("t2", truncated, inp=2.0, outp=2.0),
        tier("t3", SURE, inp=3.0, outp=3.0),
    ])
    r = await c.run("q")
    assert [a.tier for a in r.attempts] == ["t1", "t2", "t3"]
    assert [a.accepted for a in r.attempts] == [False, False, True]
    assert "geo_mean_prob 0.300 < 0.8" in r.attempts[0].reason
    assert "truncated" in r.attempts[1].reason and "6 tokens" in r.attempts[1].reason
    assert r.tier == "t3" and r.content == SURE.text and r.escalated
    costs = [(10 * 1 + 2 * 1) / 1e6, (10 * 2 + 6 * 2) / 1e6, (10 * 3 + 6 * 3) / 1e6]
    assert [a.cost for a in r.attempts] == pytest.approx(costs)
    assert r.cost == pytest.approx(sum(costs))
    # the strongest tier ran: the baseline is its measured cost, and escalating cost more than it
    assert r.baseline_estimated is False
    assert r.baseline_cost == pytest.approx(costs[2])
    assert r.saving == pytest.approx(costs[2] - sum(costs)) and r.saving < 0


async def test_a_confident_draft_with_wrong_sums_escalates_and_says_why() -> None:
    wrong = ScriptedReply("17 * 23 equals 411.", logprob=math.log(0.99), prompt_tokens=10)
    right = ScriptedReply("17 * 23 is 391.", logprob=math.log(0.95), prompt_tokens=10)
    r = await Cascade([tier("small", wrong), tier("big", right)]).run("What is 17 * 23?")
    assert (r.tier, r.content) == ("big", "17 * 23 is 391.")
    first = r.attempts[0]
    assert not first.accepted and first.confidence == pytest.approx(0.99)
    assert first.reason == ("rejected (arithmetic: the question asks for 17 * 23, which is 391; the answer never "
                            "says so (its last number is 411))")
    # a conversation that ends with an assistant turn (a prefill) is judged by its user's question
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 17 * 23?"},
             {"role": "assistant", "content": "Let me think."}]
    r = await Cascade([tier("small", wrong), tier("big", right)]).run(turns)
    assert r.tier == "big" and "arithmetic: the question asks for 17 * 23" in r.attempts[0].reason


async def test_failing_tier_is_recorded_and_the_cascade_moves_on() -> None:
    boom = ScriptedReply(error=ProviderTimeoutError("no answer within 5 s"))
    c = Cascade([tier("t1", boom), tier("t2", SURE)])
    r = await c.run("q")
    assert r.tier == "t2"
    assert r.attempts[0].error_kind == "timeout"
    assert r.attempts[0].reason == "failed (timeout): no answer within 5 s"
    assert r.attempts[0].completion is None and r.attempts[0].cost == 0.0


async def test_every_tier_failing_raises_one_error_listing_each() -> None:
    c = Cascade([
        tier("t1", ScriptedReply(error=ProviderTimeoutError("timed out"))),
        tier("t2", ScriptedReply(error=RateLimitedError("429 from upstream", retry_after=3))),
    ])
    with pytest.raises(AllTiersFailedError) as ei:
        await c.run("q")
    msg = str(ei.value)
    assert msg.startswith("no tier of the cascade gave an answer:") and ei.value.cost == 0.0
    assert "'t1'" in msg and "timed out" in msg and "'t2'" in msg and "429 from upstream" in msg
    assert [name for name, _ in ei.value.failures] == ["t1", "t2"]
    # the providers' own exceptions, with their details, not a re-wrapped message
    assert isinstance(ei.value.failures[0][1], ProviderTimeoutError)
    err = ei.value.failures[1][1]
    assert isinstance(err, RateLimitedError) and err.retry_after == 3


async def test_all_rejected_returns_last_answer_flagged_or_raises_when_configured() -> None:
    tiers = [tier("t1", UNSURE), tier("t2", ScriptedReply("", logprob=-0.01))]
    r = await Cascade(tiers).run("q")
    # t2's empty answer is rejected too; the last answer is returned, flagged as not accepted
    assert r.accepted is False and r.tier == "t2"
    assert r.reason.startswith("no tier met its rule") and "empty" in r.reason
    with pytest.raises(AllTiersFailedError) as ei:
        await Cascade(tiers, CascadeSettings(on_all_rejected="error")).run("q")
    from edgecascade.engine import TierRejected

    assert all(isinstance(e, TierRejected) for _, e in ei.value.failures)
    assert "geo_mean_prob 0.300 < 0.8" in str(ei.value)
    # every tier answered: the message says their answers were rejected, and what they cost is kept
    assert str(ei.value).startswith("no tier's answer met its rule:")
    assert [a.tier for a in ei.value.attempts] == ["t1", "t2"] and ei.value.attempts[0].completion is not None
    priced = [tier("t1", UNSURE, outp=2.0), tier("t2", ScriptedReply("", logprob=-0.01))]
    with pytest.raises(AllTiersFailedError) as ei:
        await Cascade(priced, CascadeSettings(on_all_rejected="error")).run("q")
    assert ei.value.cost == pytest.approx(sum(a.cost for a in ei.value.attempts)) and ei.value.cost > 0
    assert f"({usd(ei.value.cost)} spent on them)" in str(ei.value)


def test_tier_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Cascade([tier("t", SURE), tier("t", SURE)])


async def test_tier_without_logprobs_is_decided_on_checks_alone() -> None:
    c = Cascade([tier("t1", ScriptedReply("Paris.")), tier("t2", SURE)])
    r = await c.run("q")
    assert r.tier == "t1" and r.confidence is None
    assert "without logprobs" in r.reason


async def test_request_defaults_and_overrides_reach_the_provider() -> None:
    t = tier("t1", SURE)
    c = Cascade([t], CascadeSettings(max_tokens=99, system_prompt="Be brief."))
    await c.run("hello", temperature=0.5, seed=7, stop=["\n\n"])
    req = t.provider.requests[0]  # type: ignore[attr-defined]
    assert req.max_tokens == 99 and req.temperature == 0.5 and req.seed == 7 and req.stop == ["\n\n"]
    assert [(m.role, m.content) for m in req.messages] == [("system", "Be brief."), ("user", "hello")]
    await c.run([{"role": "system", "content": "Own system."}, {"role": "user", "content": "hi"}])
    req = t.provider.requests[1]  # type: ignore[attr-defined]
    assert [m.content for m in req.messages] == ["Own system.", "hi"]  # the caller's system prompt wins


@pytest.mark.parametrize("prompt", ["", "   ", [], [{"role": "system", "content": "x"}]])
async def test_empty_prompt_is_rejected_before_any_tier_runs(prompt: object) -> None:
    t = tier("t1", SURE)
    with pytest.raises(InvalidRequestError):
        await Cascade([t]).run(prompt)  # type: ignore[arg-type]
    assert t.provider.requests == []  # type: ignore[attr-defined]


async def test_bad_role_and_bad_limits_are_clear_errors() -> None:
    c = Cascade([tier("t1", SURE)])
    with pytest.raises(InvalidRequestError, match="role 'robot'"):
        await c.run([{"role": "robot", "content": "hi"}])
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        await c.run("hi", max_tokens=0)
    with pytest.raises(InvalidRequestError, match="a stop string is empty"):  # it had emptied every answer
        await c.run("hi", stop=["\n\n", ""])
    # one stop string is one stop, not its letters (answers had stopped at the first E, N or D)
    await c.run("hi", stop="END")  # type: ignore[arg-type]
    assert c.tiers[0].provider.requests[-1].stop == ["END"]  # type: ignore[attr-defined]
    from edgecascade.types import Message, Request

    assert Request([Message("user", "hi")], stop=None).stop == []  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"stop": b"\n\n"}, "stop is a bytes"),  # had gone out as the stop list [10, 10]
    ({"stop": ["x", 5]}, "a stop sequence is 5"),
    ({"max_tokens": 2.5}, "max_tokens is 2.5"),  # had been sent on to the backend
    ({"max_tokens": True}, "max_tokens is True"),
    ({"max_tokens": "5"}, "max_tokens is '5'"),  # had been a raw TypeError
    ({"temperature": "0.5"}, "temperature is '0.5'"),
    ({"seed": "x"}, "seed is 'x'"),
    ({"seed": True}, "seed is True"),
])
async def test_arguments_of_the_wrong_kind_are_refused_before_any_tier_runs(kwargs: dict, said: str) -> None:
    t = tier("t1", SURE)
    with pytest.raises(InvalidRequestError, match=re.escape(said)):
        await Cascade([t]).run("hi", **kwargs)
    assert t.provider.requests == []  # type: ignore[attr-defined]


def test_stop_strings_may_come_as_a_set() -> None:
    from edgecascade.types import Message, Request

    assert sorted(Request([Message("user", "hi")], stop={"a", "b"}).stop) == ["a", "b"]


async def test_numpy_numbers_are_taken_as_plain_ones() -> None:
    import numpy as np

    t = tier("t1", SURE)
    await Cascade([t]).run("hi", max_tokens=np.int64(7), temperature=np.float32(0.5), seed=np.int64(3))
    req = t.provider.requests[0]  # type: ignore[attr-defined]
    assert (req.max_tokens, req.temperature, req.seed) == (7, 0.5, 3)
    assert (type(req.max_tokens), type(req.temperature), type(req.seed)) == (int, float, int)


def test_run_sync_works_without_a_loop_and_refuses_inside_one() -> None:
    c = Cascade([tier("t1", SURE)])
    assert c.run_sync("q").content == SURE.text

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="await cascade.run"):
            c.run_sync("q")

    import asyncio

    asyncio.run(inside())


async def test_overhead_excludes_time_inside_providers() -> None:
    slow = ScriptedReply("Paris.", logprob=-0.01, delay_s=0.05)
    r = await Cascade([tier("t1", slow)]).run("q")
    assert r.latency_ms >= 50
    assert r.overhead_ms < r.latency_ms - 45  # the 50 ms sleep is provider time, not engine time


async def test_the_checks_are_engine_time_not_the_tiers(monkeypatch: pytest.MonkeyPatch) -> None:
    # a draft's checks run in the engine, before any cross-check: their time is overhead, not the tier's
    import time

    from edgecascade import engine

    real = engine.run_checks

    def slow_checks(c, names, repetition, prompt):  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        return real(c, names, repetition, prompt)

    monkeypatch.setattr(engine, "run_checks", slow_checks)
    r = await Cascade([tier("t1", SURE)]).run("q")
    assert r.tier == "t1" and r.attempts[0].latency_ms < r.overhead_ms  # the 50 ms is the engine's
    assert r.overhead_ms >= 50


async def test_a_slow_price_lookup_is_engine_time_and_the_times_add_up() -> None:
    """The tier's time had been taken after its price lookup (a catalogue lookup for a cloud tier,
    on every query), so engine work was billed to the tier and the overhead read too low."""
    import time

    class SlowPrice(Price):
        def cost(self, prompt_tokens: int, completion_tokens: int) -> float:  # type: ignore[override]
            time.sleep(0.05)  # (a price written before cached tokens were passed: still called as it was)
            return 0.0

    c = Cascade([Tier("t1", ScriptedProvider([UNSURE]), RULE, SlowPrice()), tier("t2", SURE)])
    r = await c.run("q")
    assert r.tier == "t2" and r.attempts[0].latency_ms < r.overhead_ms  # the 50 ms is the engine's
    assert r.overhead_ms >= 50
    # what the tiers took and what the engine took make up the query's time
    assert sum(a.latency_ms for a in r.attempts) + r.overhead_ms == pytest.approx(r.latency_ms)


def test_reasons_never_print_a_comparison_that_contradicts_the_verdict() -> None:
    """Rounding the confidence to 3 decimals had printed "0.900 < 0.9" for a rejected 0.8998, and
    "0.886 >= 0.8865" for an accepted 0.8865."""
    near = ScriptedReply("Paris.", logprob=math.log(0.8998))
    r = Cascade([Tier("t1", ScriptedProvider([near]), AcceptRule(min_confidence=0.9)), tier("t2", SURE)]).run_sync("q")
    assert r.attempts[0].reason == "rejected: geo_mean_prob 0.8998 < 0.9"
    at = ScriptedReply("Paris.", logprob=math.log(0.8865))
    r = Cascade([Tier("t1", ScriptedProvider([at]), AcceptRule(min_confidence=0.8865))]).run_sync("q")
    assert r.reason == "accepted: geo_mean_prob 0.8865 >= 0.8865"
    # where 3 decimals do not mislead, the reason is as before
    r = Cascade([tier("t1", SURE)]).run_sync("q")
    assert r.reason == "accepted: geo_mean_prob 0.950 >= 0.8"


async def test_result_json_has_the_documented_fields() -> None:
    r = await Cascade([tier("t1", UNSURE), tier("t2", SURE)]).run("q")
    d = r.to_dict(logprobs=True)
    for key in ("content", "model", "tier", "confidence", "reason", "cost", "baseline_cost", "saving",
                "latency_ms", "attempts"):
        assert key in d
    assert len(d["attempts"]) == 2
    for a in d["attempts"]:
        for key in ("model", "confidence", "accepted", "reason", "tokens", "latency_ms", "cost"):
            assert key in a
    assert d["attempts"][0]["accepted"] is False and d["attempts"][1]["accepted"] is True
    assert len(d["attempts"][1]["logprobs"]["logprobs"]) == len(SURE.text.split())


def test_run_sync_closes_every_provider_even_if_one_fails_to_close() -> None:
    closed: list[str] = []

    class Recording(ScriptedProvider):
        async def aclose(self) -> None:
            closed.append(self.model)
            if self.model == "model-a":
                raise RuntimeError("close failed")

    a = Tier("a", Recording([UNSURE], model="model-a"), RULE)
    b = Tier("b", Recording([SURE], model="model-b"), RULE)
    c = Cascade([a, b])
    assert c.run_sync("q").tier == "b"
    assert sorted(closed) == ["model-a", "model-b"]
    assert c.run_sync("q").tier == "b"  # usable again: providers reopen what they need
    assert len(closed) == 4


def test_a_tier_built_in_code_is_checked_for_its_quality_target_when_built() -> None:
    """A calibration without a threshold for the rule's quality_target was found only when a query
    reached that tier, after the cheaper tiers had been paid for, and the error carried no account."""
    from edgecascade import ConfigError
    from edgecascade.quality.calibration import Calibration

    def cal(thresholds: dict[str, float], domains: dict[str, Calibration] | None = None) -> Calibration:
        return Calibration(model="m", features=["mean_logprob"], mean=[0.0], scale=[1.0], coef=[1.0],
                           intercept=0.0, thresholds=thresholds, domains=domains or {})

    rule = AcceptRule(confidence="calibrated", quality_target=0.95)
    with pytest.raises(ConfigError, match=r"tier 'big': the calibration of m has no threshold for quality_target 0.95"):
        Tier("big", ScriptedProvider([SURE]), rule, calibration=cal({"0.9": 0.5}))
    with pytest.raises(ConfigError, match="quality_target 0.95"):  # a domain calibrator without it
        Tier("big", ScriptedProvider([SURE]), rule, calibration=cal({"0.95": 0.5}, {"math": cal({"0.9": 0.5})}))
    assert Tier("big", ScriptedProvider([SURE]), rule, calibration=cal({"0.95": 0.5})).calibration is not None


def test_a_threshold_that_keeps_no_draft_says_so() -> None:
    """A calibration stores a target no threshold meets as null (+inf): the reason had read "< inf"."""
    from edgecascade.quality.calibration import Calibration

    never = Calibration(model="m", features=["mean_logprob"], mean=[0.0], scale=[1.0], coef=[1.0],
                        intercept=0.0, thresholds={"0.95": math.inf})
    c = Cascade([Tier("small", ScriptedProvider([SURE]), AcceptRule(confidence="calibrated", quality_target=0.95),
                      calibration=never), tier("big", SURE)])
    r = c.run_sync("q")
    assert r.tier == "big" and "inf" not in r.attempts[0].reason
    assert "its calibration keeps no draft at quality_target 0.95 (every draft escalates" in r.attempts[0].reason



def test_the_account_of_a_failed_query_survives_pickling_and_says_what_to_do() -> None:
    """AllTiersFailedError could not be pickled or copied (its constructor does not take the message),
    so a process pool lost the account it carries; all-rejected said nothing of what to do."""
    import copy
    import pickle

    c = Cascade([tier("small", UNSURE, outp=1000.0), tier("big", UNSURE, outp=1000.0)],
                CascadeSettings(on_all_rejected="error"))
    with pytest.raises(AllTiersFailedError) as ei:
        c.run_sync("q")
    e = ei.value
    assert 'on_all_rejected = "last"' in str(e) and e.latency_ms > 0 and e.cost > 0
    for again in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
        assert str(again) == str(e) and again.cost == e.cost and again.latency_ms == e.latency_ms
        assert [a.tier for a in again.attempts] == ["small", "big"]
    # a failed call's token counts are not known: not "reported"
    failing = Tier("down", ScriptedProvider([ScriptedReply(error=ProviderTimeoutError("slow"))]), RULE)
    r = Cascade([failing, tier("small", SURE)]).run_sync("q")
    assert r.to_dict()["attempts"][0]["tokens"]["reported"] is False


def test_system_twice_is_refused_rather_than_dropped() -> None:
    c = Cascade([tier("t1", SURE)])
    with pytest.raises(InvalidRequestError, match="both system= and a system message"):
        c.run_sync([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                   system="Answer in French.")
    p = c.tiers[0].provider
    c.run_sync("Hi", system="Answer in French.")
    assert p.requests[-1].messages[0].content == "Answer in French."  # type: ignore[attr-defined]


def test_a_price_written_for_two_arguments_still_works_when_tokens_were_cached(
        caplog: pytest.LogCaptureFixture) -> None:
    """A cost(prompt_tokens, completion_tokens) price had raised TypeError inside the query (after
    paying the tier) once a backend reported cached prompt tokens."""
    from edgecascade.types import Usage

    class OldPrice:
        def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
            return (prompt_tokens + completion_tokens) / 1e6

    class Cached(ScriptedProvider):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            c = await super().complete(request)
            import dataclasses

            return dataclasses.replace(c, usage=Usage(2000, 10, True, 1920))

    with caplog.at_level("WARNING"):
        r = Cascade([Tier("cloud", Cached([SURE]), RULE, OldPrice())]).run_sync("q")  # type: ignore[arg-type]
    assert r.cost == pytest.approx(2010 / 1e6)  # its cached tokens at its full input price
    assert any("takes no cached_prompt_tokens" in rec.getMessage() for rec in caplog.records)



class _CachedUsage(ScriptedProvider):
    """A backend that served 1,920 of a 2,000-token prompt from its cache (as OpenAI reports it)."""

    async def complete(self, request):  # type: ignore[no-untyped-def]
        import dataclasses

        from edgecascade.types import Usage

        c = await super().complete(request)
        return dataclasses.replace(c, usage=Usage(2000, 10, True, 1920))


def test_prices_that_take_options_or_live_on_the_instance_are_called_as_written() -> None:
    """A cost(p, c, *, currency=...) or cost(p, c, **kw) price was taken to accept a third positional
    argument, and a cost set on the instance raised AttributeError: the query crashed after paying its
    tier, once a backend reported cached prompt tokens."""
    import types

    class KeywordOnly:
        def cost(self, prompt_tokens: int, completion_tokens: int, *, currency: str = "USD") -> float:
            return (prompt_tokens + completion_tokens) / 1e6

    class Kwargs:  # takes cached_prompt_tokens by keyword
        def cost(self, prompt_tokens: int, completion_tokens: int, **kw: object) -> float:
            return (prompt_tokens + completion_tokens - 0.5 * int(kw.get("cached_prompt_tokens", 0))) / 1e6  # type: ignore[call-overload]

    class Named:
        def cost(self, prompt_tokens: int, completion_tokens: int, *, cached_prompt_tokens: int = 0) -> float:
            return (prompt_tokens + completion_tokens - 0.5 * cached_prompt_tokens) / 1e6

    on_instance = types.SimpleNamespace(cost=lambda p, c: (p + c) / 1e6)
    for price, expected in ((KeywordOnly(), 2010), (Kwargs(), 2010 - 960), (Named(), 2010 - 960),
                            (on_instance, 2010)):
        r = Cascade([Tier("cloud", _CachedUsage([SURE]), RULE, price)]).run_sync("q")  # type: ignore[arg-type]
        assert r.cost == pytest.approx(expected / 1e6), price


def test_an_estimated_baseline_prices_cached_prompt_tokens_as_the_answer_was_priced() -> None:
    """The answering tier's cost had the cache discount and the estimated baseline did not, which
    overstated the saving (here by 81%)."""
    price = Price(input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.25)
    big = Price(input_per_mtok=10.0, output_per_mtok=40.0, cached_input_per_mtok=2.5)
    r = Cascade([Tier("mini", _CachedUsage([SURE]), RULE, price),
                 Tier("big", ScriptedProvider([SURE]), RULE, big)]).run_sync("q")
    assert r.tier == "mini" and r.baseline_estimated
    assert r.cost == pytest.approx((80 * 1.0 + 1920 * 0.25 + 10 * 4.0) / 1e6)
    assert r.baseline_cost == pytest.approx((80 * 10.0 + 1920 * 2.5 + 10 * 40.0) / 1e6)
    # the record shows what the discounted cost rests on (it had shown 2,000 prompt tokens only)
    assert r.to_dict()["attempts"][0]["tokens"] == {"prompt": 2000, "completion": 10, "cached": 1920,
                                                    "reported": True}


def test_a_free_local_servers_cache_hits_do_not_discount_the_estimated_baseline() -> None:
    """A llama.cpp or vLLM server reports its KV-cache reuse as cached tokens: the estimated baseline
    of a cloud strongest tier had taken them at its cached price, 4.8 times lower in a review's run,
    though that tier would have billed them in full."""
    big = Price(input_per_mtok=10.0, output_per_mtok=40.0, cached_input_per_mtok=2.5)
    r = Cascade([Tier("local", _CachedUsage([SURE]), RULE),
                 Tier("big", ScriptedProvider([SURE]), RULE, big)]).run_sync("q")
    assert r.tier == "local" and r.baseline_estimated and r.cost == 0.0
    assert r.baseline_cost == pytest.approx((2000 * 10.0 + 10 * 40.0) / 1e6)
    assert r.saving == pytest.approx(r.baseline_cost)


def test_a_tiny_real_cost_never_prints_as_the_zero_of_a_free_tier(capsys: pytest.CaptureFixture[str]) -> None:
    """Six decimals printed every cost under $0.0000005 as $0.000000, a paid call as free."""
    from edgecascade.cli.run import _account

    assert usd(0.0) == "$0.000000" and usd(4.6e-07) == "$0.00000046" and usd(5e-07) == "$0.00000050"
    assert usd(1.2e-05) == "$0.000012" and usd(0.0012345) == "$0.001234" and usd(12.34567) == "$12.3457"
    tiny = Price(input_per_mtok=0.01, output_per_mtok=0.01)
    r = Cascade([Tier("local", ScriptedProvider([SURE]), RULE),
                 Tier("cloud", ScriptedProvider([SURE]), RULE, tiny)]).run_sync("q")
    assert 0 < r.baseline_cost < 5e-7  # type: ignore[operator]
    line = _account(r)
    assert "cost $0.000000 ·" in line and f"saved {usd(r.saving)} vs" in line  # type: ignore[arg-type]
    assert "saved $0.000000 " not in line and "($0.000000," not in line


def test_a_price_of_ones_own_that_fails_after_the_call_still_lists_the_call() -> None:
    """The cost was computed before the block that records an interrupted attempt: a price that
    raised dropped the paid call from the account the exception carries."""

    class Strict:
        def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
            if prompt_tokens > 500:
                raise ValueError("no price above 500 prompt tokens")
            return (prompt_tokens + completion_tokens) / 1e6

    long = ScriptedReply("Paris.", logprob=math.log(0.95), prompt_tokens=900)
    with pytest.raises(ValueError, match="no price above 500") as ei:
        Cascade([Tier("cloud", ScriptedProvider([long]), RULE, Strict())]).run_sync("q")
    [a] = ei.value.attempts  # type: ignore[attr-defined]
    assert a.tier == "cloud" and a.completion is not None and a.cost_unknown and a.error_kind == "interrupted"
    assert "stopped while its answer was priced" in a.error and ei.value.cost_unknown == ["cloud"]  # type: ignore[attr-defined]


def test_a_baseline_price_that_fails_leaves_the_saving_unknown_and_keeps_the_answer() -> None:
    """The strongest tier's own price refusing the accepted draft's token counts had thrown the
    answer, and its account, away (the strongest tier was never even called)."""
    class Strict:
        def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
            if prompt_tokens > 500:
                raise ValueError("no price above 500 prompt tokens")
            return (prompt_tokens + completion_tokens) / 1e6

    small = ScriptedProvider([ScriptedReply("Paris.", logprob=math.log(0.95), prompt_tokens=900)], model="small")
    big = ScriptedProvider([ScriptedReply("Paris.")], model="big")
    cascade = Cascade([Tier("small", small, RULE, Price(input_per_mtok=1, output_per_mtok=1)),
                       Tier("big", big, AcceptRule(), Strict())])
    with pytest.warns(UserWarning, match="price of tier 'big' failed .*no price above 500.*not known"):
        r = cascade.run_sync("q")
    assert r.tier == "small" and r.content == "Paris." and r.cost == pytest.approx(900e-6 + r.attempts[0].completion
                                                                                   .usage.completion_tokens * 1e-6)
    assert r.baseline_cost is None and r.saving is None


async def test_a_query_cancelled_or_crashed_midway_still_says_what_it_spent() -> None:
    """A rejected, priced first tier, then the query stops in the second: the first call's cost had
    vanished with the exception."""
    import asyncio

    class Broken(ScriptedProvider):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            raise ValueError("a bug in a user's provider")

    def cascade(second: ScriptedProvider) -> Cascade:
        return Cascade([tier("small", UNSURE, inp=3.0, outp=15.0), Tier("big", second, RULE)])

    with pytest.raises(ValueError, match="a bug") as crashed:
        await cascade(Broken([SURE])).run("q")
    spent = (10 * 3.0 + 2 * 15.0) / 1e6  # "Lyon, probably." is two whitespace tokens
    assert crashed.value.cost == pytest.approx(spent)  # type: ignore[attr-defined]
    # the call that crashed was made too: listed, unpriced here, so its cost ($0) is known
    assert [(a.tier, a.error_kind) for a in crashed.value.attempts] == [("small", None), ("big", "crashed")]  # type: ignore[attr-defined]
    assert crashed.value.cost_unknown == []  # type: ignore[attr-defined]
    slow = ScriptedReply("Paris.", logprob=-0.01, delay_s=30)
    task = asyncio.ensure_future(cascade(ScriptedProvider([slow])).run("q"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError) as cancelled:
        await task
    # Python 3.10 raises a new CancelledError to the awaiter, with the query's as its __context__
    stopped = cancelled.value if hasattr(cancelled.value, "cost") else cancelled.value.__context__
    assert stopped.cost == pytest.approx(spent)  # type: ignore[union-attr]
    if hasattr(stopped, "add_note"):
        assert "costing $0.000060" in " ".join(stopped.__notes__)  # type: ignore[union-attr]


async def test_a_priced_call_cancelled_in_flight_is_listed_with_its_cost_unknown() -> None:
    """A call cut short by a cancellation (here `asyncio.wait_for`) was not recorded: a priced cloud
    call, which a provider may still bill, vanished from the account, where a timeout is flagged."""
    import asyncio

    slow = ScriptedReply("Paris.", logprob=-0.01, delay_s=30)
    for price, unknown in ((8.0, ["cloud"]), (0.0, [])):  # an unpriced tier's cut call costs $0, known
        c = Cascade([tier("local", UNSURE), tier("cloud", slow, inp=price, outp=price)])
        with pytest.raises(TimeoutError) as timed_out:
            await asyncio.wait_for(c.run("q"), 0.3)
        stopped = timed_out.value if hasattr(timed_out.value, "attempts") else timed_out.value.__context__
        assert [(a.tier, a.error_kind, a.cost_unknown) for a in stopped.attempts] == [  # type: ignore[union-attr]
            ("local", None, False), ("cloud", "interrupted", bool(unknown))]
        assert stopped.cost == 0.0 and stopped.cost_unknown == unknown  # type: ignore[union-attr]
        assert stopped.latency_ms >= 250  # type: ignore[union-attr] # the query's time until it was stopped
        if unknown and hasattr(stopped, "add_note"):
            assert "cost not known for cloud" in " ".join(stopped.__notes__)  # type: ignore[union-attr]


async def test_a_cross_check_cut_short_while_written_leaves_a_priced_tiers_cost_unknown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled while the cross-check's program was generated, the attempt carried the draft's cost
    only, and nothing said a second, maybe billed call had been in flight."""
    import asyncio

    import edgecascade.engine as engine_mod

    async def writing_forever(*a: object, **k: object) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(engine_mod, "run_cross_check", writing_forever)
    monkeypatch.setattr(Cascade, "cross_checks", lambda *a, **k: True)
    c = Cascade([tier("cloud", UNSURE, inp=3.0, outp=15.0), tier("big", SURE)])
    with pytest.raises(TimeoutError) as timed_out:
        await asyncio.wait_for(c.run("q"), 0.3)
    stopped = timed_out.value if hasattr(timed_out.value, "attempts") else timed_out.value.__context__
    [attempt] = stopped.attempts  # type: ignore[union-attr]
    assert "while its cross-check was written" in (attempt.error or "")
    assert attempt.cost_unknown and attempt.cost == pytest.approx((10 * 3.0 + 2 * 15.0) / 1e6)
    assert attempt.latency_ms >= 250  # the program's generation so far was time inside the provider


async def test_a_cross_check_program_with_no_usage_leaves_a_priced_tiers_cost_unknown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The program's cost was added from its counts, and a program whose backend reported none
    added $0 with nothing saying so."""
    import edgecascade.engine as engine_mod
    from edgecascade.quality.crosscheck import CrossCheck
    from edgecascade.types import Completion, Timings, Usage

    async def unreported(provider: object, request: object, draft: str, *, on_written: Any) -> CrossCheck:
        program = Completion("print(4)", "m", "stop", Usage(0, 0, reported=False), Timings(total_s=0.01))
        on_written(program, 0.01)
        return CrossCheck.of(draft, 4.0, program)

    monkeypatch.setattr(engine_mod, "run_cross_check", unreported)
    monkeypatch.setattr(Cascade, "cross_checks", lambda *a, **k: True)
    r = await Cascade([tier("cloud", SURE, inp=3.0, outp=15.0)]).run("q")
    [attempt] = r.attempts
    assert attempt.decision is not None and attempt.decision.cross_check is not None
    assert attempt.cost_unknown and r.cost_unknown == ["cloud"]


def test_every_tier_failing_with_maybe_billed_calls_says_the_cost_is_not_known(
        capsys: pytest.CaptureFixture[str]) -> None:
    """AllTiersFailedError said nothing of costs it did not know, and `run --json` wrote "cost": 0.0
    for two timed-out cloud calls a provider may still bill."""
    import argparse
    import copy
    import json
    import pickle

    from edgecascade import MalformedResponseError
    from edgecascade.cli.run import _print_error_json

    c = Cascade([tier("cloud-a", ScriptedReply(error=ProviderTimeoutError("no answer in 60 s")), inp=1.0, outp=1.0),
                 tier("cloud-b", ScriptedReply(error=MalformedResponseError("body cut off")), inp=1.0, outp=1.0)])
    with pytest.raises(AllTiersFailedError, match=r"cost not known for cloud-a, cloud-b") as failed:
        c.run_sync("q")
    e = failed.value
    assert e.cost == 0.0 and e.cost_unknown == ["cloud-a", "cloud-b"]
    for again in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
        assert again.cost_unknown == e.cost_unknown and str(again) == str(e)
    _print_error_json(e, argparse.Namespace(logprobs=False))
    record = json.loads(capsys.readouterr().out)
    assert record["cost"] == 0.0 and record["cost_unknown"] == ["cloud-a", "cloud-b"]


def test_ctrl_c_in_run_sync_keeps_the_account_on_the_interrupt(capsys: pytest.CaptureFixture[str]) -> None:
    """asyncio.run turns a cancelled query into a new KeyboardInterrupt: the account the cancellation
    carried was lost, and `edgecascade run` said only "interrupted"."""
    import argparse
    import json
    import signal

    class CtrlC(ScriptedProvider):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C while this tier works
            return await super().complete(request)

    from edgecascade.cli.run import _print_interrupted_account

    slow = ScriptedReply("Paris.", logprob=-0.01, delay_s=30)
    c = Cascade([tier("mini", UNSURE, inp=3.0, outp=15.0),
                 Tier("cloud", CtrlC([slow]), RULE, Price(output_per_mtok=8))])
    with pytest.raises(KeyboardInterrupt) as interrupted:
        c.run_sync("q")
    k = interrupted.value
    spent = (10 * 3.0 + 2 * 15.0) / 1e6
    assert [a.tier for a in k.attempts] == ["mini", "cloud"]  # type: ignore[attr-defined]
    assert k.cost == pytest.approx(spent) and k.cost_unknown == ["cloud"]  # type: ignore[attr-defined]
    assert k.latency_ms > 0  # type: ignore[attr-defined]
    _print_interrupted_account(k, argparse.Namespace(json=True, logprobs=False))
    out = capsys.readouterr()
    record = json.loads(out.out)
    assert record["cost"] == pytest.approx(spent) and record["cost_unknown"] == ["cloud"]
    assert [a["tier"] for a in record["attempts"]] == ["mini", "cloud"]
    assert "had made 2 call(s) costing $0.000060; cost not known for cloud" in out.err


def test_a_baseline_with_no_token_counts_to_price_is_not_known_rather_than_free() -> None:
    """A free first tier whose server sends no usage, accepted before a priced cloud tier: the
    baseline was priced on zero tokens and reported as $0, "estimated", with a $0 saving."""
    from edgecascade import Completion, Timings, Usage
    from edgecascade.cli.run import _account

    class Silent:
        model = "silent"

        async def complete(self, request: object) -> Completion:
            return Completion("Paris.", "silent", "stop", Usage(0, 0, reported=False), Timings(), None)

    rule = AcceptRule()  # the checks alone decide: the silent tier sends no logprobs either
    for cloud_price, baseline in ((10.0, None), (0.0, 0.0)):  # a free strongest tier costs $0, known
        c = Cascade([Tier("local", Silent(), rule), tier("cloud", SURE, inp=cloud_price, outp=cloud_price)])  # type: ignore[arg-type]
        r = c.run_sync("Capital of France?")
        assert r.tier == "local" and r.baseline_estimated
        assert r.baseline_cost == baseline and r.to_dict()["baseline_cost"] == baseline
        assert r.saving == (None if baseline is None else 0.0)
        assert ("saving vs always cloud not known" in _account(r)) is (baseline is None)


def test_an_exception_instance_raised_again_carries_the_new_querys_account() -> None:
    """A provider that raises one stored exception instance each time: the second query's error kept
    the first query's cost, and the notes piled up."""
    bug = ScriptedReply(error=RuntimeError("a bug in my provider"))
    for price in (1.0, 100.0):
        c = Cascade([tier("mini", UNSURE, inp=price, outp=price), tier("big", bug)])
        with pytest.raises(RuntimeError) as crashed:
            c.run_sync("q")
        assert crashed.value.cost == pytest.approx(12 * price / 1e6)  # type: ignore[attr-defined]
        assert [a.tier for a in crashed.value.attempts] == ["mini", "big"]  # type: ignore[attr-defined]
        if hasattr(crashed.value, "add_note"):
            assert len(crashed.value.__notes__) == 1


async def test_a_draft_paid_for_and_stopped_while_judged_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped during its cross-check or examples check, a tier's paid draft was appended to nothing."""
    import edgecascade.engine as engine_mod

    def broken_decide(*a: object, **k: object) -> None:
        raise ValueError("a bug in a check")

    monkeypatch.setattr(engine_mod, "decide", broken_decide)
    with pytest.raises(ValueError, match="a bug in a check") as stopped:
        await Cascade([tier("small", UNSURE, inp=3.0, outp=15.0), tier("big", SURE)]).run("q")
    [attempt] = stopped.value.attempts  # type: ignore[attr-defined]
    assert (attempt.tier, attempt.error_kind, attempt.completion.text) == ("small", "interrupted", UNSURE.text)
    assert stopped.value.cost == pytest.approx((10 * 3.0 + 2 * 15.0) / 1e6)  # type: ignore[attr-defined]


def test_a_message_object_is_checked_as_a_dict_is() -> None:
    """Message objects went unchecked: a bad role reached every tier, and a None content raised
    AttributeError, where the same as dicts is refused before anything runs."""
    from edgecascade import Message

    c = Cascade([tier("t1", SURE)])
    with pytest.raises(InvalidRequestError, match="role 'bot'"):
        c.run_sync([Message("bot", "hi"), Message("user", "q?")])  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="message 0 has no text"):
        c.run_sync([Message("user", None), Message("user", "q?")])  # type: ignore[arg-type]
    assert c.tiers[0].provider.requests == []  # type: ignore[attr-defined]


async def test_a_retried_call_a_provider_may_still_bill_leaves_the_cost_unknown() -> None:
    """The resilient wrapper hid its failed tries: a timed-out call retried into an answer reported
    the answer's cost alone, and a timeout followed by a refused connection read as never billed."""
    from edgecascade.errors import ProviderConnectionError
    from edgecascade.providers.resilient import ResilientProvider, RetryPolicy

    def remote(*replies: ScriptedReply) -> Tier:
        inner = ScriptedProvider(list(replies), model="gpt")
        return Tier("remote", ResilientProvider(inner, endpoint="http://remote.test", retry=RetryPolicy(3, 0.01, 0.01)),
                    RULE, Price(input_per_mtok=10.0, output_per_mtok=30.0))

    r = await Cascade([remote(ScriptedReply(error=ProviderTimeoutError("read timeout")), SURE)]).run("q")
    assert r.tier == "remote" and r.cost > 0 and r.cost_unknown == ["remote"]
    r = await Cascade([tier("local", UNSURE), remote(ScriptedReply(error=ProviderTimeoutError("read timeout")),
                                                     ScriptedReply(error=ProviderConnectionError("refused")))]).run("q")
    assert r.attempts[1].error_kind == "connection" and r.cost_unknown == ["remote"]
    # retried after failures no provider bills (refused connections): known
    r = await Cascade([remote(ScriptedReply(error=ProviderConnectionError("refused")), SURE)]).run("q")
    assert r.tier == "remote" and r.cost_unknown == []


def test_a_provider_of_your_own_needs_only_an_async_complete() -> None:
    """The README names complete() as the protocol; run_sync then lost the answer in its finally,
    on AttributeError: no aclose (and a failing tier's record read provider.model)."""
    from edgecascade.types import Completion, Request, Timings, Usage

    class OnlyComplete:
        async def complete(self, request: Request) -> Completion:
            return Completion("Paris.", "mine", "stop", Usage(5, 2), Timings())

    class Fails:
        async def complete(self, request: Request) -> Completion:
            raise ProviderTimeoutError("too slow")

    r = Cascade([Tier("down", Fails()), Tier("mine", OnlyComplete())]).run_sync("Capital of France?")  # type: ignore[arg-type]
    assert (r.content, r.tier, r.model) == ("Paris.", "mine", "mine")
    assert (r.attempts[0].tier, r.attempts[0].model, r.attempts[0].error_kind) == ("down", "down", "timeout")


async def test_a_failed_call_a_provider_may_still_bill_is_flagged_not_counted_as_free() -> None:
    """A priced cloud tier that timed out (or answered broken) was reported at exactly $0 with a
    saving claimed, and nothing said the cost was unknown: a timed-out call may still be billed."""
    from edgecascade import AuthenticationError, MalformedResponseError
    from edgecascade.cli.run import _account

    for error, flagged in ((ProviderTimeoutError("no answer within 60 s"), True),
                           (MalformedResponseError("a body that is not JSON"), True),
                           (AuthenticationError("401: check $OPENAI_API_KEY"), False)):  # refused: never billed
        c = Cascade([tier("local", UNSURE),
                     tier("cloud", ScriptedReply(error=error), inp=2.0, outp=8.0)])
        r = await c.run("q")
        assert r.tier == "local" and r.cost == 0.0
        assert r.cost_unknown == (["cloud"] if flagged else [])
        assert r.to_dict()["cost_unknown"] == r.cost_unknown
        assert r.to_dict()["attempts"][1]["cost_unknown"] is flagged
        assert ("cost not known for cloud" in _account(r)) is flagged
    # an unpriced (local) tier's timeout costs nothing, known
    c = Cascade([tier("draft", UNSURE), tier("local-big", ScriptedReply(error=ProviderTimeoutError("slow")))])
    assert (await c.run("q")).cost_unknown == []


def test_a_confidence_threshold_on_a_tier_without_logprobs_is_refused() -> None:
    """A threshold on a tier whose backend returns no logprobs (Groq, OpenRouter, Anthropic, a generic
    OpenAI-compatible server) was a silent no-op: every draft passed on its checks alone."""
    from edgecascade import ConfigError
    from edgecascade.providers.base import Capabilities
    from edgecascade.quality.calibration import FEATURE_NAMES, Calibration

    blind = ScriptedProvider([SURE], capabilities=Capabilities(logprobs=False))
    n = len(FEATURE_NAMES)
    cal = Calibration("m", list(FEATURE_NAMES), [0.0] * n, [1.0] * n, [0.0] * n, 0.0)
    for rule, calibration in ((RULE, None), (AcceptRule(confidence="calibrated", min_confidence=0.5), cal)):
        with pytest.raises(ConfigError, match="returns no token logprobs.*set logprobs = true"):
            Cascade([Tier("groq", blind, rule, calibration=calibration), tier("big", SURE)])
    # no threshold: the checks alone decide, as the rule says
    assert Cascade([Tier("groq", blind, AcceptRule()), tier("big", SURE)]).tiers[0].name == "groq"


def test_a_draft_with_fewer_alternatives_than_its_calibration_was_fitted_on_escalates() -> None:
    """The shipped calibrations read every draft's margin and entropy over 5 alternatives per token; a
    backend that sent fewer for one token (a cut row, a row collapsed into one key) had every step read
    over the fewest, and with one a margin of 0, which the code calibrator takes for certainty: a wrong
    draft passed."""
    from edgecascade.config import load_config
    from edgecascade.engine import calibration_for

    tier_cfg = load_config("default").tiers[0]
    rule, calibration = tier_cfg.accept, calibration_for(tier_cfg)
    assert calibration is not None and calibration.meta["top_logprobs"] == 5
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    for k in (1, 2):
        small = ScriptedProvider([ScriptedReply(wrong, logprob=-0.01, top_k=k)], model="small")
        r = Cascade([Tier("small", small, rule, calibration=calibration),
                     Tier("big", ScriptedProvider([SURE], model="big"))]).run_sync("Write add(a, b) in Python.")
        assert r.tier == "big"
        assert (f"cannot be computed for this draft: its calibration was fitted on drafts with 5 alternatives per "
                f"token, and the backend sent {k}") in r.attempts[0].reason
    # with the five it was fitted on, the draft is judged (whatever the verdict)
    small = ScriptedProvider([ScriptedReply(wrong, logprob=-0.01, top_k=5)], model="small")
    r = Cascade([Tier("small", small, rule, calibration=calibration),
                 Tier("big", ScriptedProvider([SURE], model="big"))]).run_sync("Write add(a, b) in Python.")
    assert r.attempts[0].confidence is not None


def test_a_tier_asking_for_fewer_alternatives_than_its_calibration_needs_is_told_each_draft_escalates() -> None:
    # a warning, not a refusal: `bench run` traces such a tier to fit a calibration for it
    from edgecascade.config import parse_config
    from edgecascade.engine import calibration_for

    tier_cfg = parse_config({"tiers": [{"model": "qwen2.5-coder-0.5b", "top_logprobs": 2,
                                        "accept": {"confidence": "calibrated", "quality_target": 0.95}}]}).tiers[0]
    with pytest.warns(UserWarning, match="asks for top_logprobs = 2, and its calibration .* fitted on drafts with 5 "
                                         "alternatives per token.*no draft of this tier can be judged by it, and each "
                                         "escalates. Set top_logprobs = 5"):
        assert calibration_for(tier_cfg) is not None


def test_a_calibration_that_reads_no_alternatives_judges_a_draft_with_fewer() -> None:
    """The check of a draft's alternatives is for calibrations that read margins or entropies; one that
    does not judges the draft, and a tier asking for fewer is not told each of its drafts escalates."""
    import warnings

    from edgecascade.config import parse_config
    from edgecascade.engine import calibration_for
    from edgecascade.quality.calibration import Calibration

    plain = Calibration(features=["mean_logprob", "min_logprob"], mean=[-0.5, -2.0], scale=[0.5, 1.0],
                        coef=[1.0, 1.0], intercept=0.0, model="m", meta={"top_logprobs": 5})
    assert not plain.reads_alternatives
    small = ScriptedProvider([ScriptedReply("The answer is 7.", logprob=-0.01, top_k=1)], model="small")
    r = Cascade([Tier("small", small, AcceptRule(confidence="calibrated", min_confidence=0.1), calibration=plain),
                 Tier("big", ScriptedProvider([SURE], model="big"))]).run_sync("What is 3 + 4?")
    assert r.tier == "small" and r.attempts[0].confidence is not None
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plain.calibration.json"
        plain.save(path)
        tier_cfg = parse_config({"tiers": [{"model": str(path.with_name("m.gguf")), "top_logprobs": 2, "accept": {
            "confidence": "calibrated", "calibration": str(path), "min_confidence": 0.5}}]}).tiers[0]
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            calibration_for(tier_cfg)
        assert not any("each escalates" in str(w.message) for w in said)
        assert json.loads(path.read_text())["meta"]["top_logprobs"] == 5
