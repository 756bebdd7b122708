"""edgecascade: answer every LLM request with the cheapest model that is good enough.

The public API is this module's ``__all__``; everything else is private and may change.
"""

from .config import AcceptRule, CascadeConfig, CascadeSettings, Price, TierConfig, load_config
from .engine import Cascade, Tier
from .errors import (
    AllTiersFailedError,
    AuthenticationError,
    ConfigError,
    ContextLengthError,
    CooldownError,
    EdgecascadeError,
    InvalidRequestError,
    MalformedResponseError,
    ModelError,
    ModelFileNotFoundError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVerificationError,
    PoolTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    QuotaExceededError,
    RateLimitedError,
    TierRejected,
    UnknownModelError,
    UnknownModelNameError,
    UpstreamError,
)
from .providers import Capabilities, Provider, ResilientProvider, ScriptedProvider, ScriptedReply, Timeouts
from .quality import Check, Decision, LogprobFeatures
from .result import Attempt, Result
from .types import Completion, Delta, Message, Request, Timings, TokenLogprobs, Usage

__version__ = "0.1.0"

__all__ = [
    "AcceptRule",
    "AllTiersFailedError",
    "Attempt",
    "AuthenticationError",
    "Capabilities",
    "Cascade",
    "CascadeConfig",
    "CascadeSettings",
    "Check",
    "Completion",
    "ConfigError",
    "ContextLengthError",
    "CooldownError",
    "Decision",
    "Delta",
    "EdgecascadeError",
    "InvalidRequestError",
    "LogprobFeatures",
    "MalformedResponseError",
    "Message",
    "ModelError",
    "ModelFileNotFoundError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelVerificationError",
    "PoolTimeoutError",
    "Price",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "QuotaExceededError",
    "RateLimitedError",
    "Request",
    "ResilientProvider",
    "Result",
    "ScriptedProvider",
    "ScriptedReply",
    "Tier",
    "TierConfig",
    "TierRejected",
    "Timeouts",
    "Timings",
    "TokenLogprobs",
    "UnknownModelError",
    "UnknownModelNameError",
    "UpstreamError",
    "Usage",
    "__version__",
    "load_config",
]
