"""Is this answer good enough? Features -> checks -> a decision with its reason."""

from .checks import Check
from .features import LogprobFeatures, logprob_features
from .policy import Decision, decide

__all__ = ["Check", "Decision", "LogprobFeatures", "decide", "logprob_features"]
