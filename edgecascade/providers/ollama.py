"""Models served by an Ollama server (``ollama serve``), through the official ``ollama`` client.

Why the official client rather than raw httpx: it tracks Ollama's request schema (options, keep_alive,
logprobs) as the server evolves, and users who already run Ollama have it installed. Its failures come
out in three shapes -- ``ollama.ResponseError`` (HTTP status + the server's ``{"error": ...}`` text),
the builtin ``ConnectionError`` (it converts ``httpx.ConnectError``, but only outside streaming) and raw
httpx / json / pydantic exceptions for everything else -- so :func:`_map_error` translates all of them
into :mod:`edgecascade.errors` in one place. Nothing here retries: a wrapper elsewhere does.

Logprobs need an Ollama server >= 0.12.11 (``logprobs`` / ``top_logprobs`` on ``/api/chat``) and the
``ollama`` client >= 0.6.1 (the first to send those fields and parse them back); an older server silently
ignores the flag, and then ``Completion.logprobs`` is None and the cascade decides on its validators alone.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx
import pydantic

from ..errors import (
    AuthenticationError,
    ConfigError,
    ContextLengthError,
    MalformedResponseError,
    PoolTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UpstreamError,
)
from ..types import Completion, Delta, Request, Timings, Usage
from ._common import (
    DeltaStream,
    LoopClients,
    Secret,
    checked_key,
    finish_reason,
    lookup_api_key,
    readable_host,
    safe_url,
    shorten_and_redact,
    token_logprobs,
)
from .base import Capabilities, Timeouts

try:
    import ollama
except ImportError:  # pragma: no cover - depends on the environment
    ollama = None  # type: ignore[assignment]

INSTALL_HINT = "the `ollama` client is not installed: run `pip install 'edgecascade[ollama]'`"

_DEFAULT_TIMEOUTS = Timeouts()
_NS = 1e-9  # Ollama reports every duration in nanoseconds
_CONTEXT_WORDING = ("context length", "context window", "context size", "exceeds the context", "too long")


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


def _usage(final: Any) -> Usage:
    """The token counts of a final answer. A prompt served from Ollama's cache comes without
    ``prompt_eval_count``: its prompt tokens are not known (not 0, which had priced the baseline on
    the answer's tokens alone and hidden it), so the counts are not reported whole."""
    known = final.eval_count is not None and final.prompt_eval_count is not None
    return Usage(int(final.prompt_eval_count or 0), int(final.eval_count or 0), known)


def _map_error(e: BaseException, *, host: str, model: str, api_key: str | None = None,
               api_key_env: str | None = "OLLAMA_API_KEY") -> ProviderError:
    """Every failure of a call, translated once (see the module docstring); a ProviderError raised while
    reading the answer passes through as it is. ``host`` is the one configured: messages show it without
    userinfo or query, and quote the server's text (or an exception's) cut to a few hundred characters."""
    if isinstance(e, ProviderError):
        return e
    where = safe_url(host)
    if ollama is not None and isinstance(e, ollama.ResponseError):
        status, text = e.status_code, shorten_and_redact(str(e.error), api_key, host)
        low = text.lower()
        if (status == 404 or "not found" in low) and "model" in low:
            return UnknownModelError(
                f"Ollama at {where} does not have model {model!r} ({text}): run `ollama pull {model}`"
            )
        if 300 <= status < 400:
            return UpstreamError(f"Ollama at {where} answered HTTP {status}, a redirect: set the host to the address "
                                 "it redirects to (often https:// instead of http://; redirects are not followed)",
                                 status_code=status)
        if status == 404:  # a bare "404 page not found": no /api/chat there at all
            return UpstreamError(f"{where} has no /api/chat ({text}): is it an Ollama server?", status_code=404)
        if status in (401, 403):
            return AuthenticationError(
                f"Ollama at {where} refused the request ({status}: {text}): check ${api_key_env or 'OLLAMA_API_KEY'} "
                "for a remote host"
            )
        if status == 429:
            return RateLimitedError(f"Ollama at {where} is rate limiting requests: {text}")
        if any(w in low for w in _CONTEXT_WORDING) and status in (400, 413, 500, -1):
            return ContextLengthError(
                f"the prompt does not fit {model}'s context window on Ollama ({text}): shorten it, or raise "
                "`num_ctx` in this tier's options"
            )
        if "requires more system memory" in low:  # the server is well; this model cannot load there
            # not retried, and not held against the server's other models: a retry fails the same way
            return UnknownModelError(f"Ollama at {where} cannot load {model!r}: {text}; use a smaller model (or a "
                                     "smaller quantisation) on this tier, or free memory on that machine")
        said = f"HTTP {status}" if status > 0 else "mid-stream"
        return UpstreamError(f"Ollama at {where} failed ({said}): {text}", status_code=status if status > 0 else None)
    detail = shorten_and_redact(str(e), api_key, host)
    if isinstance(e, httpx.PoolTimeout):  # never sent: not the server's fault
        return PoolTimeoutError(f"no free connection to Ollama at {where} in time: too many calls in flight at "
                                "once; lower the concurrency")
    if isinstance(e, httpx.TimeoutException):
        late = ProviderTimeoutError(f"Ollama at {where} did not answer in time ({type(e).__name__}): {model} "
                                    "may still be loading; raise this tier's timeouts or keep it loaded (keep_alive)")
        late.sent = not isinstance(e, httpx.ConnectTimeout)  # no connection, no request (as the other providers)
        return late
    if isinstance(e, (ConnectionError, httpx.ConnectError)):
        return ProviderConnectionError(f"cannot reach Ollama at {where}: is `ollama serve` running at {where}?")
    if isinstance(e, httpx.RemoteProtocolError):
        return MalformedResponseError(f"Ollama at {where} closed the connection mid-response ({detail})")
    if isinstance(e, httpx.TransportError):
        return ProviderConnectionError(f"the connection to Ollama at {where} failed ({type(e).__name__}: {detail})")
    if isinstance(e, (json.JSONDecodeError, pydantic.ValidationError, *_MALFORMED)):
        return MalformedResponseError(
            f"Ollama at {where} answered outside its documented /api/chat format ({type(e).__name__}: {detail})"
        )
    return UpstreamError(f"Ollama at {where} failed: {type(e).__name__}: {detail}")


# What reading an answer of the wrong shape raises: JSON of the wrong shape as pydantic's ValidationError
# (a ValueError), or TypeError / AttributeError / KeyError / IndexError when it is not even an object or
# a field is null where a value was expected (``message: null``).
_MALFORMED: tuple[type[Exception], ...] = (ValueError, TypeError, AttributeError, KeyError, IndexError)

#: The Deltas of one streamed answer; after the last one, ``usage``, ``finish_reason`` and ``logprobs`` are
#: set (the token counts of the final NDJSON line, which a Delta has no room for).
OllamaStream = DeltaStream


class OllamaProvider:
    """A model on an Ollama server, with per-token logprobs and top-k alternatives.

    ``options`` are extra Ollama model options (``num_ctx``, ``top_k``, ...) sent with every call; the
    request's own temperature, max_tokens (``num_predict``), seed and stop override the same keys there.
    ``top_logprobs`` alternatives are asked per token (0-20, Ollama's limit). ``keep_alive`` is how long
    Ollama keeps the model loaded after a call ("5m", seconds, -1 for ever). Pass ``client`` to share an
    ``ollama.AsyncClient`` (it is then not closed by :meth:`aclose`); otherwise one is created on first use
    and :meth:`aclose` closes it (the next call creates a fresh one, e.g. in the next ``asyncio.run``).
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
        api_key: str | None = None,
        api_key_env: str | None = "OLLAMA_API_KEY",
    ) -> None:
        if ollama is None:  # pragma: no cover - depends on the environment
            raise ConfigError(INSTALL_HINT)
        if not model:
            raise ConfigError("the Ollama tier has no model name: set `model` (e.g. \"llama3.2:1b\")")
        if not 0 <= top_logprobs <= 20:
            raise ConfigError(f"top_logprobs is {top_logprobs}: Ollama returns 0 to 20 alternatives per token")
        host = host.strip()
        if "://" not in host and not re.search(r"[.:]", host) and len(host) >= 20 and (
                re.fullmatch(r"(?i)(?:sk|gsk|hf|ghp|pk)[-_]\S*|xox\S*", host) or len(host) >= 32):
            # a bare value that reads as a key (pasted into OLLAMA_HOST or `base_url`): never echoed, nor looked up
            raise ConfigError("the Ollama host looks like an API key, not an address (not quoted here): set it to "
                              "the server's address, e.g. http://127.0.0.1:11434, and a key in $OLLAMA_API_KEY")
        scheme = host.split("://", 1)[0].lower() if "://" in host else "http"
        if scheme not in ("http", "https"):  # every query had failed as "cannot reach Ollama"
            raise ConfigError(f"the Ollama host {safe_url(host)!r} is not an http(s) address: e.g. "
                              "http://127.0.0.1:11434")
        if host and not readable_host(host if "://" in host else f"http://{host}", need_host=False):
            # else every request failed as "answered outside its documented format"
            raise ConfigError(f"the Ollama host {safe_url(host)!r} has a host or port that cannot be read: a port "
                              "is 1 to 65535, and a user name or password holding '/', '?', '#' or '@' must be "
                              "percent-encoded; e.g. http://127.0.0.1:11434")
        self.host = host
        self._where = safe_url(host)  # what messages and the repr show: no userinfo, no query
        self.model = model
        self.keep_alive = keep_alive
        self.options: dict[str, Any] = dict(options or {})
        self.top_logprobs = top_logprobs
        self.timeouts = timeouts
        self._clients: LoopClients[ollama.AsyncClient] = LoopClients(client)
        # sent as a bearer token (Ollama behind an authenticating proxy, or ollama.com); never shown. Not
        # given, it is read from ``api_key_env`` (by default $OLLAMA_API_KEY), and from nowhere else
        if api_key is None:
            api_key = lookup_api_key(api_key_env)
        api_key = checked_key(api_key, "the api_key given", "pass the key alone")
        self._key = Secret(api_key) if api_key else None  # never a plain string in vars() or a traceback
        self._api_key_env = api_key_env

    @property
    def _api_key(self) -> str | None:
        return self._key.reveal() if self._key is not None else None

    def __repr__(self) -> str:
        return f"OllamaProvider(host={self._where!r}, model={self.model!r})"

    @property
    def _client(self) -> ollama.AsyncClient | None:
        return self._clients.current

    def _get_client(self) -> ollama.AsyncClient:
        """The client, created on first use in each event loop; after :meth:`aclose`, a fresh one."""
        return self._clients.get(self._new_client)

    def _new_client(self) -> ollama.AsyncClient:
        """A client for this host, sending only the key this tier names."""
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
        # redirects are not followed (the client's default follows them): one could take the key
        # elsewhere, and a POST redirected comes back a GET that fails as something else
        client = ollama.AsyncClient(host=self.host, timeout=self.timeouts.to_httpx(), headers=headers,
                                    follow_redirects=False)
        http = getattr(client, "_client", None)
        if not self._api_key and os.environ.get("OLLAMA_API_KEY"):
            # without a header of ours the client sends $OLLAMA_API_KEY (an ollama.com key) to any host,
            # even when the tier names another variable: send only the key the tier names
            if http is None or "authorization" not in getattr(http, "headers", {}):
                raise AuthenticationError(
                    f"this version of the ollama client keeps its headers elsewhere, so edgecascade cannot "
                    f"stop it sending $OLLAMA_API_KEY to {self._where}, a key this tier does not name: unset "
                    f"OLLAMA_API_KEY, or set ${self._api_key_env or 'the variable this tier names'}")
            http.headers.pop("authorization", None)
        return client

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
        return _map_error(e, host=self.host, model=self.model, api_key=self._api_key, api_key_env=self._api_key_env)

    async def complete(self, request: Request) -> Completion:
        """One call; every failure, reading the answer included, raises a ProviderError."""
        t0 = time.perf_counter()
        try:
            resp = await self._get_client().chat(**self._chat_kwargs(request), stream=False)
            return self._completion(resp, time.perf_counter() - t0)
        except Exception as e:  # the boundary: everything is translated (see _map_error)
            err = self._error(e)
        raise err from None  # outside the except block: no __context__ chain

    def _completion(self, resp: Any, total_s: float) -> Completion:
        if not resp.done:
            raise MalformedResponseError(f"Ollama at {self._where} answered without done=true (not a final answer)")
        return Completion(
            text=resp.message.content or "",
            model=self.model,
            finish_reason=finish_reason(resp.done_reason),
            usage=_usage(resp),
            timings=Timings(
                total_s=total_s,
                first_token_s=_first_token_s(resp, total_s),
                load_s=(resp.load_duration or 0) * _NS,
            ),
            logprobs=token_logprobs(resp.logprobs) if resp.logprobs is not None else None,
        )

    def stream(self, request: Request) -> OllamaStream:
        """Yield text pieces as Ollama's NDJSON lines arrive; the last Delta carries the finish reason.

        Every failure, reading the answer included, raises a ProviderError.
        """
        return DeltaStream(lambda out: self._stream_deltas(request, out))

    async def _stream_deltas(self, request: Request, out: DeltaStream) -> AsyncGenerator[Delta, None]:
        entries: list[Any] = []
        got_logprobs = False
        err: ProviderError | None = None
        try:
            parts = await self._get_client().chat(**self._chat_kwargs(request), stream=True)
            async for part in parts:
                piece = part.message.content or ""
                if part.logprobs is not None:
                    got_logprobs = True
                    entries.extend(part.logprobs)
                if part.done:
                    out.finish_reason = finish_reason(part.done_reason)
                    out.usage = _usage(part)
                    out.logprobs = token_logprobs(entries) if got_logprobs else None
                    yield Delta(piece, out.finish_reason)
                    return
                if piece:
                    yield Delta(piece)
        except Exception as e:  # the boundary: everything is translated (see _map_error)
            err = self._error(e)
        if err is not None:
            raise err from None
        raise MalformedResponseError(
            f"Ollama at {self._where} ended the stream without a final done=true line: the answer may be cut off"
        )

    async def aclose(self) -> None:
        """Close the client if this provider created it (one passed in belongs to the caller); the provider
        stays usable: the next call creates a fresh client."""
        client = self._clients.pop_owned()
        if client is not None:
            await client.close()
