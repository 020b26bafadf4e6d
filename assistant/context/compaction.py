"""Compaction: a long conversation's earlier turns summarised by the cheapest tier that can, so the history
stays small and its cached prefix stays the same from turn to turn (the TUI's `/compact`, or by itself when
the history passes `compact_at` of the start tier's history budget)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.context.conversation import Conversation
from models.base import Backend, GenerationRequest, GenerationResult, Message, ModelUnavailable, approx_tokens

_PROMPT = ("You condense a conversation between a developer and a coding assistant into the assistant's memory. "
           "Keep what later questions need: decisions, file paths, function and class names, errors, code the "
           "developer accepted, open questions. Plain text, at most {words} words.")
SUMMARY_TOKENS = 400
"""Most tokens a summary may take."""
KEEP_TURNS = 1
"""The latest turns left as they are."""


@dataclass(frozen=True)
class Compacted:
    """What a compaction did."""

    tier: str
    result: GenerationResult
    turns: int
    """How many turns the summary replaced."""


def should_compact(conversation: Conversation, history_budget: int, share: float) -> bool:
    """Whether the carried history has passed `share` of the history budget (and there is something to fold)."""
    if len(conversation.turns) <= KEEP_TURNS or share <= 0:
        return False
    return conversation.tokens(approx_tokens) > share * history_budget


def compact(
    conversation: Conversation, order: Sequence[str], backend_of: Callable[[str], Backend],
) -> Compacted | None:
    """Summarise the turns before the last `KEEP_TURNS` with the first tier of `order` (cheapest first) that is
    available, and fold them into one turn; None when there is nothing to fold or no tier. Raises the tier's
    ModelError when its call fails (the conversation is left as it was)."""
    transcript = conversation.transcript(KEEP_TURNS)
    if not transcript:
        return None
    for tier in order:
        try:
            backend = backend_of(tier)
        except ModelUnavailable:
            continue
        request = GenerationRequest(
            messages=(Message("system", _PROMPT.format(words=SUMMARY_TOKENS * 3 // 4)), Message("user", transcript)),
            max_tokens=SUMMARY_TOKENS, temperature=0.0)
        result = backend.generate(request)
        folded = len(conversation.turns) - KEEP_TURNS
        if result.text.strip():
            conversation.compact(result.text, KEEP_TURNS)
        return Compacted(tier, result, folded)
    return None
