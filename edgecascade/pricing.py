"""What a call costs: config prices, or the genai-prices catalogue for cloud models.

Costs are always computed from the usage a backend reported, never guessed. Local and
self-hosted tiers (in-process llama.cpp, vLLM, llama.cpp server, Ollama, any OpenAI-compatible
endpoint of your own) cost 0 unless the config prices them; cloud tiers are priced from
genai-prices' bundled snapshot (no network) unless the config overrides them.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from typing import Protocol

from .config import Price, TierConfig
from .errors import ConfigError
from .types import Usage

log = logging.getLogger(__name__)

#: edgecascade provider name -> genai-prices provider id, for the providers that bill per token
CLOUD_PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "groq": "groq", "together": "together",
    "openrouter": "openrouter", "deepseek": "deepseek",
}


class Pricing(Protocol):
    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        """Dollars for one call; ``cached_prompt_tokens`` of the prompt were served from the backend's cache."""
        ...


def usage_cost(price: Pricing, usage: Usage) -> float:
    """What ``usage`` costs at ``price``. A price written before cached prompt tokens were passed,
    ``cost(prompt_tokens, completion_tokens)``, keeps working: it is called as it was written, and
    costs its cached tokens at its full input price (said once)."""
    if usage.cached_prompt_tokens and _takes_cached(type(price)):
        return price.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens)
    return price.cost(usage.prompt_tokens, usage.completion_tokens)


@functools.cache
def _takes_cached(kind: type) -> bool:
    try:
        params = inspect.signature(getattr(kind, "cost")).parameters  # noqa: B009 - any class with a cost
    except (TypeError, ValueError):  # a builtin or C implementation: assume the current protocol
        return True
    if "cached_prompt_tokens" in params or any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        return True
    if len(params) >= 4:  # self, prompt, completion, cached
        return True
    log.warning("%s.cost takes no cached_prompt_tokens: prompt tokens a backend served from its cache are "
                "costed at its full input price", kind.__name__)
    return False


@dataclass(frozen=True)
class CatalogPrice:
    """Prices from genai-prices for one (provider, model), evaluated per call (tiered prices hold)."""

    provider_id: str
    model: str

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        from genai_prices import Usage, calc_price

        # genai-prices counts cache reads inside input_tokens and prices them at the model's cache price
        cached = min(max(cached_prompt_tokens, 0), prompt_tokens)
        r = calc_price(Usage(input_tokens=prompt_tokens, cache_read_tokens=cached or None,
                             output_tokens=completion_tokens), model_ref=self.model, provider_id=self.provider_id)
        return float(r.total_price)


def resolve_price(tier: TierConfig) -> Pricing:
    """The tier's configured price; else the catalogue price of a cloud model; else free (local)."""
    if tier.price is not None:
        return tier.price
    provider_id = CLOUD_PROVIDERS.get(tier.provider)
    if provider_id is None:
        return Price()
    try:
        import genai_prices  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"tier {tier.display_name!r} is a {tier.provider} tier without a [tiers.price]: install genai-prices "
            "(pip install 'edgecascade[cloud]') or set input_per_mtok / output_per_mtok"
        ) from None
    price = CatalogPrice(provider_id, tier.model)
    try:
        price.cost(1, 1)
    except Exception as e:  # genai-prices raises LookupError-like errors for unknown models
        raise ConfigError(
            f"tier {tier.display_name!r}: genai-prices has no price for {provider_id}/{tier.model} ({e}): set "
            "[tiers.price] input_per_mtok and output_per_mtok for this tier"
        ) from None
    return price
