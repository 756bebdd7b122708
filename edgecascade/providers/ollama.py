"""Models served by an Ollama server (``ollama serve``), through the official ``ollama`` client.

Why the official client rather than raw httpx: it tracks Ollama's request schema (options, keep_alive,
logprobs) as the server evolves, and users who already run Ollama have it installed. Its failures come
out in three shapes -- ``ollama.ResponseError`` (HTTP status + the server's ``{"error": ...}`` text),
the builtin ``ConnectionError`` (it converts ``httpx.ConnectError``, but only outside streaming) and raw
httpx / json / pydantic exceptions for everything else -- so :func:`_map_error` translates all of them
into :mod:`edgecascade.errors` in one place. Nothing here retries: a wrapper elsewhere does.

Logprobs need Ollama >= 0.12.11 (``logprobs`` / ``top_logprobs`` on ``/api/chat``); an older server
silently ignores the flag, and then ``Completion.logprobs`` is None and the cascade decides on its
validators alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import httpx
import numpy as np
import pydantic

from ..errors import (
    AuthenticationError,
    ConfigError,
    ContextLengthError,
    MalformedResponseError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UpstreamError,
)
from ..types import Completion, Delta, FinishReason, Request, Timings, TokenLogprobs, Usage
from .base import Capabilities, Timeouts

try:
    import ollama
except ImportError:  # pragma: no cover - depends on the environment
    ollama = None  # type: ignore[assignment]

INSTALL_HINT = "the `ollama` client is not installed: run `pip install 'edgecascade[ollama]'`"

_DEFAULT_TIMEOUTS = Timeouts()
_NS = 1e-9  # Ollama reports every duration in nanoseconds
_CONTEXT_WORDING = ("context length", "context window", "context size", "exceeds the context", "too long")


def _httpx_timeout(t: Timeouts) -> httpx.Timeout:
    """Per-attempt deadlines; ``total`` is the retrying wrapper's business, not one attempt's."""
    return httpx.Timeout(connect=t.connect, read=t.read, write=t.read, pool=t.connect)


def _finish(done_reason: str | None) -> FinishReason:
    return "length" if done_reason == "length" else "stop"


def _logprobs(entries: Sequence[Any] | None) -> TokenLogprobs | None:
    """Ollama's per-token ``logprobs`` list as aligned arrays, alternatives sorted best-first.

    The server may return fewer alternatives than asked at some positions; rows are cut to the
    shortest so ``top_logprobs`` stays a dense (n, k) array rather than padding with fake values
    that would skew entropy-style features.
    """
    if entries is None:
        return None
    tokens: list[str] = []
    lps: list[float] = []
    tops: list[list[tuple[str, float]]] = []
    for e in entries:
        tokens.append(str(e.token))
        lps.append(float(e.logprob))
        alts = [(str(a.token), float(a.logprob)) for a in (e.top_logprobs or [])]
        alts.sort(key=lambda a: -a[1])
        tops.append(alts)
    n = len(tokens)
    k = min((len(t) for t in tops), default=0)
    return TokenLogprobs(
        tokens=tokens,
        logprobs=np.asarray(lps, dtype=np.float64),
        top_tokens=[[tok for tok, _ in row[:k]] for row in tops],
        top_logprobs=np.asarray([[lp for _, lp in row[:k]] for row in tops], dtype=np.float64).reshape(n, k),
    )


def _first_token_s(resp: Any, total_s: float) -> float | None:
    """Time to the first token, excluding model load, from the server's own durations.

    ``prompt_eval_duration`` is the prefill the first token waits on. It is only trusted when the
    server's load + prefill fit inside the wall time this client measured (a clock or proxy that says
    otherwise gives None rather than a negative decode time).
    """
    pe = resp.prompt_eval_duration
    if pe is None or pe < 0:
        return None
    first = pe * _NS
    if first + (resp.load_duration or 0) * _NS > total_s:
        return None
    return first


def _map_error(e: BaseException, *, host: str, model: str) -> ProviderError:
    """Every failure of the ollama client, translated once (see the module docstring)."""
    if ollama is not None and isinstance(e, ollama.ResponseError):
        status, text = e.status_code, str(e.error)
        low = text.lower()
        if (status == 404 or "not found" in low) and "model" in low:
            return UnknownModelError(
                f"Ollama at {host} does not have model {model!r} ({text}): run `ollama pull {model}`"
            )
        if status == 404:  # a bare "404 page not found": no /api/chat there at all
            return UpstreamError(f"{host} has no /api/chat ({text}): is it an Ollama server?", status_code=404)
        if status in (401, 403):
            return AuthenticationError(
                f"Ollama at {host} refused the request ({status}: {text}): check $OLLAMA_API_KEY for a remote host"
            )
        if status == 429:
            return RateLimitedError(f"Ollama at {host} is rate limiting requests: {text}")
        if any(w in low for w in _CONTEXT_WORDING) and status in (400, 413, 500, -1):
            return ContextLengthError(
                f"the prompt does not fit {model}'s context window on Ollama ({text}): shorten it, or raise "
                "`num_ctx` in this tier's options"
            )
        where = f"HTTP {status}" if status > 0 else "mid-stream"
        return UpstreamError(f"Ollama at {host} failed ({where}): {text}", status_code=status if status > 0 else None)
    if isinstance(e, httpx.TimeoutException):
        return ProviderTimeoutError(f"Ollama at {host} did not answer in time ({type(e).__name__}): {model} "
                                    "may still be loading; raise this tier's timeouts or keep it loaded (keep_alive)")
    if isinstance(e, (ConnectionError, httpx.ConnectError)):
        return ProviderConnectionError(f"cannot reach Ollama at {host}: is `ollama serve` running at {host}?")
    if isinstance(e, httpx.RemoteProtocolError):
        return MalformedResponseError(f"Ollama at {host} closed the connection mid-response ({e})")
    if isinstance(e, httpx.TransportError):
        return ProviderConnectionError(f"the connection to Ollama at {host} failed ({type(e).__name__}: {e})")
    if isinstance(e, (json.JSONDecodeError, pydantic.ValidationError, TypeError, AttributeError, KeyError)):
        return MalformedResponseError(
            f"Ollama at {host} answered outside its documented /api/chat format ({type(e).__name__}: {e})"
        )
    return UpstreamError(f"Ollama at {host} failed: {type(e).__name__}: {e}")


# What the client is seen to raise (read in ollama 0.6.x's _client.py): HTTP errors as ResponseError, a
# refused connection as ConnectionError (non-streaming) or httpx.ConnectError (streaming), every other
# transport problem as raw httpx, a body that is not JSON as JSONDecodeError, JSON of the wrong shape as
# pydantic's ValidationError (or TypeError / AttributeError when it is not even an object).
_MAPPED: tuple[type[BaseException], ...] = (
    ConnectionError, httpx.HTTPError, json.JSONDecodeError, pydantic.ValidationError, TypeError, AttributeError,
) + ((ollama.ResponseError,) if ollama is not None else ())


class OllamaStream:
    """The Deltas of one streamed answer; after the last one, ``usage`` and ``logprobs`` are set.

    A class rather than a bare async generator so the token counts of the final NDJSON line (which
    :class:`~edgecascade.types.Delta` has no room for) reach the caller without shared state on the
    provider.
    """

    def __init__(self, provider: OllamaProvider, request: Request) -> None:
        self.usage: Usage | None = None
        self.logprobs: TokenLogprobs | None = None
        self.finish_reason: FinishReason | None = None
        self._gen = provider._stream_deltas(request, self)

    def __aiter__(self) -> OllamaStream:
        return self

    async def __anext__(self) -> Delta:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()


class OllamaProvider:
    """A model on an Ollama server, with per-token logprobs and top-k alternatives.

    ``options`` are extra Ollama model options (``num_ctx``, ``top_k``, ...) sent with every call; the
    request's own temperature, max_tokens (``num_predict``), seed and stop override the same keys there.
    ``top_logprobs`` alternatives are asked per token (0-20, Ollama's limit). ``keep_alive`` is how long
    Ollama keeps the model loaded after a call ("5m", seconds, -1 for ever). Pass ``client`` to share an
    ``ollama.AsyncClient`` (it is then not closed by :meth:`aclose`).
    """

    capabilities = Capabilities(logprobs=True, streaming=True)

    def __init__(
        self,
        host: str,
        model: str,
        *,
        keep_alive: str | float | None = None,
        options: Mapping[str, Any] | None = None,
        top_logprobs: int = 5,
        timeouts: Timeouts = _DEFAULT_TIMEOUTS,
        client: ollama.AsyncClient | None = None,
    ) -> None:
        if ollama is None:  # pragma: no cover - depends on the environment
            raise ConfigError(INSTALL_HINT)
        if not model:
            raise ConfigError("the Ollama tier has no model name: set `model` (e.g. \"llama3.2:1b\")")
        if not 0 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs is {top_logprobs}: Ollama returns 0 to 20 alternatives per token")
        self.host = host
        self.model = model
        self.keep_alive = keep_alive
        self.options: dict[str, Any] = dict(options or {})
        self.top_logprobs = top_logprobs
        self.timeouts = timeouts
        self._owns_client = client is None
        self._client: ollama.AsyncClient = client or ollama.AsyncClient(host=host, timeout=_httpx_timeout(timeouts))

    def __repr__(self) -> str:
        return f"OllamaProvider(host={self.host!r}, model={self.model!r})"

    def _chat_kwargs(self, request: Request) -> dict[str, Any]:
        options = dict(self.options)
        options["temperature"] = request.temperature
        options["num_predict"] = request.max_tokens
        if request.seed is not None:
            options["seed"] = request.seed
        if request.stop:
            options["stop"] = list(request.stop)
        return dict(
            model=self.model,
            messages=[m.to_dict() for m in request.messages],
            options=options,
            keep_alive=self.keep_alive,
            logprobs=True,
            top_logprobs=self.top_logprobs,
        )

    def _error(self, e: BaseException) -> ProviderError:
        return _map_error(e, host=self.host, model=self.model)

    async def complete(self, request: Request) -> Completion:
        t0 = time.perf_counter()
        try:
            resp = await self._client.chat(**self._chat_kwargs(request), stream=False)
        except _MAPPED as e:
            err = self._error(e)
        else:
            return self._completion(resp, time.perf_counter() - t0)
        raise err from None

    def _completion(self, resp: Any, total_s: float) -> Completion:
        if not resp.done:
            raise MalformedResponseError(f"Ollama at {self.host} answered without done=true (not a final answer)")
        return Completion(
            text=resp.message.content or "",
            model=self.model,
            finish_reason=_finish(resp.done_reason),
            usage=Usage(int(resp.prompt_eval_count or 0), int(resp.eval_count or 0)),
            timings=Timings(
                total_s=total_s,
                first_token_s=_first_token_s(resp, total_s),
                load_s=(resp.load_duration or 0) * _NS,
            ),
            logprobs=_logprobs(resp.logprobs),
        )

    def stream(self, request: Request) -> OllamaStream:
        """Yield text pieces as Ollama's NDJSON lines arrive; the last Delta carries the finish reason."""
        return OllamaStream(self, request)

    async def _stream_deltas(self, request: Request, out: OllamaStream) -> AsyncGenerator[Delta, None]:
        entries: list[Any] = []
        got_logprobs = False
        err: ProviderError | None = None
        try:
            parts = await self._client.chat(**self._chat_kwargs(request), stream=True)
            async for part in parts:
                piece = part.message.content or ""
                if part.logprobs is not None:
                    got_logprobs = True
                    entries.extend(part.logprobs)
                if part.done:
                    out.finish_reason = _finish(part.done_reason)
                    out.usage = Usage(int(part.prompt_eval_count or 0), int(part.eval_count or 0))
                    out.logprobs = _logprobs(entries) if got_logprobs else None
                    yield Delta(piece, out.finish_reason)
                    return
                if piece:
                    yield Delta(piece)
        except _MAPPED as e:
            err = self._error(e)
        if err is not None:
            raise err from None
        raise MalformedResponseError(
            f"Ollama at {self.host} ended the stream without a final done=true line: the answer may be cut off"
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.close()
