"""What a query returns: the answer, where it came from, what it cost. `to_json` is the `--json` contract."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.accounting.money import usd
from models.base import Usage


@dataclass(frozen=True)
class Source:
    """A place in the repository an answer rests on (1-based line, `/` separators)."""

    path: str
    line: int
    symbol: str = ""


@dataclass(frozen=True)
class Escalation:
    """One step up the cascade, with the reason."""

    from_tier: str
    to_tier: str
    reason: str


@dataclass(frozen=True)
class Answer:
    """The result of one question."""

    answer: str
    tier: str
    """`index`, `local`, `groq`, `gemini` or `sonnet`."""
    model: str
    kind: str
    difficulty: str
    cached: bool = False
    escalations: tuple[Escalation, ...] = ()
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    sources: tuple[Source, ...] = ()
    duration_ms: float = 0.0
    notes: tuple[str, ...] = ()
    """Things the user should know (context trimmed, tier skipped)."""
    query_id: str = ""
    confidence: float | None = None
    """The score the cascade judged the final answer by (0..1), a cached answer's when it was made; None for
    the index's answers."""
    budget_stop: str = ""
    """Set when a budget or a declined confirmation stopped the cascade after an earlier tier answered: the
    answer is that tier's, and `ask` exits 3 after printing it."""
    fallback_from: str = ""
    """The route's start tier when it and every tier above it were unavailable and a cheaper tier answered."""
    error: str = ""
    """Why there is no answer (`ask --json` of a question that failed); empty when answered."""

    @classmethod
    def failed(cls, error: str, budget_stop: str = "") -> Answer:
        """The stand-in for a question that got no answer: what `ask --json` prints when it fails."""
        return cls("", "", "", "", "", budget_stop=budget_stop, error=error)
    finish_reason: str = ""
    """Why the final tier's generation ended: `stop`, `length` (cut off at the token limit) or the provider's
    own word; empty for index and cached answers."""
    thinking: str = ""
    """What the final tier's model showed of its thinking (the TUI folds it under the answer); its tokens are
    `usage.thinking_tokens`, a part of the output tokens."""

    def to_json(self) -> dict[str, Any]:
        """The `ask --json` object (design.md); a failed question's has `answer`, `tier` and `model` null."""
        answered = not self.error
        return {
            "answer": self.answer if answered else None,
            "tier": self.tier if answered else None,
            "model": self.model if answered else None,
            "cached": self.cached,
            "kind": self.kind or None,
            "difficulty": self.difficulty or None,
            "escalations": [{"from": e.from_tier, "to": e.to_tier, "reason": e.reason} for e in self.escalations],
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "cache_read_tokens": self.usage.cache_read_tokens,
                "cache_write_tokens": self.usage.cache_write_tokens,
                "thinking_tokens": self.usage.thinking_tokens,
            },
            "cost_usd": round(self.cost_usd, 6),
            "sources": [asdict(s) for s in self.sources],
            "duration_ms": round(self.duration_ms, 1),
            "notes": list(self.notes),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "budget_stop": self.budget_stop or None,
            "fallback_from": self.fallback_from or None,
            "error": self.error or None,
            "finish_reason": self.finish_reason or None,
        }


def cut_off(answer: Answer) -> str:
    """For an answer whose generation stopped at its token limit (finish reason `length`), what says so and
    which settings set that limit (its kind's, within the cap on every answer), else empty: the metadata line
    and the TUI badge say it."""
    if answer.finish_reason != "length":
        return ""
    if not answer.kind:
        return "cut off at the token limit (max_output_tokens)"
    return (f"cut off at the token limit of a {answer.difficulty} {answer.kind} answer "
            f"([answers] max_tokens.{answer.kind}, within max_output_tokens)")


def token_counts(answer: Answer) -> str:
    """`1000→200 tokens`, with cache-read input apart: `1000 + 2000 cached→200 tokens`."""
    usage = answer.usage
    cached = usage.cache_read_tokens
    given = f"{usage.total_input_tokens - cached} + {cached} cached" if cached else f"{usage.total_input_tokens}"
    thinking = f" ({usage.thinking_tokens} thinking)" if usage.thinking_tokens else ""
    return f"{given}→{usage.output_tokens}{thinking} tokens"


def metadata_line(answer: Answer) -> str:
    """Tier, model, tokens, cost and time in one line."""
    parts = [f"tier {answer.tier}"]
    if answer.tier != "index":
        parts.append(answer.model)
        parts.append(token_counts(answer))
    parts.append(usd(answer.cost_usd))
    if answer.cached:
        parts.append("cached")
    if cut := cut_off(answer):
        parts.append(cut)
    for e in answer.escalations:
        parts.append(f"{e.from_tier}→{e.to_tier} ({e.reason})")
    if answer.fallback_from:
        parts.append(f"below {answer.fallback_from} (unavailable)")
    parts.append(f"{answer.duration_ms / 1000:.2f}s")
    return " · ".join(parts)
