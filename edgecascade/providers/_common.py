"""What the remote providers (OpenAI-compatible, Anthropic, Ollama) share, written once.

Key lookup, safe printing of URLs, the quoting of a server's own error message (key redacted, then
cut), ``Retry-After``, finish reasons, the SSE line parser, the logprob arrays and the stream wrapper
that carries a streamed answer's usage back to the caller.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import logging
import math
import os
import re
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

import httpx
import numpy as np

from ..errors import ConfigError
from ..types import LOGPROB_FLOOR, Delta, FinishReason, TokenLogprobs, Usage

MAX_SERVER_MESSAGE = 300  # characters of a server's own error message quoted in ours
REDACTED = "[redacted]"

# cut short: OpenAI/vLLM/llama.cpp "length", Anthropic "max_tokens" and "model_context_window_exceeded"
# (the answer filled the context window; Anthropic documents it as truncated), Mistral's
# "model_length" (the same, in its OpenAI-style API)
_LENGTH_REASONS = frozenset({"length", "max_tokens", "model_context_window_exceeded", "model_length"})
# withheld or cut by the backend itself: OpenAI's content filter, Anthropic's refusal stop reason
_FILTERED_REASONS = frozenset({"content_filter", "refusal"})
# finished: the model ended its turn, met a stop sequence, or called a tool (OpenAI, vLLM, llama.cpp,
# Anthropic, Ollama, and text-generation-inference before 2.2, which says "eos_token"); a backend that
# names no reason is taken at its word. Anything else (vLLM's and
# SGLang's "abort", vLLM's "repetition", Anthropic's "pause_turn", a reason not known yet) did not
# finish the answer as asked: "error", which the truncation check rejects
_STOP_REASONS = frozenset({None, "", "stop", "end_turn", "stop_sequence", "tool_calls", "tool_use", "function_call",
                           "eos", "eos_token"})
# a URL as far as it can go (userinfo and queries may hold quotes, brackets and parentheses): a
# message may lose the punctuation after a query, never a secret inside one
_URL_RE = re.compile(r"https?://[^\s\"<>`]+", re.IGNORECASE)


class Secret:
    """Holds an API key so that printing a provider, its ``__dict__`` or a traceback shows no key."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def lookup_api_key(env_name: str | None) -> str | None:
    """The API key held by the environment variable ``env_name``; None when it is unset, empty or unnamed.

    The one place an API key is read from the environment: providers are given their key. Whitespace
    around it (a CRLF ``.env`` file's ``\r``) is dropped; a key with a space, a line break or a
    non-ASCII character inside cannot go in a header, and the HTTP library's refusal would quote
    it, so it is refused here, by the variable's name alone.
    """
    raw = os.environ.get(env_name) if env_name else None
    return checked_key(raw, f"${env_name}", "set it to the key alone")


def checked_key(raw: str | None, source: str, fix: str) -> str | None:
    """An API key as a header can carry it: surrounding whitespace dropped (a file's trailing newline,
    a CRLF ``.env``'s ``\r``), None when nothing is left. A key with a space, a line break or a
    non-ASCII character inside is refused here, by where it came from (``source``) alone: the HTTP
    library's refusal would quote it, in its exception and in its debug log."""
    key = raw.strip() if raw else None
    if not key:
        return None
    if not all(33 <= ord(ch) < 127 for ch in key):
        raise ConfigError(f"{source} holds a character an API key cannot have (a space, a line break or a "
                          f"non-ASCII character inside it, as a pasted quote or ellipsis): {fix}")
    return key


def safe_url(url: str) -> str:
    """``url`` as it may be printed: without userinfo (``user:password@``), query string or fragment.

    ``https://user:pw@host/v1?api-key=X`` -> ``https://host/v1``. A host without a scheme (Ollama's
    ``127.0.0.1:11434``) keeps that form.
    """
    text = (url or "").strip()
    bare = "://" not in text
    whole = "//" + text if bare else text
    try:
        parts = urlsplit(whole)
        host, port = parts.hostname or "", parts.port
        # an "@" past the authority: a password holding "/", "?" or "#" (not percent-encoded) ends the
        # authority early, and the parsed host, port or path would be the password's first half (or, with
        # an "@" of its own too, its second). Everything up to the last "@" goes: a path or query that
        # holds one (an e-mail address) then shows less than it could, never a secret
        ambiguous = "@" in whole.partition("//")[2][len(parts.netloc):]
    except ValueError:  # an out-of-range port, a bad IPv6 literal: strip by hand
        ambiguous, host, port = True, "", None
    if ambiguous:  # everything up to the last "@" may be a secret
        scheme, _, rest = whole.partition("//")
        cut = re.split(r"[?#]", rest.rpartition("@")[2], maxsplit=1)[0]
        return cut if bare else f"{scheme}//{cut}"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    netloc = host + (f":{port}" if port is not None else "")
    out = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return out[2:] if bare and out.startswith("//") else out


def readable_host(url: str, *, need_host: bool = True) -> bool:
    """Whether ``url``'s host and port can be read (a port 1 to 65535, a well-formed IPv6 literal). An
    "@" in the path or query is allowed: it may be an e-mail address or a scoped name; :func:`safe_url`
    hides what comes before it in messages, in case it ends a password instead."""
    try:
        parts = urlsplit(url)
        readable = (bool(parts.hostname) or not need_host) and (parts.port is None or parts.port > 0)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return False
    return readable


def checked_url(base_url: str | None, example: str) -> str:
    """``base_url`` without surrounding space or a trailing "/", or a ConfigError that says what is
    wrong with it: not http(s), or a host or port that cannot be read (port 99999, a password holding
    "/" or "#"). Those had passed, and the first request crashed the whole cascade with an
    ExceptionGroup from deep in the HTTP stack instead of failing over to the next tier. The message
    never quotes the unreadable part: it may be a password."""
    url = (base_url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):  # else every call fails, retried, as unreachable
        # quoted only when it has a scheme: a bare value may be a key pasted where the URL goes
        said = f"base_url {safe_url(url)!r}" if "://" in url else "base_url (not quoted: it has no scheme)"
        raise ConfigError(f"{said} is not an http(s) URL: give the API root of the server, e.g. {example}")
    if not readable_host(url):
        raise ConfigError(f"base_url {safe_url(url)!r} has a host or port that cannot be read: a port is 1 to "
                          f"65535, and a user name or password holding '/', '?', '#' or '@' must be "
                          f"percent-encoded (e.g. %2F for '/'); e.g. {example}")
    return url


def endpoint(base_url: str, path: str) -> str:
    """``path`` appended to the path of ``base_url``, keeping its query (an Azure-style
    ``?api-version=``): ``https://h/v1?x=1`` + ``/chat/completions`` -> ``https://h/v1/chat/completions?x=1``."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, parts.fragment))


#: query parameters that hold no secret (Azure's ``?api-version=``): their values stay readable in messages
_PUBLIC_PARAMS = frozenset({"api-version", "api_version", "version"})


def _url_secrets(url: str) -> list[str]:
    """What a URL may carry that is secret: its user name, password, every query value and its
    fragment (a key a gateway takes as ``?api-key=``, ``user:key@``), each 4 characters or longer."""
    try:
        parts = urlsplit(url if "://" in url else "//" + url)
        found = [parts.username or "", parts.password or "", parts.fragment]
        found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() not in _PUBLIC_PARAMS]
        found += [v for _, v in parse_qsl(parts.fragment, keep_blank_values=True)]
    except ValueError:
        return []
    return [unquote(v) for v in found if len(v) >= 4]


def _forms(secret: str) -> set[str]:
    """A secret as a message may quote it: as is, stripped, escaped as in a repr, percent-encoded
    (as a login page's return-to field holds the URL) and JSON-escaped."""
    return {f for f in (secret, secret.strip(), repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret),
                        quote(secret)) if f}


def redact(text: str, key: str | None, url: str | None = None) -> str:
    """``text`` with the API key replaced by ``[redacted]``, ``url`` (if given) by its :func:`safe_url`,
    and every other http(s) URL in it too: a server that echoes the URL it was asked (the endpoint,
    built from ``url`` with a path, with its userinfo and query) must not carry them into a message.
    What ``url``'s userinfo, query and fragment hold is replaced wherever it appears, whole or
    percent-encoded: a server may quote the request's path and query alone ("Cannot POST
    /v1/chat/completions?api-key=..."), or the value alone."""
    secrets = [key] if key else []
    if url:
        secrets += _url_secrets(url)
    for secret in sorted({f for s in secrets for f in _forms(s)}, key=len, reverse=True):  # longest first
        text = text.replace(secret, REDACTED)
    if url:
        safe = safe_url(url)
        if safe != url:
            text = text.replace(url, safe)
    return _URL_RE.sub(lambda m: safe_url(m.group(0)), text)


class _SafeUrls(logging.Filter):
    """Rewrites the URLs httpx logs ("HTTP Request: POST https://user:key@host/v1?api-key=...") to
    their :func:`safe_url`: a key a user put in ``base_url`` must not reach a log either."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(safe_url(str(a)) if isinstance(a, (str, httpx.URL)) and "://" in str(a) else a
                                for a in args)
        if isinstance(record.msg, str) and "://" in record.msg:
            record.msg = _URL_RE.sub(lambda m: safe_url(m.group(0)), record.msg)
        return True


logging.getLogger("httpx").addFilter(_SafeUrls())


def shorten_and_redact(text: str, key: str | None, url: str | None = None) -> str:
    """A server's message as quoted in ours: redacted FIRST, then whitespace collapsed and cut to
    :data:`MAX_SERVER_MESSAGE` characters (so a key echoed across the cut leaves no prefix behind)."""
    text = " ".join(redact(text, key, url).split())
    return text if len(text) <= MAX_SERVER_MESSAGE else text[: MAX_SERVER_MESSAGE - 3] + "..."


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent.

    ``headers`` should be case-insensitive (``httpx.Headers``); a plain dict must use lower-case names.
    """
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            if math.isfinite(wait := float(ms)):  # "nan" and "inf" parse, and would wait out the deadline
                return max(wait / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        wait = float(value)
        return max(wait, 0.0) if math.isfinite(wait) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def before_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop string in it, and whether one was there. llama-cpp-python cuts
    a completion at the first stop of the list that occurs, not at the earliest in the text
    (``stop=["\\n", "```"]`` left "x = 1```" whole), and not at all while it holds back the bytes of a
    character split across tokens; the answer must end where its first stop string begins, as a
    streamed answer does."""
    at = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[:min(at)], True) if at else (text, False)


def stop_prefix(text: str, stops: Sequence[str] | None) -> int:
    """The length of the longest end of ``text`` that begins a stop string (held back from a stream:
    the next token may complete the stop, and the answer ends before it)."""
    return max((k for s in stops or () for k in range(min(len(s) - 1, len(text)), 0, -1)
                if text.endswith(s[:k])), default=0)


def finish_reason(reason: Any) -> FinishReason:
    """A backend's finish / stop / done reason as ours: "length" when the token limit (or the context
    window) cut it, "filtered" when the backend withheld or cut it (a content filter, a refusal),
    "stop" when it finished (or named no reason), else "error": an answer the backend did not finish
    as asked (vLLM's "abort") must not pass for a whole one."""
    if reason in _LENGTH_REASONS:
        return "length"
    if reason in _FILTERED_REASONS:
        return "filtered"
    return "stop" if reason in _STOP_REASONS else "error"


def token_count(value: Any) -> int:
    """A token count from a usage block; anything that is not a number counts as 0 rather than failing."""
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


_LINE_END = re.compile(r"\r\n|\r|\n")


async def sse_lines(chunks: AsyncIterable[str]) -> AsyncGenerator[str, None]:
    """The lines of an SSE body (``response.aiter_text()``), ended by CR LF, LF or CR only, as the SSE
    format says. httpx's ``aiter_lines`` splits as ``str.splitlines`` does, also at U+2028, U+2029,
    U+0085 and a few control characters, which JSON strings may hold unescaped (llama.cpp's server
    and vLLM write them so): an answer holding one was cut mid-event and failed as malformed."""
    rest, skip_lf = "", False
    async for chunk in chunks:
        if not chunk:
            continue
        if skip_lf and chunk.startswith("\n"):  # the LF of a CR LF split across two chunks
            chunk = chunk[1:]
        skip_lf = False
        text = rest + chunk
        *lines, rest = _LINE_END.split(text)
        for line in lines:
            yield line
        skip_lf = text.endswith("\r")
    if rest:
        yield rest


async def sse_events(lines: AsyncIterable[str], *, flush_unterminated: bool) -> AsyncGenerator[tuple[str, str], None]:
    """(event name, data) for each server-sent event in ``lines`` (an SSE body split into lines).

    ``data`` fields accumulate until a blank line; comments are skipped; the event name is "message"
    when none was given. ``flush_unterminated``: pass on a last event whose blank line never came (a
    cut one then fails to parse where it is read) rather than drop it. Transport errors propagate.
    """
    event, data = "", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "error":  # llama.cpp's server before 2025-09: a failure after the headers, then [DONE]
            yield "error", value
    if data and flush_unterminated:
        yield event or "message", "\n".join(data)


def _logprob(value: Any) -> float:
    """One logprob as a number: a missing one (null) is NaN, which the features carry into a score
    that cannot be computed, so the draft escalates rather than pass unscored; a placeholder far
    below any real one is floored at -100."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise TypeError("a logprob is a number, not a boolean")
    x = float(value)
    return max(x, LOGPROB_FLOOR) if x == x else x


def token_logprobs(rows: Iterable[Any]) -> TokenLogprobs:
    """Aligned arrays from rows of ``{token, logprob, top_logprobs: [{token, logprob}, ...]}``.

    A row is anything subscriptable by those names with a ``get`` (a JSON dict, an ``ollama`` model).
    Alternatives are sorted best-first and every row is cut to the shortest, so ``top_logprobs`` is a
    dense (n, k) array whatever the server sent (some return fewer alternatives on some steps; padding
    with made-up values would skew entropy-style features). Raises KeyError / TypeError / ValueError /
    AttributeError on rows of another shape.
    """
    tokens: list[str] = []
    lps: list[float] = []
    tops: list[list[tuple[str, float]]] = []
    raw_bytes: list[Any] = []
    for row in rows:
        tokens.append(str(row["token"]))
        lps.append(_logprob(row["logprob"]))
        alts = [(str(a["token"]), _logprob(a["logprob"])) for a in row.get("top_logprobs") or []]
        alts.sort(key=lambda a: -a[1] if a[1] == a[1] else math.inf)  # NaN last
        tops.append(alts)
        raw_bytes.append(row.get("bytes"))
    if tokens and all(isinstance(b, list) and all(isinstance(x, int) and 0 <= x < 256 for x in b) for b in raw_bytes):
        # a character whose bytes are split across tokens: each token's text alone is "" or "\ufffd"
        # (llama.cpp's server) or "bytes:\x.." (OpenAI), and the tokens would not spell the answer;
        # decoded as one stream, the token that completes a character carries it (as in-process)
        stream = codecs.getincrementaldecoder("utf-8")(errors="replace")
        tokens = [stream.decode(bytes(b)) for b in raw_bytes]
        tokens[-1] += stream.decode(b"", final=True)
    n = len(tokens)
    k = min((len(t) for t in tops), default=0)
    return TokenLogprobs(
        tokens=tokens,
        logprobs=np.asarray(lps, dtype=np.float64),
        top_tokens=[[tok for tok, _ in row[:k]] for row in tops],
        top_logprobs=np.asarray([[lp for _, lp in row[:k]] for row in tops], dtype=np.float64).reshape(n, k),
    )


class DeltaStream:
    """The Deltas of one streamed answer; after the last one, ``usage`` and ``finish_reason`` are set, and
    ``logprobs`` where the backend returns them.

    A class rather than a bare async generator so what :class:`~edgecascade.types.Delta` has no room for
    (token counts, logprobs) reaches the caller without shared state on the provider. ``produce`` is
    called once with this object and returns the generator of Deltas, which fills it in.
    """

    def __init__(self, produce: Callable[[DeltaStream], AsyncGenerator[Delta, None]]) -> None:
        self.usage: Usage | None = None
        self.finish_reason: FinishReason | None = None
        self.logprobs: TokenLogprobs | None = None
        self._gen = produce(self)

    def __aiter__(self) -> DeltaStream:
        return self

    async def __anext__(self) -> Delta:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()


C = TypeVar("C")


class LoopClients(Generic[C]):
    """A provider's network clients: one it was given (the caller's, used as is and never closed
    here), else one it makes per event loop. A client belongs to the loop it was made in: two
    ``run_sync`` calls in two threads (each its own loop) had shared one, and the first to finish
    closed it under the other's request, which then waited out its read timeout and failed."""

    def __init__(self, given: C | None = None) -> None:
        self.given = given
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, C] = weakref.WeakKeyDictionary()

    def get(self, make: Callable[[], C]) -> C:
        """The given client, else the running loop's, made on first use there."""
        if self.given is not None:
            return self.given
        loop = asyncio.get_running_loop()
        client = self._by_loop.get(loop)
        if client is None:
            client = self._by_loop[loop] = make()
        return client

    @property
    def current(self) -> C | None:
        """The given client, else the running loop's (None outside a loop, or before the first call)."""
        if self.given is not None:
            return self.given
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._by_loop.get(loop)

    def pop_owned(self) -> C | None:
        """The running loop's own client, forgotten here for the caller to close (never the given one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._by_loop.pop(loop, None)
