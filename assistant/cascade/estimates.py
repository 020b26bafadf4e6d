"""What one tier's call would carry and cost before it is made: the history it gets, the prompt tokens it
is billed for, and the most it can cost (what budgets, the consent prompt and the dry run check)."""

from __future__ import annotations

from models.base import Backend, GenerationRequest, capabilities_of
from models.tier_registry import TierSpec


def history_budget(spec: TierSpec, backend: Backend) -> int:
    """Tokens of earlier turns a tier gets: its budget, and never more than a quarter of a small window."""
    budget = spec.budgets.history_tokens
    window = capabilities_of(backend).context_window
    return budget if window is None else min(budget, window // 4)


def estimate(spec: TierSpec, backend: Backend, request: GenerationRequest) -> float:
    """The most `request` can cost on a tier: what the budget checks, the consent prompt and the dry run show."""
    return spec.max_cost_usd(prompt_tokens(backend, request), request.max_tokens)


def prompt_tokens(backend: Backend, request: GenerationRequest) -> int:
    """Input tokens a request will be billed for, with room for the chat template's framing."""
    return sum(backend.count_tokens(m.content) + 8 for m in request.messages)
