"""Backends. One file per backend; ``build_provider`` maps a tier's config to one."""

from __future__ import annotations

import dataclasses
import os

from ..config import TierConfig
from ..errors import ConfigError
from ._common import lookup_api_key, safe_url
from .base import Capabilities, Provider, Timeouts
from .resilient import CooldownPolicy, ResilientProvider, RetryPolicy
from .scripted import ScriptedProvider, ScriptedReply


def _api_key(tier: TierConfig, default_env: str | None) -> tuple[str | None, str | None]:
    """(key, the variable it came from): the config names the variable, never the key.

    The tier's ``api_key_env``, else the backend's conventional variable; the one lookup
    (:func:`~edgecascade.providers._common.lookup_api_key`) every remote provider's key goes through.
    """
    env = tier.api_key_env or default_env
    return lookup_api_key(env), env


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

        host = tier.base_url or os.environ.get("OLLAMA_HOST", "").strip() or "http://127.0.0.1:11434"
        key, env = _api_key(tier, "OLLAMA_API_KEY")
        inner = OllamaProvider(host, tier.model, keep_alive=tier.keep_alive, top_logprobs=tier.top_logprobs,
                               timeouts=timeouts, api_key=key, api_key_env=env)
        endpoint = safe_url(host)
    elif tier.provider == "anthropic":
        from .anthropic import AnthropicProvider

        key, env = _api_key(tier, "ANTHROPIC_API_KEY")
        base = tier.base_url or "https://api.anthropic.com"
        inner = AnthropicProvider(tier.model, api_key=key, api_key_env=env, base_url=base, timeouts=timeouts)
        endpoint = safe_url(base)
    else:
        from .openai_compat import PRESETS, OpenAICompatProvider

        preset = PRESETS[tier.provider]
        base = tier.base_url or preset.base_url
        if not base:
            raise ConfigError(f"tier {tier.display_name!r} ({tier.provider}) needs a base_url, e.g. "
                              '"http://127.0.0.1:8000/v1"')
        key, env = _api_key(tier, preset.api_key_env)
        capabilities = preset.capabilities
        # a tier may say whether its server returns logprobs (the generic preset assumes not; a vendor
        # preset may be wrong for one deployment); absent (None), the preset decides. top_logprobs alone
        # never turns them on: it defaults to 5 for every tier.
        logprobs = getattr(tier, "logprobs", None)
        if isinstance(logprobs, bool):
            capabilities = dataclasses.replace(capabilities, logprobs=logprobs)
        inner = OpenAICompatProvider(base, tier.model, api_key=key, api_key_env=env,
                                     capabilities=capabilities, timeouts=timeouts,
                                     top_logprobs=tier.top_logprobs, max_tokens_field=preset.max_tokens_field,
                                     logprobs_as_count=preset.logprobs_as_count,
                                     requires_key=preset.requires_key(base))
        endpoint = safe_url(base)
    return ResilientProvider(
        inner, endpoint=endpoint,
        retry=RetryPolicy(tier.retry.attempts, tier.retry.backoff_s, tier.retry.max_backoff_s),
        cooldown=CooldownPolicy(tier.cooldown.failures, tier.cooldown.seconds), timeouts=timeouts,
    )


__all__ = ["Capabilities", "Provider", "ResilientProvider", "ScriptedProvider", "ScriptedReply", "Timeouts",
           "build_provider"]
