"""Any server that speaks OpenAI's Chat Completions API: OpenAI itself, vLLM, llama.cpp's server, Groq, ...

One provider covers them all because they share the wire format; what differs (base URL, which env
var holds the key, whether logprobs are returned) lives in :data:`PRESETS`, so adding a vendor is a
table row, not a class.

Design choices, each for a reason:

- **One attempt per call.** Retries, deadlines and cooldowns belong to the wrapper in
  :mod:`edgecascade.providers.resilient`; a provider that also retried would multiply attempts.
- **Every failure is translated in one place** (:meth:`OpenAICompatProvider._error_for_response` and
  :meth:`OpenAICompatProvider._error_for_exception`), so the cascade sees one error tree whatever the
  vendor, and the retrying wrapper can tell a bad key (never retried) from a 503 (retried).
- **The API key never leaves the Authorization header.** It is not in the URL, the repr, log lines or
  exception text; errors are raised outside the ``except`` block that caught httpx's exception, so
  not even ``__context__`` links back to the request object that carries the header. A server that
  echoes the key back in its error body has it redacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import (
    AuthenticationError,
    ConfigError,
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
from ..types import Completion, Delta, Request, Timings, TokenLogprobs, Usage
from ._common import (
    DeltaStream,
    LoopClients,
    Secret,
    checked_key,
    checked_url,
    endpoint,
    finish_reason,
    lookup_api_key,
    redact,
    retry_after,
    safe_url,
    shorten_and_redact,
    sse_events,
    sse_lines,
    token_count,
    token_logprobs,
)
from .base import Capabilities, Timeouts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """Where a known vendor's API lives, which env var conventionally holds its key, what it can do.

    ``base_url`` is empty for the generic ``openai-compatible`` preset: the caller must give one.
    """

    name: str
    base_url: str
    api_key_env: str | None
    capabilities: Capabilities
    #: the request field for the answer's token limit: OpenAI deprecated ``max_tokens`` for
    #: ``max_completion_tokens``, the only one its reasoning models (o-series, gpt-5) accept; other
    #: OpenAI-compatible servers read ``max_tokens``
    max_tokens_field: str = "max_tokens"
    #: logprobs asked for as a count of alternatives (``"logprobs": k``, Together's documented form,
    #: 0 to 20) rather than OpenAI's ``"logprobs": true, "top_logprobs": k``
    logprobs_as_count: bool = False

    def requires_key(self, url: str) -> bool:
        """Whether a tier at ``url`` is this vendor's own API, which answers nothing without a key (not
        a local server, nor a proxy of one's own at another address)."""
        return bool(self.api_key_env) and url.rstrip("/") == self.base_url and url.startswith("https://")


_LP_STREAM = Capabilities(logprobs=True, streaming=True)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", _LP_STREAM),
        Preset("llamacpp-server", "http://127.0.0.1:8080/v1", "LLAMACPP_API_KEY", _LP_STREAM),
        Preset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY",
               Capabilities(logprobs=True, streaming=True, tools=True, json_mode=True), "max_completion_tokens"),
        Preset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", Capabilities(streaming=True)),
        Preset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY", _LP_STREAM, logprobs_as_count=True),
        Preset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", Capabilities(streaming=True)),
        Preset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", _LP_STREAM),
        Preset("openai-compatible", "", None, Capabilities(streaming=True)),
    )
}

# What servers say when the prompt does not fit: OpenAI/vLLM ("maximum context length is N tokens"),
# llama-cpp-python ("exceed context window"), llama.cpp's llama-server ("request (N tokens) exceeds the
# available context size (M tokens)", type exceed_context_size_error), others ("prompt is too long",
# "too many tokens").
_CONTEXT_RE = re.compile(
    r"context[ _]length|maximum context|context window|prompt is too long|too many tokens|reduce the length"
    r"|available context size|exceed_context_size",
    re.IGNORECASE,
)
_CONTEXT_LIMIT_RE = re.compile(
    r"(?:maximum context length|context window)(?: is| of)?\s+(\d+)|context size \((\d+) tokens\)", re.IGNORECASE)
# prompt size, most specific first: llama.cpp/vLLM "(1231 in the messages, 4 in the completion)",
# OpenAI "your messages resulted in 130000 tokens", llama-server "request (9412 tokens)", else the total
# "requested N tokens"
_PROMPT_TOKENS_RES = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"(\d+) in the messages", r"messages resulted in (\d+) tokens", r"request \((\d+) tokens\)",
    r"requested (\d+) tokens",
))
# OpenAI's 429 for an account out of credits or past its spend limit: no retry can succeed
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_MODEL_MISSING_RE = re.compile(
    r"model[^.]*(?:does not exist|not found)|not a valid model|no such model|model_not_found",
    re.IGNORECASE,
)


def _secs(timeout: httpx.Timeout | None, which: str) -> str:
    """A client's timeout for one phase, for messages ("5 s", or "the timeout" when none is set)."""
    value = getattr(timeout, which, None) if timeout is not None else None
    return f"{value:g} s" if isinstance(value, (int, float)) else "the timeout"


def _parse_logprobs(raw: Any) -> TokenLogprobs | None:
    """Aligned arrays from ``choices[0].logprobs.content`` (see :func:`token_logprobs`), or from the
    legacy completions shape some OpenAI-compatible clouds answer chat requests with (Together
    documents ``{"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob}, ...]}``);
    None when absent or in neither shape."""
    try:
        if isinstance(raw, dict) and isinstance(raw.get("tokens"), list) and isinstance(raw.get("token_logprobs"),
                                                                                         list):
            given = raw.get("top_logprobs")
            tops: list[Any] = given if isinstance(given, list) else []
            raw = {"content": [
                {"token": tok, "logprob": lp, "top_logprobs": [
                    {"token": t, "logprob": v} for t, v in (tops[i] or {}).items()] if i < len(tops) else []}
                for i, (tok, lp) in enumerate(zip(raw["tokens"], raw["token_logprobs"]))]}
        if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
            return None
        return token_logprobs(raw["content"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        log.warning("ignoring logprobs not in the documented shape (%s: %s)", type(e).__name__, e)
        return None


def _usage(usage: Mapping[str, Any], reported: bool) -> Usage:
    """A ``usage`` block: its token counts, with the prompt tokens served from the server's cache
    (OpenAI's ``prompt_tokens_details.cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``)."""
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None:
        cached = usage.get("prompt_cache_hit_tokens")
    return Usage(token_count(usage.get("prompt_tokens")), token_count(usage.get("completion_tokens")), reported,
                 token_count(cached))


class OpenAICompatProvider:
    """A model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    ``model`` is sent as the request's model name and reported in results. ``capabilities.logprobs``
    decides whether logprobs are asked for (vendors that reject the field must not get it).
    ``api_key_env`` only names where the key came from, so a 401 can say which variable to fix.
    A given ``client`` is used as is and left open by :meth:`aclose`; otherwise one is created on
    first use and closed by :meth:`aclose`. ``extra_body`` adds vendor-specific fields to every request
    (it cannot override the ones set here): e.g. ``{"repeat_penalty": 1.0}`` for llama.cpp's server,
    whose default of 1.1 makes temperature 0 differ from the argmax of its own logprobs.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        capabilities: Capabilities = Capabilities(streaming=True),  # noqa: B008 - frozen, never mutated
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, never mutated
        top_logprobs: int = 5,
        client: httpx.AsyncClient | None = None,
        name: str | None = None,
        api_key_env: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_tokens_field: str = "max_tokens",
        logprobs_as_count: bool = False,
        requires_key: bool = False,
    ):
        base_url = checked_url(base_url, "http://127.0.0.1:8000/v1")
        if not model:
            raise ConfigError(f"no model name given for {safe_url(base_url)}: pass the name the server serves")
        self.base_url = base_url
        self._safe_url = safe_url(base_url)  # what messages, the repr and identity show: no userinfo, no query
        self.model = model
        self.capabilities = capabilities
        self.timeouts = timeouts
        self.top_logprobs = max(top_logprobs, 0)
        self.name = name or httpx.URL(base_url).host
        self.api_key_env = api_key_env
        self.extra_body = dict(extra_body or {})
        self.max_tokens_field = max_tokens_field
        self.logprobs_as_count = logprobs_as_count
        #: a cloud API that answers nothing without a key: with none, each call fails at once, naming the
        #: variable to set (it had gone out, and offline had failed as "could not connect", retried)
        self.requires_key = requires_key
        self._said_no_logprobs = False
        api_key = checked_key(api_key, "the api_key given", "pass the key alone")
        parts = urlsplit(base_url)
        if api_key and (parts.username or parts.password):
            # httpx sends a URL's user name and password as Basic auth, in place of the Bearer key: the
            # key was never sent, and the server's 401 blamed it
            where = f"${api_key_env}" if api_key_env else "the api_key option"
            raise ConfigError(f"{self._safe_url}: base_url holds a user name and password, which would be sent in "
                              f"place of the API key in {where}: give the credentials in one place (the key, or the "
                              "URL's user:password with no key)")
        self._key = Secret(api_key) if api_key else None  # never a plain string in vars() or a traceback
        self._clients: LoopClients[httpx.AsyncClient] = LoopClients(client)

    @classmethod
    def from_preset(
        cls,
        preset: str,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> OpenAICompatProvider:
        """A provider for a known vendor; the key defaults to the preset's env var, read by
        :func:`~edgecascade.providers._common.lookup_api_key` as ``build_provider`` does (absent is fine
        for local servers: the server's 401 then names the variable to set)."""
        p = PRESETS.get(preset)
        if p is None:
            raise ConfigError(f"unknown OpenAI-compatible preset {preset!r}: use one of {', '.join(PRESETS)}")
        url = base_url or p.base_url
        if not url:
            raise ConfigError(f"the {preset!r} preset has no default base_url: pass base_url (e.g. .../v1)")
        env = kwargs.setdefault("api_key_env", p.api_key_env)  # the variable named in messages is the one read
        if api_key is None:
            api_key = lookup_api_key(env)
        kwargs.setdefault("capabilities", p.capabilities)
        kwargs.setdefault("name", p.name)
        kwargs.setdefault("max_tokens_field", p.max_tokens_field)
        kwargs.setdefault("logprobs_as_count", p.logprobs_as_count)
        kwargs.setdefault("requires_key", p.requires_key(url))
        return cls(url, model, api_key=api_key, **kwargs)

    @property
    def _api_key(self) -> str | None:
        return self._key.reveal() if self._key is not None else None

    @property
    def identity(self) -> str:
        """What identifies the answers (for caches): the endpoint and the model it serves."""
        return f"{self._safe_url}:{self.model}"

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (f"OpenAICompatProvider(name={self.name!r}, model={self.model!r}, base_url={self._safe_url!r}, "
                f"key={key})")

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def _client(self) -> httpx.AsyncClient | None:
        return self._clients.current

    def _get_client(self) -> httpx.AsyncClient:
        """The client, created on first use in each event loop (:meth:`aclose` drops the running loop's,
        and the next call there, or in the next ``asyncio.run``, creates a fresh one)."""
        return self._clients.get(lambda: httpx.AsyncClient(timeout=self.timeouts.to_httpx()))

    def _headers(self, *, stream: bool) -> dict[str, str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _body(self, request: Request, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.model,
            "messages": [m.to_dict() for m in request.messages],
            self.max_tokens_field: request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if stream:
            # Delta has no slot for logprobs, so they are not asked for: the server skips that work.
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        elif self.capabilities.logprobs and self.logprobs_as_count:
            body["logprobs"] = min(max(self.top_logprobs, 1), 20)  # 0 would ask for none at all
        elif self.capabilities.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = max(self.top_logprobs, 0)
        return body

    @property
    def _where(self) -> str:
        return f"{self.name} ({self._safe_url})" if self.name not in self._safe_url else self._safe_url

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key, self.base_url)

    async def _send(self, request: Request, *, stream: bool) -> httpx.Response:
        """POST the request; transport failures come back as ProviderErrors, HTTP errors are not checked here."""
        if self.requires_key and not self._api_key:
            where = f"${self.api_key_env}" if self.api_key_env else "the api_key option"
            missing = AuthenticationError(f"{self._where} needs an API key and none is set: set {where}")
            missing.sent = False  # nothing went out: nothing to bill
            raise missing
        client = self._get_client()
        req = client.build_request(
            "POST", endpoint(self.base_url, "/chat/completions"), json=self._body(request, stream=stream),
            headers=self._headers(stream=stream),
        )
        try:
            return await client.send(req, stream=stream)
        except httpx.HTTPError as e:
            failure = self._error_for_exception(e)
        raise failure from None  # outside the except block: no __context__ back to the request and its headers

    # -- error mapping: the one place failures are translated -------------------------------------

    def _error_for_exception(self, exc: httpx.HTTPError, *, mid_stream: bool = False) -> ProviderError:
        """Translate an httpx failure. Only the exception's type and text are used (they hold no headers)."""
        what = f"{type(exc).__name__}: {self._redact(str(exc)) or 'no details'}"
        t = self._client.timeout if self._client is not None else None  # a client passed in has its own
        if isinstance(exc, httpx.ConnectTimeout):
            never = ProviderTimeoutError(
                f"could not connect to {self._where} within {_secs(t, 'connect')} ({what}): check that the server "
                "is up and reachable, or raise the connect timeout"
            )
            never.sent = False  # no connection, no request: nothing to bill
            return never
        if isinstance(exc, httpx.PoolTimeout):
            return PoolTimeoutError(
                f"no free connection to {self._where} within {_secs(t, 'pool')} ({what}): too many calls in "
                "flight at once; lower the concurrency or raise the connect timeout"
            )
        if isinstance(exc, httpx.TimeoutException):  # read / write
            during = "in the middle of the stream" if mid_stream else "waiting for the answer"
            return ProviderTimeoutError(
                f"{self._where} sent nothing for {_secs(t, 'read')} {during} ({what}): the server is overloaded "
                "or the answer is slow; raise the read timeout or use a faster model"
            )
        if isinstance(exc, (httpx.ConnectError, httpx.ProxyError)):
            return ProviderConnectionError(
                f"could not connect to {self._where} ({what}): check that the server is running and "
                "that base_url is right"
            )
        if mid_stream or isinstance(exc, httpx.DecodingError):
            return MalformedResponseError(
                f"the answer from {self._where} was cut off or undecodable ({what}): the server or a proxy "
                "dropped the connection; try again"
            )
        return UpstreamError(
            f"the connection to {self._where} failed ({what}): the server or a proxy closed it; try again"
        )

    def _server_error(self, content: bytes) -> tuple[str, Any]:
        """The server's own error message (redacted, truncated) and error code, from any usual body shape."""
        code: Any = None
        raw = content.decode("utf-8", errors="replace")
        try:
            data = json.loads(content)
        except ValueError:
            text = raw
        else:
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict):
                text, code = str(err.get("message") or err), err.get("code") or err.get("type")
            elif isinstance(err, str):
                text = err
            elif isinstance(data, dict) and ("detail" in data or "message" in data):
                text = str(data.get("detail") or data.get("message"))
            else:
                text = raw
        return self._shorten(text), code

    def _shorten(self, text: str) -> str:
        return shorten_and_redact(text, self._api_key, self.base_url) or "(empty body)"

    def _redirected(self, response: httpx.Response) -> UpstreamError:
        """A redirect is not followed (it could take the key elsewhere) and not retried: the server
        would send it again, as a base_url of http:// where https:// is served does. It had read as a
        garbled answer, retried and counted against the endpoint."""
        where = response.headers.get("location", "")
        to = f" to {safe_url(where)}" if where else ""
        return UpstreamError(f"{self._where} answered HTTP {response.status_code}, a redirect{to}: set base_url "
                             "to the address it redirects to (redirects are not followed)",
                             status_code=response.status_code)

    def _error_for_response(self, response: httpx.Response, content: bytes) -> ProviderError:
        """Translate an HTTP error status, quoting the server's message from ``content`` (its body)."""
        message, code = self._server_error(content)
        return self._classify(response.status_code, message, code, response.headers)

    def _classify(self, status: int | None, message: str, code: Any,
                  headers: Mapping[str, str] | None = None) -> ProviderError:
        said = f"HTTP {status}: {message}" if status else message
        code_s = str(code or "")
        if status in (401, 403):
            where_key = f"${self.api_key_env}" if self.api_key_env else "the api_key option"
            hint = (f"check the API key in {where_key}" if self._api_key
                    else f"no API key was sent: set {where_key}")
            return AuthenticationError(f"{self._where} refused the request ({said}): {hint}")
        if (status == 429 and code_s in _QUOTA_CODES) or status == 402:  # 402: DeepSeek's "insufficient balance"
            return QuotaExceededError(f"{self._where} refused the request: the account behind this key is out of "
                                      f"credits or past its spend limit ({said}): add credits or raise the limit in "
                                      "the vendor's billing settings, or use another tier")
        if status == 429 and "request too large" in message.lower():
            # OpenAI's "Request too large for gpt-4o ... on tokens per min (TPM): Limit 30000, Requested
            # 50000": more than the key may send in a minute, so waiting and retrying fail the same way
            return UpstreamError(f"{self._where} refused the request as larger than this key's per-minute token "
                                 f"limit ({said}): shorten the prompt or lower max_tokens, or raise the limit in the "
                                 "vendor's settings", status_code=status)
        if status == 429:
            wait_s = retry_after(headers or {})
            wait = f"retry after {wait_s:g} s" if wait_s is not None else "slow down and retry later"
            return RateLimitedError(f"{self._where} is rate-limiting this key ({said}): {wait}",
                                    retry_after=wait_s)
        if status is not None and 400 <= status < 500 and (
            code_s == "context_length_exceeded" or _CONTEXT_RE.search(message)
        ):
            limit_m = _CONTEXT_LIMIT_RE.search(message)
            limit = next((g for g in limit_m.groups() if g), None) if limit_m else None
            asked = next((m for m in (r.search(message) for r in _PROMPT_TOKENS_RES) if m), None)
            return ContextLengthError(
                f"the prompt does not fit {self.model}'s context window at {self._where} ({said}): shorten "
                "the prompt or max_tokens, or use a model with a longer context",
                prompt_tokens=int(asked.group(1)) if asked else None,
                context=int(limit) if limit else None,
            )
        if status == 404 or (status is not None and 400 <= status < 500 and _MODEL_MISSING_RE.search(
                f"{code_s} {message}")):
            return UnknownModelError(
                f"{self._where} does not serve model {self.model!r} ({said}): check the model name "
                f"(GET {self._safe_url}/models lists what it serves) and that base_url is the API root (.../v1)"
            )
        if status is not None and 400 <= status < 500 and code_s in ("unsupported_parameter", "unsupported_value"):
            return UpstreamError(
                f"{self._where} refused a parameter of the request for {self.model!r} ({said}): a tier sends "
                "temperature, the token limit and (where its preset asks) logprobs; OpenAI's reasoning models "
                "(o-series, gpt-5) accept neither temperature 0 nor logprobs: use a chat model (e.g. gpt-4o-mini), "
                "or set logprobs = false on the tier if logprobs are what it refused", status_code=status)
        if status == 408:
            return ProviderTimeoutError(f"{self._where} timed out on its side ({said}): try again")
        if status is not None and status >= 500:
            return UpstreamError(f"{self._where} failed ({said}): a server-side error; try again or "
                                 "use another tier", status_code=status, retry_after=retry_after(headers or {}))
        return UpstreamError(f"{self._where} rejected the request ({said})", status_code=status)

    def _in_body_error(self, err: Any) -> ProviderError:
        """An error object sent inside a 200 answer or a stream chunk (OpenRouter does this)."""
        if isinstance(err, dict):
            message, code = self._shorten(str(err.get("message") or err)), err.get("code")
        else:
            message, code = self._shorten(str(err)), None
        status = code if isinstance(code, int) and 400 <= code < 600 else None
        mapped = self._classify(status, message, code)
        if status is None and type(mapped) is UpstreamError:
            return UpstreamError(f"{self._where} answered with an error: {message}")
        return mapped

    # -- the Provider protocol --------------------------------------------------------------------

    def _parse_completion(self, data: Any, started: float, *, streamed: bool = False) -> Completion:
        """``streamed``: the answer to a stream request (sent whole), which asked for no logprobs."""
        if isinstance(data, dict) and "error" in data and not data.get("choices"):
            raise self._in_body_error(data["error"])
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise MalformedResponseError(
                f"{self._where} returned no choices for {self.model!r}: not an OpenAI chat completion "
                "(is base_url the chat API root, e.g. .../v1?)"
            )
        choice = choices[0]
        if choice.get("finish_reason") == "error":
            raise UpstreamError(f"{self._where} stopped {self.model!r} with finish_reason 'error'; try again")
        message = choice.get("message")
        if not isinstance(message, dict):
            raise MalformedResponseError(f"{self._where} returned a choice without a message for {self.model!r}")
        usage = data.get("usage")
        reported = isinstance(usage, dict)
        if not isinstance(usage, dict):
            log.warning("%s returned no usage for %r: counting 0 tokens (costs will be under-reported)",
                        self._where, self.model)
            usage = {}
        asked = self.capabilities.logprobs and not streamed
        logprobs = _parse_logprobs(choice.get("logprobs")) if asked else None
        if asked and logprobs is None and not self._said_no_logprobs:
            self._said_no_logprobs = True  # once per provider: every answer would say it again
            log.warning("%s returned no logprobs for %r although they were asked for: its answers are judged on "
                        "their checks alone (their reason says so); set logprobs = false on the tier if the "
                        "backend cannot give them", self._where, self.model)
        return Completion(
            text=self._content_text(message.get("content")),
            model=self.model,
            finish_reason=finish_reason(choice.get("finish_reason")),
            usage=_usage(usage, reported),
            timings=Timings(total_s=time.perf_counter() - started, first_token_s=None),
            logprobs=logprobs,
        )

    def _content_text(self, content: Any) -> str:
        """The text of a message's (or delta's) ``content``: a string, or, as Mistral's reasoning
        models send it, a list of typed parts, of which the ``text`` ones are the answer (their
        ``thinking`` parts are not). Anything else is no answer this provider can read."""
        if content is None or isinstance(content, str):
            return content or ""
        if isinstance(content, list) and all(isinstance(part, dict) for part in content):
            texts = [part.get("text") for part in content if part.get("type") == "text"]
            if all(isinstance(t, str) for t in texts):
                return "".join(texts)  # type: ignore[arg-type]
        raise MalformedResponseError(f"{self._where} answered {self.model!r} with content that is neither text nor a "
                                     f"list of text parts ({self._shorten(json.dumps(content))!r}): it is not an "
                                     "OpenAI-compatible answer")

    async def complete(self, request: Request) -> Completion:
        """One POST, one answer; failures raise the matching ProviderError."""
        started = time.perf_counter()
        response = await self._send(request, stream=False)  # not streamed: the body is read (and closed) here
        if 300 <= response.status_code < 400:
            raise self._redirected(response)
        if response.status_code >= 400:
            raise self._error_for_response(response, response.content)
        try:
            data = json.loads(response.content)
        except ValueError:
            # garbled JSON may be a one-off and is retried; a web page is what a wrong base_url (a web
            # UI, a proxy's login page) serves every time, so it is not (it still counts against the
            # endpoint, as every garbled answer does)
            page = response.headers.get("content-type", "").startswith("text/html")
            raise MalformedResponseError(
                f"{self._where} answered HTTP {response.status_code} with "
                + ("a web page" if page else "a body that is not JSON")
                + f" ({self._shorten(response.text)!r}): check that base_url points at an OpenAI-compatible API",
                retryable=not page,
            ) from None
        return self._parse_completion(data, started)

    def stream(self, request: Request) -> DeltaStream:
        """Yield text pieces as the server sends them (SSE); the last Delta carries the finish reason,
        and after it the stream's ``usage`` holds the token counts (``reported`` False when the server
        sent no usage chunk).

        A stream that ends before a finish reason or ``[DONE]`` was cut off: MalformedResponseError,
        because a silently truncated answer would be taken for a complete one.
        """
        return DeltaStream(lambda out: self._stream(request, out))

    async def _stream(self, request: Request, out: DeltaStream) -> AsyncGenerator[Delta, None]:
        out.usage = Usage(0, 0, reported=False)  # until a usage chunk arrives
        response = await self._send(request, stream=True)
        try:
            if 300 <= response.status_code < 400:
                raise self._redirected(response)
            if response.status_code >= 400:
                content = b""
                with contextlib.suppress(httpx.HTTPError):  # the status alone still says what went wrong
                    content = await response.aread()
                raise self._error_for_response(response, content)
            if response.headers.get("content-type", "").startswith("text/html"):
                # a wrong base_url (a web UI, a proxy's login page): it had read as an answer "cut off"
                # and was retried; complete() names it, and so does this
                body = b""
                with contextlib.suppress(httpx.HTTPError):
                    body = await response.aread()
                raise MalformedResponseError(
                    f"{self._where} answered HTTP {response.status_code} with a web page "
                    f"({self._shorten(body.decode('utf-8', errors='replace'))!r}): check that base_url points "
                    "at an OpenAI-compatible API", retryable=False)
            if response.headers.get("content-type", "").startswith("application/json"):
                # the server ignored stream=true and sent the whole answer at once
                failure: ProviderError | None = None
                try:
                    content = await response.aread()
                except httpx.HTTPError as e:
                    failure = self._error_for_exception(e, mid_stream=True)
                if failure is not None:
                    raise failure from None
                try:
                    data = json.loads(content)
                except ValueError:
                    raise MalformedResponseError(f"{self._where} sent a body that is not JSON") from None
                c = self._parse_completion(data, time.perf_counter(), streamed=True)
                out.usage, out.finish_reason = c.usage, c.finish_reason
                yield Delta(c.text, c.finish_reason)
                return
            async for delta in self._deltas(response, out):
                if delta.finish_reason is not None:
                    out.finish_reason = delta.finish_reason
                yield delta
        finally:
            await response.aclose()

    async def _sse_data(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        """The data of each server-sent event; a transport failure mid-stream becomes a ProviderError.

        A last event without its blank line is passed on: a cut one fails to parse in :meth:`_deltas`.
        """
        failure: ProviderError | None = None
        try:
            lines = sse_lines(response.aiter_text())
            async with contextlib.aclosing(sse_events(lines, flush_unterminated=True)) as events:
                async for name, data in events:
                    if name == "error":  # `event: error` or llama.cpp's `error:` line: it failed mid-answer
                        try:
                            said: Any = json.loads(data)
                        except ValueError:
                            said = data
                        failure = self._in_body_error(said.get("error", said) if isinstance(said, dict) else said)
                        break
                    yield data
        except httpx.HTTPError as e:
            failure = self._error_for_exception(e, mid_stream=True)
        if failure is not None:
            raise failure from None

    async def _deltas(self, response: httpx.Response, out: DeltaStream) -> AsyncIterator[Delta]:
        finished = False
        chars = 0
        async with contextlib.aclosing(self._sse_data(response)) as events:
            async for event in events:
                if event.strip() == "[DONE]":
                    if not finished:
                        yield Delta("", "stop")
                    return
                try:
                    chunk = json.loads(event)
                except ValueError:
                    chunk = None
                if not isinstance(chunk, dict):
                    raise MalformedResponseError(
                        f"the stream from {self._where} carried an event that is not a JSON object after "
                        f"{chars} characters ({self._shorten(event)!r}): it was cut off or is not an "
                        "OpenAI-compatible stream"
                    )
                if chunk.get("error"):
                    raise self._in_body_error(chunk["error"])
                usage = chunk.get("usage")
                if isinstance(usage, dict):  # the usage chunk (include_usage), after the finish reason
                    out.usage = _usage(usage, True)
                choices = chunk.get("choices") or []
                if not choices or not isinstance(choices[0], dict):
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    raise MalformedResponseError(f"the stream from {self._where} carried a delta that is not a JSON "
                                                 f"object after {chars} characters: it is not an OpenAI-compatible "
                                                 "stream")
                piece = self._content_text(delta.get("content"))
                reason = choice.get("finish_reason")
                if reason == "error":
                    raise UpstreamError(f"{self._where} stopped the stream with finish_reason 'error'; try again")
                if piece or reason:
                    chars += len(piece)
                    finished = finished or bool(reason)
                    yield Delta(piece, finish_reason(reason) if reason else None)
        if not finished:
            raise MalformedResponseError(
                f"the stream from {self._where} ended after {chars} characters without a finish reason or "
                "[DONE]: it was cut off (the server or a proxy dropped it, or the server failed after "
                "sending its headers, as llama.cpp's server does for a prompt longer than its context)"
            )

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it (a client passed in belongs to the caller).

        The provider stays usable: the next call creates a fresh client (in whatever loop runs it).
        """
        client = self._clients.pop_owned()
        if client is not None:
            await client.aclose()
