"""Tiercode's own ledger as report records: every call that used tokens, at the cost the ledger recorded."""

from __future__ import annotations

import datetime as dt

from assistant.accounting.ledger import DELIVERED, CallRecord, Ledger
from assistant.accounting.stats import stats_from_records
from assistant.report.usage import Imported, Tokens, UsageRecord, local_day, rates_for
from models import pricing


def read_ledger(ledger: Ledger, since: float | None = None) -> Imported:
    """The ledger's calls since a Unix time. A cache hit counts its cost ($0) and none of the tokens of the call
    it saved, as `stats` counts it; what an MCP tool returned (`delivered`) is no call. `stats`' all-Sonnet
    counterfactual and saving come along."""
    imported = Imported("ledger")
    calls = list(ledger.records(since))
    imported.lines = len(calls)
    imported.records = [usage_of(record) for record in calls if record.outcome != DELIVERED]
    totals = stats_from_records(calls, since).totals
    imported.savings = {"queries": totals.queries, "counterfactual_usd": round(totals.counterfactual_usd, 6),
                        "savings_usd": round(totals.savings_usd, 6)}
    return imported


def usage_of(record: CallRecord) -> UsageRecord:
    """One ledger record as a report record. The ledger keeps cache writes as one number; they are priced at the
    5-minute rate, as `stats` prices them; a batch call's tokens at the batch rates. The cost is the ledger's; a
    free tier (local, a served model) has no rates, nor has a declared tier with prices of its own (its cost is
    spend no category is given)."""
    hit = record.cached or record.outcome == "cache_hit"
    tokens = Tokens() if hit else Tokens(record.input_tokens, record.output_tokens, record.cache_read_tokens,
                                         record.cache_write_tokens)
    day = local_day(record.ts)
    free = record.provider in (pricing.LOCAL_PROVIDER, "index", "cache") or pricing.is_local(record.model)
    rates = None if free or record.cost_usd == 0 else rates_for(record.model, dt.date.fromisoformat(day),
                                                                 batch=bool(record.batch_id))
    return UsageRecord("ledger", record.ts, day, record.model, tokens, rates, record.cost_usd, tier=record.tier,
                       kind=record.kind, session=record.session_id)
