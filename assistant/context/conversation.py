"""A conversation's memory: earlier turns go with the next question, and context already sent is not
sent again while the turn that carried it is still in the history and the code in it is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from models.base import Message

SUMMARY_QUESTION = "(earlier turns, summarised)"
SUMMARY_HEADING = "Summary of our conversation so far (the earlier turns, condensed):"


@dataclass(frozen=True)
class Turn:
    """One question and its answer, as the model saw them."""

    question: str
    prompt: str
    """The user message as sent: context blocks, then the question."""
    answer: str
    blocks: frozenset[str]
    """Content hashes of the context blocks in `prompt` (see `assistant.context.builder.block_hash`)."""


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

    def tokens(self, count_tokens: Callable[[str], int]) -> int:
        """What carrying every turn whole would take."""
        return sum(count_tokens(t.prompt) + count_tokens(t.answer) + 8 for t in self.turns)

    def transcript(self, keep: int) -> str:
        """The turns before the last `keep`, as text to summarise (the bare questions and answers)."""
        older = self.turns[: max(0, len(self.turns) - keep)]
        return "\n\n".join(f"Developer: {t.question}\nAssistant: {t.answer}" for t in older)

    def compact(self, summary: str, keep: int) -> None:
        """Replace the turns before the last `keep` with one turn that carries their summary: the prefix then
        stays the same from turn to turn until the next compaction."""
        kept = self.turns[len(self.turns) - keep :] if keep else []
        summary_turn = Turn(SUMMARY_QUESTION, f"{SUMMARY_HEADING}\n{summary.strip()}", "Noted.", frozenset())
        self.turns[:] = [summary_turn, *kept]

    def recall(self, budget_tokens: int, count_tokens: Callable[[str], int]) -> History:
        """The latest turns that fit `budget_tokens`, oldest first. A turn too big to go whole goes as its
        bare question and answer (its context blocks then count as not sent)."""
        chosen: list[tuple[str, str, frozenset[str]]] = []
        used = 0
        for turn in reversed(self.turns):
            answer_cost = count_tokens(turn.answer) + 8  # role markers
            whole = count_tokens(turn.prompt) + answer_cost
            if used + whole <= budget_tokens:
                chosen.append((turn.prompt, turn.answer, turn.blocks))
                used += whole
                continue
            bare = count_tokens(turn.question) + answer_cost
            if used + bare > budget_tokens:
                break
            chosen.append((turn.question, turn.answer, frozenset()))
            used += bare
        chosen.reverse()
        messages = tuple(
            m for prompt, answer, _ in chosen for m in (Message("user", prompt), Message("assistant", answer)))
        return History(messages, frozenset().union(*(blocks for _, _, blocks in chosen)), used)
