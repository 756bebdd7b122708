"""Fault injection against a loopback OpenAI-compatible server: every fault gives the documented
retry / cooldown / fallback behaviour, the right reason in the Result, and no lost request."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from edgecascade import AcceptRule, Cascade, ScriptedProvider, ScriptedReply, Tier
from edgecascade.providers.base import Capabilities, Timeouts
from edgecascade.providers.openai_compat import OpenAICompatProvider
from edgecascade.providers.resilient import CircuitBreaker, CooldownPolicy, ResilientProvider, RetryPolicy
from tests.fakes.openai_faults import ANSWER, FaultServer

LOCAL = ScriptedReply("maybe Lyon", logprob=-1.5)  # the local draft is always rejected (min_confidence 0.9)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    s = FaultServer().start()
    yield s
    s.stop()


def cascade(base_url: str, *, attempts: int = 3, read: float = 1.0, total: float = 10.0, failures: int = 3,
            seconds: float = 30.0) -> Cascade:
    remote = OpenAICompatProvider(base_url, "fake-model", api_key="sk-test", timeouts=Timeouts(1.0, read, total),
                                  capabilities=Capabilities(logprobs=True, streaming=True))
    wrapped = ResilientProvider(remote, endpoint=base_url, retry=RetryPolicy(attempts, 0.05, 0.1),
                                timeouts=Timeouts(1.0, read, total),
                                breaker=CircuitBreaker(base_url, CooldownPolicy(failures, seconds)))
    return Cascade([Tier("local", ScriptedProvider([LOCAL], model="local"), AcceptRule(min_confidence=0.9)),
                    Tier("remote", wrapped, AcceptRule(min_confidence=0.5))])


async def test_ok_with_logprobs_over_the_wire(server: FaultServer) -> None:
    r = await cascade(server.base_url).run("Capital of France?")
    assert r.tier == "remote" and r.content == "".join(ANSWER) and r.accepted
    assert r.confidence is not None and r.confidence > 0.9
    assert server.requests[0]["logprobs"] is True and server.headers[0]["Authorization"] == "Bearer sk-test"


async def test_429_retry_after_is_honoured_then_answered(server: FaultServer) -> None:
    server.script = ["429:1", "ok"]
    t0 = time.monotonic()
    r = await cascade(server.base_url).run("q")
    assert time.monotonic() - t0 >= 1.0  # waited as told
    assert r.tier == "remote" and r.accepted and len(server.requests) == 2


async def test_500_is_retried_then_answered(server: FaultServer) -> None:
    server.script = ["500", "500", "ok"]
    r = await cascade(server.base_url).run("q")
    assert r.tier == "remote" and r.accepted and len(server.requests) == 3


async def test_persistent_500_falls_back_to_the_local_answer_with_the_reason(server: FaultServer) -> None:
    server.script = ["500"]
    r = await cascade(server.base_url, attempts=2).run("q")
    assert r.content == LOCAL.text and r.accepted is False and r.tier == "local"  # nothing lost
    assert r.reason.startswith("tier 'remote' failed (upstream)")
    assert "500" in r.attempts[1].reason and "after 2 attempts" in r.attempts[1].reason
    assert len(server.requests) == 2


async def test_hang_past_the_read_timeout_is_a_timeout_then_retried(server: FaultServer) -> None:
    server.script = ["hang:2", "ok"]
    r = await cascade(server.base_url, read=0.5).run("q")
    assert r.tier == "remote" and r.accepted and len(server.requests) == 2


async def test_hang_past_the_total_deadline_fails_over(server: FaultServer) -> None:
    server.script = ["hang:3"]
    t0 = time.monotonic()
    r = await cascade(server.base_url, read=5.0, total=1.0).run("q")
    assert time.monotonic() - t0 < 2.5
    assert r.tier == "local" and r.attempts[1].error_kind == "timeout"
    assert "total deadline" in r.attempts[1].reason


async def test_malformed_json_is_retried_and_named(server: FaultServer) -> None:
    server.script = ["malformed"]
    r = await cascade(server.base_url, attempts=2).run("q")
    assert r.attempts[1].error_kind == "malformed" and r.tier == "local" and len(server.requests) == 2


async def test_a_web_page_is_not_retried_and_says_to_check_base_url(server: FaultServer) -> None:
    """A wrong base_url serves the same page on every try: one request, and the reason says why."""
    server.script = ["page"]
    r = await cascade(server.base_url, attempts=3).run("q")
    assert len(server.requests) == 1 and r.tier == "local"
    assert r.attempts[1].error_kind == "malformed" and "a web page" in r.attempts[1].reason
    assert "base_url" in r.attempts[1].reason


async def test_body_cut_mid_way_is_an_error_not_a_crash(server: FaultServer) -> None:
    server.script = ["cut", "ok"]
    r = await cascade(server.base_url).run("q")
    assert r.tier == "remote" and r.accepted and len(server.requests) == 2


async def test_stream_cut_mid_way_raises_a_clear_error(server: FaultServer) -> None:
    from edgecascade.errors import MalformedResponseError
    from edgecascade.types import Message, Request

    server.script = ["cut"]
    p = OpenAICompatProvider(server.base_url, "fake-model", capabilities=Capabilities(streaming=True))
    got = []
    with pytest.raises(MalformedResponseError):
        async for d in p.stream(Request([Message("user", "q")])):
            got.append(d.text)
    assert "".join(got) == "".join(ANSWER[:2])  # what arrived was delivered before the error
    await p.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_then_cooldown_skips_the_dead_server_fast() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    c = cascade(url, attempts=2, failures=2, seconds=60)
    for _ in range(2):
        r = await c.run("q")
        assert r.tier == "local" and r.attempts[1].error_kind == "connection"
    r = await c.run("q")
    assert r.attempts[1].error_kind == "cooldown"  # skipped, no attempt at the dead server
    assert r.content == LOCAL.text and "cooldown" in r.reason


def test_run_sync_from_two_threads_on_one_cascade(server: FaultServer) -> None:
    """Each run_sync runs its own event loop, and the provider had one client for all of them: the
    second thread used the first one's client, and closing it at its end broke the first thread's
    request in flight, which then waited out its read timeout and failed, though the server had
    answered."""
    import threading

    server.script = ["hang:2.0", "ok"]  # the first request is slow, the second fast
    remote = OpenAICompatProvider(server.base_url, "fake-model", api_key="sk-test", timeouts=Timeouts(1.0, 5.0, 10.0),
                                  capabilities=Capabilities(logprobs=True, streaming=True))
    one = Cascade([Tier("remote", remote)])
    results: dict[str, object] = {}

    def ask(name: str) -> None:
        t0 = time.monotonic()
        try:
            content = one.run_sync("Capital of France?").content
            results[name] = (content, time.monotonic() - t0, time.monotonic())
        except Exception as e:  # noqa: BLE001 - the test reports it
            results[name] = e

    slow = threading.Thread(target=ask, args=("slow",))
    slow.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    fast = threading.Thread(target=ask, args=("fast",))
    fast.start()
    fast.join(10)
    slow.join(10)
    answer = "".join(ANSWER)
    fast_content, _, fast_end = results["fast"]  # type: ignore[misc]
    content, took, slow_end = results["slow"]  # type: ignore[misc]
    assert fast_content == answer and fast_end < slow_end  # the fast one did not wait for the slow one
    assert content == answer and took < 4.5  # answered when the server answered, not at the 5 s read timeout
