"""edgecascade: answer every LLM request with the cheapest model that is good enough.

The public API is this module's ``__all__``; everything else is private and may change.
"""

from .config import AcceptRule, CascadeConfig, CascadeSettings, Price, TierConfig, load_config
from .engine import Cascade, Tier
from .errors import (
    AllTiersFailedError,
    ConfigError,
    ContextLengthError,
    EdgecascadeError,
    InvalidRequestError,
    ModelError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVerificationError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UpstreamError,
)
from .providers import Capabilities, Provider, ScriptedProvider, ScriptedReply
from .quality import Check, Decision, LogprobFeatures
from .result import Attempt, Result
from .types import Completion, Delta, Message, Request, Timings, TokenLogprobs, Usage

__version__ = "0.1.0"

__all__ = [
    "AcceptRule",
    "AllTiersFailedError",
    "Attempt",
    "Capabilities",
    "Cascade",
    "CascadeConfig",
    "CascadeSettings",
    "Check",
    "Completion",
    "ConfigError",
    "ContextLengthError",
    "Decision",
    "Delta",
    "EdgecascadeError",
    "InvalidRequestError",
    "LogprobFeatures",
    "Message",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelVerificationError",
    "Price",
    "Provider",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "Request",
    "Result",
    "ScriptedProvider",
    "ScriptedReply",
    "Tier",
    "TierConfig",
    "Timings",
    "TokenLogprobs",
    "UpstreamError",
    "Usage",
    "__version__",
    "load_config",
]
