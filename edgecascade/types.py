"""The values that flow through a cascade: requests in, completions out.

These are plain dataclasses, not pydantic models, because the engine builds and reads them on
every query and its own overhead budget is a tenth of a millisecond. Configuration (read once)
is where pydantic lives (see :mod:`edgecascade.config`).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import InvalidRequestError

Role = Literal["system", "user", "assistant"]
#: "filtered": the backend withheld or cut the answer itself (OpenAI's content_filter, Anthropic's refusal)
FinishReason = Literal["stop", "length", "error", "filtered"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


MessageLike = Message | dict[str, Any]


def _check_unicode(text: str, what: str) -> None:
    """Refuse a lone surrogate (text decoded from bytes that were not UTF-8, with surrogateescape, or
    a "\ud800" escape): no backend can be sent it, and it had failed as if the API key were bad."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidRequestError(f"{what} is not valid Unicode text (a lone surrogate at character {e.start}, "
                                  "as bytes that were not UTF-8 decode to): pass UTF-8 text") from None


def to_messages(prompt: str | Sequence[MessageLike]) -> list[Message]:
    """Turn a prompt string or a list of messages into validated messages.

    Raises InvalidRequestError for an empty prompt, an unknown role or a missing user turn, so a
    bad request fails before any model is loaded or any money is spent.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequestError("the prompt is empty: pass a non-empty question")
        return [Message("user", prompt)]
    messages: list[Message] = []
    for i, m in enumerate(prompt):
        role: Any
        content: Any
        if isinstance(m, Message):  # checked as a dict is: a Message is a dataclass, not a validator
            role, content = m.role, m.content
        elif isinstance(m, Mapping):
            role, content = m.get("role"), m.get("content")
        else:
            raise InvalidRequestError(f"message {i} is a {type(m).__name__}: give each message as "
                                      '{"role": ..., "content": ...} or a Message')
        if role not in ("system", "user", "assistant"):
            raise InvalidRequestError(
                f"message {i} has role {role!r}: use 'system', 'user' or 'assistant'"
            )
        if not isinstance(content, str):
            raise InvalidRequestError(f"message {i} has no text 'content'")
        messages.append(Message(role, content))
    if not any(m.role == "user" and m.content.strip() for m in messages):
        raise InvalidRequestError("the messages hold no non-empty user turn: there is nothing to answer")
    return messages


def stop_strings(stop: str | Sequence[str] | None) -> list[str]:
    """Stop sequences as a list: one string is one stop (not its letters), None is none.

    Anything else is refused here, before a model is loaded: ``list(b"\\n")`` would be ``[10]``."""
    if stop is None or isinstance(stop, str):
        return [] if stop is None else [stop]
    if isinstance(stop, (bytes, bytearray, Mapping)) or not isinstance(stop, (Sequence, Set)):
        raise InvalidRequestError(f"stop is a {type(stop).__name__}: give a string or a list of strings")
    if not all(isinstance(s, str) for s in stop):
        bad = next(s for s in stop if not isinstance(s, str))
        raise InvalidRequestError(f"a stop sequence is {bad!r}: each must be a string")
    return list(stop)


def _is_int(value: object) -> bool:
    """A whole number given as one, numpy's too (True is not 1 here)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(slots=True)
class Request:
    """One call to one model. The engine builds it once and hands the same one to every tier."""

    messages: list[Message]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self) -> None:
        # the caller's types are checked here, not by the backend: a wrong one would otherwise pass
        # on to an upstream 400 ("every tier failed") or a TypeError after a local model generated
        if not _is_int(self.max_tokens):
            raise InvalidRequestError(f"max_tokens is {self.max_tokens!r}: it must be a whole number")
        if self.seed is not None and not _is_int(self.seed):
            raise InvalidRequestError(f"seed is {self.seed!r}: it must be a whole number, or None")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, numbers.Real):
            raise InvalidRequestError(f"temperature is {self.temperature!r}: it must be a number from 0 to 2")
        # plain Python numbers from here on: numpy's do not go into JSON bodies
        self.max_tokens, self.temperature = int(self.max_tokens), float(self.temperature)
        self.seed = None if self.seed is None else int(self.seed)
        if self.max_tokens < 1:
            raise InvalidRequestError(f"max_tokens is {self.max_tokens}: it must be at least 1")
        # checked as the engine checks a prompt: dicts become Messages, an empty list or a bad role is
        # refused by name (they had failed later as "'dict' object has no attribute 'content'")
        self.messages = to_messages(self.messages)
        for i, m in enumerate(self.messages):
            _check_unicode(m.content, f"message {i} ({m.role})")
        if not 0 <= self.temperature <= 2:  # nan too; OpenAI-style servers refuse more than 2 mid-query
            raise InvalidRequestError(f"temperature is {self.temperature}: it must be a number from 0 to 2")
        self.stop = stop_strings(self.stop)
        for i, stop in enumerate(self.stop):
            _check_unicode(stop, f"stop string {i}")
        if any(not s for s in self.stop):  # an empty stop string matches at once: every answer would be empty
            raise InvalidRequestError("a stop string is empty: every answer would stop before its first word; "
                                      "give non-empty stop strings, or none")

    @property
    def question(self) -> str:
        """The last user message: what the checks, the domain and the cross-check read (a
        conversation may end with an assistant turn or a prefill after it)."""
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")


#: a logprob at or below this is a placeholder, not a probability: OpenAI's -9999 for a token outside
#: the top 20 (vLLM clamps -inf to it), llama.cpp server's FLT_LOWEST for one that underflowed, a
#: user's -1e308; it is read as this floor (providers and `calibrate --traces` alike)
LOGPROB_FLOOR = -100.0


@dataclass(slots=True)
class TokenLogprobs:
    """Per-token log-probabilities of one generated answer, aligned one-to-one with its tokens.

    Arrays rather than per-token objects, so features are computed with a few vectorised numpy
    calls. ``top_logprobs[i]`` holds the k best alternatives at step i (best first) and
    ``top_tokens[i]`` their text.
    """

    tokens: list[str]
    logprobs: np.ndarray  # shape (n,), float64
    top_tokens: list[list[str]]
    top_logprobs: np.ndarray  # shape (n, k), float64; k may be 0

    def __len__(self) -> int:
        return len(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": list(self.tokens),
            "logprobs": [float(x) for x in self.logprobs],
            # [token, logprob] pairs, best first: not a {token: logprob} object, where alternatives
            # that print alike (byte tokens that each decode to "\ufffd") collapsed into one entry,
            # and `calibrate` then read other margins and entropies than the engine computed
            "top": [
                [[tok, float(x)] for tok, x in zip(toks, lps)]
                for toks, lps in zip(self.top_tokens, self.top_logprobs)
            ],
        }


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: False when the backend sent no token counts: they read 0 here, and a price applied to them
    #: under-reports the cost (a Result says which tiers did so)
    reported: bool = True
    #: of ``prompt_tokens``, those the backend served from its prompt cache (OpenAI's
    #: ``prompt_tokens_details.cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``): billed at a
    #: discount, so a cost that counted them at the full input price would read too high
    cached_prompt_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Timings:
    """Wall-clock timings measured by the provider, in seconds."""

    total_s: float = 0.0
    first_token_s: float | None = None
    load_s: float = 0.0  # time spent loading the model for this call (0 once it is loaded)

    @property
    def decode_s(self) -> float:
        start = self.first_token_s if self.first_token_s is not None else 0.0
        return max(self.total_s - self.load_s - start, 0.0)


@dataclass(slots=True)
class Completion:
    """What one model answered, in one shape for every backend."""

    text: str
    model: str
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    logprobs: TokenLogprobs | None = None
    #: calls made for this answer before it, retried after failures a provider may still bill (a
    #: timeout, a broken or cut body): their cost is not in ``usage``, so the answer's cost is unknown
    earlier_maybe_billed: int = 0

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed: the tokens after the first over the time after it. None when the time to the
        first token is not known (an answer read whole over HTTP): the whole call's time holds the
        network, the queue and the prompt's reading, and would read as a slow model."""
        d = self.timings.decode_s
        if self.timings.first_token_s is None or d <= 0 or self.usage.completion_tokens < 2:
            return None
        # the first token is counted in time-to-first-token, so decode speed covers the rest
        return (self.usage.completion_tokens - 1) / d


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of a streamed answer."""

    text: str
    finish_reason: FinishReason | None = None
