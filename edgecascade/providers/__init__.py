"""Backends. One file per backend; ``build_provider`` maps a tier's config to one."""

from __future__ import annotations

import os

from ..config import TierConfig
from ..errors import ConfigError
from .base import Capabilities, Provider, Timeouts
from .resilient import CooldownPolicy, ResilientProvider, RetryPolicy
from .scripted import ScriptedProvider, ScriptedReply


def _api_key(tier: TierConfig, default_env: str | None) -> tuple[str | None, str | None]:
    """(key, the variable it came from): the config names the variable, never the key."""
    env = tier.api_key_env or default_env
    return (os.environ.get(env) or None, env) if env else (None, None)


def build_provider(tier: TierConfig) -> Provider:
    """Construct (not load, not connect) the provider for a tier; a missing local model fails here.

    Remote tiers are wrapped in :class:`ResilientProvider` (retries, total deadline, the endpoint's
    cooldown); in-process tiers are not (nothing to retry, nothing to cool down).
    """
    if tier.provider == "llamacpp":
        from ..models import resolve
        from .llamacpp import LlamaCppProvider

        resolved = resolve(tier.model)
        manifest = resolved.manifest
        return LlamaCppProvider(
            path=resolved.path,
            model=resolved.name,
            n_ctx=tier.n_ctx,
            n_threads=tier.n_threads,
            n_gpu_layers=tier.n_gpu_layers,
            top_logprobs=tier.top_logprobs,
            chat_format=manifest.chat_format if manifest else None,
            context_length=manifest.context_length if manifest else None,
            identity=f"sha256:{manifest.sha256}" if manifest else "",
        )
    timeouts = Timeouts(tier.timeout.connect, tier.timeout.read, tier.timeout.total)
    inner: Provider
    if tier.provider == "ollama":
        from .ollama import OllamaProvider

        host = tier.base_url or os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
        inner = OllamaProvider(host, tier.model, keep_alive=tier.keep_alive, top_logprobs=tier.top_logprobs,
                               timeouts=timeouts)
        endpoint = host
    elif tier.provider == "anthropic":
        from .anthropic import AnthropicProvider

        key, env = _api_key(tier, "ANTHROPIC_API_KEY")
        base = tier.base_url or "https://api.anthropic.com"
        inner = AnthropicProvider(tier.model, api_key=key, api_key_env=env, base_url=base, timeouts=timeouts)
        endpoint = base
    else:
        from .openai_compat import PRESETS, OpenAICompatProvider

        preset = PRESETS[tier.provider]
        base = tier.base_url or preset.base_url
        if not base:
            raise ConfigError(f"tier {tier.display_name!r} ({tier.provider}) needs a base_url, e.g. "
                              '"http://127.0.0.1:8000/v1"')
        key, env = _api_key(tier, preset.api_key_env)
        inner = OpenAICompatProvider(base, tier.model, api_key=key, api_key_env=env,
                                     capabilities=preset.capabilities, timeouts=timeouts,
                                     top_logprobs=tier.top_logprobs)
        endpoint = base
    return ResilientProvider(
        inner, endpoint=endpoint,
        retry=RetryPolicy(tier.retry.attempts, tier.retry.backoff_s, tier.retry.max_backoff_s),
        cooldown=CooldownPolicy(tier.cooldown.failures, tier.cooldown.seconds), timeouts=timeouts,
    )


__all__ = ["Capabilities", "Provider", "ResilientProvider", "ScriptedProvider", "ScriptedReply", "Timeouts",
           "build_provider"]
