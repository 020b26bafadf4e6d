"""One question's path: pre-flight, classify, context, the cascade with budgets and the ledger.

The cascade, the context builder, the caches and the repository map are imported where they are first used: a
lookup the index answers loads none of them (a lookup is a command-line round trip, not a model call)."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from assistant.accounting.budget import BudgetGuard
from assistant.accounting.ledger import CLASSIFIER_TIER, COMPACTION_TIER, CallRecord, new_id
from assistant.answer import Answer
from assistant.context.conversation import Conversation, History, Turn
from assistant.context.instructions import Instructions, find_instructions, load_instructions
from assistant.context.pinned import PinnedFiles
from assistant.errors import UsageError
from assistant.route.answer_shape import AnswerShape, answer_shape
from assistant.route.preflight import IndexAnswer, answer_lookup, follow_up, preflight, refers_to_attached
from assistant.route.router import Route, classify, start_index
from models import pricing
from models.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    Message,
    ModelError,
    ModelUnavailable,
    Usage,
    approx_tokens,
    capabilities_of,
)
from models.tier_registry import builtin_specs

if TYPE_CHECKING:
    from assistant.context.builder import Context, Span
    from assistant.context.compaction import Compacted
    from assistant.session import Session

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


NO_TIER = "none"
"""A plan's start tier when no configured tier can answer (no key, offline, not running)."""


@dataclass(frozen=True)
class Plan:
    """The route a question would take, without calling a model (`ask --dry-run`)."""

    route: Route
    preflight: bool
    tiers: tuple[TierPlan, ...] = field(default=())
    forced: str | None = None
    """The tier `--tier` names: the only one asked, and the index is not."""
    below: int = 0
    """How many of the last `tiers` are below the route's start tier: asked only when none above answers."""

    @property
    def fallback_from(self) -> str:
        """The route's start tier when no tier from it up is available (the answer would come from below it,
        as `ask` says with `fallback_from`); empty otherwise."""
        above = self.tiers[: len(self.tiers) - self.below]
        if not above or any(t.available for t in above) or not any(t.available for t in self.tiers):
            return ""
        return above[0].tier

    @property
    def start_tier(self) -> str:
        """The tier the cascade would call first: one of the configured tiers, the index, or `NO_TIER`."""
        if self.preflight:
            return "index"
        return next((t.tier for t in self.tiers if t.available), NO_TIER)

    @property
    def answerable(self) -> bool:
        """Whether the index or a configured tier could answer."""
        return self.start_tier != NO_TIER

    def to_json(self) -> dict[str, object]:
        """The dry-run's JSON form."""
        return {
            "kind": self.route.kind, "difficulty": self.route.difficulty, "stage": self.route.stage,
            "probability": self.route.probability, "start_tier": self.start_tier, "forced_tier": self.forced,
            "fallback_from": self.fallback_from or None, "tiers": [t.to_json() for t in self.tiers],
        }


class Pipeline:
    """Answers questions for one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.budget = BudgetGuard(session.settings.budget, session.ledger, session.session_id)
        self._maps: dict[tuple[str, int], str] = {}
        self._cut_reported: set[str] = set()
        self._instructions: dict[tuple[str, int, str, int, int], Instructions | None] = {}
        self.pinned = PinnedFiles(session.repo)
        """Files sent whole with every question (`ask --file`, `/add`)."""

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
        answerable = index_may_answer(question, extra, tier)
        with timings.stage("index"):
            store = self.session.store()
            found = preflight(question, store, self.session.repo) if answerable else None
            if found is None and answerable and conversation is not None and conversation.turns:
                resolved = follow_up(question, conversation.turns[-1].question)  # "and who calls it?"
                found = preflight(resolved, store, self.session.repo) if resolved else None
        if found is not None:
            return self._from_index(query_id, question, found, PREFLIGHT_ROUTE, started, conversation)
        with timings.stage("route"):
            route = self._route(question, query_id, extra)
        with timings.stage("index"):
            found = answer_lookup(question, store) if answerable and route.kind == "lookup" else None
        if found is not None:
            return self._from_index(query_id, question, found, route, started, conversation)
        from assistant.cascade.state import CascadeState, Query
        from assistant.cascade.steps import Cascade

        state = CascadeState(query_id, route, started, queue=self.tier_order(route.start_tier, tier),
                             fallback=self.fallback_order(route.start_tier, tier))
        if conversation is not None:
            self._compact_if_full(conversation, self.tier_order(route.start_tier, tier), query_id)
        query = Query(question, extra, tier, cancel, assume_yes, conversation, self.shape_for(route))
        answer = Cascade(self, state, query, use_cache).run()
        if conversation is not None and state.final is not None:
            context = state.final[3]
            sent = _user_content(question, context, query.shape.brevity if query.shape else "")
            conversation.add(Turn(question, sent, answer.answer, context.blocks))  # as sent: the next turn's prefix
        return answer

    def _from_index(
        self, query_id: str, question: str, found: IndexAnswer, route: Route, started: float,
        conversation: Conversation | None,
    ) -> Answer:
        """The index's own answer, recorded at $0 with the route that led to it."""
        self.record(query_id, "index", "index", "index", "ok", route=route,
                    counterfactual=self.sonnet_estimate(question, found.text))
        self.session.reporter.text(found.text + "\n")
        if conversation is not None:
            conversation.add(Turn(question, question, found.text, frozenset()))
        return Answer(found.text, "index", "index", "lookup", route.difficulty, sources=found.sources,
                      duration_ms=(time.perf_counter() - started) * 1000, query_id=query_id)

    def compact(self, conversation: Conversation, query_id: str = "") -> Compacted | None:
        """Fold a conversation's earlier turns into a summary by the cheapest available tier (`/compact`); the
        call is a ledger record (tier `compaction`, at its tier's prices; under the question it came before, when
        it did). Raises ModelError when it fails."""
        from assistant.context.compaction import compact

        tiers = self.session.tiers
        done = compact(conversation, tiers.order(), tiers.get)
        if done is not None:
            cost = tiers.spec(done.tier).cost_usd(done.result.usage)
            self.record_result(query_id or new_id(), COMPACTION_TIER, tiers.get(done.tier), done.result, None,
                               cost=cost)
        return done

    def _compact_if_full(self, conversation: Conversation, queue: list[str], query_id: str) -> None:
        """Compact before a question when the carried turns pass `compact_at` of the first tier's history budget;
        a failed summary leaves the turns as they were (the history budget still keeps the request in bounds)."""
        from assistant.cascade.estimates import history_budget
        from assistant.context.compaction import should_compact

        try:
            backend = self.session.tiers.get(queue[0]) if queue else None
        except ModelUnavailable:
            backend = None
        if backend is None:
            return
        budget = history_budget(self.session.tiers.spec(queue[0]), backend)
        if not should_compact(conversation, budget, self.session.settings.compact_at):
            return
        self.session.reporter.status("summarising the earlier turns of this conversation")
        try:
            self.compact(conversation, query_id)
        except ModelError as exc:
            self.session.reporter.status(f"could not summarise the earlier turns: {exc}")

    def sonnet_estimate(self, question: str, answer: str) -> float:
        """What an answer the index gave would have cost as a Sonnet call, without building its context: the
        prompt frame, Sonnet's context and map budgets (no more than the repository holds), the question in,
        the answer's length out, at the prices of the model `stats` compares with."""
        spec = self.session.tiers.specs.get("sonnet") or builtin_specs()["sonnet"]
        budgets = spec.budgets
        code = min(budgets.context_tokens + budgets.map_tokens, self.session.store().total_bytes() // 4)
        prompt = approx_tokens(_SYSTEM_PROMPT) + code + approx_tokens(question)
        usage = Usage(input_tokens=prompt, output_tokens=approx_tokens(answer))
        return pricing.cost_usd(pricing.default_model("sonnet"), usage)  # the model `stats` prices every answer at

    def plan(self, question: str, extra: str = "", tier: str | None = None) -> Plan:
        """The route and per-tier estimates `ask` with the same arguments would take, calling no model."""
        store = self.session.store()
        answerable = index_may_answer(question, extra, tier)
        if answerable and preflight(question, store, self.session.repo) is not None:
            return Plan(PREFLIGHT_ROUTE, True)
        route = classify(question, attached=extra)
        if answerable and route.kind == "lookup" and answer_lookup(question, store) is not None:
            return Plan(route, True)
        from assistant.cascade.estimates import estimate

        plans = []
        below = self.fallback_order(route.start_tier, tier)
        for name in [*self.tier_order(route.start_tier, tier), *below]:
            try:
                backend = self.session.tiers.get(name)
            except ModelUnavailable as exc:
                plans.append(TierPlan(name, "", 0, 0.0, False, str(exc)))
                continue
            shape = self.shape_for(route)
            context = self.context_for(question, extra, name, backend, History(), shape)
            request = self.request_for(name, question, context, backend, History(), shape)
            cost = estimate(self.session.tiers.spec(name), backend, request)
            plans.append(TierPlan(name, backend.model, context.tokens, cost, True, context=context.spans))
        return Plan(route, False, tuple(plans), forced=tier, below=len(below))

    # -- stages ---------------------------------------------------------------------------

    def _route(self, question: str, query_id: str, attached: str = "") -> Route:
        """The question's route; a call of the classifier model is a ledger record of its own."""
        classifier: Backend | None = None
        try:
            classifier = self.session.tiers.local("classifier")
        except ModelUnavailable:
            classifier = None
        calls: list[GenerationResult] = []
        route = classify(question, classifier, calls.append, attached)
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

    def fallback_order(self, start: str, forced: str | None) -> list[str]:
        """The configured tiers below the route's start tier, strongest first: what answers when no tier from
        the start tier up can (none when a tier is forced)."""
        if forced is not None:
            return []
        order = self.session.tiers.order()
        return order[: start_index(order, start)][::-1]

    def shape_for(self, route: Route) -> AnswerShape:
        """The answer's length limit, form and thinking effort for the route's kind and difficulty."""
        settings = self.session.settings
        return answer_shape(route.kind, route.difficulty, settings.answers, settings.max_output_tokens)

    def context_for(
        self, question: str, extra: str, tier: str, backend: Backend, history: History,
        shape: AnswerShape | None = None,
    ) -> Context:
        """The index context for `tier`, within its budget and its backend's window (leaving the answer's room)."""
        budget = self.session.tiers.spec(tier).budgets.context_tokens
        window = capabilities_of(backend).context_window
        if window is not None:  # a small window: leave room for the answer, the history and the prompt's frame
            instructions = self.instructions_for(backend)
            answer_room = shape.max_tokens if shape else self.session.settings.max_output_tokens
            room = window - answer_room // 2 - 400 - history.tokens - \
                (instructions.tokens if instructions else 0)
            budget = max(0, min(budget, room))
        from assistant.context.builder import build_context

        store = self.session.store()
        vectors = self.session.vectors()
        embedder = self.session.code_embedder() if vectors is not None and vectors.size else None
        return build_context(question, store, self.session.repo, budget, backend.count_tokens, extra, history.blocks,
                             vectors=vectors, embedder=embedder, pinned=self.pinned.texts())

    def instructions_for(self, backend: Backend) -> Instructions | None:
        """The repository's instructions as `backend` is sent them: within `instructions_tokens`, and an eighth
        of a small window; a cut is reported once. Read and counted once per file version and model (each
        request asks twice: for the prompt and for the context's room)."""
        settings = self.session.settings
        cap = settings.instructions_tokens
        window = capabilities_of(backend).context_window
        if window is not None:
            cap = min(cap, window // 8)
        path = find_instructions(self.session.repo, settings.instructions_files)
        try:
            stat = path.stat() if path is not None else None
        except OSError:  # gone since it was found
            stat = None
        if path is None or stat is None:
            return None
        key = (backend.model, cap, str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._instructions:
            self._instructions[key] = load_instructions(self.session.repo, settings.instructions_files, cap,
                                                        backend.count_tokens)
        found = self._instructions[key]
        if found is not None and found.cut and found.path not in self._cut_reported:
            self._cut_reported.add(found.path)
            self.session.reporter.status(f"project instructions {found.describe()}: raise instructions_tokens to"
                                         " send more")
        return found

    def _system_prompt(self, tier: str, backend: Backend) -> str:
        """The stable prefix: instructions, the project's instructions, and for tiers with a map budget a repo map
        (cached by the provider)."""
        prompt = _SYSTEM_PROMPT.format(repo=self.session.repo.name)
        instructions = self.instructions_for(backend)
        if instructions is not None:
            prompt = f"{prompt}\n\n{instructions.block()}"
        budget = self.session.tiers.spec(tier).budgets.map_tokens
        if budget <= 0:
            return prompt
        store = self.session.store()
        key = (tier, store.generation())
        if key not in self._maps:
            from indexer.repomap import render_map

            self._maps = {k: text for k, text in self._maps.items() if k[0] != tier}  # this tier's old maps go
            self._maps[key] = render_map(store, budget, backend.count_tokens)
        repo_map = self._maps[key]
        return f"{prompt}\n\nRepository map (the most referenced definitions, path then line│ signature):\n{repo_map}"

    def request_for(
        self, tier: str, question: str, context: Context, backend: Backend, history: History,
        shape: AnswerShape | None = None,
    ) -> GenerationRequest:
        """The request `tier` is sent: the stable prefix, the history, then the context and the question (with
        the kind's one line on the answer's form); max_tokens and effort from the answer's `shape`."""
        capabilities = capabilities_of(backend)
        content = _user_content(question, context, shape.brevity if shape is not None else "")
        return GenerationRequest(
            messages=(
                Message("system", self._system_prompt(tier, backend)),
                *history.messages,
                Message("user", content),
            ),
            max_tokens=shape.output_limit(capabilities.thinking) if shape else self.session.settings.max_output_tokens,
            effort=shape.effort if shape is not None and capabilities.thinking else None,
            logprobs=capabilities.logprobs,
            stable_prefix=1 + len(history.messages),  # the earlier turns are as stable as the system prompt
        )

    # -- ledger ---------------------------------------------------------------------------

    def record_result(
        self, query_id: str, tier: str, backend: Backend, result: GenerationResult, route: Route | None,
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
        confidence: float | None = None, counterfactual: float | None = None,
    ) -> None:
        """One ledger record of this session, with the endpoint the tier's calls go to."""
        usage = usage or Usage()
        with self.session.timings.stage("ledger"):
            self.session.ledger.record(CallRecord(
                session_id=self.session.session_id, query_id=query_id, tier=tier, provider=provider, model=model,
                outcome=outcome, kind=route.kind if route else "", route_stage=route.stage if route else "",
                route_probability=route.probability if route else None, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens, thinking_tokens=usage.thinking_tokens, cost_usd=cost,
                latency_ms=latency_ms, ttft_ms=ttft_ms, escalation_reason=escalation_reason, error=error,
                cached=cached, attempt=attempt, confidence=confidence, counterfactual_usd=counterfactual,
                endpoint="" if provider in ("index", "cache") else self.session.tiers.endpoint(tier),
            ))


def index_may_answer(question: str, extra: str, forced: str | None) -> bool:
    """Whether the index may answer by itself: not when a tier is named, nor when the question is about the
    attached text."""
    return forced is None and not (extra and refers_to_attached(question))


def _user_content(question: str, context: Context, form: str = "") -> str:
    """The user message: the context blocks, then the question, then the line on the answer's form."""
    message = f"{context.text}\n\nQuestion: {question}" if context.text else question
    return f"{message}\n\n{form}" if form else message
