"""Retries, a total deadline and a per-endpoint cooldown around any provider.

Backends stay single-shot and only translate their failures into :mod:`edgecascade.errors`; this
wrapper decides what to do about them, in one place:

- **Retry** only what can succeed on a second try (timeouts, refused connections, 5xx, malformed
  or cut responses, 429), never what cannot (bad key, unknown model, a prompt too long, other 4xx).
  A 429's ``Retry-After`` is honoured; otherwise backoff is exponential with jitter (tenacity).
- **Deadline**: all attempts together fit in ``Timeouts.total``; a Retry-After longer than what is
  left is not waited for: the tier fails now and the cascade moves on.
- **Cooldown** (a circuit breaker shared by every tier that uses the same endpoint): after
  ``failures`` consecutive failed calls the endpoint is skipped at once (CooldownError) for
  ``seconds``; then one probe call is let through, and its outcome closes or re-opens the breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from ..config import CooldownConfig, RetryConfig
from ..errors import (
    AuthenticationError,
    ContextLengthError,
    CooldownError,
    MalformedResponseError,
    PoolTimeoutError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UpstreamError,
    may_be_billed,
)
from ..types import Completion, Delta, Request
from ._common import DeltaStream
from .base import Capabilities, Provider, Timeouts

_RETRY, _COOLDOWN = RetryConfig(), CooldownConfig()  # the documented defaults, in one place


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = _RETRY.attempts  # calls in all, the first included
    backoff_s: float = _RETRY.backoff_s  # first wait; doubles each time, with jitter
    max_backoff_s: float = _RETRY.max_backoff_s


@dataclass(frozen=True)
class CooldownPolicy:
    failures: int = _COOLDOWN.failures  # consecutive failed calls that open the breaker
    seconds: float = _COOLDOWN.seconds  # how long the endpoint is skipped before a probe


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (AuthenticationError, UnknownModelError, ContextLengthError, CooldownError)):
        return False
    if isinstance(exc, MalformedResponseError) and not exc.retryable:
        return False
    if isinstance(exc, UpstreamError):
        code = exc.status_code
        return code is None or code >= 500 or code in (408, 409)
    return isinstance(exc, (ProviderTimeoutError, RateLimitedError))


def _counts_against_endpoint(exc: BaseException) -> bool:
    """Only failures of the endpoint itself (unreachable, timing out, 5xx, garbled answers) count.

    A bad key, an unknown model name, a rate limit on one model or a prompt that is too long are
    about one tier's request: they must reach the user with their own message, not open the
    breaker for every tier that shares the server. Nor does a full connection pool here: a healthy
    server under a burst of calls from this process is not down.
    """
    if isinstance(exc, PoolTimeoutError):
        return False
    if isinstance(exc, UpstreamError):
        return exc.status_code is None or exc.status_code >= 500
    return isinstance(exc, ProviderTimeoutError)


@dataclass
class CircuitBreaker:
    endpoint: str
    policy: CooldownPolicy = field(default_factory=CooldownPolicy)
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _probing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before_call(self) -> bool:
        """Raise CooldownError while the endpoint is cooling down; let one probe through after.
        Returns whether this call is that probe."""
        with self._lock:
            if self.opened_at is None:
                return False
            left = self.opened_at + self.policy.seconds - self.clock()
            if left > 0 or self._probing:
                raise CooldownError(
                    f"{self.endpoint} failed {self.failures} times in a row and is skipped for "
                    f"{max(left, 0):.0f} s more (cooldown {self.policy.seconds:g} s); it will be probed again then"
                )
            self._probing = True  # half-open: this call is the probe
            return True

    def release_probe(self) -> None:
        """The probe ended without an outcome (cancelled, an unmapped error): let another probe try."""
        with self._lock:
            self._probing = False

    def record(self, ok: bool) -> None:
        with self._lock:
            self._probing = False
            if ok:
                self.failures, self.opened_at = 0, None
                return
            self.failures += 1
            if self.failures >= self.policy.failures or self.opened_at is not None:
                self.opened_at = self.clock()

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(endpoint: str, policy: CooldownPolicy) -> CircuitBreaker:
    """The process-wide breaker of an endpoint (tiers sharing a server share its health).

    Keyed by endpoint and policy, so a tier's own [tiers.cooldown] settings always apply.
    """
    key = f"{endpoint}|{policy.failures}|{policy.seconds}"
    with _BREAKERS_LOCK:
        b = _BREAKERS.get(key)
        if b is None:
            b = _BREAKERS[key] = CircuitBreaker(endpoint, policy)
        return b


def reset_breakers() -> None:
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


class ResilientProvider:
    """Wraps a provider with retries, a total deadline and its endpoint's circuit breaker."""

    def __init__(self, inner: Provider, *, endpoint: str, retry: RetryPolicy | None = None,
                 cooldown: CooldownPolicy | None = None, timeouts: Timeouts | None = None,
                 breaker: CircuitBreaker | None = None):
        self.inner = inner
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.breaker = breaker or breaker_for(endpoint, cooldown or CooldownPolicy())

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    @property
    def identity(self) -> str:
        return str(getattr(self.inner, "identity", "") or f"{self.endpoint}:{self.inner.model}")

    def __repr__(self) -> str:
        return f"ResilientProvider({self.inner!r}, endpoint={self.endpoint!r})"

    def _wait(self, deadline: float, probe: bool) -> Callable[[RetryCallState], float]:
        backoff = wait_exponential(multiplier=self.retry.backoff_s, max=self.retry.max_backoff_s) + wait_random(
            0, self.retry.backoff_s)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            left = deadline - time.monotonic()
            # the server's own Retry-After (a 429, or a 503 / 529 of an overloaded server) over our backoff
            asked = exc.retry_after if isinstance(exc, (RateLimitedError, UpstreamError)) else None
            delay = asked if asked is not None else backoff(state)
            if delay >= left:  # waiting would blow the deadline: give up now, the cascade moves on
                assert exc is not None
                raise exc
            if self.breaker.is_open and not probe:  # other calls found the endpoint down meanwhile: no more
                assert exc is not None               # tries at it (the breaker sheds calls already in flight)
                raise exc
            return delay

        return wait

    async def complete(self, request: Request) -> Completion:
        probe = self.breaker.before_call()
        deadline = time.monotonic() + self.timeouts.total
        tries = billed = 0  # billed: failed calls, retried, that the provider may still bill
        last: ProviderError | None = None  # the last failure of a call (not the deadline's)
        outcome: bool | None = None
        try:
            async with _deadline(self.timeouts.total, self.endpoint):
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception(is_retryable), stop=stop_after_attempt(self.retry.attempts),
                    wait=self._wait(deadline, probe), reraise=True,
                ):
                    with attempt:
                        tries += 1
                        try:
                            result = await self.inner.complete(request)
                        except ProviderError as e:
                            billed += may_be_billed(e)
                            last = e
                            raise
            outcome = True
        except ProviderError as e:
            outcome = not _counts_against_endpoint(e)
            if tries > 1:
                # the error raised says by its kind whether its call may be billed; the calls before it are
                # counted (all of them where the deadline, not a call, ended the tries)
                raise _with_attempts(e, tries, billed - (e is last and may_be_billed(e))) from None
            raise
        finally:
            if outcome is None:  # cancelled (the caller's own timeout, a task.cancel()) mid-tries
                if last is not None and _counts_against_endpoint(last):
                    self.breaker.record(False)  # the endpoint had failed before the cancel: that counts
                elif probe:
                    self.breaker.release_probe()  # a cancelled probe: no verdict, let another probe try
            else:
                self.breaker.record(outcome)
        if billed:  # the answer came after calls that may be billed too: its cost is not all in its usage
            result.earlier_maybe_billed += billed
        return result

    def stream(self, request: Request) -> DeltaStream:
        """The inner provider's stream under the tier's total deadline. Streams are never retried (a
        retry could repeat text already passed on); failures still count for the breaker. After the
        last Delta, ``usage``, ``finish_reason`` and ``logprobs`` are the inner stream's, where it
        keeps them.

        The deadline counts the time spent waiting for the backend, step by step: never the caller's
        own time between Deltas (a timer that cancelled the task would land in the caller's code, and a
        slow reader is not the endpoint's failure)."""
        return DeltaStream(lambda out: self._stream(request, out))

    async def _stream(self, request: Request, out: DeltaStream) -> AsyncGenerator[Delta, None]:
        probe = self.breaker.before_call()
        outcome: bool | None = None
        remaining = self.timeouts.total  # of time waiting for the backend
        steps: Any = None
        try:
            inner = self.inner.stream(request)
            steps = inner.__aiter__()
            while True:
                t0 = time.monotonic()
                try:
                    delta = await asyncio.wait_for(steps.__anext__(), remaining)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise ProviderTimeoutError(f"{self.endpoint} did not finish its answer within the total "
                                               f"deadline of {self.timeouts.total:g} s") from None
                remaining -= time.monotonic() - t0
                if delta.finish_reason is not None:
                    out.finish_reason = delta.finish_reason  # a provider's stream of its own may keep none
                yield delta
            for name in ("usage", "finish_reason", "logprobs"):
                if getattr(inner, name, None) is not None:
                    setattr(out, name, getattr(inner, name))
            outcome = True
        except ProviderError as e:
            outcome = not _counts_against_endpoint(e)
            raise
        finally:
            close = getattr(steps, "aclose", None) if steps is not None else None
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()  # an abandoned stream releases its connection now, not when collected
            if outcome is None:
                if probe:
                    self.breaker.release_probe()  # an abandoned or cancelled probing stream
            else:
                self.breaker.record(outcome)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _with_attempts(e: ProviderError, tries: int, earlier_maybe_billed: int = 0) -> ProviderError:
    """A copy of the error that says how many calls were made, and how many of those before it may be
    billed (the original is left untouched, so a reused exception instance does not grow its message
    each time)."""
    clone = type(e).__new__(type(e))  # not copy.copy: that calls __init__ again, which a subclass's
    clone.__dict__.update(e.__dict__)  # own signature (a user's provider error) may not take
    clone.args = (f"{e.args[0] if e.args else e} (after {tries} attempts)", *e.args[1:])
    clone.earlier_maybe_billed = e.earlier_maybe_billed + earlier_maybe_billed
    return clone


class _deadline:
    """``asyncio.timeout`` for Python 3.10 too: cancel the body after ``seconds`` and raise
    ProviderTimeoutError instead of a bare CancelledError/TimeoutError. A cancellation that is not
    its own (the caller's ``wait_for``, a ``task.cancel()``) goes through, even when it lands in the
    same turn as the deadline: turning it into a tier's timeout would let the cascade go on to the
    next tier, and pay for it, after the caller had given up (Python 3.11+, which counts
    cancellations; 3.10 cannot tell them apart)."""

    def __init__(self, seconds: float, endpoint: str):
        self.seconds, self.endpoint = seconds, endpoint
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._fired = False
        self._cancelling = 0

    async def __aenter__(self) -> None:
        self._task = asyncio.current_task()
        if self._task is not None and hasattr(self._task, "cancelling"):
            self._cancelling = self._task.cancelling()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.seconds, self._fire)

    def _fire(self) -> None:
        self._fired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._handle is not None:
            self._handle.cancel()
        if self._fired and exc_type is asyncio.CancelledError:
            # someone else cancelled too (3.11+ counts it): theirs wins
            if self._task is not None and hasattr(self._task, "uncancel") and self._task.uncancel() > self._cancelling:
                return False
            raise ProviderTimeoutError(
                f"{self.endpoint} gave no answer within the total deadline of {self.seconds:g} s"
            ) from None
        return False
