"""Retries, deadlines and cooldowns around a provider (scripted failures, real timing)."""

from __future__ import annotations

import asyncio
import time

import pytest

from edgecascade import Cascade, ScriptedProvider, ScriptedReply, Tier
from edgecascade.errors import (
    AuthenticationError,
    CooldownError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitedError,
    UpstreamError,
)
from edgecascade.providers.base import Timeouts
from edgecascade.providers.resilient import CircuitBreaker, CooldownPolicy, ResilientProvider, RetryPolicy
from edgecascade.types import Message, Request

OK = ScriptedReply("fine", logprob=-0.01)
REQ = Request([Message("user", "q")])


def wrap(replies: list[ScriptedReply], *, attempts: int = 3, total: float = 5.0, failures: int = 3,
         seconds: float = 30.0, clock=time.monotonic) -> tuple[ResilientProvider, ScriptedProvider]:  # type: ignore[no-untyped-def]
    inner = ScriptedProvider(replies, model="remote")
    breaker = CircuitBreaker("http://test", CooldownPolicy(failures, seconds), clock=clock)
    return ResilientProvider(inner, endpoint="http://test", retry=RetryPolicy(attempts, 0.01, 0.02),
                             timeouts=Timeouts(total=total), breaker=breaker), inner


async def test_retries_a_5xx_then_succeeds() -> None:
    p, inner = wrap([ScriptedReply(error=UpstreamError("boom", status_code=502)), OK])
    c = await p.complete(REQ)
    assert c.text == "fine" and len(inner.requests) == 2 and not p.breaker.is_open


async def test_honours_retry_after() -> None:
    p, inner = wrap([ScriptedReply(error=RateLimitedError("slow down", retry_after=0.3)), OK])
    t0 = time.monotonic()
    await p.complete(REQ)
    assert time.monotonic() - t0 >= 0.3 and len(inner.requests) == 2


async def test_honours_an_overloaded_servers_retry_after_too() -> None:
    """A 503 (or Anthropic's 529) with Retry-After was retried on the short backoff, not when the
    server asked: only a rate limit carried the wait."""
    p, inner = wrap([ScriptedReply(error=UpstreamError("overloaded", status_code=503, retry_after=0.3)), OK])
    t0 = time.monotonic()
    await p.complete(REQ)
    assert time.monotonic() - t0 >= 0.3 and len(inner.requests) == 2
    p, inner = wrap([ScriptedReply(error=UpstreamError("overloaded", status_code=503, retry_after=60)), OK], total=2)
    with pytest.raises(UpstreamError):
        await p.complete(REQ)
    assert len(inner.requests) == 1  # past the deadline: fail now, as for a rate limit


async def test_retry_after_beyond_the_deadline_fails_now() -> None:
    p, inner = wrap([ScriptedReply(error=RateLimitedError("come back in a minute", retry_after=60)), OK], total=2)
    t0 = time.monotonic()
    with pytest.raises(RateLimitedError):
        await p.complete(REQ)
    assert time.monotonic() - t0 < 1 and len(inner.requests) == 1


async def test_non_retryable_errors_are_not_retried() -> None:
    p, inner = wrap([ScriptedReply(error=AuthenticationError("bad key")), OK])
    with pytest.raises(AuthenticationError):
        await p.complete(REQ)
    assert len(inner.requests) == 1
    p, inner = wrap([ScriptedReply(error=UpstreamError("bad request", status_code=400)), OK])
    with pytest.raises(UpstreamError):
        await p.complete(REQ)
    assert len(inner.requests) == 1


async def test_gives_up_after_the_attempts_and_says_so() -> None:
    p, inner = wrap([ScriptedReply(error=ProviderConnectionError("refused"))], attempts=3)
    with pytest.raises(ProviderConnectionError, match="after 3 attempts"):
        await p.complete(REQ)
    assert len(inner.requests) == 3


async def test_total_deadline_cuts_a_hanging_call() -> None:
    p, _ = wrap([ScriptedReply("late", delay_s=10)], total=0.3)
    t0 = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="total deadline of 0.3 s"):
        await p.complete(REQ)
    assert time.monotonic() - t0 < 2


async def test_breaker_opens_skips_fast_then_probes_and_closes() -> None:
    now = [1000.0]
    fail = ScriptedReply(error=ProviderConnectionError("refused"))
    p, inner = wrap([fail, fail, OK], attempts=1, failures=2, seconds=30, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(ProviderConnectionError):
            await p.complete(REQ)
    assert p.breaker.is_open
    with pytest.raises(CooldownError, match="skipped for 30 s more"):
        await p.complete(REQ)
    assert len(inner.requests) == 2  # the cooled-down endpoint was not called
    now[0] += 31  # cooled down: one probe goes through, succeeds, and closes the breaker
    assert (await p.complete(REQ)).text == "fine"
    assert not p.breaker.is_open


async def test_failed_probe_reopens_the_breaker() -> None:
    now = [0.0]
    fail = ScriptedReply(error=ProviderConnectionError("refused"))
    p, inner = wrap([fail], attempts=1, failures=1, seconds=10, clock=lambda: now[0])
    with pytest.raises(ProviderConnectionError):
        await p.complete(REQ)
    now[0] += 11
    with pytest.raises(ProviderConnectionError):  # the probe
        await p.complete(REQ)
    with pytest.raises(CooldownError):
        await p.complete(REQ)
    assert len(inner.requests) == 2


async def test_cascade_falls_through_and_returns_the_local_answer_flagged_when_cloud_is_down() -> None:
    local = Tier("local", ScriptedProvider([ScriptedReply("maybe 41", logprob=-2.0)], model="local-0.5b"))
    from edgecascade import AcceptRule

    local.accept = AcceptRule(min_confidence=0.9)
    cloud_inner = ScriptedProvider([ScriptedReply(error=ProviderConnectionError("no route to api.example.com"))],
                                   model="cloud")
    cloud = Tier("cloud", ResilientProvider(cloud_inner, endpoint="https://api.example.com",
                                            retry=RetryPolicy(2, 0.01, 0.01), breaker=CircuitBreaker("x")))
    r = await Cascade([local, cloud]).run("q")
    assert r.content == "maybe 41" and r.accepted is False and r.tier == "local"
    assert r.reason.startswith("tier 'cloud' failed (connection)")
    assert r.attempts[1].error_kind == "connection" and "after 2 attempts" in r.attempts[1].reason


async def test_a_cancelled_probe_does_not_leave_the_breaker_stuck() -> None:
    import asyncio

    now = [0.0]
    fail = ScriptedReply(error=ProviderConnectionError("refused"))
    p, inner = wrap([fail, ScriptedReply("slow", delay_s=5), OK], attempts=1, failures=1, seconds=10,
                    clock=lambda: now[0])
    with pytest.raises(ProviderConnectionError):
        await p.complete(REQ)
    now[0] += 11
    with pytest.raises(asyncio.TimeoutError):  # the probe is cancelled by its caller
        await asyncio.wait_for(p.complete(REQ), 0.05)
    assert (await p.complete(REQ)).text == "fine"  # a new probe is let through, and closes the breaker
    assert not p.breaker.is_open


async def test_request_specific_errors_do_not_open_the_endpoint_breaker() -> None:
    from edgecascade.errors import UnknownModelError

    p, inner = wrap([ScriptedReply(error=UnknownModelError("no model 'gpt-typo'"))], attempts=1, failures=1)
    for _ in range(3):
        with pytest.raises(UnknownModelError):  # the real message every time, never CooldownError
            await p.complete(REQ)
    assert not p.breaker.is_open and len(inner.requests) == 3


async def test_a_reused_exception_instance_keeps_its_message() -> None:
    err = ProviderConnectionError("refused")
    p, _ = wrap([ScriptedReply(error=err)], attempts=2, failures=100)
    for _ in range(2):
        with pytest.raises(ProviderConnectionError, match=r"^refused \(after 2 attempts\)$"):
            await p.complete(REQ)
    assert str(err) == "refused"


def test_breakers_are_per_endpoint_and_policy() -> None:
    from edgecascade.providers.resilient import breaker_for, reset_breakers

    reset_breakers()
    a = breaker_for("http://x", CooldownPolicy(3, 30))
    assert breaker_for("http://x", CooldownPolicy(3, 30)) is a
    assert breaker_for("http://x", CooldownPolicy(5, 10)).policy == CooldownPolicy(5, 10)


async def test_a_stream_deadline_never_cancels_the_callers_own_code() -> None:
    """The deadline's timer had stayed armed while the caller held a Delta: it cancelled the caller's
    own await between Deltas (a bare CancelledError, the task left cancelling). The deadline is the
    backend's: a slow reader neither times out nor counts against the endpoint."""
    import asyncio

    p, inner = wrap([ScriptedReply("one two three four", logprob=-0.1)], total=0.1, failures=1)
    got: list[str] = []
    async for d in p.stream(REQ):
        got.append(d.text)
        await asyncio.sleep(0.06)  # the caller's own work: 0.24 s in all, past the deadline
    task = asyncio.current_task()
    assert "".join(got) == "one two three four" and task is not None
    assert getattr(task, "cancelling", lambda: 0)() == 0 and not p.breaker.is_open
    # a backend slower than the deadline: a timeout, raised in the stream, not a bare cancellation
    p, inner = wrap([ScriptedReply("late", logprob=-0.1, delay_s=0.3)], total=0.1)
    with pytest.raises(ProviderTimeoutError, match="total deadline of 0.1 s"):
        async for _d in p.stream(REQ):
            pass
    assert getattr(task, "cancelling", lambda: 0)() == 0


async def test_a_stream_that_fails_to_start_leaves_no_probe_held() -> None:
    """inner.stream() had been called outside the try: one that raised at once left the endpoint's
    half-open probe taken, so the endpoint stayed in cooldown."""
    class Broken(ScriptedProvider):
        def stream(self, request: Request):  # type: ignore[no-untyped-def,override]
            raise UpstreamError("refused at once", status_code=502)

    clock = [0.0]
    inner = Broken([OK], model="remote")
    breaker = CircuitBreaker("http://t3", CooldownPolicy(1, 10.0), clock=lambda: clock[0])
    p = ResilientProvider(inner, endpoint="http://t3", timeouts=Timeouts(total=5.0), breaker=breaker)
    with pytest.raises(UpstreamError):
        [d async for d in p.stream(REQ)]
    assert p.breaker.is_open
    clock[0] = 11.0  # past the cooldown: a probe is let through, fails, and is recorded
    with pytest.raises(UpstreamError):
        [d async for d in p.stream(REQ)]
    clock[0] = 22.0
    with pytest.raises(UpstreamError):  # not CooldownError: the earlier probe was given back
        [d async for d in p.stream(REQ)]


async def test_a_stream_keeps_the_inner_streams_usage_and_finish() -> None:
    """Wrapped in the retry layer (as every remote tier is), a stream had lost the token counts the
    backend's stream reported."""
    from edgecascade.providers._common import DeltaStream
    from edgecascade.types import Delta, Usage

    class Counting(ScriptedProvider):
        def stream(self, request: Request) -> DeltaStream:  # type: ignore[override]
            async def produce(out: DeltaStream):  # type: ignore[no-untyped-def]
                yield Delta("Hi")
                out.usage, out.finish_reason = Usage(7, 1), "stop"
                yield Delta("", "stop")
            return DeltaStream(produce)

    inner = Counting([OK], model="remote")
    p = ResilientProvider(inner, endpoint="http://test2", timeouts=Timeouts(total=5.0))
    s = p.stream(REQ)
    assert "".join([d.text async for d in s]) == "Hi"
    assert s.usage == Usage(7, 1) and s.finish_reason == "stop"  # type: ignore[attr-defined]
    # the scripted provider's stream keeps complete()'s accounting too (it kept none, and the wrapper
    # then lost even the finish reason the last Delta carried)
    scripted = ScriptedProvider([OK], model="remote")
    done = await ScriptedProvider([OK], model="remote").complete(REQ)
    s = ResilientProvider(scripted, endpoint="http://test3", timeouts=Timeouts(total=5.0)).stream(REQ)
    assert "".join([d.text async for d in s]) == done.text
    assert (s.usage, s.finish_reason) == (done.usage, done.finish_reason)  # type: ignore[attr-defined]
    assert s.logprobs is not None and s.logprobs.tokens == done.logprobs.tokens  # type: ignore[attr-defined,union-attr]


@pytest.mark.skipif(not hasattr(asyncio.Task, "cancelling"), reason="Python 3.10 does not count cancellations")
async def test_a_callers_cancel_in_the_same_turn_as_the_deadline_is_not_turned_into_a_tier_timeout() -> None:
    """The caller's wait_for (or task.cancel()) and a tier's total deadline firing in one turn: the
    deadline took the caller's cancellation for its own, so the cascade went on to the next tier and
    paid for it after the caller had given up. Both are fired here in the same turn, by hand."""
    from edgecascade.providers.resilient import _deadline

    async def body(also_the_caller: bool) -> None:
        deadline = _deadline(60, "http://x")
        async with deadline:
            deadline._fire()  # the deadline's timer
            if also_the_caller:
                task = asyncio.current_task()
                assert task is not None
                task.cancel()  # the caller's, in the same turn
            await asyncio.sleep(5)

    with pytest.raises(ProviderTimeoutError, match="total deadline of 60 s"):  # its own alone: a timeout
        await body(also_the_caller=False)
    task = asyncio.ensure_future(body(also_the_caller=True))
    with pytest.raises(asyncio.CancelledError):  # the caller's goes through
        await task
    assert task.cancelled()


def test_calls_before_the_deadline_ended_the_tries_are_counted_as_maybe_billed() -> None:
    """When the total deadline, not a call, ends the tries, every failed call before it counts (the
    first version subtracted one for the deadline's own error: -1 after a rate limit, 0 after a
    timeout, found by a review)."""
    from edgecascade.errors import RateLimitedError

    for first, earlier in ((RateLimitedError("429", retry_after=0.01), 0), (ProviderTimeoutError("slow"), 1)):
        inner = ScriptedProvider([ScriptedReply(error=first), ScriptedReply("late", delay_s=5)], model="remote")
        p = ResilientProvider(inner, endpoint=f"http://deadline-{earlier}", retry=RetryPolicy(3, 0.01, 0.01),
                              timeouts=Timeouts(total=0.5))
        with pytest.raises(ProviderTimeoutError) as ei:
            asyncio.run(p.complete(REQ))
        assert ei.value.earlier_maybe_billed == earlier


# -- found by a review of the wrapper (2026-11-28): each failed on the code before --------------------


def _openai_tier(handler, *, attempts: int = 1, failures: int = 3):  # type: ignore[no-untyped-def]
    import httpx

    from edgecascade.providers.openai_compat import OpenAICompatProvider

    inner = OpenAICompatProvider("https://api.example.test/v1", "gpt-4o-mini", api_key="sk-test",
                                 client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    breaker = CircuitBreaker("https://api.example.test/v1", CooldownPolicy(failures, 30))
    return ResilientProvider(inner, endpoint="https://api.example.test/v1", retry=RetryPolicy(attempts, 0.01, 0.01),
                             breaker=breaker)


async def test_a_full_connection_pool_here_is_not_the_endpoint_s_failure_nor_billed() -> None:
    """More calls in flight than httpx's pool holds had opened a healthy server's breaker (every
    tier sharing it skipped for 30 s) and marked calls never sent as maybe billed."""
    import httpx

    from edgecascade import Price
    from edgecascade.errors import PoolTimeoutError, may_be_billed

    def pool_full(r: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection available", request=r)

    p = _openai_tier(pool_full, failures=1)
    with pytest.raises(PoolTimeoutError, match="no free connection") as ei:
        await p.complete(REQ)
    assert not ei.value.sent and not may_be_billed(ei.value)
    assert p.breaker.failures == 0 and not p.breaker.is_open
    r = await Cascade([Tier("cloud", p, price=Price(input_per_mtok=1, output_per_mtok=1)),
                       Tier("local", ScriptedProvider([OK]))]).run("q")
    assert r.attempts[0].error_kind == "timeout" and not r.attempts[0].cost_unknown and not r.cost_unknown

    def no_connect(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=r)

    p = _openai_tier(no_connect, failures=1)
    with pytest.raises(ProviderTimeoutError, match="could not connect") as ej:
        await p.complete(REQ)
    assert not may_be_billed(ej.value) and p.breaker.is_open  # never sent, but the endpoint's failure


async def test_a_refused_request_is_not_counted_as_maybe_billed() -> None:
    """Every UpstreamError counted as 'may be billed', a 400 too: Result.cost_unknown said the saving
    might be too high after a request the API had refused."""
    from edgecascade import AllTiersFailedError, Price
    from edgecascade.errors import MalformedResponseError, may_be_billed

    assert not may_be_billed(UpstreamError("bad request", status_code=400))
    assert not may_be_billed(UpstreamError("moved", status_code=307))
    assert not may_be_billed(MalformedResponseError("a web page", status_code=404, retryable=False))
    assert may_be_billed(UpstreamError("server error", status_code=500))
    assert may_be_billed(UpstreamError("cut off mid-stream"))
    assert may_be_billed(MalformedResponseError("garbled", status_code=200))
    assert not may_be_billed(RateLimitedError("429")) and may_be_billed(ProviderTimeoutError("slow"))
    price = Price(input_per_mtok=1, output_per_mtok=1)
    for status, unknown in ((400, []), (500, ["cloud"])):
        c = Cascade([Tier("cloud", ScriptedProvider([ScriptedReply(error=UpstreamError("x", status_code=status))]),
                          price=price)])
        with pytest.raises(AllTiersFailedError) as ei:
            await c.run("q")
        assert ei.value.cost_unknown == unknown


async def test_calls_in_flight_stop_retrying_once_the_breaker_opens() -> None:
    """The breaker was asked once per call: calls already retrying kept hitting a down endpoint
    (96 requests for 50 calls in the review's run, where 3 had opened it)."""
    breaker = CircuitBreaker("http://down", CooldownPolicy(1, 30))
    down = ScriptedReply(error=UpstreamError("HTTP 503", status_code=503))
    patient_inner = ScriptedProvider([down], model="remote")
    patient = ResilientProvider(patient_inner, endpoint="http://down", retry=RetryPolicy(5, 0.2, 0.2),
                                timeouts=Timeouts(total=10), breaker=breaker)
    quick = ResilientProvider(ScriptedProvider([ScriptedReply(error=UpstreamError("HTTP 503", status_code=503),
                                                              delay_s=0.05)], model="remote"),
                              endpoint="http://down", retry=RetryPolicy(1, 0.01, 0.01), breaker=breaker)
    results = await asyncio.gather(patient.complete(REQ), quick.complete(REQ), return_exceptions=True)
    assert all(isinstance(r, UpstreamError) for r in results) and breaker.is_open
    # the patient call's first try failed before the breaker opened; its next try was its last
    assert len(patient_inner.requests) == 2
    assert "(after 2 attempts)" in str(results[0])


async def test_a_callers_cancel_mid_retry_still_counts_the_endpoint_s_failures() -> None:
    """A caller's own timeout landing in the backoff threw the failures seen away: the breaker of a
    dead endpoint never opened for callers with their own timeouts."""
    p, inner = wrap([ScriptedReply(error=UpstreamError("HTTP 503", status_code=503))], failures=1)
    p.retry = RetryPolicy(3, 1.0, 1.0)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(p.complete(REQ), 0.2)
    assert len(inner.requests) == 1 and p.breaker.failures == 1 and p.breaker.is_open
    # a cancel before any failure gives no verdict
    q, _ = wrap([ScriptedReply("late", delay_s=5)], failures=1)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.complete(REQ), 0.1)
    assert q.breaker.failures == 0 and not q.breaker.is_open


async def test_a_provider_error_of_ones_own_with_another_signature_survives_the_retries() -> None:
    """copy.copy called the subclass's __init__ again: a TypeError escaped the cascade, which the
    backup tier never saw."""

    class GatewayError(UpstreamError):
        def __init__(self, status: int, body: str):
            super().__init__(f"gateway {status}: {body}", status_code=status)
            self.body = body

    flaky = ResilientProvider(ScriptedProvider([ScriptedReply(error=GatewayError(503, "busy"))], model="gw"),
                              endpoint="https://gw", retry=RetryPolicy(2, 0.01, 0.01),
                              breaker=CircuitBreaker("https://gw", CooldownPolicy(9, 30)))
    with pytest.raises(GatewayError, match=r"gateway 503: busy \(after 2 attempts\)") as ei:
        await flaky.complete(REQ)
    assert ei.value.status_code == 503 and ei.value.body == "busy"
    r = await Cascade([Tier("gw", flaky), Tier("backup", ScriptedProvider([OK]))]).run("q")
    assert r.content == "fine" and r.attempts[0].error_kind == "upstream"


def test_a_retry_after_that_is_no_finite_number_is_ignored() -> None:
    """'Retry-After: nan' parsed as nan, and the retry slept out the whole deadline (120 s by default)."""
    import httpx

    from edgecascade.providers._common import retry_after

    for value in ("nan", "inf", "-inf", "NaN"):
        assert retry_after(httpx.Headers({"Retry-After": value})) is None
        assert retry_after(httpx.Headers({"Retry-After-Ms": value})) is None
    assert retry_after(httpx.Headers({"Retry-After-Ms": "nan", "Retry-After": "2"})) == 2.0


def test_every_provider_marks_a_connection_never_made_as_not_billed() -> None:
    """Ollama's timeout mapping had no `sent = False` for a connect timeout, unlike the others."""
    import httpx

    from edgecascade.errors import may_be_billed
    from edgecascade.providers.ollama import _map_error

    req = httpx.Request("POST", "http://127.0.0.1:11434/api/chat")
    never = _map_error(httpx.ConnectTimeout("timed out", request=req), host="http://127.0.0.1:11434", model="m")
    late = _map_error(httpx.ReadTimeout("timed out", request=req), host="http://127.0.0.1:11434", model="m")
    assert isinstance(never, ProviderTimeoutError) and not never.sent and not may_be_billed(never)
    assert isinstance(late, ProviderTimeoutError) and late.sent and may_be_billed(late)
