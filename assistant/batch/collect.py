"""`tiercode batch status|collect|cancel`: what the providers say of the batches in the store, their answers
collected into the ledger at the batch price, and cancelling.

Collecting an ended batch settles each request not collected yet, one at a time and each in one step
(`BatchStore.settle`): a succeeded one is a ledger record at its batch price (the tier's price times its
`batch_factor`) under the question's id, with the batch's id; an errored, expired or canceled one is a $0
record that says so. A succeeded answer is judged as the cascade judges an answer (it parses, it names what
the index has) and cached under the request it answered with that verdict: asked again, by `ask` or in
another batch, a good answer costs nothing and a rejected one is escalated past, as the cascade does with
its own. A collect that stops midway (a dropped results stream, Ctrl-C) leaves the rest for the next run,
and a request already collected is never recorded again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from assistant.accounting.answer_cache import AnswerCache, CacheKey
from assistant.accounting.ledger import CallRecord
from assistant.batch.jobs import Job, answer_row
from assistant.batch.store import BatchStore, StoredBatch, StoredRequest
from assistant.batch.submit import BatchError, Emit
from assistant.cascade.confidence import Verdict, judge_in
from assistant.errors import UsageError
from assistant.session import Session
from models.base import GenerationResult, ModelError, ModelUnavailable, Usage
from models.batching import BatchApi, BatchCounts, BatchOutcome, BatchStatus, RequestStatus, batches_of

_OUTCOMES = {"succeeded": "ok", "errored": "error", "expired": "error", "canceled": "cancelled"}
"""The ledger outcome of each request status."""
_NOT_ANSWERED = {"expired": "expired: the provider did not get to it before the batch's time ran out",
                 "canceled": "canceled before the provider processed it"}


@dataclass(frozen=True)
class BatchReport:
    """One batch as `batch status` shows it."""

    batch: StoredBatch
    status: BatchStatus
    collected: int
    size: int

    def to_json(self) -> dict[str, object]:
        """The `batch status --json` object of this batch."""
        b, counts = self.batch, self.status.counts
        return {"batch": b.batch_id, "tier": b.tier, "model": b.model, "state": self.status.state,
                "canceled": b.canceled, "requests": self.size, "collected": self.collected,
                "counts": asdict(counts), "estimated_usd": round(b.estimated_usd, 6), "created_at": b.created_at}


class BatchDesk:
    """The batch commands on one session and the batch store."""

    def __init__(self, session: Session, store: BatchStore) -> None:
        self.session = session
        self.store = store

    def status(self, ids: Sequence[str] = (), include_collected: bool = False) -> list[BatchReport]:
        """Each batch named (default: each with requests not collected) as its provider reports it now."""
        reports = []
        for batch in self._batches(ids, include_collected):
            requests = self.store.requests(batch.batch_id)
            collected = sum(1 for r in requests if r.collected_at is not None)
            if collected == len(requests):  # nothing left to ask the provider about
                reports.append(BatchReport(batch, BatchStatus(batch.batch_id, "ended", _counts(requests)),
                                           collected, len(requests)))
                continue
            status = self._status(batch, len(requests))
            reports.append(BatchReport(batch, status, collected, len(requests)))
        return reports

    def collect(self, ids: Sequence[str], emit: Emit) -> tuple[int, int]:
        """Settle every request of the ended batches named (default: all with requests not collected), emitting
        each; (requests collected now, batches still in progress)."""
        collected = waiting = 0
        for batch in self._batches(ids, include_collected=False):
            requests = self.store.requests(batch.batch_id)
            status = self._status(batch, len(requests))
            if status.state != "ended":
                waiting += 1
                self.session.reporter.status(f"batch {batch.batch_id} is {status.state.replace('_', ' ')}: "
                                             f"{status.counts.processing} of {len(requests)} still processing")
                continue
            collected += self._collect(batch, requests, emit)
        return collected, waiting

    def cancel(self, ids: Sequence[str]) -> list[str]:
        """Ask the providers to cancel these batches (each still in progress); the ids canceled."""
        canceled = []
        for batch in self._batches(ids, include_collected=False):
            if batch.state == "ended":
                self.session.reporter.status(f"batch {batch.batch_id} has ended already; collect it instead")
                continue
            api = batch_api(self.session, batch)
            with provider_errors():
                api.cancel(batch.batch_id)
            self.store.set_state(batch.batch_id, "canceling", canceled=True)
            canceled.append(batch.batch_id)
        return canceled

    # -- one batch ----------------------------------------------------------------------------------

    def _collect(self, batch: StoredBatch, requests: list[StoredRequest], emit: Emit) -> int:
        pending = {r.custom_id: r for r in requests if r.collected_at is None}
        collected = 0
        api = batch_api(self.session, batch)
        try:
            for outcome in api.results(batch.batch_id, [r.custom_id for r in requests]):
                request = pending.pop(outcome.custom_id, None)
                if request is not None and self._settle(batch, request, outcome, emit):
                    collected += 1
        except ModelError as exc:
            raise BatchError(f"{exc}; {collected} answer(s) of it were collected and recorded: run `tiercode batch "
                             "collect` again for the rest (nothing is recorded twice)") from exc
        if pending:
            self.session.reporter.status(f"batch {batch.batch_id}: the provider gave no result for "
                                         f"{', '.join(sorted(pending))}")
        return collected

    def _settle(self, batch: StoredBatch, request: StoredRequest, outcome: BatchOutcome, emit: Emit) -> bool:
        """Record one request's outcome in the ledger and mark it collected, in one step; cache a succeeded
        answer with its verdict; emit its line."""
        result = outcome.result if outcome.status == "succeeded" else None
        spec = self.session.tiers.spec(batch.tier)
        cost = spec.cost_usd(result.usage) * spec.batch_factor if result is not None else 0.0
        error = outcome.error or _NOT_ANSWERED.get(outcome.status, "")
        settings = self.session.settings
        verdict = None if result is None else judge_in(self.session.store(), result, 0.0, settings.unknown_symbol_limit)
        record = self._record(batch, request, outcome.status, result, cost, error, verdict)
        ledger = self.session.ledger

        def write() -> None:
            if not ledger.has_batch_record(batch.batch_id, request.query_id):  # not recorded by a run cut short
                ledger.record(record)

        answer = result.text if result is not None else ""
        if not self.store.settle(request, outcome.status, answer, cost, error, write):
            return False
        if result is not None and verdict is not None and request.cache_key:
            AnswerCache(self.session).remember_at(batch.tier, CacheKey.from_json(request.cache_key), request.question,
                                                  request.kind, result, cost, verdict.score, verdict.reason)
        job = Job(request.custom_id, request.question)
        row = answer_row(job, outcome.status, answer=answer if result is not None else None, tier=batch.tier,
                         model=record.model, cost_usd=cost, batch=batch.batch_id, error=error or None)
        emit({**row, "verdict": verdict.reason or "ok"} if verdict is not None else row)
        return True

    def _record(self, batch: StoredBatch, request: StoredRequest, status: RequestStatus,
                result: GenerationResult | None, cost: float, error: str, verdict: Verdict | None) -> CallRecord:
        """The ledger record of one request's outcome (`result` when it succeeded), at the batch price, with the
        answer's verdict."""
        usage = result.usage if result is not None else Usage()
        return CallRecord(
            session_id=self.session.session_id, query_id=request.query_id, tier=batch.tier, provider=batch.provider,
            model=result.model if result is not None else batch.model, outcome=_OUTCOMES[status],
            kind=request.kind, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            thinking_tokens=usage.thinking_tokens, cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens, cost_usd=cost, error=error[:300],
            route_stage=request.route_stage, route_probability=request.route_probability,
            confidence=verdict.score if verdict is not None else None,
            endpoint=self.session.tiers.endpoint(batch.tier), batch_id=batch.batch_id,
        )

    def _batches(self, ids: Sequence[str], include_collected: bool) -> list[StoredBatch]:
        found = self.store.batches(ids, include_collected=include_collected or bool(ids))
        missing = sorted(set(ids) - {b.batch_id for b in found})
        if missing:
            raise UsageError(f"no batch {missing[0]} was submitted from here; `tiercode batch status --all` lists them")
        return found

    def _status(self, batch: StoredBatch, size: int) -> BatchStatus:
        """What the provider says of a batch now, kept in the store."""
        api = batch_api(self.session, batch)
        with provider_errors():
            status = api.status(batch.batch_id, size)
        self.store.set_state(batch.batch_id, status.state)
        return status


@contextmanager
def provider_errors() -> Iterator[None]:
    """A provider's failure (not a tier that cannot be used: a configuration error) as a one-line BatchError."""
    try:
        yield
    except ModelUnavailable:
        raise
    except ModelError as exc:
        raise BatchError(str(exc)) from exc


def _counts(requests: list[StoredRequest]) -> BatchCounts:
    """The counts of a batch whose every request is collected, from the store."""
    statuses = [r.status for r in requests]
    return BatchCounts(0, statuses.count("succeeded"), statuses.count("errored"), statuses.count("canceled"),
                       statuses.count("expired"))


def batch_api(session: Session, batch: StoredBatch) -> BatchApi:
    """The batch API of the tier a batch was submitted to; UsageError when that tier can no longer batch."""
    api = batches_of(session.tiers.get(batch.tier))
    if api is None:
        raise UsageError(f"tier '{batch.tier}' of batch {batch.batch_id} cannot take batches in this configuration; "
                         "declare it as it was when the batch was submitted")
    return api
