"""The shape of an answer by the question's kind and difficulty: how long it may be, how it should be written,
and how hard a model that thinks should think. Output and thinking are the dear tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DIFFICULTY_FACTOR = {"simple": 0.6, "medium": 1.0, "complex": 1.5}
"""A kind's output limit is set for a medium question; simpler and harder ones scale it."""

DEFAULT_MAX_TOKENS = {"lookup": 400, "explain": 700, "generate": 1500, "edit": 1500, "debug": 1200,
                      "review": 1000, "design": 2000}
"""Output tokens a medium question of each kind may take."""

DEFAULT_EFFORT = {
    "lookup": ("low", "low", "low"), "explain": ("low", "low", "medium"), "generate": ("low", "medium", "high"),
    "edit": ("low", "medium", "high"), "debug": ("medium", "medium", "high"), "review": ("low", "medium", "medium"),
    "design": ("medium", "high", "high"),
}
"""Thinking effort per kind, for simple, medium and complex questions."""

THINKING_ALLOWANCE = {"low": 0, "medium": 1024, "high": 4096, "max": 8192}
"""Output tokens added for a model that thinks at this effort (thinking is billed as output and counts toward
max_tokens), so the answer keeps its room and the pre-call estimate counts the thinking."""

BREVITY = {
    "lookup": "Answer in a few lines: where it is and what it is; no preamble.",
    "explain": "Explain concisely, citing path:line; no preamble, no summary at the end.",
    "generate": "Give the code, then at most a few lines on how to use it.",
    "edit": "Give the change as a unified diff with the files' paths, not the unchanged code.",
    "debug": "Say the cause in one or two sentences, then the fix as a unified diff.",
    "review": "List only the findings that matter, most important first, each with path:line.",
    "design": "Give the design and its trade-offs; be complete but do not repeat yourself.",
}
"""One line appended to the question per kind (after the context, so the cached prefix is untouched)."""


class AnswerSettings(BaseModel):
    """How long answers may be and how hard a thinking model thinks, by kind (`[answers]`)."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: dict[str, int] = Field(default_factory=dict)
    """Output tokens for a medium question of a kind, e.g. {design = 3000}; simple ×0.6, complex ×1.5; all
    within max_output_tokens."""
    effort: dict[str, Literal["low", "medium", "high", "max"]] = Field(default_factory=dict)
    """Thinking effort (low, medium, high, max) for every question of a kind, e.g. {explain = "low"}."""
    brevity: bool = True
    """Append a one-line instruction on the answer's form per kind."""


@dataclass(frozen=True)
class AnswerShape:
    """What one question's answer may be."""

    max_tokens: int
    """The answer's own output limit."""
    effort: str
    """Thinking effort for a backend that thinks."""
    brevity: str = ""
    thinking_tokens: int = 0
    """Room added for a model that thinks (its allowance at this effort, within the cap on any answer)."""

    def output_limit(self, thinks: bool) -> int:
        """max_tokens for a request: the answer's room, plus the thinking room where the model thinks."""
        return self.max_tokens + (self.thinking_tokens if thinks else 0)


def answer_shape(kind: str, difficulty: str, settings: AnswerSettings, cap: int) -> AnswerShape:
    """The shape for a question of `kind` and `difficulty`, within the `cap` on any answer."""
    medium = settings.max_tokens.get(kind, DEFAULT_MAX_TOKENS.get(kind, cap))
    limit = max(16, min(cap, round(medium * DIFFICULTY_FACTOR.get(difficulty, 1.0))))
    level = ("simple", "medium", "complex").index(difficulty) if difficulty in DIFFICULTY_FACTOR else 1
    effort = settings.effort.get(kind) or DEFAULT_EFFORT.get(kind, ("low", "medium", "high"))[level]
    thinking = max(0, min(THINKING_ALLOWANCE.get(effort, 0), cap - limit))
    return AnswerShape(limit, effort, BREVITY.get(kind, "") if settings.brevity else "", thinking)
