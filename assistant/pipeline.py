"""One question's path: pre-flight, classify, context, the cascade with budgets and the ledger."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field

from assistant.answer import Answer
from assistant.budget import BudgetGuard
from assistant.cascade import Cascade, CascadeState, Query, estimate
from assistant.context import Context, Span, build_context
from assistant.conversation import Conversation, History, Turn
from assistant.errors import UsageError
from assistant.ledger import CLASSIFIER_TIER, CallRecord, new_id
from assistant.preflight import IndexAnswer, answer_lookup, preflight, refers_to_attached
from assistant.router import Route, classify, start_index
from assistant.session import Session
from indexer.repomap import render_map
from models.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    Message,
    ModelUnavailable,
    Usage,
    capabilities_of,
)

_SYSTEM_PROMPT = (
    "You are Tiercode, a coding assistant working in the repository '{repo}'. Answer the developer's "
    "question using the context from the repository's index. Cite code as path:line. Be concise and "
    "correct; put code in fenced blocks with a language tag. If the context is not enough, say what is "
    "missing."
)
PREFLIGHT_ROUTE = Route("lookup", "simple", "index", "index", 1.0)
"""The route of a question the index answered by itself."""


@dataclass(frozen=True)
class TierPlan:
    """What one tier of the cascade would be sent and could cost."""

    tier: str
    model: str
    context_tokens: int
    estimated_cost_usd: float
    available: bool
    note: str = ""
    context: tuple[Span, ...] = ()
    """Where each block of the context this tier would be sent comes from (files, lines, symbols, tokens)."""

    def to_json(self) -> dict[str, object]:
        """This tier's part of the dry run's JSON."""
        return {**asdict(self), "context": [asdict(span) for span in self.context]}


@dataclass(frozen=True)
class Plan:
    """The route a question would take, without calling a model (`ask --dry-run`)."""

    route: Route
    preflight: bool
    tiers: tuple[TierPlan, ...] = field(default=())

    @property
    def start_tier(self) -> str:
        """The tier the cascade would call first: always one of the configured tiers (or the index)."""
        if self.preflight:
            return "index"
        return next((t.tier for t in self.tiers if t.available), "none")

    def to_json(self) -> dict[str, object]:
        """The dry-run's JSON form."""
        return {
            "kind": self.route.kind, "difficulty": self.route.difficulty, "stage": self.route.stage,
            "probability": self.route.probability, "start_tier": self.start_tier,
            "tiers": [t.to_json() for t in self.tiers],
        }


class Pipeline:
    """Answers questions for one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.budget = BudgetGuard(session.settings.budget, session.ledger, session.session_id)
        self._maps: dict[tuple[str, int], str] = {}

    # -- the whole path -------------------------------------------------------------------

    def ask(
        self,
        question: str,
        extra: str = "",
        tier: str | None = None,
        cancel: threading.Event | None = None,
        assume_yes: bool = False,
        use_cache: bool = True,
        conversation: Conversation | None = None,
    ) -> Answer:
        """Answer one question; streams through the session's reporter. With a `conversation`, its earlier
        turns go with the question and the finished turn is added to it."""
        question = question.strip()
        if not question:
            raise UsageError("the question is empty; ask something, e.g. tiercode ask \"where is main defined?\"")
        started = time.perf_counter()
        query_id = new_id()
        timings = self.session.timings
        answerable = tier is None and not (extra and refers_to_attached(question))
        with timings.stage("index"):
            store = self.session.store()
            found = preflight(question, store, self.session.repo) if answerable else None
        if found is not None:
            return self._from_index(query_id, question, found, PREFLIGHT_ROUTE, started, conversation)
        with timings.stage("route"):
            route = self._route(question, query_id)
        with timings.stage("index"):
            found = answer_lookup(question, store) if answerable and route.kind == "lookup" else None
        if found is not None:
            return self._from_index(query_id, question, found, route, started, conversation)
        state = CascadeState(query_id, route, started, queue=self.tier_order(route.start_tier, tier))
        answer = Cascade(self, state, Query(question, extra, tier, cancel, assume_yes, conversation), use_cache).run()
        if conversation is not None and state.final is not None:
            context = state.final[3]
            conversation.add(Turn(question, _user_content(question, context), answer.answer, context.blocks))
        return answer

    def _from_index(
        self, query_id: str, question: str, found: IndexAnswer, route: Route, started: float,
        conversation: Conversation | None,
    ) -> Answer:
        """The index's own answer, recorded at $0 with the route that led to it."""
        self.record(query_id, "index", "index", "index", "ok", route=route)
        self.session.reporter.text(found.text + "\n")
        if conversation is not None:
            conversation.add(Turn(question, question, found.text, frozenset()))
        return Answer(found.text, "index", "index", "lookup", route.difficulty, sources=found.sources,
                      duration_ms=(time.perf_counter() - started) * 1000, query_id=query_id)

    def plan(self, question: str, extra: str = "") -> Plan:
        """The route and per-tier estimates, calling no model."""
        store = self.session.store()
        answerable = not (extra and refers_to_attached(question))
        if answerable and preflight(question, store, self.session.repo) is not None:
            return Plan(PREFLIGHT_ROUTE, True)
        route = classify(question)
        if answerable and route.kind == "lookup" and answer_lookup(question, store) is not None:
            return Plan(route, True)
        plans = []
        for name in self.tier_order(route.start_tier, None):
            try:
                backend = self.session.tiers.get(name)
            except ModelUnavailable as exc:
                plans.append(TierPlan(name, "", 0, 0.0, False, str(exc)))
                continue
            context = self.context_for(question, extra, name, backend, History())
            request = self.request_for(name, question, context, backend, History())
            cost = estimate(self.session.tiers.spec(name), backend, request)
            plans.append(TierPlan(name, backend.model, context.tokens, cost, True, context=context.spans))
        return Plan(route, False, tuple(plans))

    # -- stages ---------------------------------------------------------------------------

    def _route(self, question: str, query_id: str) -> Route:
        """The question's route; a call of the classifier model is a ledger record of its own."""
        classifier: Backend | None = None
        try:
            classifier = self.session.tiers.local("classifier")
        except ModelUnavailable:
            classifier = None
        calls: list[GenerationResult] = []
        route = classify(question, classifier, calls.append)
        if classifier is not None:
            for result in calls:
                self.record_result(query_id, CLASSIFIER_TIER, classifier, result, route)
        return route

    def tier_order(self, start: str, forced: str | None) -> list[str]:
        """The tiers to try: `forced` alone, else the configured cascade from the route's start tier."""
        order = self.session.tiers.order()
        if forced is not None:
            if forced not in order:
                raise UsageError(f"tier '{forced}' is not available here (cascade: {', '.join(order) or 'none'})")
            return [forced]
        return order[start_index(order, start):]

    def context_for(self, question: str, extra: str, tier: str, backend: Backend, history: History) -> Context:
        """The index context for `tier`, within its budget and its backend's window."""
        budget = self.session.tiers.spec(tier).budgets.context_tokens
        window = capabilities_of(backend).context_window
        if window is not None:  # a small window: leave room for the answer, the history and the prompt's frame
            room = window - self.session.settings.max_output_tokens // 2 - 400 - history.tokens
            budget = max(0, min(budget, room))
        store = self.session.store()
        vectors = self.session.vectors()
        embedder = self.session.code_embedder() if vectors is not None and vectors.size else None
        return build_context(question, store, self.session.repo, budget, backend.count_tokens, extra, history.blocks,
                             vectors=vectors, embedder=embedder)

    def _system_prompt(self, tier: str, backend: Backend) -> str:
        """The stable prefix: instructions, and for tiers with a map budget a repo map (cached by the provider)."""
        prompt = _SYSTEM_PROMPT.format(repo=self.session.repo.name)
        budget = self.session.tiers.spec(tier).budgets.map_tokens
        if budget <= 0:
            return prompt
        store = self.session.store()
        key = (tier, store.generation())
        if key not in self._maps:
            self._maps = {k: text for k, text in self._maps.items() if k[0] != tier}  # this tier's old maps go
            self._maps[key] = render_map(store, budget, backend.count_tokens)
        repo_map = self._maps[key]
        return f"{prompt}\n\nRepository map (the most referenced definitions, path then line│ signature):\n{repo_map}"

    def request_for(
        self, tier: str, question: str, context: Context, backend: Backend, history: History,
    ) -> GenerationRequest:
        """The request `tier` is sent: the stable prefix, the history, then the context and the question."""
        return GenerationRequest(
            messages=(
                Message("system", self._system_prompt(tier, backend)),
                *history.messages,
                Message("user", _user_content(question, context)),
            ),
            max_tokens=self.session.settings.max_output_tokens,
            logprobs=capabilities_of(backend).logprobs,
        )

    # -- ledger ---------------------------------------------------------------------------

    def record_result(
        self, query_id: str, tier: str, backend: Backend, result: GenerationResult, route: Route,
        outcome: str = "ok", cost: float = 0.0, escalation_reason: str = "", attempt: int = 1,
        confidence: float | None = None,
    ) -> None:
        """A call's result as a ledger record, under the model that answered (what the server reported)."""
        self.record(query_id, tier, backend.provider, result.model, outcome, route=route, usage=result.usage,
                     cost=cost, latency_ms=result.latency_ms, ttft_ms=result.ttft_ms,
                     escalation_reason=escalation_reason, attempt=attempt, confidence=confidence)

    def record(
        self, query_id: str, tier: str, provider: str, model: str, outcome: str, *, route: Route | None = None,
        usage: Usage | None = None, cost: float = 0.0, latency_ms: float = 0.0, ttft_ms: float | None = None,
        escalation_reason: str = "", error: str = "", cached: bool = False, attempt: int = 1,
        confidence: float | None = None,
    ) -> None:
        """One ledger record of this session, with the endpoint the tier's calls go to."""
        usage = usage or Usage()
        with self.session.timings.stage("ledger"):
            self.session.ledger.record(CallRecord(
                session_id=self.session.session_id, query_id=query_id, tier=tier, provider=provider, model=model,
                outcome=outcome, kind=route.kind if route else "", route_stage=route.stage if route else "",
                route_probability=route.probability if route else None, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens, cost_usd=cost,
                latency_ms=latency_ms, ttft_ms=ttft_ms, escalation_reason=escalation_reason, error=error,
                cached=cached, attempt=attempt, confidence=confidence,
                endpoint="" if provider in ("index", "cache") else self.session.tiers.endpoint(tier),
            ))


def _user_content(question: str, context: Context) -> str:
    """The user message: the context blocks, then the question."""
    return f"{context.text}\n\nQuestion: {question}" if context.text else question
