"""What a call costs: config prices, or the genai-prices catalogue for cloud models.

Costs are always computed from the usage a backend reported, never guessed. Local and
self-hosted tiers (in-process llama.cpp, vLLM, llama.cpp server, Ollama, any OpenAI-compatible
endpoint of your own) cost 0 unless the config prices them; cloud tiers are priced from
genai-prices' bundled snapshot (no network) unless the config overrides them.
"""

from __future__ import annotations

import inspect
import logging
import sys
from dataclasses import dataclass
from typing import Any, Protocol

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
    cached = usage.cached_prompt_tokens
    how = _cached_call(price) if cached else None
    if how == "keyword":
        return price.cost(usage.prompt_tokens, usage.completion_tokens, cached_prompt_tokens=cached)
    if how == "positional":
        return price.cost(usage.prompt_tokens, usage.completion_tokens, cached)
    return price.cost(usage.prompt_tokens, usage.completion_tokens)


def is_priced(price: Pricing) -> bool:
    """Whether a tier's calls cost anything: a price that cannot say counts as priced."""
    try:
        return usage_cost(price, Usage(1_000_000, 1_000_000)) > 0
    except Exception:  # noqa: BLE001 - a price of the user's own that fails here fails loudly when used
        return True


def _cached_call(price: Pricing) -> str | None:
    """How ``price.cost`` takes cached prompt tokens: "keyword", "positional", or None (it does not).
    Read from the bound method (no ``self``), so a keyword-only option or ``**kwargs`` is not taken for
    a third positional parameter, and a ``cost`` set on the instance is read too."""
    return _how_cached(price.cost, type(price).__name__)


_warned: set[str] = set()


def _how_cached(cost: Any, owner: str) -> str | None:
    try:
        params = list(inspect.signature(cost).parameters.values())
    except (TypeError, ValueError):  # a builtin or C implementation: assume the current protocol
        return "positional"
    named = next((p for p in params if p.name == "cached_prompt_tokens"), None)
    if named is not None and named.kind is not named.POSITIONAL_ONLY and named.kind is not named.VAR_KEYWORD:
        return "keyword"
    if any(p.kind is p.VAR_KEYWORD for p in params):  # **kwargs: passing it by name cannot fail
        return "keyword"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in params):  # prompt, completion, cached
        return "positional"
    if owner not in _warned:
        _warned.add(owner)
        log.warning("%s.cost takes no cached_prompt_tokens: prompt tokens a backend served from its cache are "
                    "costed at its full input price", owner)
    return None


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
        fix = ("install genai-prices (pip install 'edgecascade[cloud]') or set input_per_mtok / output_per_mtok"
               if sys.version_info >= (3, 11) else "the genai-prices catalogue needs Python 3.11 or newer, so on "
               "this Python set input_per_mtok / output_per_mtok")
        raise ConfigError(f"tier {tier.display_name!r} is a {tier.provider} tier without a [tiers.price]: "
                          f"{fix}") from None
    price = CatalogPrice(provider_id, tier.model)
    try:
        price.cost(1, 1)
    except Exception as e:  # genai-prices raises LookupError-like errors for unknown models
        raise ConfigError(
            f"tier {tier.display_name!r}: genai-prices has no price for {provider_id}/{tier.model} ({e}): set "
            "[tiers.price] input_per_mtok and output_per_mtok for this tier"
        ) from None
    return price
