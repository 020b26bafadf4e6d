"""The cloud tiers: Groq, Gemini and Anthropic (Sonnet) behind the `Backend` interface.

Each tier streams through its provider's official SDK with the SDK's own retries turned off (every
attempt is the caller's, see models/retry.py), normalizes usage as models/base.py defines it, and
turns SDK exceptions into one-line `ModelError`s that never contain the API key.
"""

from __future__ import annotations

from models.cloud.anthropic_tier import AnthropicTier
from models.cloud.common import DEFAULT_TIMEOUT
from models.cloud.gemini_tier import GeminiTier
from models.cloud.groq_tier import GroqTier

TIERS = {"groq": GroqTier, "gemini": GeminiTier, "sonnet": AnthropicTier}
"""The tier class of each cloud tier name."""

__all__ = ["DEFAULT_TIMEOUT", "TIERS", "AnthropicTier", "GeminiTier", "GroqTier", "create"]


def create(
    tier: str,
    model: str | None = None,
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AnthropicTier | GeminiTier | GroqTier:
    """The backend for cloud tier `tier` (groq, gemini, sonnet); `model` defaults to prices.toml's.

    Raises ModelUnavailable when no API key is given or set in the environment, ValueError for an
    unknown tier.
    """
    try:
        cls = TIERS[tier]
    except KeyError:
        raise ValueError(f"unknown cloud tier '{tier}' (cloud tiers: {', '.join(TIERS)})") from None
    if model is None:
        from models import pricing

        model = pricing.default_model(tier)
    return cls(model, api_key, base_url, timeout)
