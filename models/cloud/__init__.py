"""The cloud tiers: Groq, Gemini and Anthropic (Sonnet) behind the `Backend` interface.

Each tier streams through its provider's official SDK with the SDK's own retries turned off (every
attempt is the caller's, see models/retry.py), normalizes usage as models/base.py defines it, and
turns SDK exceptions into one-line `ModelError`s that never contain the API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.cloud.anthropic_tier import AnthropicTier
from models.cloud.common import DEFAULT_TIMEOUT, require_key
from models.cloud.gemini_tier import GeminiTier
from models.cloud.groq_tier import GroqTier

if TYPE_CHECKING:
    from models.tier_registry import BuildContext, TierSpec

PROVIDERS = {"anthropic": AnthropicTier, "gemini": GeminiTier, "groq": GroqTier}
"""The tier class of each cloud provider kind (models/tier_registry.py)."""

__all__ = ["DEFAULT_TIMEOUT", "PROVIDERS", "AnthropicTier", "GeminiTier", "GroqTier", "from_spec"]


def from_spec(spec: TierSpec, context: BuildContext) -> AnthropicTier | GeminiTier | GroqTier:
    """The backend of an anthropic, gemini or groq tier spec (models/tier_registry.py's builder).

    The key is the settings' one for the tier, else the first of the spec's `api_key_env` that is set;
    ModelUnavailable names the variable when there is none.
    """
    cls = PROVIDERS[spec.provider]
    key = require_key(cls.label, cls.provider, context.api_keys.get(spec.name), spec.api_key_env or cls.key_env)
    return cls(spec.model, key, spec.base_url, context.timeout or DEFAULT_TIMEOUT)
