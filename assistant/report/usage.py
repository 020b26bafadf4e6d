"""The common record every source is read into: one model call's tokens by category, its prices and its cost."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from models import pricing
from models.pricing import ModelPrice, Rates

CATEGORIES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
"""The token categories a bill prices apart: uncached input, output (thinking included), cache reads, and cache
writes that live five minutes or an hour."""
CATEGORY_NAMES = {"input": "input", "output": "output", "cache_read": "cache read",
                  "cache_write_5m": "cache write (5m)", "cache_write_1h": "cache write (1h)"}
_DATE_SUFFIX = re.compile(r"-(\d{8})$")
_PER_TOKEN = 1_000_000


@dataclass(frozen=True)
class Tokens:
    """Token counts by category."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    def by_category(self) -> dict[str, int]:
        """The counts keyed by `CATEGORIES`."""
        return {name: getattr(self, name) for name in CATEGORIES}

    @property
    def cache_writes(self) -> int:
        """Both cache-write lifetimes together."""
        return self.cache_write_5m + self.cache_write_1h


def category_usd(tokens: Tokens, rates: Rates | None) -> dict[str, float]:
    """What each category of `tokens` costs at `rates` (all $0 without rates: a free or unpriced model)."""
    if rates is None:
        return dict.fromkeys(CATEGORIES, 0.0)
    return {name: getattr(tokens, name) * getattr(rates, name) / _PER_TOKEN for name in CATEGORIES}


@dataclass(frozen=True)
class UsageRecord:
    """One model call as a report sees it, whatever source it came from."""

    source: str
    """`ledger`, `claude-code` or `anthropic-csv`."""
    ts: float
    day: str
    """The day it counts for (YYYY-MM-DD): local time for timestamps, the export's own day for a daily export."""
    model: str
    tokens: Tokens
    rates: Rates | None
    """The rates the tokens are priced at (batch discount included); None for a free tier or an unpriced model."""
    cost_usd: float
    priced: bool = True
    """False for a model the price list does not know: its tokens are counted, its cost is not guessed."""
    tier: str = ""
    kind: str = ""
    session: str = ""
    project: str = ""
    prompt_id: str = ""
    """For an imported transcript: the user prompt this call worked on."""


@dataclass(frozen=True)
class Prompt:
    """A user prompt from an imported transcript."""

    id: str
    ts: float
    text: str
    session: str = ""


@dataclass
class Imported:
    """What a source gave: its records and prompts, and how the reading went."""

    source: str
    """How the report names the source (`ledger`, `claude-code:/path`, `anthropic-csv:/path`)."""
    records: list[UsageRecord] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    files: int = 0
    lines: int = 0
    skipped: int = 0
    """Malformed lines or rows: counted and left out."""
    skipped_examples: list[str] = field(default_factory=list)
    duplicates: int = 0
    """Lines that repeat a message already counted (Claude Code writes a streamed message more than once)."""
    savings: dict[str, float] = field(default_factory=dict)
    """For the ledger: what `stats` says the answered queries would have cost on Sonnet, and the saving."""

    def skip(self, where: str, why: str) -> None:
        """Count a malformed line; the first few are kept to show where."""
        self.skipped += 1
        if len(self.skipped_examples) < 3:
            self.skipped_examples.append(f"{where}: {why}")


def model_price(model: str) -> ModelPrice | None:
    """The price-list entry for a model id as providers report it (a date suffix such as `-20250929` is tried
    without its date too); None when the list does not know the model."""
    for name in dict.fromkeys((model, _DATE_SUFFIX.sub("", model))):
        try:
            return pricing.price(name)
        except pricing.UnknownModel:
            continue
    return None


def rates_for(model: str, day: dt.date, batch: bool = False) -> Rates | None:
    """The rates `model`'s tokens cost on `day` (times the batch factor for batch requests); None when unpriced."""
    entry = model_price(model)
    if entry is None:
        return None
    rates = entry.rates_on(day)
    if not batch:
        return rates
    factor = entry.batch_factor
    return Rates(*(getattr(rates, name) * factor for name in CATEGORIES))


def priced_record(source: str, ts: float, day: str, model: str, tokens: Tokens, *, batch: bool = False,
                  **labels: str) -> UsageRecord:
    """An imported call priced from the price list at its day's rates (unpriced when the model is unknown)."""
    rates = rates_for(model, dt.date.fromisoformat(day), batch)
    cost = sum(category_usd(tokens, rates).values())
    return UsageRecord(source, ts, day, model, tokens, rates, cost, priced=rates is not None, **labels)


def local_day(ts: float) -> str:
    """The local calendar day of a Unix time (what `stats --by day` uses)."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d")
