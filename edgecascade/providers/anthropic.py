"""Claude models through Anthropic's Messages API (``POST /v1/messages``), spoken with plain httpx.

Why no ``anthropic`` SDK: one endpoint, one JSON shape and one SSE stream are all a cascade tier needs,
and httpx is already a dependency; the SDK would add its own retries (a wrapper elsewhere retries) and
its own exception tree (which we would translate anyway).

The Messages API returns no logprobs, so ``Completion.logprobs`` is always None: a cascade tier on
Claude is accepted or escalated on its validators (format, length, finish reason, ...) alone, never on
a confidence score. That is usually the right place for it -- the last, strongest tier.

Choices, each for a reason:

- **Messages are reshaped for the API**: system messages go to the top-level ``system`` field (several
  joined by a blank line), and consecutive turns of the same role are merged, because the API rejects
  a ``system`` role in ``messages`` and requires user/assistant turns to alternate.
- **Every failure is translated in one place** (:meth:`AnthropicProvider._error`): HTTP statuses, the
  ``{"type": "error", "error": {type, message}}`` body, an ``error`` event mid-stream, transport errors
  and bodies that are not the documented JSON, so the retrying wrapper can tell a bad key (never
  retried) from a 529 overload (retried).
- **The API key lives only in the ``x-api-key`` header of each request.** It is not in the URL, the
  repr, log lines or exception text; errors are raised outside the ``except`` block that caught
  httpx's exception (so not even ``__context__`` leads back to the request that carries the header),
  and a server message that echoes the key has it redacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import (
    AuthenticationError,
    ContextLengthError,
    MalformedResponseError,
    PoolTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitedError,
    UnknownModelError,
    UpstreamError,
)
from ..types import Completion, Delta, Message, Request, Timings, Usage
from ._common import (
    DeltaStream,
    LoopClients,
    Secret,
    before_stop,
    checked_key,
    checked_url,
    endpoint,
    finish_reason,
    retry_after,
    safe_url,
    shorten_and_redact,
    sse_events,
    sse_lines,
    stop_prefix,
    token_count,
)
from .base import Capabilities, Timeouts

log = logging.getLogger(__name__)

_DEFAULT_TIMEOUTS = Timeouts()
# an `error` event mid-stream has a type but no HTTP status: the status that type comes with
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
# what reading a body of the wrong shape raises (JSON that does not parse, a field of the wrong type)
_MALFORMED: tuple[type[Exception], ...] = (ValueError, AttributeError, TypeError, KeyError)
_CAUGHT: tuple[type[Exception], ...] = (httpx.HTTPError, *_MALFORMED)  # translated by _error
_TOO_LONG_RE = re.compile(r"prompt is too long:\s*(\d+)\s*tokens\s*>\s*(\d+)", re.IGNORECASE)
_EXCEEDS_RE = re.compile(r"exceed context limit:\s*(\d+)\s*\+\s*(\d+)\s*>\s*(\d+)")


@dataclass(frozen=True)
class _ApiFailure:
    """An error the API reported (HTTP status and/or its ``error`` object), before translation."""

    status: int | None
    type: str
    message: str
    retry_after: float | None = None
    location: str = ""  # where a redirect points


def _failure_from_error_object(err: Any, status: int | None) -> _ApiFailure:
    if isinstance(err, dict):
        etype, message = str(err.get("type") or ""), str(err.get("message") or "")
    else:
        etype, message = "", str(err or "")
    if status is None:
        status = _TYPE_STATUS.get(etype)
    return _ApiFailure(status, etype, message)


def _failure_from_response(resp: httpx.Response) -> _ApiFailure:
    """The documented error body ``{"type": "error", "error": {"type", "message"}}``, or its raw text."""
    try:
        payload = resp.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "error" in payload:
        f = _failure_from_error_object(payload["error"], resp.status_code)
    else:
        f = _ApiFailure(resp.status_code, "", resp.text.strip())
    return _ApiFailure(f.status, f.type, f.message, retry_after(resp.headers), resp.headers.get("location", ""))


def split_messages(messages: list[Message]) -> tuple[str | None, list[dict[str, str]]]:
    """(top-level system text, alternating user/assistant turns) as the Messages API wants them."""
    system = [m.content for m in messages if m.role == "system"]
    turns: list[dict[str, str]] = []
    for m in messages:
        if m.role == "system":
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"] += "\n\n" + m.content
        else:
            turns.append({"role": m.role, "content": m.content})
    return ("\n\n".join(system) if system else None), turns


#: The Deltas of one streamed answer; after the last one, ``usage`` and ``finish_reason`` are set (the token
#: counts arrive in ``message_start`` and ``message_delta``, which a Delta has no room for). No logprobs.
AnthropicStream = DeltaStream


def _local_stops(request: Request) -> list[str]:
    """The stop strings cut here rather than sent: the Messages API refuses a stop sequence of
    whitespace alone ("\\n" is a common one) with a 400, which had failed every such query at this
    tier. The answer is cut at the earliest, as the API cuts at its own; what was generated past it
    is still counted in the usage (it was billed)."""
    return [stop for stop in request.stop if stop and not stop.strip()]


def _usage(usage: Mapping[str, Any], completion_tokens: int, reported: bool) -> Usage:
    """Token counts from Anthropic's ``usage``: its ``input_tokens`` leaves out the prompt tokens read
    from the prompt cache (``cache_read_input_tokens``) and written to it (``cache_creation_input_tokens``),
    so the prompt is the sum of the three, and the cached ones are those read. (A cache write is billed
    above the input price; it is counted at the input price here, so a cost with writes reads low.)"""
    read = token_count(usage.get("cache_read_input_tokens"))
    written = token_count(usage.get("cache_creation_input_tokens"))
    return Usage(token_count(usage.get("input_tokens")) + read + written, completion_tokens, reported,
                 cached_prompt_tokens=read)


class AnthropicProvider:
    """A Claude model over the Messages API. No logprobs: the cascade judges its answers by validators alone.

    The key is ``api_key``; this class never reads the environment (``build_provider`` looks the key up in
    the variable the tier names). ``api_key_env`` only names that variable, so an error can say what to set.
    A missing key is reported as AuthenticationError on the first call, not at construction, so a config
    naming an unused Claude tier still loads. Pass ``client`` to share an ``httpx.AsyncClient`` (it is then
    not closed by :meth:`aclose`); otherwise one is created on first use, and :meth:`aclose` closes it (the
    next call creates a fresh one). ``timeouts`` apply to every request either way.
    """

    capabilities = Capabilities(logprobs=False, streaming=True, max_temperature=1.0)

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = "ANTHROPIC_API_KEY",
        base_url: str = "https://api.anthropic.com",
        timeouts: Timeouts = _DEFAULT_TIMEOUTS,
        client: httpx.AsyncClient | None = None,
        version: str = "2023-06-01",
    ) -> None:
        base_url = checked_url(base_url, "https://api.anthropic.com")
        self.model = model
        self.api_key_env = api_key_env
        self.base_url = base_url
        self._safe_url = safe_url(self.base_url)  # what messages and the repr show: no userinfo, no query
        self.version = version
        self.timeouts = timeouts
        api_key = checked_key(api_key, "the api_key given", "pass the key alone")
        self._key = Secret(api_key) if api_key else None
        self._url = endpoint(self.base_url, "/v1/messages")
        self._timeout = timeouts.to_httpx()
        self._clients: LoopClients[httpx.AsyncClient] = LoopClients(client)

    def __repr__(self) -> str:
        key = "set" if self._key else "missing"
        return f"AnthropicProvider(model={self.model!r}, base_url={self._safe_url!r}, api_key=<{key}>)"

    @property
    def _client(self) -> httpx.AsyncClient | None:
        return self._clients.current

    @_client.setter
    def _client(self, client: httpx.AsyncClient | None) -> None:  # a client of the caller's (tests inject one)
        self._clients.given = client

    def _get_client(self) -> httpx.AsyncClient:
        """The client, created on first use in each event loop; after :meth:`aclose`, a fresh one (e.g.
        in the next ``asyncio.run``)."""
        return self._clients.get(lambda: httpx.AsyncClient(timeout=self._timeout))

    @property
    def _key_hint(self) -> str:
        return f"check ${self.api_key_env}" if self.api_key_env else "check the api_key given to this tier"

    # --- requests ------------------------------------------------------------------------------

    def _headers(self, stream: bool) -> dict[str, str]:
        if self._key is None:
            where = f"set ${self.api_key_env}" if self.api_key_env else "pass api_key="
            raise AuthenticationError(f"no Anthropic API key for {self.model}: {where}")
        return {
            "x-api-key": self._key.reveal(),
            "anthropic-version": self.version,
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }

    def _body(self, request: Request, stream: bool) -> dict[str, Any]:
        if request.temperature > self.capabilities.max_temperature:  # refused before it is sent: a 400 each time
            raise UpstreamError(f"{self._safe_url}: the Messages API accepts a temperature of 0 to 1, and this request "
                                f"asks {request.temperature:g}: lower the request's or the config's temperature",
                                status_code=400)
        system, turns = split_messages(request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": turns,
            "temperature": request.temperature,
        }
        if system is not None:
            body["system"] = system
        if sent := [stop for stop in request.stop if stop.strip()]:
            body["stop_sequences"] = sent
        if stream:
            body["stream"] = True
        return body

    async def complete(self, request: Request) -> Completion:
        body = self._body(request, stream=False)  # the headers stay out of locals: they hold the key
        t0 = time.perf_counter()
        failure: _ApiFailure | BaseException
        try:
            resp = await self._get_client().post(self._url, json=body, headers=self._headers(stream=False),
                                                 timeout=self._timeout)
            total_s = time.perf_counter() - t0
            log.debug("anthropic %s: HTTP %d in %.3f s", self.model, resp.status_code, total_s)
            if resp.status_code == 200:
                if resp.headers.get("content-type", "").startswith("text/html"):
                    # what a wrong base_url (a proxy's login page) serves every time: not retried
                    raise MalformedResponseError(
                        f"{self._safe_url} answered {self.model} with a web page, not the Messages API: check "
                        "that base_url points at the Anthropic API", retryable=False)
                return self._completion(resp.json(), total_s, _local_stops(request))
            failure = _failure_from_response(resp)
        except _CAUGHT as e:
            failure = e
        raise self._error(failure) from None

    def _completion(self, payload: Any, total_s: float, local_stops: list[str]) -> Completion:
        if not isinstance(payload, dict) or payload.get("type") != "message" \
                or not isinstance(content := payload.get("content"), list):
            raise self._error(ValueError("the body is not a `message` object with a `content` list"))
        text = "".join(str(b.get("text") or "") for b in content if isinstance(b, dict) and b.get("type") == "text")
        text, cut = before_stop(text, local_stops)
        reported = isinstance(payload.get("usage"), dict)
        usage: dict[str, Any] = u if isinstance(u := payload.get("usage"), dict) else {}
        return Completion(
            text=text,
            model=self.model,
            finish_reason="stop" if cut else finish_reason(payload.get("stop_reason")),
            usage=_usage(usage, token_count(usage.get("output_tokens")), reported),
            timings=Timings(total_s=total_s),
            logprobs=None,
        )

    def stream(self, request: Request) -> AnthropicStream:
        """Yield text as ``content_block_delta`` events arrive; the last Delta carries the finish reason."""
        return DeltaStream(lambda out: self._stream_deltas(request, out))

    async def _stream_deltas(self, request: Request, out: DeltaStream) -> AsyncGenerator[Delta, None]:
        body = self._body(request, stream=True)
        local = _local_stops(request)
        held, cut = "", False  # text not yet yielded (it may begin a local stop), and whether one was met
        answering = False  # the API accepted the request and its answer is being read
        failure: _ApiFailure | BaseException | None = None
        completion_tokens = 0
        started_usage: dict[str, Any] = {}
        reported = False  # until message_start carries the usage
        stop_reason: Any = None
        try:
            async with self._get_client().stream("POST", self._url, json=body, headers=self._headers(stream=True),
                                                 timeout=self._timeout) as resp:
                log.debug("anthropic %s: HTTP %d (stream)", self.model, resp.status_code)
                if resp.status_code != 200:
                    await resp.aread()
                    failure = _failure_from_response(resp)
                elif resp.headers.get("content-type", "").startswith("text/html"):
                    # a wrong base_url, as complete() says: it had read as an answer "cut off", retried
                    raise MalformedResponseError(
                        f"{self._safe_url} answered {self.model} with a web page, not the Messages API: check "
                        "that base_url points at the Anthropic API", retryable=False)
                else:
                    answering = True
                    # an event still open when the body ends is dropped: no message_stop, so "cut off" below
                    events = sse_events(sse_lines(resp.aiter_text()), flush_unterminated=False)
                    async with contextlib.aclosing(events):
                        async for event, data in events:
                            payload = json.loads(data)
                            if not isinstance(payload, dict):
                                raise ValueError(f"the data of a {event!r} event is not a JSON object")
                            kind = payload.get("type") or event
                            piece = ""
                            if kind == "content_block_delta":
                                delta = payload.get("delta") or {}
                                if delta.get("type") == "text_delta" and delta.get("text"):
                                    piece = str(delta["text"])
                            elif kind == "content_block_start":
                                block = payload.get("content_block") or {}
                                if block.get("type") == "text" and block.get("text"):
                                    piece = str(block["text"])
                            if piece and not cut:  # past a local stop the rest is read for its usage only
                                held, cut = before_stop(held + piece, local)
                                safe = held if cut else held[:len(held) - stop_prefix(held, local)]
                                held = held[len(safe):]
                                if safe:
                                    yield Delta(safe)
                            if kind == "message_start":
                                usage = (payload.get("message") or {}).get("usage") or {}
                                reported = "input_tokens" in usage
                                started_usage = usage
                                completion_tokens = token_count(usage.get("output_tokens"))
                            elif kind == "message_delta":
                                stop_reason = (payload.get("delta") or {}).get("stop_reason", stop_reason)
                                usage = payload.get("usage") or {}
                                if "output_tokens" in usage:
                                    completion_tokens = token_count(usage.get("output_tokens"))
                            elif kind == "message_stop":
                                if held:  # the start of a local stop that never came: answer text
                                    yield Delta(held)
                                out.usage = _usage(started_usage, completion_tokens, reported)
                                out.finish_reason = "stop" if cut else finish_reason(stop_reason)
                                yield Delta("", out.finish_reason)
                                return
                            elif kind == "error":
                                failure = _failure_from_error_object(payload.get("error"), None)
                                break
                            # ping, content_block_stop and event types added later carry no text: skipped
        except _CAUGHT as e:
            failure = e
            if answering and isinstance(e, httpx.TransportError) and not isinstance(e, httpx.TimeoutException):
                failure = MalformedResponseError(f"the Anthropic API stream for {self.model} was cut off "
                                                 f"({self._redact(f'{type(e).__name__}: {e}')}): the connection "
                                                 "dropped mid-answer; try again")
        if failure is None:
            failure = MalformedResponseError(
                f"the Anthropic API stream for {self.model} ended without message_stop: the answer was cut off"
            )
        raise self._error(failure) from None

    # --- errors ----------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        """A message fit to quote: the key replaced by ``[redacted]`` BEFORE the text is cut to length (a key
        echoed across the cut must not leave its prefix behind), the base URL without userinfo or query."""
        return shorten_and_redact(text, self._key.reveal() if self._key else None, self.base_url)

    def _error(self, failure: _ApiFailure | BaseException) -> ProviderError:
        """Translate any failure of one call into the edgecascade error tree (the only place that does)."""
        err = self._translate(failure)
        log.debug("anthropic %s failed: %s: %s", self.model, type(err).__name__, err)
        return err

    def _translate(self, failure: _ApiFailure | BaseException) -> ProviderError:
        if isinstance(failure, ProviderError):
            return failure
        if isinstance(failure, BaseException):
            detail = self._redact(f"{type(failure).__name__}: {failure}")
            if isinstance(failure, httpx.PoolTimeout):  # never sent: not billed, not the API's fault
                return PoolTimeoutError(f"no free connection to the Anthropic API for {self.model} in time "
                                        f"({detail}): too many calls in flight at once; lower the concurrency")
            if isinstance(failure, httpx.ConnectTimeout):
                never = ProviderTimeoutError(f"could not connect to the Anthropic API at {self._safe_url} in time "
                                             f"({detail}): check the network and base_url, or raise the connect "
                                             "timeout")
                never.sent = False  # no connection: nothing to bill
                return never
            if isinstance(failure, httpx.TimeoutException):
                return ProviderTimeoutError(f"the Anthropic API did not answer {self.model} in time ({detail}): it is "
                                            "slow or overloaded; raise this tier's read timeout or try again later")
            if isinstance(failure, (httpx.ConnectError, httpx.ProxyError)):  # nothing sent
                return ProviderConnectionError(f"cannot reach the Anthropic API at {self._safe_url} ({detail}): check "
                                               "the network and base_url")
            if isinstance(failure, httpx.RemoteProtocolError):
                return MalformedResponseError(f"the Anthropic API response for {self.model} was cut off ({detail}): "
                                              "the connection dropped; try again")
            if isinstance(failure, httpx.TransportError):  # sent, then the connection failed: may be billed
                return UpstreamError(f"the connection to the Anthropic API failed while it answered {self.model} "
                                     f"({detail}): the server or a proxy closed it; try again")
            if isinstance(failure, _MALFORMED):
                return MalformedResponseError(
                    f"the Anthropic API answered outside the documented Messages format ({detail})"
                )
            return UpstreamError(f"the Anthropic API call failed ({detail})")
        status, etype, msg = failure.status, failure.type, self._redact(failure.message)
        said = f"{status or 'mid-stream'} {etype}: {msg}".replace(" : ", ": ").strip()
        if status is not None and 300 <= status < 400:  # not followed: it could take the key elsewhere
            to = f" to {safe_url(failure.location)}" if failure.location else ""
            return UpstreamError(f"{self._safe_url} answered HTTP {status}, a redirect{to}: set base_url to the "
                                 "address it redirects to (redirects are not followed)", status_code=status)
        if status in (401, 403):
            return AuthenticationError(f"the Anthropic API refused the request ({said}): {self._key_hint}")
        if status == 402 or etype == "billing_error":
            return QuotaExceededError(f"the Anthropic API refused the request: the account behind this key is out of "
                                      f"credits or past its spend limit ({said}): add credits or raise the limit in "
                                      "the Anthropic console, or use another tier")
        if status == 404:
            hint = ""
            if urlsplit(self.base_url).path.rstrip("/").endswith("/v1"):
                # the path is base_url + /v1/messages: a base_url ending in /v1 asks for /v1/v1/messages
                hint = (f": or base_url is wrong, as it ends in /v1 ({self._safe_url}) and /v1/messages is added to "
                        "it; give the API root without /v1 (e.g. https://api.anthropic.com)")
            return UnknownModelError(f"the Anthropic API does not serve model {self.model!r} ({said}){hint}")
        if status == 429:
            wait = (f"retry after {failure.retry_after:g} s" if failure.retry_after is not None
                    else "slow down and retry later")
            return RateLimitedError(f"the Anthropic API is rate limiting requests ({said}): {wait}",
                                    retry_after=failure.retry_after)
        if (status == 400 and "prompt is too long" in msg.lower()) or status == 413:
            m = _TOO_LONG_RE.search(msg)
            return ContextLengthError(
                f"the prompt does not fit {self.model}'s context window ({said}): shorten it",
                prompt_tokens=int(m.group(1)) if m else None, context=int(m.group(2)) if m else None,
            )
        m = _EXCEEDS_RE.search(msg) if status == 400 else None
        if m:  # "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000"
            return ContextLengthError(
                f"the prompt and max_tokens do not fit {self.model}'s context window ({said}): shorten the prompt "
                "or lower max_tokens", prompt_tokens=int(m.group(1)), context=int(m.group(3)))
        fix = "; try again later" if status is None or status >= 500 else ""
        return UpstreamError(f"the Anthropic API failed ({said}){fix}", status_code=status,
                             retry_after=failure.retry_after if status is not None and status >= 500 else None)

    async def aclose(self) -> None:
        """Close the client if this provider created it (one passed in belongs to the caller); the provider
        stays usable: the next call creates a fresh client."""
        client = self._clients.pop_owned()
        if client is not None:
            await client.aclose()
