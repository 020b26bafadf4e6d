"""`tiercode batch submit|review`: answer at once what can be, check what is left against the budgets as one
batch at the batch price, and submit it to each batch tier's provider.

Nothing is submitted unless the whole batch passes: each question against the per-query limit, the batch
with the requests of earlier batches not collected yet against the session, daily and monthly limits, and
above `confirm_above_usd` the user's consent (`--yes`). Each accepted batch is kept in the batch store with
its requests before the next is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

from assistant.accounting.budget import BudgetCheck, BudgetGuard, BudgetVerdict
from assistant.accounting.money import usd
from assistant.answer import Answer
from assistant.batch.jobs import Job, answer_row
from assistant.batch.store import BatchStore, StoredBatch, StoredRequest
from assistant.batch.triage import BatchTriage, Deferred
from assistant.errors import BudgetStop, TiercodeError
from assistant.session import Session
from models.base import ModelError
from models.batching import BatchItem, batches_of

Emit = Callable[[dict[str, object]], None]
"""Where each job's JSONL line goes."""


class BatchError(TiercodeError):
    """A provider refused or failed a batch call; the message says what was kept and what to run next."""

    exit_code = 1


@dataclass(frozen=True)
class Submitted:
    """One batch sent to a provider."""

    batch_id: str
    tier: str
    model: str
    requests: int
    estimated_usd: float


def submit(session: Session, store: BatchStore, jobs: Sequence[Job], emit: Emit, forced_tier: str | None = None,
           assume_yes: bool = False) -> list[Submitted]:
    """Answer the jobs that can be answered at once (each emitted as it comes), then submit the rest as one
    batch per batch tier; BudgetStop, with nothing submitted, when the budgets refuse the batch."""
    triage = BatchTriage(session, forced_tier)
    deferred: list[Deferred] = []
    for job in jobs:
        outcome = triage.triage(job)
        if isinstance(outcome, Answer):
            emit(answer_row(job, "answered", answer=outcome.answer, tier=outcome.tier, model=outcome.model,
                            cost_usd=outcome.cost_usd))
        else:
            deferred.append(outcome)
    if not deferred:
        return []
    _check_budget(triage, deferred, store.outstanding_usd(), assume_yes)
    sent = []
    for tier, group in groupby(sorted(deferred, key=lambda d: d.tier), key=lambda d: d.tier):
        batch = list(group)
        sent.append(_send(session, store, tier, batch, len(sent)))
        for item in batch:
            emit(answer_row(item.job, "submitted", tier=item.tier, model=item.model, batch=sent[-1].batch_id))
    return sent


def _send(session: Session, store: BatchStore, tier: str, batch: list[Deferred], earlier: int) -> Submitted:
    """Submit one tier's requests and keep the batch; BatchError saying what was submitted before it failed."""
    api = batches_of(session.tiers.get(tier))
    assert api is not None  # the triage sends only to tiers that can batch
    try:
        batch_id = api.submit([BatchItem(d.job.custom_id, d.request) for d in batch])
    except ModelError as exc:
        kept = f"; {earlier} batch(es) before it were submitted (tiercode batch status)" if earlier else \
            "; nothing was submitted"
        raise BatchError(f"{exc}{kept}") from exc
    first = batch[0]
    total = sum(d.estimated_usd for d in batch)
    store.add(StoredBatch(batch_id, tier, first.provider, first.model, str(session.repo), time.time(),
                          estimated_usd=total),
              [StoredRequest(batch_id, d.job.custom_id, n, d.query_id, d.job.question, d.route.kind, d.route.stage,
                             d.route.probability, d.estimated_usd, cache_key=d.cache_key.to_json())
               for n, d in enumerate(batch)])
    session.reporter.status(f"submitted batch {batch_id}: {len(batch)} question(s) to {tier} ({first.model}), at most "
                            f"{usd(total)} at the batch price; `tiercode batch collect` gets the answers")
    return Submitted(batch_id, tier, first.model, len(batch), total)


def _check_budget(triage: BatchTriage, deferred: list[Deferred], outstanding: float, assume_yes: bool) -> None:
    """Each question against the per-query limit, then the batch (with the requests still outstanding) against
    the session, daily and monthly limits, then consent above `confirm_above_usd`; BudgetStop when refused."""
    session = triage.session
    limits = session.settings.budget
    each = BudgetGuard(limits.model_copy(update={"session": None, "daily": None, "monthly": None}), session.ledger,
                       session.session_id)
    whole = BudgetGuard(limits.model_copy(update={"per_query": None}), session.ledger, session.session_id)
    for item in deferred:
        _allow(each.check(item.estimated_usd), f"question {item.job.custom_id}", assume_yes, session)
    total = sum(d.estimated_usd for d in deferred)
    earlier = f" with {usd(outstanding)} of earlier batches not collected yet" if outstanding > 0 else ""
    _allow(whole.check(total + outstanding), f"the batch{earlier}", assume_yes, session)
    if total > session.settings.confirm_above_usd and not assume_yes and not session.reporter.confirm(
            f"Submit {len(deferred)} question(s) as a batch for up to {usd(total)}?"):
        raise BudgetStop(f"batch declined (up to {usd(total)}); nothing was submitted; pass --yes to allow it")


def _allow(check: BudgetCheck, what: str, assume_yes: bool, session: Session) -> None:
    """Go on when the verdict allows it (a warning is shown) or the user lets a pause pass; else BudgetStop."""
    if check.verdict.allows:
        if check.message:
            session.reporter.status(f"budget warning for {what}: {check.message}")
        return
    if check.verdict.asks and (assume_yes or session.reporter.confirm(f"{check.message}. Continue?")):
        return
    advice = "; a batch is not downgraded: submit fewer questions or a cheaper --tier" \
        if check.verdict is BudgetVerdict.DOWNGRADE else ""
    raise BudgetStop(f"nothing was submitted: for {what}, {check.message}{advice}")
