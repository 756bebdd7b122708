"""One exception tree for everything edgecascade raises.

Every backend translates its own failures into these once, at its boundary, so callers catch one
family and the engine can tell "move on to the next tier" from "stop, the request is wrong"::

    EdgecascadeError
     +-- ConfigError                 a config file or option is wrong (names the key and the file)
     +-- InvalidRequestError         the request itself is wrong (empty prompt, bad role, ...)
     +-- ModelError                  a local model file
     |    +-- ModelNotFoundError     no such registry name or path; not pulled yet
     |         +-- UnknownModelNameError  no registry model has this name (also a ConfigError)
     |         +-- ModelFileNotFoundError a model path that names no file (also a ConfigError)
     |    +-- ModelVerificationError size / sha256 / GGUF magic do not match: never used
     |    +-- ModelLoadError         the runtime could not load it (or is not installed)
     +-- ProviderError               one tier failed to answer; the cascade moves on
     |    +-- ContextLengthError     the prompt does not fit this model's context window
     |    +-- AuthenticationError    401/403: missing or wrong API key (never retried)
     |    +-- UnknownModelError      the endpoint does not serve this model (never retried)
     |    +-- ProviderTimeoutError   connect / read / total deadline passed (retried)
     |         +-- PoolTimeoutError  no free connection in this process's pool: never sent, and no
     |                               fault of the endpoint's (retried; its breaker is not touched)
     |    +-- RateLimitedError       429; carries retry_after (seconds) when the server said so (retried)
     |    +-- CooldownError          the endpoint failed repeatedly and is skipped until it cools down
     |    +-- UpstreamError          the server failed: 5xx (retried), or ...
     |         +-- ProviderConnectionError  refused, unreachable, offline (retried)
     |         +-- MalformedResponseError   not the documented wire format, or cut off mid-way
     +-- AllTiersFailedError         no tier gave an answer that can be returned: each failed, or (with
                                     on_all_rejected = "error") was rejected (a TierRejected); lists
                                     each, with every attempt and what it cost

Messages say what happened and what to do next. They never contain API keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .money import usd


class EdgecascadeError(Exception):
    """Base class of every error edgecascade raises on purpose."""


class ConfigError(EdgecascadeError):
    """A configuration file or option is invalid."""


class OneKindError(ConfigError):
    """The labelled drafts to fit a calibrator on are all right or all wrong: it learns from both."""


class InvalidRequestError(EdgecascadeError):
    """The request cannot be answered by any tier as it stands."""


class ModelError(EdgecascadeError):
    """A local model cannot be found, verified or loaded."""


class ModelNotFoundError(ModelError):
    pass


class UnknownModelNameError(ModelNotFoundError, ConfigError):
    """No registry model has this name: a typo in a config or an option, so also a ConfigError (exit 2)."""


class ModelFileNotFoundError(ModelNotFoundError, ConfigError):
    """A model given by path names no file: a mistake in a config or an option, as a mistyped name is."""


class ModelVerificationError(ModelError):
    pass


class ModelLoadError(ModelError):
    pass


class ProviderError(EdgecascadeError):
    """One tier failed to produce an answer. The cascade records it and tries the next tier."""

    #: a short machine-readable kind, used in Result reasons ("timeout", "rate_limited", ...)
    kind: str = "provider_error"
    #: calls before this failure, retried, that a provider may still bill (see MAYBE_BILLED)
    earlier_maybe_billed: int = 0
    #: False when the request never left this process or never reached the server (no free pooled
    #: connection, a connection never made): nothing was generated, so nothing can be billed
    sent: bool = True


#: failures after which a provider may still bill the call: the server may have generated the answer
#: (a timeout), sent it broken (a malformed body), or cut it off mid-stream (an upstream error); a
#: refused request (auth, rate limit, context length) or a connection never made is not billed
MAYBE_BILLED = frozenset({"timeout", "malformed", "upstream"})


def may_be_billed(e: BaseException) -> bool:
    """Whether a failed call may still be billed: its kind is one of MAYBE_BILLED, the request was
    sent, and the server did not refuse it (a 3xx or 4xx answer, or a check made before sending
    that reports one, is a refusal: no API bills a request it refused)."""
    if not isinstance(e, ProviderError) or not e.sent or e.kind not in MAYBE_BILLED:
        return False
    status = getattr(e, "status_code", None)
    return status is None or not 300 <= status < 500


class ContextLengthError(ProviderError):
    kind = "context_length"

    def __init__(self, message: str, *, prompt_tokens: int | None = None, context: int | None = None):
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.context = context


class AuthenticationError(ProviderError):
    kind = "auth"


class UnknownModelError(ProviderError):
    kind = "unknown_model"


class ProviderTimeoutError(ProviderError):
    kind = "timeout"


class PoolTimeoutError(ProviderTimeoutError):
    """Every connection of this process's pool to the endpoint was busy for the whole wait: too many
    calls in flight at once here. The request was never sent, so it is not billed and does not count
    against the endpoint's health."""

    sent = False


class CooldownError(ProviderError):
    kind = "cooldown"


class RateLimitedError(ProviderError):
    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceededError(ProviderError):
    """The account behind the key is out of credits or past its spend limit (OpenAI's 429
    ``insufficient_quota``): unlike a rate limit, waiting does not help, so it is never retried."""

    kind = "quota"


class UpstreamError(ProviderError):
    kind = "upstream"

    def __init__(self, message: str, *, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status_code = status_code
        #: seconds the server asked to wait before trying again (``Retry-After`` on a 503, or on
        #: Anthropic's 529 "overloaded"); None when it said nothing
        self.retry_after = retry_after


class ProviderConnectionError(UpstreamError):
    kind = "connection"


class MalformedResponseError(UpstreamError):
    kind = "malformed"

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = True):
        super().__init__(message, status_code=status_code)
        #: False for what the endpoint would send again (a web page where the API should be: a wrong
        #: base_url), which a retry cannot mend; garbled or cut answers may be one-offs
        self.retryable = retryable


class TierRejected(Exception):
    """A tier answered, but its answer did not meet its rule (listed in AllTiersFailedError when
    ``on_all_rejected = "error"``)."""


class AllTiersFailedError(EdgecascadeError):
    """No tier gave an answer that can be returned; ``failures`` holds (tier name, exception) for
    each tier tried: the provider's own error (AuthenticationError, RateLimitedError with its
    retry_after, ...) or, for a tier that answered but was rejected, a TierRejected."""

    def __init__(self, failures: Sequence[tuple[str, BaseException]], *, attempts: Sequence[Any] = (),
                 cost: float = 0.0, cost_unknown: Sequence[str] = (), latency_ms: float = 0.0):
        self.failures = list(failures)
        #: every tier tried (:class:`edgecascade.result.Attempt`: its draft, tokens, time and cost), so
        #: nothing spent is lost with the answer
        self.attempts = list(attempts)
        #: dollars spent on those attempts: a rejected answer from a priced tier still costs
        self.cost = cost
        #: the priced tiers whose call failed in a way a provider may still bill: ``cost`` does not
        #: hold what they cost, which is not known
        self.cost_unknown = list(cost_unknown)
        #: the query's time, from the first tier to the error
        self.latency_ms = latency_ms
        answered = [isinstance(err, TierRejected) for _, err in self.failures]
        head = ("no tier's answer met its rule" if answered and all(answered) else
                "no tier gave an answer that met its rule" if any(answered) else
                "no tier of the cascade gave an answer")
        spent = f"{usd(cost)} spent on them" if cost > 0 else ""
        if self.cost_unknown:
            spent += ("; " if spent else "") + (f"cost not known for {', '.join(self.cost_unknown)}: a call a "
                                                "provider may still bill")
        spent = f" ({spent})" if spent else ""
        lines = [f"  - tier {name!r}: {type(err).__name__}: {err}" for name, err in self.failures]
        todo = ("\n  to get the last answer anyway (flagged accepted = false), set [cascade] on_all_rejected = "
                '"last"; to keep more drafts, lower the tiers\' min_confidence or quality_target'
                if any(answered) else "")
        super().__init__(f"{head}{spent}:\n" + "\n".join(lines) + todo)

    def __reduce__(self) -> tuple[Any, ...]:
        # the constructor does not take the message: pickling and copying build it again from the fields
        import functools

        return (functools.partial(self.__class__, attempts=self.attempts, cost=self.cost,
                                  cost_unknown=self.cost_unknown, latency_ms=self.latency_ms), (self.failures,))
