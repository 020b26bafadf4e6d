"""What model calls cost, from the price list in `prices.toml`, and which model each cloud tier uses.

Prices are USD per million tokens and apply to normalized `Usage` (see models/base.py): uncached
input, output, cache reads, and 5-minute / 1-hour cache writes are each billed at their own rate.
Announced price changes are listed in the file with the day they take effect, so a cost is computed
with the prices of the day the call was made. Local models cost nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from models.base import Usage

PRICES_FILE = Path(__file__).with_name("prices.toml")
LOCAL_PROVIDER = "local"
PROVIDERS = ("anthropic", "gemini", "groq")
_RATE_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
_PER_TOKEN = 1_000_000


class UnknownModel(LookupError):
    """No price is known for a model."""

    def __init__(self, model: str, known: tuple[str, ...]) -> None:
        super().__init__(f"no price for model '{model}' (known: {', '.join(known)}); add it to {PRICES_FILE.name}")
        self.model = model


class UnknownTier(LookupError):
    """The price list names no model for a tier."""


class PriceFileError(ValueError):
    """The price list is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Rates:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float

    def cost(self, usage: Usage) -> float:
        """The cost of `usage` at these rates, in USD."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_5m_tokens * self.cache_write_5m
            + usage.cache_write_1h_tokens * self.cache_write_1h
        ) / _PER_TOKEN


@dataclass(frozen=True)
class ModelPrice:
    """One model's entry in the price list."""

    model: str
    provider: str
    rates: Rates
    """The rates in force when the list was checked."""
    batch_factor: float
    checked: dt.date
    source: str
    min_cache_tokens: int = 0
    """Shortest prefix the provider caches; 0 when it does not say."""
    aliases: tuple[str, ...] = ()
    thinks: bool = False
    """The model reasons before it answers and takes an effort for it (`reasoning_effort` on Groq)."""
    changes: tuple[tuple[dt.date, Rates], ...] = field(default=())
    """Announced changes, oldest first: (first day, rates from that day)."""

    def rates_on(self, day: dt.date) -> Rates:
        """The rates in force on `day`."""
        rates = self.rates
        for start, changed in self.changes:
            if day >= start:
                rates = changed
        return rates


@dataclass(frozen=True)
class PriceBook:
    """The whole price list: model prices and the default model of each cloud tier."""

    models: Mapping[str, ModelPrice]
    tiers: Mapping[str, str]

    def price(self, model: str) -> ModelPrice:
        """The entry for `model` (an id or an alias); raises UnknownModel."""
        name = model.removeprefix("models/")
        found = self.models.get(name) or next((p for p in self.models.values() if name in p.aliases), None)
        if found is None:
            raise UnknownModel(model, tuple(self.models))
        return found

    def default_model(self, tier: str) -> str:
        """The model id a cloud tier uses unless the settings say otherwise; raises UnknownTier."""
        try:
            return self.tiers[tier]
        except KeyError:
            raise UnknownTier(f"no default model for tier '{tier}' (tiers: {', '.join(self.tiers)})") from None


def load(path: Path = PRICES_FILE) -> PriceBook:
    """Read and check a price list; raises PriceFileError naming the bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PriceFileError(f"{path}: {exc}") from exc
    models = {name: _model(path, name, entry) for name, entry in _table(path, data, "models").items()}
    tiers: dict[str, str] = {}
    for tier, model in _table(path, data, "tiers").items():
        if not isinstance(model, str) or model not in models:
            raise PriceFileError(f"{path}: tiers.{tier} names '{model}', which has no [models] entry")
        tiers[tier] = model
    return PriceBook(models, tiers)


@functools.cache
def book() -> PriceBook:
    """The price list shipped with Tiercode (read once)."""
    return load(PRICES_FILE)


def price(model: str) -> ModelPrice:
    """The price-list entry for `model`; raises UnknownModel."""
    return book().price(model)


def default_model(tier: str) -> str:
    """The model id the cloud tier `tier` (groq, gemini, sonnet) uses by default."""
    return book().default_model(tier)


def is_local(model: str) -> bool:
    """Whether `model` names a local model: a catalog name or a GGUF file."""
    from models.catalog import CATALOG

    return model.lower().endswith(".gguf") or any(e.name == model for e in CATALOG)


def cost_usd(
    model: str,
    usage: Usage,
    *,
    provider: str | None = None,
    batch: bool = False,
    on: dt.date | None = None,
) -> float:
    """What `usage` costs on `model` in USD, at the prices in force on `on` (default: today).

    Local models (provider `local`, a catalog name or a GGUF path) cost 0. Raises UnknownModel for a
    cloud model the price list does not know.
    """
    if provider == LOCAL_PROVIDER or (provider is None and is_local(model)):
        return 0.0
    entry = price(model)
    cost = entry.rates_on(on or dt.date.today()).cost(usage)
    return cost * entry.batch_factor if batch else cost


def max_cost_usd(model: str, input_tokens: int, output_tokens: int, cache_ttl: str = "5m",
                 on: dt.date | None = None) -> float:
    """The most a call of `model` with these tokens can cost: every input token at the dearer of the
    input rate and the rate of a prompt-cache write with `cache_ttl`, every output token billed. Local: 0."""
    if is_local(model):
        return 0.0
    rates = price(model).rates_on(on or dt.date.today())
    dearest = max(rates.input, rates.cache_write_1h if cache_ttl == "1h" else rates.cache_write_5m)
    return (input_tokens * dearest + output_tokens * rates.output) / _PER_TOKEN


def thinks(model: str) -> bool:
    """Whether the price list says `model` reasons and takes an effort for it (False for a model it lacks)."""
    try:
        return price(model).thinks
    except UnknownModel:
        return False


def min_cache_tokens(model: str, default: int) -> int:
    """The shortest prefix `model`'s provider caches, or `default` when the list does not say."""
    try:
        found = price(model).min_cache_tokens
    except UnknownModel:
        return default
    return found or default


def _table(path: Path, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise PriceFileError(f"{path}: missing [{key}] table")
    return value


def _number(path: Path, where: str, entry: Mapping[str, Any], key: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PriceFileError(f"{path}: {where}.{key} must be a non-negative number, not {value!r}")
    return float(value)


def _date(path: Path, where: str, value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise PriceFileError(f"{path}: {where} must be a date (YYYY-MM-DD), not {value!r}") from None


def _model(path: Path, name: str, entry: Mapping[str, Any]) -> ModelPrice:
    where = f'models."{name}"'
    if not isinstance(entry, Mapping):
        raise PriceFileError(f"{path}: {where} must be a table")
    provider = entry.get("provider")
    if provider not in PROVIDERS:
        raise PriceFileError(f"{path}: {where}.provider must be one of {', '.join(PROVIDERS)}, not {provider!r}")
    rates = Rates(*(_number(path, where, entry, key) for key in _RATE_FIELDS))
    changes: list[tuple[dt.date, Rates]] = []
    current = rates
    for i, change in enumerate(sorted(entry.get("changes", []), key=lambda c: str(c.get("from")))):
        at = f"{where}.changes[{i}]"
        updates = {key: _number(path, at, change, key) for key in _RATE_FIELDS if key in change}
        current = replace(current, **updates)
        changes.append((_date(path, f"{at}.from", change.get("from")), current))
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise PriceFileError(f"{path}: {where}.aliases must be a list of model ids")
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise PriceFileError(f"{path}: {where}.source must say where the prices come from")
    thinks = entry.get("thinks", False)
    if not isinstance(thinks, bool):
        raise PriceFileError(f"{path}: {where}.thinks must be true or false")
    return ModelPrice(
        model=name,
        provider=provider,
        rates=rates,
        batch_factor=_number(path, where, entry, "batch_factor"),
        checked=_date(path, f"{where}.checked", entry.get("checked")),
        source=source,
        min_cache_tokens=int(_number(path, where, {"min_cache_tokens": 0, **entry}, "min_cache_tokens")),
        aliases=tuple(aliases),
        thinks=thinks,
        changes=tuple(changes),
    )
