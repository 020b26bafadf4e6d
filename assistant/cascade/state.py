"""The state of one question's trip down the cascade: what was asked (`Query`), the whole trip
(`CascadeState`), one tier's turn (`TierStep`), what a step says next (`Flow`), and what the cascade needs
from the pipeline that runs it (`PipelineSteps`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Protocol

from assistant.accounting.budget import BudgetGuard
from assistant.accounting.cache import CacheHit
from assistant.answer import Answer, Escalation
from assistant.cascade.confidence import Verdict
from assistant.context.builder import Context
from assistant.context.conversation import Conversation, History
from assistant.errors import NoTierAnswered
from assistant.route.answer_shape import AnswerShape
from assistant.route.router import Route
from assistant.session import Reporter, Session
from models.base import Backend, GenerationRequest, GenerationResult, MissingKey, ModelUnavailable, Usage
from models.tier_registry import TierSpec


class PipelineSteps(Protocol):
    """What the cascade needs from the pipeline that runs it: the session, the budget, each tier's context
    and request, and the ledger. The pipeline passes itself; the cascade never imports it."""

    session: Session
    budget: BudgetGuard

    def context_for(self, question: str, extra: str, tier: str, backend: Backend, history: History) -> Context:
        """The index context for `tier`, within its budget and its backend's window."""
        ...

    def request_for(
        self, tier: str, question: str, context: Context, backend: Backend, history: History,
    ) -> GenerationRequest:
        """The request `tier` is sent."""
        ...

    def record_result(
        self, query_id: str, tier: str, backend: Backend, result: GenerationResult, route: Route,
        outcome: str = "ok", cost: float = 0.0, escalation_reason: str = "", attempt: int = 1,
        confidence: float | None = None,
    ) -> None:
        """A call's result as a ledger record."""
        ...

    def record(
        self, query_id: str, tier: str, provider: str, model: str, outcome: str, *, route: Route | None = None,
        usage: Usage | None = None, cost: float = 0.0, latency_ms: float = 0.0, ttft_ms: float | None = None,
        escalation_reason: str = "", error: str = "", cached: bool = False, attempt: int = 1,
        confidence: float | None = None,
    ) -> None:
        """One ledger record of this session."""
        ...


class Flow(Enum):
    """What the cascade does after a step."""

    ON = auto()
    """Go on to the next step with this tier."""
    NEXT = auto()
    """This tier is done; take the next one in the queue."""
    STOP = auto()
    """The cascade ends with the answer it has."""


@dataclass(frozen=True)
class Query:
    """What was asked, and how."""

    question: str
    extra: str = ""
    forced: str | None = None
    """The one tier to ask (`--tier`), if any."""
    cancel: threading.Event | None = None
    assume_yes: bool = False
    conversation: Conversation | None = None
    shape: AnswerShape | None = None
    """How long the answer may be, its form and the thinking effort (by kind and difficulty)."""


@dataclass
class CascadeState:
    """The state of one question's trip down the cascade."""

    query_id: str
    route: Route
    started: float
    queue: list[str] = field(default_factory=list)
    """The tiers still to try, in order."""
    fallback: list[str] = field(default_factory=list)
    """The tiers below the route's start tier, strongest first: tried only when no tier from the start tier
    up could answer, so a question is answered with what there is."""
    fallback_from: str = ""
    """The route's start tier when the answer had to come from below it."""
    tried: list[str] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)
    """Why tiers were skipped or failed (also among `notes`): what an error with no answer leads with."""
    missing_keys: list[MissingKey] = field(default_factory=list)
    """The tiers skipped for want of an API key: one note names them all."""
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    pending: tuple[str, str] | None = None
    """(tier, reason) of the last answer or call that did not stop the cascade."""
    final: tuple[str, str, str, Context, float | None, str] | None = None
    """(tier, model, text, context, confidence, finish reason) of the latest answer."""
    final_thinking: str = ""  # what its model showed of its thinking (none for a cached answer)
    budget_stop: str = ""
    """Why a budget (or the user) stopped the cascade after an earlier tier had answered."""
    rejected_hit: tuple[CacheHit, str, Context] | None = None
    """The latest answer when it is a cached one skipped for its rejected verdict (with its tier and
    context): what a budget stop keeps."""
    final_cached: bool = False
    """Whether the latest answer came from the cache."""
    first_context: Context | None = None
    """The context built for the first tier tried (the semantic cache's key)."""

    def escalate_to(self, tier: str, reporter: Reporter) -> None:
        """Record the step from the pending tier to `tier`, if there is one."""
        if self.pending is not None:
            self.escalations.append(Escalation(self.pending[0], tier, self.pending[1]))
            reporter.status(f"escalating {self.pending[0]} → {tier}: {self.pending[1]}")
            self.pending = None

    def cause(self, why: str) -> None:
        """Note why a tier was skipped or failed, said once: with the answer, or in "no tier could answer"."""
        self.notes.append(why)
        self.causes.append(why)

    def unavailable(self, exc: ModelUnavailable) -> None:
        """Note a tier that cannot be used, once (with the answer, or in "no tier could answer"); the tiers
        without an API key in one note (an offline user would get a line for each on every escalation)."""
        if not isinstance(exc, MissingKey):
            self.cause(str(exc))
            return
        before = missing_keys_note(self.missing_keys)
        self.missing_keys.append(exc)
        after = missing_keys_note(self.missing_keys)
        for said in (self.notes, self.causes):
            if before and before in said:
                said[said.index(before)] = after
            else:
                said.append(after)

    def add(self, tier: str, model: str, text: str, usage: Usage, cost: float, context: Context,
            notes: tuple[str, ...], confidence: float | None = None, finish_reason: str = "",
            thinking: str = "") -> None:
        """Count one answer; the latest is the one the user gets."""
        self.usage, self.cost = self.usage + usage, self.cost + cost
        self.notes.extend(notes)
        self.final, self.final_thinking = (tier, model, text, context, confidence, finish_reason), thinking

    def answer(self) -> Answer:
        """The Answer for the latest tier's answer; NoTierAnswered when there is none."""
        if self.final is None:
            why = self.causes + [note for note in self.notes if note not in self.causes]
            raise NoTierAnswered("no tier could answer: " + ("; ".join(why) or "the cascade is empty"))
        tier, model, text, context, confidence, finish_reason = self.final
        return Answer(
            answer=text, tier=tier, model=model, kind=self.route.kind, difficulty=self.route.difficulty,
            cached=self.final_cached, escalations=tuple(self.escalations), usage=self.usage, cost_usd=self.cost,
            sources=context.sources, duration_ms=(time.perf_counter() - self.started) * 1000,
            notes=tuple(self.notes), query_id=self.query_id, confidence=confidence, budget_stop=self.budget_stop,
            fallback_from=self.fallback_from, finish_reason=finish_reason, thinking=self.final_thinking,
        )

    def fall_back(self) -> bool:
        """Move to the tiers below the start tier when nothing from the start tier up answered; False when
        there is an answer (or a cached one) already, or nothing below."""
        if self.final is not None or self.rejected_hit is not None or not self.fallback:
            return False
        wanted = self.route.start_tier if self.route.start_tier in self.tried else self.tried[0]
        self.fallback_from = wanted
        self.notes.append(f"no tier from {wanted} up could answer; answering with {self.fallback[0]} and below"
                          f" (a stronger tier would have been used)")
        self.queue, self.fallback, self.pending = self.fallback, [], None
        return True


@dataclass
class TierStep:
    """One tier's turn: what it is sent, and what came back."""

    name: str
    backend: Backend
    spec: TierSpec
    history: History
    context: Context
    request: GenerationRequest | None = None
    estimate: float = 0.0
    result: GenerationResult | None = None
    attempt: int = 1
    cost: float = 0.0
    verdict: Verdict | None = None


def missing_keys_note(missing: list[MissingKey]) -> str:
    """`Groq: no API key; set GROQ_API_KEY`, or for several: `no API key for Groq, Gemini; set GROQ_API_KEY,
    GEMINI_API_KEY`; empty for none."""
    if len(missing) < 2:
        return str(missing[0]) if missing else ""
    return (f"no API key for {', '.join(m.label for m in missing)}; "
            f"set {', '.join(dict.fromkeys(m.env_name for m in missing))}")
