"""The tiers as data: what each tier is (`TierSpec`), the provider kinds that can serve one, the
built-in cascade, user `[tier.NAME]` tables, and building a `Backend` from a spec.

A provider kind is one row of `PROVIDER_KINDS`: its name, the `module:function` that builds its
backend (imported on first use, so an SDK loads only when its tier is used), the environment
variables its key comes from and whether a tier of that kind must name a base URL. A new kind is its
module, one row here and its tests.
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from models import pricing
from models.base import Backend, Capabilities, Usage
from models.loopback import is_loopback_url
from models.pricing import Rates

if TYPE_CHECKING:
    from models.local import LocalModel, LocalOptions
    from models.manager import ModelManager

DEFAULT_ORDER = ("local", "groq", "gemini", "sonnet")
"""The cascade with no configuration, cheapest first."""
RESERVED_NAMES = frozenset({"index", "classifier", "cache", "auto"})
"""Words the ledger, the TUI and the CLI already use for something that is not a tier."""
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TierConfigError(ValueError):
    """A `[tier.NAME]` table or the `tiers` list is invalid; the message is one line naming the key."""


@dataclass(frozen=True)
class Budgets:
    """Tokens a tier's prompt may spend on each part."""

    context_tokens: int
    """Index context (definitions, callers, related code)."""
    map_tokens: int
    """The ranked repo map in the system prompt (0: none)."""
    history_tokens: int
    """Earlier turns of a conversation."""


FREE_BUDGETS = Budgets(1500, 0, 512)
"""The local tier's, and a declared free tier's unless it says otherwise."""
PRICED_BUDGETS = Budgets(6000, 1024, 3000)
"""Groq's, and a declared priced tier's unless it says otherwise."""


@dataclass(frozen=True)
class TierSpec:
    """One tier of the cascade, as declared."""

    name: str
    provider: str
    """A key of PROVIDER_KINDS."""
    model: str
    """The model id; for llama-cpp `auto`, a catalog name or a GGUF path."""
    budgets: Budgets
    base_url: str | None = None
    """Where the API is; None: the SDK's own (and its environment variable)."""
    api_key_env: tuple[str, ...] = ()
    """Environment variables the key may come from, first set wins; empty: no key is needed."""
    free: bool = False
    rates: Rates | None = None
    """Declared USD per million tokens; None on a priced tier: prices.toml's entry for `model`."""
    context_window: int | None = None
    """Tokens prompt and answer must fit together; None: the provider does not limit what is sent."""
    logprobs: bool | None = None
    """Ask for token log-probabilities; None: the provider kind decides (see `capabilities`)."""

    @property
    def capabilities(self) -> Capabilities:
        """What a backend built from this spec can do."""
        kind = PROVIDER_KINDS[self.provider]
        return Capabilities(
            free=self.free,
            logprobs=_default(self.logprobs, _default(kind.logprobs, self.free)),
            retries=kind.retries,
            context_window=self.context_window,
            prompt_caching=kind.prompt_caching,
            thinking=kind.thinking or pricing.thinks(self.model),
            batch=kind.batch and not self.free,
        )

    @property
    def endpoint(self) -> str:
        """Where its calls go (scheme, host, port, path; never credentials or a query): the declared base URL,
        else the one its SDK takes from the environment, else the provider's own; empty when in-process."""
        kind = PROVIDER_KINDS[self.provider]
        from_env = os.environ.get(kind.base_url_env) if kind.base_url_env else None
        url = self.base_url or from_env or kind.default_base_url
        return endpoint_of(url) if url else ""

    @property
    def on_this_machine(self) -> bool:
        """Whether its calls stay on this machine (in-process, or a loopback endpoint): offline keeps it."""
        return PROVIDER_KINDS[self.provider].in_process or is_loopback_url(self.base_url)

    @property
    def batch_factor(self) -> float:
        """What a batch call costs against the same call made at once: the price list's `batch_factor` for its
        model; 1.0 (no discount assumed) for a model the list does not know."""
        try:
            return pricing.price(self.model).batch_factor
        except pricing.UnknownModel:
            return 1.0

    def cost_usd(self, usage: Usage) -> float:
        """What `usage` costs on this tier, in USD (today's prices)."""
        if self.free:
            return 0.0
        if self.rates is not None:
            return self.rates.cost(usage)
        return pricing.cost_usd(self.model, usage, provider=self.provider)

    def max_cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        """The most a call can cost: every input token at the dearer of the input and 5-minute write rates."""
        if self.free:
            return 0.0
        if self.rates is None:
            return pricing.max_cost_usd(self.model, input_tokens, output_tokens)
        dearest = max(self.rates.input, self.rates.cache_write_5m)
        return (input_tokens * dearest + output_tokens * self.rates.output) / 1_000_000


@dataclass
class BuildContext:
    """What building a backend needs besides its spec; one per session, shared by its tiers."""

    api_keys: Mapping[str, str] = field(default_factory=dict)
    """Keys the settings hold (the user's file), by tier name; otherwise they come from `api_key_env`."""
    timeout: float | None = None
    """Seconds an SDK waits for a connection or the next bytes; None: models.cloud's default."""
    manager: ModelManager | None = None
    """The installed models llama-cpp tiers resolve `auto` and catalog names against (required for them)."""
    local_options: LocalOptions | None = None
    """How llama-cpp tiers load a GGUF (its context_tokens replaced by the spec's window)."""
    local_models: dict[Path, LocalModel] = field(default_factory=dict)
    """Loaded GGUFs, shared by every tier and role that uses the same file."""


Builder = Callable[[TierSpec, BuildContext], Backend]


@dataclass(frozen=True)
class ProviderKind:
    """One kind of provider a tier can use."""

    name: str
    builder: str
    """`module:function` building its backend from (TierSpec, BuildContext)."""
    key_env: tuple[str, ...] = ()
    """Where a tier of this kind gets its key unless it declares `api_key_env`."""
    needs_base_url: bool = False
    in_process: bool = False
    """Its model runs inside Tiercode (no endpoint; offline mode keeps it)."""
    always_free: bool = False
    logprobs: bool | None = False
    """Whether its tiers give token log-probabilities unless they say; None: when the tier is free."""
    retries: bool = True
    prompt_caching: bool = True
    thinking: bool = False
    """Its models think before answering (billed as output) and take a request's effort."""
    batch: bool = False
    """Its provider has a batch API at a discount (`Capabilities.batch`)."""
    default_base_url: str | None = None
    """Where its SDK sends calls unless told otherwise (what `doctor` checks)."""
    base_url_env: str | None = None
    """The environment variable its SDK reads a base URL from."""

    def build(self, spec: TierSpec, context: BuildContext) -> Backend:
        """The backend for `spec`; raises ModelUnavailable when it cannot be used (no key, no model)."""
        module, _, function = self.builder.partition(":")
        return cast(Builder, getattr(importlib.import_module(module), function))(spec, context)


PROVIDER_KINDS: dict[str, ProviderKind] = {kind.name: kind for kind in (
    ProviderKind("llama-cpp", "models.tier_registry:build_local", in_process=True, always_free=True, logprobs=True,
                 retries=False, prompt_caching=False),
    ProviderKind("openai-compatible", "models.cloud.openai_compat:from_spec", needs_base_url=True, logprobs=None),
    ProviderKind("anthropic", "models.cloud:from_spec", key_env=("ANTHROPIC_API_KEY",), thinking=True, batch=True,
                 default_base_url="https://api.anthropic.com", base_url_env="ANTHROPIC_BASE_URL"),
    ProviderKind("gemini", "models.cloud:from_spec", key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"), thinking=True,
                 batch=True, default_base_url="https://generativelanguage.googleapis.com",
                 base_url_env="GOOGLE_GEMINI_BASE_URL"),
    ProviderKind("groq", "models.cloud:from_spec", key_env=("GROQ_API_KEY",), default_base_url="https://api.groq.com",
                 base_url_env="GROQ_BASE_URL"),
)}
"""Every provider kind, by name."""


def builtin_specs() -> dict[str, TierSpec]:
    """Today's cascade as specs: local (llama.cpp) → groq → gemini → sonnet, models from prices.toml."""
    big = Budgets(12000, 2048, 6000)
    cloud = (("groq", "groq", PRICED_BUDGETS), ("gemini", "gemini", big), ("sonnet", "anthropic", big))
    specs = {"local": TierSpec("local", "llama-cpp", "auto", FREE_BUDGETS, free=True, context_window=4096)}
    for name, provider, budgets in cloud:
        specs[name] = TierSpec(name, provider, pricing.default_model(name), budgets,
                               api_key_env=PROVIDER_KINDS[provider].key_env)
    return specs


def build_backend(spec: TierSpec, context: BuildContext | None = None) -> Backend:
    """The backend for `spec`; raises ModelUnavailable with the reason it cannot be used."""
    return PROVIDER_KINDS[spec.provider].build(spec, context or BuildContext())


def build_local(spec: TierSpec, context: BuildContext) -> Backend:
    """A llama-cpp tier: the coder model `spec.model` names (`auto`: the best installed one)."""
    from dataclasses import replace

    from models.local import LocalBackend, LocalModel, LocalOptions

    if context.manager is None:
        raise ValueError(f"tier {spec.name}: building a llama-cpp tier needs BuildContext.manager")
    name, path = context.manager.resolve("coder", spec.model)
    model = context.local_models.get(path)
    if model is None:
        options = context.local_options or LocalOptions()
        if spec.context_window is not None:
            options = replace(options, context_tokens=spec.context_window)
        model = context.local_models[path] = LocalModel(path, options)
    return LocalBackend(model, name)


def endpoint_of(base_url: str) -> str:
    """`base_url` as errors name it: scheme, host, port and path, never credentials or a query."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


# -- user tables ------------------------------------------------------------------------------------

_PRICE_KEYS = ("input", "output", "cache_read", "cache_write", "cache_write_5m", "cache_write_1h")
_BUDGET_KEYS = ("context_tokens", "map_tokens", "history_tokens")
_KEYS = frozenset({"provider", "model", "base_url", "api_key_env", "free", "context_window", "logprobs",
                   *_PRICE_KEYS, *_BUDGET_KEYS})


def parse_tier_tables(tables: Mapping[str, Any], base: Mapping[str, TierSpec] | None = None) -> dict[str, TierSpec]:
    """`base` (default: the built-ins) with the user's `[tier.NAME]` tables applied, in declaration order.

    A table naming a tier of `base` with the same (or no) provider changes only the keys it gives;
    one with another provider declares that tier afresh. Raises TierConfigError (one line).
    """
    specs = dict(builtin_specs() if base is None else base)
    if not isinstance(tables, Mapping):
        raise TierConfigError("tier must be a table of [tier.NAME] tables")
    for name, table in tables.items():
        specs[name] = parse_tier(name, table, specs.get(name))
    return specs


def parse_tier(name: str, table: object, inherited: TierSpec | None = None) -> TierSpec:
    """One `[tier.NAME]` table as a spec, over `inherited` when it has the same provider."""
    where = f"tier.{name}"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TierConfigError(f"{where}: a tier name is 1-32 lowercase letters, digits, '-' or '_', from a letter")
    if name in RESERVED_NAMES:
        raise TierConfigError(f"{where}: '{name}' is reserved ({', '.join(sorted(RESERVED_NAMES))} are not tiers)")
    if not isinstance(table, Mapping):
        raise TierConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise TierConfigError(f"{where}: unknown key '{unknown[0]}' (keys: {', '.join(sorted(_KEYS))})")
    provider = table.get("provider", inherited.provider if inherited else None)
    if provider not in PROVIDER_KINDS:
        raise TierConfigError(f"{where}.provider must be one of {', '.join(PROVIDER_KINDS)}, not {provider!r}")
    kind = PROVIDER_KINDS[provider]
    if inherited is not None and inherited.provider != provider:
        inherited = None
    return TierSpec(
        name=name,
        provider=provider,
        model=_model(where, table, inherited),
        base_url=_base_url(where, table, kind, inherited),
        api_key_env=_key_env(where, table, kind, inherited),
        context_window=_optional_int(where, table, "context_window", inherited.context_window if inherited else None,
                                     minimum=256),
        logprobs=_optional_bool(where, table, "logprobs", inherited.logprobs if inherited else None),
        **_prices(where, table, kind, inherited),
    )


def check_order(order: Sequence[str], specs: Mapping[str, TierSpec]) -> None:
    """Raise TierConfigError unless `order` names declared tiers, each once, and at least one."""
    if not order:
        raise TierConfigError("tiers: the cascade needs at least one tier")
    for i, name in enumerate(order):
        if name not in specs:
            raise TierConfigError(f"tiers names '{name}', which no [tier.{name}] table declares "
                                  f"(declared: {', '.join(specs)})")
        if name in order[:i]:
            raise TierConfigError(f"tiers names '{name}' twice")


def _model(where: str, table: Mapping[str, Any], inherited: TierSpec | None) -> str:
    model = table.get("model", inherited.model if inherited else None)
    if not isinstance(model, str) or not model.strip():
        raise TierConfigError(f"{where}.model must name the model (a non-empty string)")
    return model


def _base_url(where: str, table: Mapping[str, Any], kind: ProviderKind, inherited: TierSpec | None) -> str | None:
    url = table.get("base_url", inherited.base_url if inherited else None)
    if url is None:
        if kind.needs_base_url:
            raise TierConfigError(f"{where}.base_url is required for provider {kind.name}")
        return None
    return parse_base_url(f"{where}.base_url", url)


def parse_base_url(key: str, url: object) -> str:
    """`url` without a trailing slash; TierConfigError unless it is an http(s) URL without credentials."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise TierConfigError(f"{key} must be an http:// or https:// URL, not {url!r}")
    if parts.username or parts.password:
        raise TierConfigError(f"{key} may not hold credentials; name the key's variable in api_key_env")
    return str(url).rstrip("/")


def _key_env(where: str, table: Mapping[str, Any], kind: ProviderKind, inherited: TierSpec | None) -> tuple[str, ...]:
    if "api_key_env" not in table:
        return inherited.api_key_env if inherited else kind.key_env
    value = table["api_key_env"]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and _ENV_NAME.fullmatch(n) for n in names):
        raise TierConfigError(f"{where}.api_key_env must name environment variables (keys come only from there)")
    return tuple(names)


def _prices(where: str, table: Mapping[str, Any], kind: ProviderKind, inherited: TierSpec | None) -> dict[str, Any]:
    """`free`, `rates` and `budgets` of a table."""
    declared = {key: _number(where, table, key) for key in _PRICE_KEYS if key in table}
    free = _optional_bool(where, table, "free", None)
    if kind.always_free and (declared or free is False):
        raise TierConfigError(f"{where}: a {kind.name} tier is free; it takes no prices")
    if free and declared:
        raise TierConfigError(f"{where}: give free = true or prices, not both")
    rates = inherited.rates if inherited else None
    if declared:
        rates = _rates(where, declared)
    if free is None:
        free = kind.always_free or (inherited.free if inherited and not declared else False)
    model = table.get("model", inherited.model if inherited else "")
    if not free and rates is None and not _known_price(model):
        raise TierConfigError(f"{where}: model '{model}' has no price in prices.toml; declare free = true or "
                              "input and output prices (USD per million tokens)")
    fallback = inherited.budgets if inherited else (FREE_BUDGETS if free else PRICED_BUDGETS)
    budgets = Budgets(*(_optional_int(where, table, key, getattr(fallback, key)) for key in _BUDGET_KEYS))
    return {"free": free, "rates": None if free else rates, "budgets": budgets}


def _rates(where: str, declared: Mapping[str, float]) -> Rates:
    if "input" not in declared or "output" not in declared:
        raise TierConfigError(f"{where}: prices need both input and output (USD per million tokens)")
    write = declared.get("cache_write", declared["input"])
    return Rates(
        input=declared["input"], output=declared["output"], cache_read=declared.get("cache_read", declared["input"]),
        cache_write_5m=declared.get("cache_write_5m", write), cache_write_1h=declared.get("cache_write_1h", write),
    )


def _known_price(model: object) -> bool:
    try:
        pricing.price(str(model))
    except pricing.UnknownModel:
        return False
    return True


def _number(where: str, table: Mapping[str, Any], key: str) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise TierConfigError(f"{where}.{key} must be a non-negative number, not {value!r}")
    return float(value)


def _optional_int(where: str, table: Mapping[str, Any], key: str, default: int | None, minimum: int = 0) -> Any:
    value = table.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise TierConfigError(f"{where}.{key} must be a whole number of tokens (at least {minimum}), not {value!r}")
    return value


def _default(value: bool | None, otherwise: bool) -> bool:
    return otherwise if value is None else value


def _optional_bool(where: str, table: Mapping[str, Any], key: str, default: bool | None) -> bool | None:
    value = table.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise TierConfigError(f"{where}.{key} must be true or false, not {value!r}")
    return value
