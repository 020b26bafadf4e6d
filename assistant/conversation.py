"""A conversation's memory: earlier turns go with the next question, and context already sent is not
sent again while the turn that carried it is still in the history and the code in it is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from models.base import Message

HISTORY_BUDGETS: dict[str, int] = {"local": 512, "groq": 3000, "gemini": 6000, "sonnet": 6000}
"""Tokens of earlier turns each tier gets; the local model's window is small, so it gets the last one or so."""


@dataclass(frozen=True)
class Turn:
    """One question and its answer, as the model saw them."""

    question: str
    prompt: str
    """The user message as sent: context blocks, then the question."""
    answer: str
    blocks: frozenset[str]
    """Content hashes of the context blocks in `prompt` (see `assistant.context.block_hash`)."""


@dataclass(frozen=True)
class History:
    """The part of a conversation that fits one tier's history budget."""

    messages: tuple[Message, ...] = ()
    blocks: frozenset[str] = frozenset()
    """Context blocks those messages already carry: the next context leaves them out."""
    tokens: int = 0


@dataclass
class Conversation:
    """The turns of one session, newest last."""

    turns: list[Turn] = field(default_factory=list)

    def add(self, turn: Turn) -> None:
        """Remember a finished turn."""
        self.turns.append(turn)

    def clear(self) -> None:
        """Forget every turn: the next question starts afresh."""
        self.turns.clear()

    def recall(self, budget_tokens: int, count_tokens: Callable[[str], int]) -> History:
        """The latest whole turns that fit `budget_tokens`, oldest first."""
        chosen: list[Turn] = []
        used = 0
        for turn in reversed(self.turns):
            cost = count_tokens(turn.prompt) + count_tokens(turn.answer) + 8  # role markers
            if used + cost > budget_tokens:
                break
            chosen.append(turn)
            used += cost
        chosen.reverse()
        messages = tuple(m for t in chosen for m in (Message("user", t.prompt), Message("assistant", t.answer)))
        return History(messages, frozenset().union(*(t.blocks for t in chosen)), used)
