"""What a call costs: config prices, or the genai-prices catalogue for cloud models.

Costs are always computed from the usage a backend reported, never guessed. Local and
self-hosted tiers (in-process llama.cpp, vLLM, llama.cpp server, Ollama, any OpenAI-compatible
endpoint of your own) cost 0 unless the config prices them; cloud tiers are priced from
genai-prices' bundled snapshot (no network) unless the config overrides them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .config import Price, TierConfig
from .errors import ConfigError
from .types import Usage

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
    """What ``usage`` costs at ``price``; the cached prompt tokens are passed only when there are any,
    so a price written for ``cost(prompt_tokens, completion_tokens)`` keeps working."""
    if usage.cached_prompt_tokens:
        return price.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens)
    return price.cost(usage.prompt_tokens, usage.completion_tokens)


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
