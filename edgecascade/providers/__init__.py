"""Backends. One file per backend; ``build_provider`` maps a tier's config to one."""

from __future__ import annotations

from ..config import TierConfig
from .base import Capabilities, Provider
from .scripted import ScriptedProvider, ScriptedReply


def build_provider(tier: TierConfig) -> Provider:
    """Construct (not load) the provider for a tier; a missing model fails here, loudly."""
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
    raise ValueError(f"unknown provider {tier.provider!r}")  # unreachable: the config validates it


__all__ = ["Capabilities", "Provider", "ScriptedProvider", "ScriptedReply", "build_provider"]
