"""One question's path: pre-flight, classify, context, the cascade with budgets and the ledger."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from assistant.answer import Answer, Escalation
from assistant.budget import BudgetGuard
from assistant.confidence import Verdict, judge
from assistant.context import TIER_BUDGETS, Context, build_context
from assistant.errors import BudgetStop, NoTierAnswered, UsageError
from assistant.ledger import CallRecord, new_id
from assistant.preflight import preflight
from assistant.router import Route, classify
from assistant.session import Session
from indexer.parse import parse_source
from models.base import (
    Backend,
    Cancelled,
    GenerationRequest,
    GenerationResult,
    Message,
    ModelError,
    ModelUnavailable,
    Usage,
)

LOCAL_CONFIDENCE_THRESHOLD = 0.35
"""Geometric-mean token probability below which a local answer escalates."""

_SYSTEM_PROMPT = (
    "You are Tiercode, a coding assistant working in the repository '{repo}'. Answer the developer's "
    "question using the context from the repository's index. Cite code as path:line. Be concise and "
    "correct; put code in fenced blocks with a language tag. If the context is not enough, say what is "
    "missing."
)
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

    def to_json(self) -> dict[str, object]:
        """The dry-run's JSON form."""
        return {
            "kind": self.route.kind, "difficulty": self.route.difficulty, "stage": self.route.stage,
            "probability": self.route.probability, "start_tier": "index" if self.preflight else self.route.start_tier,
            "tiers": [t.__dict__ for t in self.tiers],
        }


def estimate_cost(model: str, tier: str, input_tokens: int, max_tokens: int) -> float:
    """Upper bound on a call's cost: known input tokens, output bounded by max_tokens."""
    if tier == "local":
        return 0.0
    from models import pricing

    return pricing.cost_usd(model, Usage(input_tokens=input_tokens, output_tokens=max_tokens))


class Pipeline:
    """Answers questions for one session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.budget = BudgetGuard(session.settings.budget, session.ledger, session.session_id)

    # -- the whole path -------------------------------------------------------------------

    def ask(
        self,
        question: str,
        extra: str = "",
        tier: str | None = None,
        cancel: threading.Event | None = None,
        assume_yes: bool = False,
    ) -> Answer:
        """Answer one question; streams through the session's reporter."""
        question = question.strip()
        if not question:
            raise UsageError("the question is empty; ask something, e.g. tiercode ask \"where is main defined?\"")
        started = time.perf_counter()
        query_id = new_id()
        store = self.session.store()
        if tier is None and not extra:
            found = preflight(question, store)
            if found is not None:
                self._record(query_id, "index", "index", "index", "ok", kind="lookup")
                self.session.reporter.text(found.text + "\n")
                return Answer(found.text, "index", "index", "lookup", "simple", sources=found.sources,
                              duration_ms=_ms(started), query_id=query_id)
        route = self._route(question)
        return self._cascade(question, extra, route, tier, query_id, started, cancel, assume_yes)

    def plan(self, question: str, extra: str = "") -> Plan:
        """The route and per-tier estimates, calling no model."""
        store = self.session.store()
        if not extra and preflight(question, store) is not None:
            return Plan(Route("lookup", "simple", "index", "rules", 1.0), True)
        route = classify(question)
        plans = []
        for name in self._tier_order(route.start_tier, None):
            try:
                backend = self.session.tiers.get(name)
            except ModelUnavailable as exc:
                plans.append(TierPlan(name, "", 0, 0.0, False, str(exc)))
                continue
            context = self._context(question, extra, name, backend)
            input_tokens = context.tokens + backend.count_tokens(question) + 200
            cost = estimate_cost(backend.model, name, input_tokens, self.session.settings.max_output_tokens)
            plans.append(TierPlan(name, backend.model, context.tokens, round(cost, 6), True))
        return Plan(route, False, tuple(plans))

    # -- stages ---------------------------------------------------------------------------

    def _route(self, question: str) -> Route:
        classifier: Backend | None = None
        try:
            classifier = self.session.tiers.local("classifier")
        except ModelUnavailable:
            classifier = None
        return classify(question, classifier)

    def _tier_order(self, start: str, forced: str | None) -> list[str]:
        order = self.session.tiers.order()
        if forced is not None:
            if forced not in order:
                raise UsageError(f"tier '{forced}' is not available here (cascade: {', '.join(order) or 'none'})")
            return [forced]
        return order[order.index(start):] if start in order else order

    def _context(self, question: str, extra: str, tier: str, backend: Backend) -> Context:
        budget = TIER_BUDGETS.get(tier, 4000)
        window = getattr(backend, "context_window", None)
        if window is not None:  # the local model: leave room for the answer and the prompt's frame
            budget = max(0, min(budget, window - self.session.settings.max_output_tokens // 2 - 400))
        store = self.session.store()
        return build_context(question, store, self.session.repo, budget, backend.count_tokens, extra)

    def _cascade(
        self,
        question: str,
        extra: str,
        route: Route,
        forced: str | None,
        query_id: str,
        started: float,
        cancel: threading.Event | None,
        assume_yes: bool,
    ) -> Answer:
        settings = self.session.settings
        reporter = self.session.reporter
        order = self._tier_order(route.start_tier, forced)
        escalations: list[Escalation] = []
        notes: list[str] = []
        total_usage = Usage()
        total_cost = 0.0
        pending: tuple[str, str] | None = None  # (tier, reason) of the last rejected answer
        last: tuple[str, Backend, GenerationResult, Context] | None = None
        for position, name in enumerate(order):
            try:
                backend = self.session.tiers.get(name)
            except ModelUnavailable as exc:
                if forced or len(order) == 1:
                    raise
                notes.append(str(exc))
                reporter.status(f"{name} skipped: {exc}")
                continue
            if pending is not None:
                escalations.append(Escalation(pending[0], name, pending[1]))
                reporter.status(f"escalating {pending[0]} → {name}: {pending[1]}")
            context = self._context(question, extra, name, backend)
            if context.trimmed:
                notes.append(f"{context.trimmed} context piece(s) left out to fit the {name} tier's budget")
            request = GenerationRequest(
                messages=(
                    Message("system", _SYSTEM_PROMPT.format(repo=self.session.repo.name)),
                    Message("user", f"{context.text}\n\nQuestion: {question}" if context.text else question),
                ),
                max_tokens=settings.max_output_tokens,
                logprobs=name == "local",
            )
            estimate = estimate_cost(backend.model, name, backend.count_tokens(request.messages[1].content) + 200,
                                     request.max_tokens)
            if not self._allowed(name, backend, estimate, total_cost, query_id, route, assume_yes):
                pending = pending or (name, "skipped by budget")
                continue
            try:
                result = backend.generate(request, on_text=reporter.text, cancel=cancel)
            except Cancelled as stop:
                self._record_result(query_id, name, backend, stop.result, route, outcome="cancelled")
                raise
            except ModelError as exc:
                self._record(query_id, name, backend.provider, backend.model, "error", kind=route.kind,
                             usage=exc.partial_usage, error=str(exc)[:300])
                notes.append(f"{name} failed: {exc}")
                pending = (name, f"{name} failed: {exc}")
                continue
            total_usage = total_usage + result.usage
            cost = 0.0 if name == "local" else _cost(backend.model, result.usage)
            total_cost += cost
            verdict = self._judge(name, result)
            is_last = position == len(order) - 1 or len(escalations) >= settings.max_escalations
            reason = "" if verdict.confident or is_last else verdict.reason
            self._record_result(query_id, name, backend, result, route, cost=cost, escalation_reason=reason)
            notes.extend(result.notes)
            last = (name, backend, result, context)
            if not reason:
                break
            reporter.text("\n")
            pending = (name, reason)
        if last is None:
            raise NoTierAnswered("no tier could answer: " + ("; ".join(notes) or "the cascade is empty"))
        name, backend, result, context = last
        return Answer(
            answer=result.text,
            tier=name,
            model=backend.model,
            kind=route.kind,
            difficulty=route.difficulty,
            escalations=tuple(escalations),
            usage=total_usage,
            cost_usd=total_cost,
            sources=context.sources,
            duration_ms=_ms(started),
            notes=tuple(notes),
            query_id=query_id,
        )

    def _allowed(
        self, tier: str, backend: Backend, estimate: float, spent: float, query_id: str, route: Route,
        assume_yes: bool,
    ) -> bool:
        reporter = self.session.reporter
        check = self.budget.check(estimate, spent)
        if check.verdict == "warn":
            reporter.status(f"budget warning: {check.message}")
        elif check.verdict in ("fail", "pause"):
            if check.verdict == "pause" and (assume_yes or reporter.confirm(f"{check.message}. Continue?")):
                return True
            self._record(query_id, tier, backend.provider, backend.model, "budget_stop", kind=route.kind,
                         error=check.message)
            raise BudgetStop(f"stopped before calling {tier}: {check.message}")
        elif check.verdict == "downgrade":
            reporter.status(f"{tier} skipped: {check.message}")
            return False
        asked = estimate > self.session.settings.confirm_above_usd and not assume_yes
        if asked and not reporter.confirm(f"Ask {tier} ({backend.model}) for up to ${estimate:.4f}?"):
            self._record(query_id, tier, backend.provider, backend.model, "budget_stop", kind=route.kind,
                         error="declined by the user")
            raise BudgetStop(f"{tier} call declined (estimated ${estimate:.4f}); pass --yes to allow it")
        return True

    def _judge(self, tier: str, result: GenerationResult) -> Verdict:
        store = self.session.store()
        threshold = LOCAL_CONFIDENCE_THRESHOLD if tier == "local" else 0.0
        return judge(result, threshold, code_parses=_code_parses, symbol_exists=lambda n: bool(store.definitions(n)))

    # -- ledger ---------------------------------------------------------------------------

    def _record_result(
        self, query_id: str, tier: str, backend: Backend, result: GenerationResult, route: Route,
        outcome: str = "ok", cost: float = 0.0, escalation_reason: str = "",
    ) -> None:
        self._record(query_id, tier, backend.provider, backend.model, outcome, kind=route.kind, usage=result.usage,
                     cost=cost, latency_ms=result.latency_ms, ttft_ms=result.ttft_ms,
                     escalation_reason=escalation_reason)

    def _record(
        self, query_id: str, tier: str, provider: str, model: str, outcome: str, *, kind: str = "",
        usage: Usage | None = None, cost: float = 0.0, latency_ms: float = 0.0, ttft_ms: float | None = None,
        escalation_reason: str = "", error: str = "",
    ) -> None:
        usage = usage or Usage()
        self.session.ledger.record(CallRecord(
            session_id=self.session.session_id, query_id=query_id, tier=tier, provider=provider, model=model,
            outcome=outcome, kind=kind, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens, cache_write_tokens=usage.cache_write_tokens, cost_usd=cost,
            latency_ms=latency_ms, ttft_ms=ttft_ms, escalation_reason=escalation_reason, error=error,
        ))


def _cost(model: str, usage: Usage) -> float:
    from models import pricing

    return pricing.cost_usd(model, usage)


def _code_parses(fence_language: str, code: str) -> bool:
    language = _FENCE_LANGUAGES.get(fence_language.lower())
    if language is None:
        return True
    return not parse_source(language, code.encode()).has_errors


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000

