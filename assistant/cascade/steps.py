"""The cascade: one question down the configured tiers, each tier through named steps

    prepare → cache → budget → call → judge → decide

Each step returns a `Flow`: go on with this tier, move to the next tier, or stop with the answer the
cascade has. The state of the whole trip is one `CascadeState`; one tier's turn is a `TierStep`
(assistant/cascade/state.py).
"""

from __future__ import annotations

import time

from assistant.accounting.answer_cache import AnswerCache, hit_confidence, hit_usage
from assistant.accounting.cache import CacheHit
from assistant.accounting.money import usd
from assistant.answer import Answer
from assistant.cascade.confidence import Verdict, judge_in
from assistant.cascade.estimates import estimate, history_budget, prompt_tokens
from assistant.cascade.state import CascadeState, Flow, PipelineSteps, Query, TierStep
from assistant.changes.patch_check import check_patch
from assistant.context.builder import Context
from assistant.context.conversation import History
from assistant.errors import BudgetStop
from assistant.timing import call_phases
from models.base import (
    Cancelled,
    GenerationResult,
    ModelError,
    ModelUnavailable,
    Usage,
    capabilities_of,
    pending_load,
)
from models.retry import DEFAULT_POLICY, NO_RETRIES, call_with_retry


class Cascade:
    """Asks the tiers in order until one answer is good enough, the budget stops it or none is left."""

    def __init__(self, pipeline: PipelineSteps, state: CascadeState, query: Query, use_cache: bool) -> None:
        self.pipeline = pipeline
        self.session = pipeline.session
        self.state = state
        self.query = query
        self.cache = AnswerCache(self.session) if use_cache else None
        self.single = query.forced is not None

    def run(self) -> Answer:
        """The answer the user gets; raises BudgetStop, NoTierAnswered, Cancelled or ModelUnavailable."""
        state = self.state
        while state.queue or state.fall_back():
            step = self._prepare(state.queue.pop(0))
            flow = Flow.NEXT if step is None else self._through(step)
            if flow is Flow.STOP:
                break
        if state.rejected_hit is not None:  # the tiers after a cached answer were skipped or failed
            self._keep_earlier_answer("no later tier answered")
        return state.answer()

    def _through(self, step: TierStep) -> Flow:
        for stage in (self._cache, self._budget, self._call, self._judge, self._decide):
            flow = stage(step)
            if flow is not Flow.ON:
                return flow
        return Flow.NEXT

    # -- the steps ----------------------------------------------------------------------------------

    def _prepare(self, name: str) -> TierStep | None:
        """The tier's backend, history and context; None when it is unavailable (noted) and others remain."""
        self.state.tried.append(name)
        try:
            backend = self.session.tiers.get(name)
        except ModelUnavailable as exc:
            if self.single:
                raise
            self.state.unavailable(exc)
            return None
        load = pending_load(backend)
        if load is not None:  # on first use, inside the context's token counts: timed apart instead
            with self.session.timings.stage(f"{name} model load"):
                load()
        spec = self.session.tiers.spec(name)
        history = History()
        if self.query.conversation is not None:
            history = self.query.conversation.recall(history_budget(spec, backend), backend.count_tokens)
        with self.session.timings.stage("context"):
            context = self.pipeline.context_for(self.query.question, self.query.extra, name, backend, history,
                                                self.query.shape)
        return TierStep(name, backend, spec, history, context)

    def _cache(self, step: TierStep) -> Flow:
        """A semantic hit (first tier only) or an exact hit answers; a hit cached as rejected moves on."""
        state, query = self.state, self.query
        if state.first_context is None:
            state.first_context = step.context
            if self.cache is not None and not query.extra and not step.history.messages:
                with self.session.timings.stage("cache"):
                    hit = self.cache.semantic(query.question, state.route.kind, step.context)
                if hit is not None:
                    return self._from_cache(hit, step.context)
        state.escalate_to(step.name, self.session.reporter)
        if step.context.trimmed:
            state.notes.append(f"{step.context.trimmed} context piece(s) left out to fit the {step.name} tier's budget")
        step.request = self.pipeline.request_for(step.name, query.question, step.context, step.backend, step.history,
                                                 query.shape)
        with self.session.timings.stage("cache"):
            hit = self.cache.exact(step.name, step.backend.model, step.request, step.context) if self.cache else None
        if hit is None:
            return Flow.ON
        rejected = str((hit.meta or {}).get("rejected", ""))
        if not rejected or not state.queue or self._escalations_spent():
            return self._from_cache(hit, step.context)
        self._record(step, "cache_hit", usage=hit_usage(hit), escalation_reason=f"{rejected} (cached verdict)",
                     cached=True)
        state.pending = (step.name, f"{rejected} (cached verdict)")
        state.rejected_hit = (hit, step.name, step.context)
        return Flow.NEXT

    def _budget(self, step: TierStep) -> Flow:
        """The budgets and the consent threshold; over budget in `downgrade` mode, a cheaper tier next."""
        assert step.request is not None
        step.estimate = estimate(step.spec, step.backend, step.request)
        try:
            allowed = self._allowed(step)
        except BudgetStop as stop:
            if not self._keep_earlier_answer(str(stop), not_called=step.name):
                raise
            self.state.budget_stop = str(stop)
            return Flow.STOP
        return Flow.ON if allowed else self._downgrade(step)

    def _call(self, step: TierStep) -> Flow:
        """The tier's answer; a failed tier is noted and the cascade moves on."""
        state = self.state
        try:
            with self.session.timings.stage(f"{step.name} call"):
                step.result, step.attempt = self._generate(step)
        except Cancelled as stop:
            self.pipeline.record_result(state.query_id, step.name, step.backend, stop.result, state.route,
                                        outcome="cancelled", cost=step.spec.cost_usd(stop.result.usage))
            raise
        except ModelError as exc:
            state.cause(f"{step.name} failed: {exc}")
            state.pending = (step.name, f"{step.name} failed: {exc}")
            spent = state.queue and self._escalations_spent()
            why = f"the cascade allows {self.session.settings.max_escalations} escalation(s)"
            return Flow.STOP if spent and self._keep_earlier_answer(why) else Flow.NEXT
        step.cost = step.spec.cost_usd(step.result.usage)
        self.session.timings.explain(f"{step.name} call", call_phases(step.result))
        return Flow.ON

    def _judge(self, step: TierStep) -> Flow:
        """The answer's verdict: its own signals, then whether the edits it proposes apply (and pass the
        configured test command)."""
        assert step.result is not None
        settings = self.session.settings
        with self.session.timings.stage("judge"):
            threshold = settings.local.min_confidence if capabilities_of(step.backend).logprobs else 0.0
            step.verdict = judge_in(self.session.store(), step.result, threshold, settings.unknown_symbol_limit)
            if step.verdict.confident and step.result.finish_reason != "cancelled":
                checked = check_patch(
                    step.result.text, self.session.repo, settings.test_command, settings.test_timeout_s,
                    on_testing=lambda: self.session.reporter.status(
                        f"checking {step.name}'s patch with `{settings.test_command}`"),
                    cancel=self.query.cancel,
                )
                if checked.note:
                    self.state.notes.append(checked.note)
                if checked.reason:
                    step.verdict = Verdict(0.3, checked.reason)
        return Flow.ON

    def _decide(self, step: TierStep) -> Flow:
        """Record and cache the answer; stop on a confident one (or the last allowed), else escalate."""
        state, result, verdict = self.state, step.result, step.verdict
        assert result is not None and verdict is not None and step.request is not None
        is_last = not state.queue or self._escalations_spent()
        reason = "" if verdict.confident or is_last else verdict.reason
        if is_last and not verdict.confident:
            state.notes.append(f"kept {step.name}'s answer, the last the cascade allows, although {verdict.reason}")
        self.pipeline.record_result(state.query_id, step.name, step.backend, result, state.route, cost=step.cost,
                                    escalation_reason=reason, attempt=step.attempt, confidence=verdict.score)
        if self.cache is not None and result.finish_reason != "cancelled":
            with self.session.timings.stage("cache"):
                self.cache.remember(step.name, step.request, step.context, self.query.question, state.route.kind,
                                    result, step.cost, "" if verdict.confident else verdict.reason,
                                    state.first_context, verdict.score)
        state.add(step.name, result.model, result.text, result.usage, step.cost, step.context, result.notes,
                  verdict.score, result.finish_reason, result.thinking)
        state.rejected_hit = None  # a fresh answer from a later tier supersedes a skipped cached one
        if not reason:
            return Flow.STOP
        self.session.reporter.text("\n")
        state.pending = (step.name, reason)
        return Flow.NEXT

    # -- helpers ------------------------------------------------------------------------------------

    def _escalations_spent(self) -> bool:
        """True when the cascade may not move the question on again (`max_escalations`); steps past failed
        tiers count too. Callers stop on it only once a tier has answered: until then any answer is sought."""
        return len(self.state.escalations) >= self.session.settings.max_escalations

    def _keep_earlier_answer(self, why: str, not_called: str | None = None) -> bool:
        """End the cascade with the latest answer it has (a cached one skipped for its verdict, if that
        came last), noting why; False when no tier has answered. An answer is never thrown away.

        `not_called` is the tier the cascade had stepped to but did not call: that step is taken back."""
        state = self.state
        if state.rejected_hit is not None:
            hit, hit_tier, hit_context = state.rejected_hit
            self.session.reporter.text(hit.answer)
            state.add(hit_tier, hit.model, hit.answer, Usage(), 0.0, hit_context, (), hit_confidence(hit))
            state.final_cached = True
            state.rejected_hit = None
        if state.final is None:
            return False
        kept, doubt = state.final[0], ""
        if not_called is not None and state.escalations and state.escalations[-1].to_tier == not_called:
            doubt = state.escalations.pop().reason
        doubt = doubt or next((e.reason for e in reversed(state.escalations) if e.from_tier == kept), "")
        if not doubt and state.pending is not None and state.pending[0] == kept:
            doubt = state.pending[1]
        state.notes.append(f"kept {kept}'s answer although {doubt or 'the cascade went on'}: {why}")
        return True

    def _from_cache(self, hit: CacheHit, context: Context) -> Flow:
        """Answer from a cache hit: a $0 ledger record that says so, and the hit's text."""
        state = self.state
        self.pipeline.record(state.query_id, hit.tier, "cache", hit.model, "cache_hit", route=state.route,
                             usage=hit_usage(hit), cached=True)
        self.session.reporter.text(hit.answer)
        if hit.match == "semantic":
            state.notes.append(f"semantic cache hit ({hit.similarity:.3f}): answered earlier as \"{hit.question}\"")
        state.add(hit.tier, hit.model, hit.answer, Usage(), 0.0, context, (), hit_confidence(hit))
        state.final_cached, state.rejected_hit = True, None
        return Flow.STOP

    def _allowed(self, step: TierStep) -> bool:
        """Whether the call may be made: budgets and the consent threshold; a warning becomes a note."""
        reporter, state, tier = self.session.reporter, self.state, step.name
        check = self.pipeline.budget.check(step.estimate, state.cost)
        if check.verdict.stops:
            if check.verdict.asks and (self.query.assume_yes or reporter.confirm(f"{check.message}. Continue?")):
                return True
            self._record(step, "budget_stop", error=check.message)
            raise BudgetStop(f"stopped before calling {tier}: {check.message}")
        if not check.verdict.allows:  # downgrade
            reporter.status(f"{tier} skipped: {check.message}")
            return False
        if check.message:
            reporter.status(f"budget warning: {check.message}")
            state.notes.append(f"budget warning before calling {tier}: {check.message}")
        asked = step.estimate > self.session.settings.confirm_above_usd and not self.query.assume_yes
        if asked and not reporter.confirm(f"Ask {tier} ({step.backend.model}) for up to {usd(step.estimate)}?"):
            self._record(step, "budget_stop", error="declined by the user")
            raise BudgetStop(f"{tier} call declined (estimated {usd(step.estimate)}); pass --yes to allow it")
        return True

    def _downgrade(self, step: TierStep) -> Flow:
        """Next, the most capable tier cheaper than this one, not tried yet, whose call fits the budget; with
        none, the cascade stops with the answer it has (or a BudgetStop when it has none)."""
        assert step.request is not None
        state = self.state
        order = self.session.tiers.order()
        cheaper = [t for t in order[: order.index(step.name)] if t not in state.tried] if step.name in order else []
        tokens = prompt_tokens(step.backend, step.request)
        for candidate in reversed(cheaper):
            try:
                self.session.tiers.get(candidate)  # available?
            except ModelUnavailable:
                continue
            cost = self.session.tiers.spec(candidate).max_cost_usd(tokens, step.request.max_tokens)
            if self.pipeline.budget.check(cost, state.cost).verdict.allows:
                state.queue = [candidate]
                state.pending = state.pending or (step.name, "over budget")
                state.notes.append(f"downgraded from {step.name} to {candidate} to stay within budget")
                return Flow.NEXT
        why = f"no tier cheaper than {step.name} fits the budget"
        self._record(step, "budget_stop", error=why)
        if self._keep_earlier_answer(why, not_called=step.name):
            return Flow.STOP
        raise BudgetStop(f"{why} and no tier has answered; raise the limit or ask a cheaper tier")

    def _generate(self, step: TierStep) -> tuple[GenerationResult, int]:
        """One tier's answer and the attempt that gave it; backends worth retrying retry transient failures.

        Every failed attempt is its own ledger record with the usage it had run up and how long it took,
        a retry is only made while the budget could still pay for it, and only the first retry is
        announced (the last failure is the tier's, in the notes).
        """
        assert step.request is not None
        request, backend, reporter, state = step.request, step.backend, self.session.reporter, self.state
        attempts, started = 0, time.perf_counter()
        reading = f"{step.name} · {backend.model}: reading {prompt_tokens(backend, request):,} tokens"

        def attempt_once() -> GenerationResult:
            nonlocal started
            started = time.perf_counter()
            reporter.waiting(reading)  # until the first token streams (a local model reads for seconds)
            return backend.generate(request, on_text=reporter.text, cancel=self.query.cancel)

        def on_attempt(number: int, outcome: object) -> None:
            nonlocal attempts
            attempts = number
            if not isinstance(outcome, ModelError):
                return
            cost = step.spec.cost_usd(outcome.partial_usage or Usage())
            state.cost += cost
            self._record(step, "error", usage=outcome.partial_usage, cost=cost, error=str(outcome)[:300],
                         attempt=number, latency_ms=(time.perf_counter() - started) * 1000)
            if outcome.partial_text:
                reporter.text("\n")

        def on_retry(number: int, error: ModelError) -> None:
            if number == 1:
                reporter.status(f"{step.name}: {error}; retrying")

        def can_afford() -> bool:
            return self.pipeline.budget.check(step.estimate, state.cost).verdict.allows

        policy = DEFAULT_POLICY if capabilities_of(backend).retries else NO_RETRIES
        result = call_with_retry(attempt_once, policy=policy, on_attempt=on_attempt, on_retry=on_retry,
                                 can_afford=can_afford, cancel=self.query.cancel)
        return result, attempts

    def _record(self, step: TierStep, outcome: str, **details: object) -> None:
        self.pipeline.record(self.state.query_id, step.name, step.backend.provider, step.backend.model, outcome,
                             route=self.state.route, **details)  # type: ignore[arg-type]
