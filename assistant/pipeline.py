"""One question's path: pre-flight, classify, context, the cascade with budgets and the ledger."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from assistant.answer import Answer, Escalation
from assistant.answer_cache import AnswerCache
from assistant.budget import BudgetGuard
from assistant.cache import CacheHit
from assistant.confidence import Verdict, judge
from assistant.context import Context, build_context
from assistant.conversation import Conversation, History, Turn
from assistant.errors import BudgetStop, NoTierAnswered, UsageError
from assistant.known_names import known_to
from assistant.ledger import CLASSIFIER_TIER, CallRecord, new_id
from assistant.money import usd
from assistant.patch_check import check_patch
from assistant.preflight import IndexAnswer, answer_lookup, preflight, refers_to_attached
from assistant.router import Route, classify, start_index
from assistant.session import Reporter, Session
from indexer.parse import parse_source
from indexer.repomap import render_map
from models.base import (
    Backend,
    Cancelled,
    GenerationRequest,
    GenerationResult,
    Message,
    ModelError,
    ModelUnavailable,
    Usage,
    capabilities_of,
)
from models.retry import call_with_retry
from models.tier_registry import TierSpec

_SYSTEM_PROMPT = (
    "You are Tiercode, a coding assistant working in the repository '{repo}'. Answer the developer's "
    "question using the context from the repository's index. Cite code as path:line. Be concise and "
    "correct; put code in fenced blocks with a language tag. If the context is not enough, say what is "
    "missing."
)
PREFLIGHT_ROUTE = Route("lookup", "simple", "index", "index", 1.0)
"""The route of a question the index answered by itself."""
_FENCE_LANGUAGES = {"python": "python", "py": "python", "js": "javascript", "javascript": "javascript",
                    "ts": "typescript", "typescript": "typescript", "go": "go", "rust": "rust", "rs": "rust",
                    "java": "java", "c": "c", "cpp": "cpp", "c++": "cpp"}


@dataclass(frozen=True)
class TierPlan:
    """What one tier of the cascade would be sent and could cost."""

    tier: str
    model: str
    context_tokens: int
    estimated_cost_usd: float
    available: bool
    note: str = ""


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
            "tiers": [t.__dict__ for t in self.tiers],
        }


@dataclass
class _Run:
    """The state of one question's trip down the cascade."""

    query_id: str
    route: Route
    started: float
    escalations: list[Escalation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    pending: tuple[str, str] | None = None
    """(tier, reason) of the last answer or call that did not stop the cascade."""
    final: tuple[str, str, str, Context, float | None] | None = None
    """(tier, model, text, context, confidence) of the latest answer."""
    budget_stop: str = ""
    """Why a budget (or the user) stopped the cascade after an earlier tier had answered."""
    rejected_hit: tuple[CacheHit, str, Context] | None = None
    """The latest answer when it is a cached one skipped for its rejected verdict (with its tier and
    context): what a budget stop keeps."""
    final_cached: bool = False
    """Whether the latest answer came from the cache."""

    def escalate_to(self, tier: str, reporter: Reporter) -> None:
        """Record the step from the pending tier to `tier`, if there is one."""
        if self.pending is not None:
            self.escalations.append(Escalation(self.pending[0], tier, self.pending[1]))
            reporter.status(f"escalating {self.pending[0]} → {tier}: {self.pending[1]}")
            self.pending = None

    def add(self, tier: str, model: str, text: str, usage: Usage, cost: float, context: Context,
            notes: tuple[str, ...], confidence: float | None = None) -> None:
        """Count one answer; the latest is the one the user gets."""
        self.usage = self.usage + usage
        self.cost += cost
        self.notes.extend(notes)
        self.final = (tier, model, text, context, confidence)

    def answer(self, cached: bool = False) -> Answer:
        """The Answer for the latest tier's answer; NoTierAnswered when there is none."""
        if self.final is None:
            raise NoTierAnswered("no tier could answer: " + ("; ".join(self.notes) or "the cascade is empty"))
        tier, model, text, context, confidence = self.final
        return Answer(
            answer=text, tier=tier, model=model, kind=self.route.kind, difficulty=self.route.difficulty,
            cached=cached, escalations=tuple(self.escalations), usage=self.usage, cost_usd=self.cost,
            sources=context.sources, duration_ms=_ms(self.started), notes=tuple(self.notes),
            query_id=self.query_id, confidence=confidence, budget_stop=self.budget_stop,
        )


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
            run = _Run(query_id, self._route(question, query_id), started)
        with timings.stage("index"):
            found = answer_lookup(question, store) if answerable and run.route.kind == "lookup" else None
        if found is not None:
            return self._from_index(query_id, question, found, run.route, started, conversation)
        answer = self._cascade(run, question, extra, tier, cancel, assume_yes, use_cache, conversation)
        if conversation is not None and run.final is not None:
            context = run.final[3]
            conversation.add(Turn(question, _user_content(question, context), answer.answer, context.blocks))
        return answer

    def _from_index(
        self, query_id: str, question: str, found: IndexAnswer, route: Route, started: float,
        conversation: Conversation | None,
    ) -> Answer:
        """The index's own answer, recorded at $0 with the route that led to it."""
        self._record(query_id, "index", "index", "index", "ok", route=route)
        self.session.reporter.text(found.text + "\n")
        if conversation is not None:
            conversation.add(Turn(question, question, found.text, frozenset()))
        return Answer(found.text, "index", "index", "lookup", route.difficulty, sources=found.sources,
                      duration_ms=_ms(started), query_id=query_id)

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
        for name in self._tier_order(route.start_tier, None):
            try:
                backend = self.session.tiers.get(name)
            except ModelUnavailable as exc:
                plans.append(TierPlan(name, "", 0, 0.0, False, str(exc)))
                continue
            context = self._context(question, extra, name, backend, History())
            cost = _estimate(self._spec(name), backend, self._request(name, question, context, backend, History()))
            plans.append(TierPlan(name, backend.model, context.tokens, cost, True))
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
                self._record_result(query_id, CLASSIFIER_TIER, classifier, result, route)
        return route

    def _spec(self, tier: str) -> TierSpec:
        return self.session.tiers.spec(tier)

    def _tier_order(self, start: str, forced: str | None) -> list[str]:
        order = self.session.tiers.order()
        if forced is not None:
            if forced not in order:
                raise UsageError(f"tier '{forced}' is not available here (cascade: {', '.join(order) or 'none'})")
            return [forced]
        return order[start_index(order, start):]

    def _context(self, question: str, extra: str, tier: str, backend: Backend, history: History) -> Context:
        budget = self._spec(tier).budgets.context_tokens
        window = capabilities_of(backend).context_window
        if window is not None:  # a small window: leave room for the answer, the history and the prompt's frame
            room = window - self.session.settings.max_output_tokens // 2 - 400 - history.tokens
            budget = max(0, min(budget, room))
        store = self.session.store()
        vectors = self.session.vectors()
        embedder = self.session.code_embedder() if vectors is not None and vectors.size else None
        return build_context(question, store, self.session.repo, budget, backend.count_tokens, extra, history.blocks,
                             vectors=vectors, embedder=embedder)

    def _cascade(
        self,
        run: _Run,
        question: str,
        extra: str,
        forced: str | None,
        cancel: threading.Event | None,
        assume_yes: bool,
        use_cache: bool,
        conversation: Conversation | None,
    ) -> Answer:
        settings = self.session.settings
        reporter = self.session.reporter
        route, query_id = run.route, run.query_id
        order = self._tier_order(route.start_tier, forced)
        cache = AnswerCache(self.session) if use_cache else None
        first_context: Context | None = None
        queue = list(order)
        tried: list[str] = []
        while queue:
            name = queue.pop(0)
            tried.append(name)
            try:
                backend = self.session.tiers.get(name)
            except ModelUnavailable as exc:
                if forced or len(order) == 1:
                    raise
                run.notes.append(str(exc))
                reporter.status(f"{name} skipped: {exc}")
                continue
            history = History()
            if conversation is not None:
                history = conversation.recall(_history_budget(self._spec(name), backend), backend.count_tokens)
            with self.session.timings.stage("context"):
                context = self._context(question, extra, name, backend, history)
            if first_context is None:
                first_context = context
                if cache is not None and not extra and not history.messages:
                    with self.session.timings.stage("cache"):
                        hit = cache.semantic(question, route.kind, context)
                    if hit is not None:
                        return self._from_cache(run, hit, name, context)
            run.escalate_to(name, reporter)
            if context.trimmed:
                run.notes.append(f"{context.trimmed} context piece(s) left out to fit the {name} tier's budget")
            request = self._request(name, question, context, backend, history)
            with self.session.timings.stage("cache"):
                hit = cache.exact(name, backend.model, request, context) if cache is not None else None
            if hit is not None:
                rejected = str((hit.meta or {}).get("rejected", ""))
                if not rejected or not queue or self._escalations_spent(run):
                    return self._from_cache(run, hit, name, context)
                self._record(query_id, name, backend.provider, backend.model, "cache_hit", route=route,
                             usage=_hit_usage(hit), escalation_reason=f"{rejected} (cached verdict)", cached=True)
                run.pending = (name, f"{rejected} (cached verdict)")
                run.rejected_hit = (hit, name, context)
                continue
            estimate = _estimate(self._spec(name), backend, request)
            try:
                allowed = self._allowed(name, backend, estimate, run, assume_yes)
            except BudgetStop as stop:
                if not self._keep_earlier_answer(run, str(stop), not_called=name):
                    raise
                run.budget_stop = str(stop)
                break
            if not allowed:
                cheaper = self._downgrade(name, tried, backend, request, run.cost)
                if cheaper is None:
                    why = f"no tier cheaper than {name} fits the budget"
                    self._record(query_id, name, backend.provider, backend.model, "budget_stop", route=route,
                                 error=why)
                    if self._keep_earlier_answer(run, why, not_called=name):
                        break
                    raise BudgetStop(f"{why} and no tier has answered; raise the limit or ask a cheaper tier")
                queue = [cheaper]
                run.pending = run.pending or (name, "over budget")
                run.notes.append(f"downgraded from {name} to {cheaper} to stay within budget")
                continue
            try:
                with self.session.timings.stage(f"{name} call"):
                    result, attempt = self._generate(name, backend, request, estimate, run, cancel)
            except Cancelled as stop:
                self._record_result(query_id, name, backend, stop.result, route, outcome="cancelled",
                                    cost=self._spec(name).cost_usd(stop.result.usage))
                raise
            except ModelError as exc:
                run.notes.append(f"{name} failed: {exc}")
                run.pending = (name, f"{name} failed: {exc}")
                if queue and self._escalations_spent(run) and self._keep_earlier_answer(
                        run, f"the cascade allows {settings.max_escalations} escalation(s)"):
                    break
                continue
            cost = self._spec(name).cost_usd(result.usage)
            with self.session.timings.stage("judge"):
                verdict = self._judge(name, backend, result, run, cancel)
            is_last = not queue or self._escalations_spent(run)
            reason = "" if verdict.confident or is_last else verdict.reason
            if is_last and not verdict.confident:
                run.notes.append(f"kept {name}'s answer, the last the cascade allows, although {verdict.reason}")
            self._record_result(query_id, name, backend, result, route, cost=cost, escalation_reason=reason,
                                attempt=attempt, confidence=verdict.score)
            if cache is not None and result.finish_reason != "cancelled":
                with self.session.timings.stage("cache"):
                    cache.remember(name, request, context, question, route.kind, result, cost,
                                   "" if verdict.confident else verdict.reason, first_context)
            run.add(name, backend.model, result.text, result.usage, cost, context, result.notes, verdict.score)
            run.rejected_hit = None  # a fresh answer from a later tier supersedes a skipped cached one
            if not reason:
                break
            reporter.text("\n")
            run.pending = (name, reason)
        if run.rejected_hit is not None:  # the tiers after a cached answer were skipped or failed
            self._keep_earlier_answer(run, "no later tier answered")
        return run.answer(cached=run.final_cached)

    def _escalations_spent(self, run: _Run) -> bool:
        """True when the cascade may not move the question on again (`max_escalations`); steps past failed
        tiers count too. Callers stop on it only once a tier has answered: until then any answer is sought."""
        return len(run.escalations) >= self.session.settings.max_escalations

    def _keep_earlier_answer(self, run: _Run, why: str, not_called: str | None = None) -> bool:
        """End the cascade with the latest answer it has (a cached one skipped for its verdict, if that
        came last), noting why; False when no tier has answered. An answer is never thrown away.

        `not_called` is the tier the cascade had stepped to but did not call: that step is taken back."""
        if run.rejected_hit is not None:
            hit, hit_tier, hit_context = run.rejected_hit
            self.session.reporter.text(hit.answer)
            run.add(hit_tier, hit.model, hit.answer, Usage(), 0.0, hit_context, ())
            run.final_cached = True
            run.rejected_hit = None
        if run.final is None:
            return False
        kept, doubt = run.final[0], ""
        if not_called is not None and run.escalations and run.escalations[-1].to_tier == not_called:
            doubt = run.escalations.pop().reason
        doubt = doubt or next((e.reason for e in reversed(run.escalations) if e.from_tier == kept), "")
        if not doubt and run.pending is not None and run.pending[0] == kept:
            doubt = run.pending[1]
        run.notes.append(f"kept {kept}'s answer although {doubt or 'the cascade went on'}: {why}")
        return True

    def _downgrade(
        self, tier: str, tried: list[str], backend: Backend, request: GenerationRequest, spent: float,
    ) -> str | None:
        """The most capable tier cheaper than `tier`, not tried yet, whose call fits the budget."""
        order = self.session.tiers.order()
        cheaper = [t for t in order[: order.index(tier)] if t not in tried] if tier in order else []
        input_tokens = _prompt_tokens(backend, request)
        for candidate in reversed(cheaper):
            try:
                self.session.tiers.get(candidate)  # available?
            except ModelUnavailable:
                continue
            cost = self._spec(candidate).max_cost_usd(input_tokens, request.max_tokens)
            if self.budget.check(cost, spent).verdict in ("ok", "warn"):
                return candidate
        return None

    def _generate(
        self, tier: str, backend: Backend, request: GenerationRequest, estimate: float, run: _Run,
        cancel: threading.Event | None,
    ) -> tuple[GenerationResult, int]:
        """One tier's answer and the attempt that gave it; cloud tiers retry transient failures.

        Every failed attempt is its own ledger record with the usage it had run up, and a retry is
        only made while the budget could still pay for it.
        """
        reporter = self.session.reporter

        def attempt_once() -> GenerationResult:
            return backend.generate(request, on_text=reporter.text, cancel=cancel)

        if not capabilities_of(backend).retries:
            return attempt_once(), 1
        attempts = 0

        def on_attempt(number: int, outcome: object) -> None:
            nonlocal attempts
            attempts = number
            if not isinstance(outcome, ModelError):
                return
            cost = self._spec(tier).cost_usd(outcome.partial_usage or Usage())
            run.cost += cost
            self._record(run.query_id, tier, backend.provider, backend.model, "error", route=run.route,
                         usage=outcome.partial_usage, cost=cost, error=str(outcome)[:300], attempt=number)
            if outcome.partial_text:
                reporter.text("\n")
            if outcome.transient:
                reporter.status(f"{tier}: {outcome}")

        def can_afford() -> bool:
            return self.budget.check(estimate, run.cost).verdict in ("ok", "warn")

        result = call_with_retry(attempt_once, on_attempt=on_attempt, can_afford=can_afford, cancel=cancel)
        return result, attempts

    def _system_prompt(self, tier: str, backend: Backend) -> str:
        """The stable prefix: instructions, and for tiers with a map budget a repo map (cached by the provider)."""
        prompt = _SYSTEM_PROMPT.format(repo=self.session.repo.name)
        budget = self._spec(tier).budgets.map_tokens
        if budget <= 0:
            return prompt
        store = self.session.store()
        key = (tier, store.generation())
        if key not in self._maps:
            self._maps = {k: text for k, text in self._maps.items() if k[0] != tier}  # this tier's old maps go
            self._maps[key] = render_map(store, budget, backend.count_tokens)
        repo_map = self._maps[key]
        return f"{prompt}\n\nRepository map (the most referenced definitions, path then line│ signature):\n{repo_map}"

    def _request(
        self, tier: str, question: str, context: Context, backend: Backend, history: History,
    ) -> GenerationRequest:
        return GenerationRequest(
            messages=(
                Message("system", self._system_prompt(tier, backend)),
                *history.messages,
                Message("user", _user_content(question, context)),
            ),
            max_tokens=self.session.settings.max_output_tokens,
            logprobs=capabilities_of(backend).logprobs,
        )

    def _from_cache(self, run: _Run, hit: CacheHit, tier: str, context: Context) -> Answer:
        """Answer from a cache hit: a $0 ledger record that says so, and the hit's text."""
        self._record(run.query_id, hit.tier, "cache", hit.model, "cache_hit", route=run.route, usage=_hit_usage(hit),
                     cached=True)
        self.session.reporter.text(hit.answer)
        if hit.match == "semantic":
            run.notes.append(f"semantic cache hit ({hit.similarity:.3f}): answered earlier as \"{hit.question}\"")
        run.add(hit.tier, hit.model, hit.answer, Usage(), 0.0, context, ())
        return run.answer(cached=True)

    def _allowed(self, tier: str, backend: Backend, estimate: float, run: _Run, assume_yes: bool) -> bool:
        """Whether the call may be made: budgets and the consent threshold; a warning becomes a note."""
        reporter = self.session.reporter
        query_id, route = run.query_id, run.route
        check = self.budget.check(estimate, run.cost)
        if check.verdict == "warn":
            reporter.status(f"budget warning: {check.message}")
            run.notes.append(f"budget warning before calling {tier}: {check.message}")
        elif check.verdict in ("fail", "pause"):
            if check.verdict == "pause" and (assume_yes or reporter.confirm(f"{check.message}. Continue?")):
                return True
            self._record(query_id, tier, backend.provider, backend.model, "budget_stop", route=route,
                         error=check.message)
            raise BudgetStop(f"stopped before calling {tier}: {check.message}")
        elif check.verdict == "downgrade":
            reporter.status(f"{tier} skipped: {check.message}")
            return False
        asked = estimate > self.session.settings.confirm_above_usd and not assume_yes
        if asked and not reporter.confirm(f"Ask {tier} ({backend.model}) for up to {usd(estimate)}?"):
            self._record(query_id, tier, backend.provider, backend.model, "budget_stop", route=route,
                         error="declined by the user")
            raise BudgetStop(f"{tier} call declined (estimated {usd(estimate)}); pass --yes to allow it")
        return True

    def _judge(
        self, tier: str, backend: Backend, result: GenerationResult, run: _Run, cancel: threading.Event | None,
    ) -> Verdict:
        """The answer's verdict: its own signals, then whether the edits it proposes apply (and pass the
        configured test command)."""
        settings = self.session.settings
        store = self.session.store()
        threshold = settings.local.min_confidence if capabilities_of(backend).logprobs else 0.0
        verdict = judge(result, threshold, code_parses=_code_parses, symbol_exists=known_to(store),
                        unknown_symbol_limit=settings.unknown_symbol_limit)
        if not verdict.confident or result.finish_reason == "cancelled":
            return verdict
        checked = check_patch(
            result.text, self.session.repo, settings.test_command, settings.test_timeout_s,
            on_testing=lambda: self.session.reporter.status(f"checking {tier}'s patch with `{settings.test_command}`"),
            cancel=cancel,
        )
        if checked.note:
            run.notes.append(checked.note)
        return Verdict(0.3, checked.reason) if checked.reason else verdict

    # -- ledger ---------------------------------------------------------------------------

    def _record_result(
        self, query_id: str, tier: str, backend: Backend, result: GenerationResult, route: Route,
        outcome: str = "ok", cost: float = 0.0, escalation_reason: str = "", attempt: int = 1,
        confidence: float | None = None,
    ) -> None:
        self._record(query_id, tier, backend.provider, backend.model, outcome, route=route, usage=result.usage,
                     cost=cost, latency_ms=result.latency_ms, ttft_ms=result.ttft_ms,
                     escalation_reason=escalation_reason, attempt=attempt, confidence=confidence)

    def _record(
        self, query_id: str, tier: str, provider: str, model: str, outcome: str, *, route: Route | None = None,
        usage: Usage | None = None, cost: float = 0.0, latency_ms: float = 0.0, ttft_ms: float | None = None,
        escalation_reason: str = "", error: str = "", cached: bool = False, attempt: int = 1,
        confidence: float | None = None,
    ) -> None:
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


def _history_budget(spec: TierSpec, backend: Backend) -> int:
    """Tokens of earlier turns a tier gets: its budget, and never more than a quarter of a small window."""
    budget = spec.budgets.history_tokens
    window = capabilities_of(backend).context_window
    return budget if window is None else min(budget, window // 4)


def _user_content(question: str, context: Context) -> str:
    """The user message: the context blocks, then the question."""
    return f"{context.text}\n\nQuestion: {question}" if context.text else question


def _estimate(spec: TierSpec, backend: Backend, request: GenerationRequest) -> float:
    """The most `request` can cost on a tier: what the budget checks, the consent prompt and the dry run show."""
    return spec.max_cost_usd(_prompt_tokens(backend, request), request.max_tokens)


def _prompt_tokens(backend: Backend, request: GenerationRequest) -> int:
    """Input tokens a request will be billed for, with room for the chat template's framing."""
    return sum(backend.count_tokens(m.content) + 8 for m in request.messages)


def _code_parses(fence_language: str, code: str) -> bool:
    language = _FENCE_LANGUAGES.get(fence_language.lower())
    if language is None:
        return True
    return not parse_source(language, code.encode()).has_errors


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _hit_usage(hit: CacheHit) -> Usage:
    """The tokens a cached answer took when it was made (what the all-Sonnet counterfactual counts)."""
    return Usage(hit.input_tokens, hit.output_tokens, hit.cache_read_tokens, hit.cache_write_tokens)
