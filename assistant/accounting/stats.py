"""`tiercode stats`: what the ledger says about calls, tokens, cost, caching, escalation and savings.

Everything is computed from ledger records alone. A query's answer is its last record that is
`ok` or `cache_hit` and carries no escalation reason (or, when the cascade ended without accepting
one, the last answer it kept); its tier says who answered (`index`, a model
tier, or `cache` when the record is a cache hit). Savings compare the real spend with the
counterfactual of sending every answered query to Sonnet: a model's answer with the tokens of the call
that answered it; a cache hit with the tokens of the original call it saved at $0 (they count toward the
counterfactual, not toward the tokens used); an index answer with the Sonnet call estimated when it was
recorded (`counterfactual_usd`: Sonnet's context and map budgets, no more than the repository holds, the
question in and the answer's length out). Index answers recorded before that estimate existed count $0. Calls an agent
made through `tiercode mcp` carry the tool's name and the tokens it returned; a `delivered` record (what
`ask_cheap` returned, beside the cascade's own calls) is counted there, never as a call.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.accounting.ledger import (
    CLASSIFIER_TIER,
    COMMIT_MESSAGE_TIER,
    COMPACTION_TIER,
    DELIVERED,
    CallRecord,
    Ledger,
)
from assistant.accounting.money import usd
from models import pricing
from models.base import Usage
from models.loopback import is_loopback_url

GROUPINGS = ("tier", "model", "kind", "tool", "day")
_ANSWERED = ("ok", "cache_hit")
_NOT_MODEL_TIERS = ("index", "cache")
_NOT_ANSWER_TIERS = (CLASSIFIER_TIER, COMMIT_MESSAGE_TIER, COMPACTION_TIER)
"""Calls that are counted and priced but never answer a query nor make it an escalation."""


def sonnet_cost(record: CallRecord) -> float:
    """What the record's answer would have cost on the Sonnet tier's model, at today's prices: its tokens, or
    the estimate an index answer carries."""
    if record.counterfactual_usd is not None:
        return record.counterfactual_usd
    usage = Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                  cache_read_tokens=record.cache_read_tokens, cache_write_5m_tokens=record.cache_write_tokens)
    return pricing.cost_usd(pricing.default_model("sonnet"), usage)


@dataclass
class Totals:
    """Sums over a set of records."""

    calls: int = 0
    queries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    """Of the output tokens, those spent thinking."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    errors: int = 0
    counterfactual_usd: float = 0.0
    """All-Sonnet cost of the queries answered by records in this set."""
    returned_tokens: int = 0
    """Tokens MCP tools returned to an agent."""

    @property
    def savings_usd(self) -> float:
        """Counterfactual minus real spend."""
        return self.counterfactual_usd - self.cost_usd

    def add(self, record: CallRecord, answering: bool) -> None:
        """Count one record; `answering` when it is the answer of a model-answered query."""
        self.returned_tokens += record.returned_tokens
        if record.outcome == DELIVERED:
            return
        self.calls += 1
        self.cost_usd += record.cost_usd
        if record.cached or record.outcome == "cache_hit":
            self.cache_hits += 1
        else:
            self.input_tokens += record.input_tokens
            self.output_tokens += record.output_tokens
            self.thinking_tokens += record.thinking_tokens
            self.cache_read_tokens += record.cache_read_tokens
            self.cache_write_tokens += record.cache_write_tokens
        if record.outcome == "error":
            self.errors += 1
        if answering:
            self.counterfactual_usd += sonnet_cost(record)

    def to_json(self) -> dict[str, Any]:
        """Plain numbers, rounded for reading."""
        values = asdict(self)
        values["cost_usd"] = round(self.cost_usd, 6)
        values["counterfactual_usd"] = round(self.counterfactual_usd, 6)
        values["savings_usd"] = round(self.savings_usd, 6)
        return values


@dataclass
class Stats:
    """The whole report (`tiercode stats`)."""

    since: float | None
    by: str | None
    totals: Totals
    answered_by: dict[str, int]
    """Queries per answerer: `index`, `cache`, a model tier, or `unanswered`."""
    escalated: int
    model_queries: int
    """Queries that reached at least one model call (not answered by the index or a cache hit alone)."""
    outcomes: dict[str, int]
    groups: dict[str, Totals] = field(default_factory=dict)
    free_answers: int = 0
    """Queries the index or a free tier (one that charged nothing: local, a served model) answered."""
    local_answers: int = 0
    """Queries the index or a free tier on this machine (in-process, or served on loopback) answered."""
    tool_calls: dict[str, int] = field(default_factory=dict)
    """MCP tool calls by tool, most called first."""
    tool_cost_usd: float = 0.0
    """What the queries MCP tools asked cost (the calls ask_cheap made)."""

    @property
    def cache_hit_rate(self) -> float:
        """Cache hits among the queries the index did not answer."""
        eligible = self.totals.queries - self.answered_by.get("index", 0)
        return self.answered_by.get("cache", 0) / eligible if eligible else 0.0

    @property
    def local_share(self) -> float:
        """Share of queries answered on this machine: the index or a free tier in-process or on loopback."""
        n = self.totals.queries
        return self.local_answers / n if n else 0.0

    @property
    def free_share(self) -> float:
        """Share of queries answered at no charge: the index or any free tier (a team's server too)."""
        n = self.totals.queries
        return self.free_answers / n if n else 0.0

    @property
    def escalation_rate(self) -> float:
        """Share of model-answered queries that moved up at least one tier."""
        return self.escalated / self.model_queries if self.model_queries else 0.0

    def to_json(self) -> dict[str, Any]:
        """The `stats --json` object."""
        out: dict[str, Any] = {
            "since": self.since, **self.totals.to_json(),
            "cache_hit_rate": round(self.cache_hit_rate, 4), "local_or_index_share": round(self.local_share, 4),
            "free_share": round(self.free_share, 4),
            "escalation_rate": round(self.escalation_rate, 4), "escalated_queries": self.escalated,
            "answered_by": dict(self.answered_by), "outcomes": dict(self.outcomes),
            "tool_calls": dict(self.tool_calls), "tool_cost_usd": round(self.tool_cost_usd, 6),
        }
        if self.by:
            out["by"] = self.by
            out["groups"] = {name: totals.to_json() for name, totals in self.groups.items()}
        return out

    def to_text(self) -> str:
        """A short human report."""
        t = self.totals
        since = dt.datetime.fromtimestamp(self.since).strftime("%Y-%m-%d %H:%M") if self.since else "all time"
        answered = ", ".join(f"{k} {v}" for k, v in sorted(self.answered_by.items(), key=lambda kv: -kv[1]))
        saved_pct = f" ({t.savings_usd / t.counterfactual_usd:.0%})" if t.counterfactual_usd > 0 else ""
        lines = [
            f"Since {since}: {t.calls} calls for {t.queries} queries, {usd(t.cost_usd)} spent",
            f"Tokens: {t.input_tokens:,} in, {t.output_tokens:,} out"
            + (f" ({t.thinking_tokens:,} thinking)" if t.thinking_tokens else "")
            + f", {t.cache_read_tokens:,} cache read, "
            f"{t.cache_write_tokens:,} cache write",
            f"Answered by: {answered or 'nothing yet'}",
            f"Local or index: {self.local_share:.1%}   free: {self.free_share:.1%}   "
            f"cache hit rate: {self.cache_hit_rate:.1%}   "
            f"escalation rate: {self.escalation_rate:.1%}",
            f"All-Sonnet counterfactual: {usd(t.counterfactual_usd)}; saved {usd(t.savings_usd)}{saved_pct}",
        ]
        if self.tool_calls:
            tools = ", ".join(f"{name} {count}" for name, count in self.tool_calls.items())
            lines.append(f"Agent tools (MCP): {sum(self.tool_calls.values())} calls ({tools}), "
                         f"{t.returned_tokens:,} tokens returned to the agent, {usd(self.tool_cost_usd)} spent")
        if self.by and self.groups:
            width = max(len(self.by), *(len(name) for name in self.groups))
            lines.append("")
            lines.append(f"{self.by:<{width}}  {'calls':>6} {'queries':>7} {'in tok':>10} {'out tok':>9} "
                         f"{'hits':>5} {'cost $':>10} {'saved $':>10}")
            for name, g in self.groups.items():
                lines.append(f"{name:<{width}}  {g.calls:>6} {g.queries:>7} {g.input_tokens:>10,} "
                             f"{g.output_tokens:>9,} {g.cache_hits:>5} {g.cost_usd:>10.4f} {g.savings_usd:>10.4f}")
        return "\n".join(lines)


def _group_key(record: CallRecord, by: str) -> str:
    if by == "day":
        return dt.datetime.fromtimestamp(record.ts).strftime("%Y-%m-%d")
    return str(getattr(record, by)) or "(none)"


def _answer_of(records: list[CallRecord]) -> CallRecord | None:
    """The record whose answer the user got: the last one the cascade stopped at or, when it ended without
    accepting one (a budget stop, every later tier failing), the last answer it had: that one is kept."""
    answers = [r for r in records if r.outcome in _ANSWERED and r.tier not in _NOT_ANSWER_TIERS]
    accepted = [r for r in answers if not r.escalation_reason]
    return accepted[-1] if accepted else answers[-1] if answers else None


def compute_stats(ledger: Ledger, since: float | None = None, by: str | None = None) -> Stats:
    """Aggregate the ledger's records (optionally since a Unix time, optionally grouped)."""
    return stats_from_records(ledger.records(since), since, by)


def stats_from_records(records: Iterable[CallRecord], since: float | None = None, by: str | None = None) -> Stats:
    """Aggregate records already read (see `compute_stats`)."""
    if by is not None and by not in GROUPINGS:
        raise ValueError(f"cannot group by '{by}'; use one of {', '.join(GROUPINGS)}")
    by_query: dict[str, list[CallRecord]] = defaultdict(list)
    for record in records:
        by_query[record.query_id].append(record)
    totals = Totals()
    groups: dict[str, Totals] = defaultdict(Totals)
    answered_by: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    escalated = model_queries = free_answers = local_answers = 0
    tool_calls: Counter[str] = Counter()
    tool_cost = 0.0
    for query in by_query.values():
        asked = [r.tool for r in query if r.tool]
        tool_calls.update(asked)
        tool_cost += sum(r.cost_usd for r in query) if asked else 0.0
        answer = _answer_of(query)
        cached = answer is not None and (answer.cached or answer.outcome == "cache_hit")
        answerer = "unanswered" if answer is None else "cache" if cached else answer.tier
        asked_nothing = all(r.tier in _NOT_ANSWER_TIERS for r in query)  # `/compact`: a call, not a question
        answered_by[answerer] += not asked_nothing
        if answer is not None and not cached and is_free(answer):
            free_answers += 1
            local_answers += on_this_machine(answer)
        priced = answer is not None and (cached or answer.tier not in _NOT_MODEL_TIERS
                                         or answer.counterfactual_usd is not None)
        tiers = [r for r in query if r.outcome != "budget_stop" and r.tier not in _NOT_MODEL_TIERS + _NOT_ANSWER_TIERS]
        if any(not r.cached and r.outcome != "cache_hit" for r in tiers):
            model_queries += 1
            if len({r.tier for r in tiers}) > 1:  # it moved on: a weak answer with nowhere to go did not
                escalated += 1
        totals.queries += not asked_nothing
        seen_groups = {_group_key(r, by) for r in query} if asked_nothing and by else set()  # counts no question
        for record in query:
            answering = priced and record is answer
            outcomes[record.outcome] += 1
            totals.add(record, answering)
            if by is not None:
                key = _group_key(record, by)
                groups[key].add(record, answering)
                if key not in seen_groups:
                    groups[key].queries += 1
                    seen_groups.add(key)
    ordered = dict(sorted(groups.items())) if by == "day" else dict(
        sorted(groups.items(), key=lambda kv: (-kv[1].calls, kv[0])))
    return Stats(since, by, totals, dict(answered_by), escalated, model_queries, dict(outcomes), ordered,
                 free_answers, local_answers, dict(tool_calls.most_common()), tool_cost)


def is_free(record: CallRecord) -> bool:
    """Whether a record's answer came at no charge from the index or a free tier (not from the cache)."""
    return record.cost_usd == 0 and record.outcome == "ok"


def on_this_machine(record: CallRecord) -> bool:
    """Whether the call stayed on this machine: in-process or the index (no endpoint), or a loopback server."""
    return not record.endpoint or is_loopback_url(record.endpoint)


_RELATIVE = re.compile(r"^(\d+)\s*([hdw])$")


def parse_since(text: str, now: dt.datetime | None = None) -> float:
    """A `--since` value as a Unix time: `YYYY-MM-DD`, an ISO date-time, `today`, or `7d`/`12h`/`2w` ago."""
    now = now or dt.datetime.now()
    value = text.strip().lower()
    if value == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    match = _RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"h": dt.timedelta(hours=amount), "d": dt.timedelta(days=amount), "w": dt.timedelta(weeks=amount)}
        return (now - delta[unit]).timestamp()
    try:
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"cannot read --since '{text}'; use YYYY-MM-DD, an ISO date-time, today, "
                         "or an age such as 7d, 12h, 2w") from None
