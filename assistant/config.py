"""Typed configuration: defaults < user file < repo file < environment < flags.

API keys come from the environment or the user's file, never from the repository's file.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import os
import sys
import textwrap
import tomllib
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from assistant import paths
from assistant.context.instructions import DEFAULT_FILES as DEFAULT_INSTRUCTION_FILES
from assistant.errors import ConfigError
from assistant.route.answer_shape import AnswerSettings
from models.tier_registry import (
    DEFAULT_ORDER,
    FREE_BUDGETS,
    PROVIDER_KINDS,
    TierConfigError,
    TierSpec,
    builtin_specs,
    check_order,
    parse_base_url,
    parse_tier_tables,
)

REPO_CONFIG_NAME = ".tiercode.toml"
BudgetAction = Literal["warn", "pause", "fail", "downgrade"]
_SECRET_KEYS = frozenset({"anthropic_api_key", "gemini_api_key", "groq_api_key"})
_USER_ONLY = {
    "test_command": "a repository may not choose commands to run",
    "groq_base_url": "a repository may not choose where API keys are sent",
    "gemini_base_url": "a repository may not choose where API keys are sent",
    "sonnet_base_url": "a repository may not choose where API keys are sent",
    "tier": "a repository may not declare tiers or where they send your code",
    "local.server": "a repository may not choose where your code is sent",
}
"""Settings a repository's own file may not hold, and why."""
SDK_BASE_URL_ENV = {f"{name}_base_url": PROVIDER_KINDS[spec.provider].base_url_env
                    for name, spec in builtin_specs().items() if PROVIDER_KINDS[spec.provider].base_url_env}
"""The environment variable each cloud SDK reads its base URL from when Tiercode passes none."""


class LocalSettings(BaseModel):
    """The local llama.cpp tier."""

    model_config = ConfigDict(extra="forbid")

    coder: str = "auto"
    """Catalog name or GGUF path of the local coder; `auto` takes the best one installed."""
    classifier: str = "auto"
    """Catalog name or GGUF path of the classifier; `auto` takes the best one installed."""
    embedder: str = "auto"
    """Catalog name or GGUF path of the embedding model; `auto` takes the best one installed."""
    context_tokens: int = Field(4096, ge=512)
    """Context window to load local models with."""
    gpu_layers: int = -1
    """Layers to offload to the GPU when llama.cpp has one (-1: all); ignored on CPU builds."""
    threads: int | None = None
    """CPU threads (default: the physical cores that other work, by the load average, leaves free)."""
    min_confidence: float = Field(0.35, ge=0, le=1)
    """Geometric-mean token probability below which a local answer escalates to the next tier."""
    server: str | None = None
    """An OpenAI-compatible server (llama-server, Ollama, LM Studio, vLLM) that serves the coder and the
    classifier instead of loading a GGUF in-process, e.g. http://127.0.0.1:8080/v1 (user file only)."""

    @field_validator("server")
    @classmethod
    def _server_url(cls, value: str | None) -> str | None:
        try:
            return None if value is None else parse_base_url("local.server", value)
        except TierConfigError as exc:
            raise ValueError(str(exc)) from None


class ContextSettings(BaseModel):
    """Tokens of index context each built-in tier's prompt may carry (the answer's room comes on top); a
    `[tier.NAME]` table sets its own with `context_tokens`."""

    model_config = ConfigDict(extra="forbid")

    local: int = Field(1500, ge=0)
    """For the local tier (also kept within the model's own window)."""
    groq: int = Field(6000, ge=0)
    """For Groq."""
    gemini: int = Field(12000, ge=0)
    """For Gemini Flash."""
    sonnet: int = Field(12000, ge=0)
    """For Claude Sonnet."""

    def for_tier(self, tier: str) -> int:
        """The budget of a cascade tier."""
        return int(getattr(self, tier))


class BudgetSettings(BaseModel):
    """Money limits in US dollars; None means no limit."""

    model_config = ConfigDict(extra="forbid")

    per_query: float | None = Field(None, ge=0)
    """Most a single question may cost."""
    session: float | None = Field(None, ge=0)
    """Most one session (one TUI run or one `ask`) may cost."""
    daily: float | None = Field(None, ge=0)
    """Most a calendar day (local time) may cost."""
    monthly: float | None = Field(None, ge=0)
    """Most a calendar month may cost."""
    action: BudgetAction = "warn"
    """What a call that would cross a limit does: warn, pause, fail or downgrade."""


class Settings(BaseSettings):
    """Everything Tiercode can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="TIERCODE_", env_nested_delimiter="__", extra="forbid"
    )

    offline: bool = False
    """No network at all: the index and local models answer everything."""
    tiers: list[str] = list(DEFAULT_ORDER)
    """The cascade, cheapest first: built-in tiers (local, groq, gemini, sonnet) and declared ones."""
    tier: dict[str, dict[str, Any]] = {}
    """Tiers declared with `[tier.NAME]` tables (user file only): provider, model, base_url, prices..."""
    max_escalations: int = Field(3, ge=0)
    """Most escalations one question may take."""
    confirm_above_usd: float = Field(0.05, ge=0)
    """Ask before a cloud call estimated above this many dollars."""
    max_output_tokens: int = Field(4096, ge=16)
    """Upper bound on any answer's length (and on its cost estimate); `[answers]` sets each kind's own."""
    groq_model: str | None = None
    """Groq model id (default: the catalog's)."""
    gemini_model: str | None = None
    """Gemini model id (default: the catalog's)."""
    sonnet_model: str | None = None
    """Anthropic model id (default: the catalog's)."""
    groq_base_url: str | None = None
    """Groq API base URL, e.g. a gateway (default: GROQ_BASE_URL or the SDK's; environment or user file only)."""
    gemini_base_url: str | None = None
    """Gemini API base URL (default: GOOGLE_GEMINI_BASE_URL or the SDK's; environment or user file only)."""
    sonnet_base_url: str | None = None
    """Anthropic API base URL (default: ANTHROPIC_BASE_URL or the SDK's; environment or user file only)."""
    anthropic_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "anthropic_api_key")
    )
    """Anthropic API key (environment or user file only)."""
    gemini_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY", "gemini_api_key")
    )
    """Gemini API key (environment or user file only)."""
    groq_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("GROQ_API_KEY", "groq_api_key"))
    """Groq API key (environment or user file only)."""
    cache_ttl_hours: float | None = Field(168.0, ge=0)
    """Hours a cached answer stays valid; it is dropped sooner when a file in its context changes."""
    semantic_cache: Literal["auto", "on", "off"] = "auto"
    """Reuse answers to questions that mean the same: auto = only with a dedicated embedding model installed
    (the quick-start model cannot tell a question from its reverse)."""
    semantic_threshold: float = Field(0.92, gt=0, le=1)
    """Cosine similarity a question needs to an earlier one for a semantic cache hit."""
    semantic_cache_edits: bool = False
    """Whether edit requests may be answered from the semantic cache."""
    max_file_bytes: int = Field(1024 * 1024, ge=1)
    """Files larger than this are not indexed."""
    unknown_symbol_limit: int = Field(2, ge=0)
    """An answer that names this many symbols in backticks (dotted or snake_case) that the index does not
    define escalates; 0 turns the check off. Calibration: at 2, 28 of the 30 answers it failed were wrong."""
    test_command: str | None = None
    """Shell command that runs the repository's tests (e.g. `pytest -q -x`); when set, an answer's patch must
    pass it in a scratch copy before the cascade stops (environment or user file only)."""
    test_timeout_s: float = Field(300.0, gt=0)
    """Seconds the test command may run before the patch counts as failing."""
    auto_commits: bool = True
    """In a git work tree, commit each applied edit (message by the local model, trailer `Co-authored-by:
    tiercode`) so /undo and git revert take it back; false keeps Tiercode's own undo journal."""
    dirty_files: Literal["commit", "stop"] = "commit"
    """Files an edit touches that hold uncommitted changes: `commit` them first as your own commit (aider's
    default), or `stop` the apply and say which."""
    instructions_files: list[str] = list(DEFAULT_INSTRUCTION_FILES)
    """The repository's instructions for the models, looked for at its root in this order (first found)."""
    instructions_tokens: int = Field(2000, ge=0)
    """Most tokens of project instructions sent (a tier with a small window gets at most an eighth of it);
    0 sends none."""
    compact_at: float = Field(0.8, ge=0, le=1)
    """A conversation whose earlier turns pass this share of the start tier's history budget has them summarised
    by the cheapest available tier (0: only on /compact)."""
    answers: AnswerSettings = AnswerSettings()
    """Output length, form and thinking effort by kind."""
    local: LocalSettings = LocalSettings()
    """The local llama.cpp tier."""
    context: ContextSettings = ContextSettings()
    """Index context per tier, in tokens."""
    budget: BudgetSettings = BudgetSettings()
    """Money limits."""

    def tier_specs(self) -> dict[str, TierSpec]:
        """Every declared tier: the built-ins with the `*_model`, `*_base_url`, `[context]` and `[local]`
        settings applied, then the `[tier.NAME]` tables. Raises TierConfigError (one line)."""
        specs = {name: self._builtin(spec) for name, spec in builtin_specs().items()}
        return parse_tier_tables(self.tier, specs)

    def _builtin(self, spec: TierSpec) -> TierSpec:
        """A built-in tier's spec with the shorthand settings that name it."""
        budgets = replace(spec.budgets, context_tokens=getattr(self.context, spec.name, spec.budgets.context_tokens))
        if PROVIDER_KINDS[spec.provider].always_free:  # the in-process local tier
            if self.local.server is not None:
                return TierSpec(spec.name, "openai-compatible", self.local.coder, budgets, base_url=self.local.server,
                                free=True, context_window=self.local.context_tokens, logprobs=True)
            return replace(spec, model=self.local.coder, budgets=budgets, context_window=self.local.context_tokens)
        return replace(spec, model=getattr(self, f"{spec.name}_model", None) or spec.model, budgets=budgets,
                       base_url=getattr(self, f"{spec.name}_base_url", None) or spec.base_url)

    def classifier_spec(self) -> TierSpec | None:
        """The classifier as a served model (with `local.server`); None: a GGUF loaded in-process."""
        if self.local.server is None:
            return None
        return TierSpec("classifier", "openai-compatible", self.local.classifier, FREE_BUDGETS,
                        base_url=self.local.server, free=True, context_window=self.local.context_tokens, logprobs=True)

    def api_keys(self) -> dict[str, str]:
        """The keys these settings hold, by tier name, for the tiers that take their provider's usual key."""
        keys = {}
        for name, spec in self.tier_specs().items():
            key = getattr(self, f"{spec.provider}_api_key", None)
            if isinstance(key, SecretStr) and spec.api_key_env == PROVIDER_KINDS[spec.provider].key_env:
                keys[name] = key.get_secret_value()
        return keys

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [_FileSource(settings_cls, path, repo) for path, repo in _config_files()]
        return (init_settings, env_settings, *reversed(files))


_active_repo: ContextVar[Path | None] = ContextVar("tiercode_repo", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """One TOML config file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, is_repo_file: bool) -> None:
        super().__init__(settings_cls)
        self.data = read_config_file(path, is_repo_file)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def read_config_file(path: Path, is_repo_file: bool) -> dict[str, Any]:
    """Read one TOML config file; API keys, a command to run or a base URL in a repo file are ignored with a
    warning (a cloned repository must neither choose them nor lock the user out)."""
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix or remove it") from exc
    if is_repo_file:
        for key in sorted(_SECRET_KEYS | _USER_ONLY.keys()):
            table, _, leaf = key.rpartition(".")
            holder = data.get(table) if table else data
            if isinstance(holder, dict) and leaf in holder:
                del holder[leaf]
                _warn_once(f"ignoring {key} in {path}: {_USER_ONLY.get(key, 'API keys never belong in a repository')}"
                           f"; set it in the environment or {paths.user_config_file()}")
    return data


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """A one-line warning on stderr, once per process however often the settings are read."""
    if message not in _warned:
        _warned.add(message)
        print(f"tiercode: warning: {message}", file=sys.stderr)


def _config_files() -> list[tuple[Path, bool]]:
    files = [(paths.user_config_file(), False)]
    repo = _active_repo.get()
    if repo is not None:
        files.append((repo / REPO_CONFIG_NAME, True))
    return files


def load_settings(repo: Path | None = None, **flags: Any) -> Settings:
    """Build the effective settings for `repo`; flags that are None are left out. A repository's file
    may make the money limits, the budget action, the confirmation threshold and offline stricter than
    the user's, never looser (a cloned repository must not undo `tiercode budget set`)."""
    overrides = {k: v for k, v in flags.items() if v is not None}
    if repo is None or not (repo / REPO_CONFIG_NAME).is_file():
        settings = _settings(repo.resolve() if repo is not None else None, overrides)
    else:
        users = _settings(None, overrides)
        settings = _settings(repo.resolve(), overrides, users.tiers)
        _keep_stricter(settings, users)
    return settings


_ACTION_STRICTNESS = {"warn": 0, "pause": 1, "downgrade": 2, "fail": 3}
"""Which budget action spends least past a limit: `pause` goes on when confirmed (or with --yes);
`downgrade` never calls a tier that does not fit; `fail` stops."""


def _keep_stricter(settings: Settings, users: Settings) -> None:
    """Where the repository's file loosened a guard the user's settings hold, put the user's back."""
    settings.offline = settings.offline or users.offline
    for limit in ("per_query", "session", "daily", "monthly"):
        theirs, mine = getattr(settings.budget, limit), getattr(users.budget, limit)
        if mine is not None and (theirs is None or theirs > mine):
            setattr(settings.budget, limit, mine)
    if _ACTION_STRICTNESS[settings.budget.action] < _ACTION_STRICTNESS[users.budget.action]:
        settings.budget.action = users.budget.action
    settings.confirm_above_usd = min(settings.confirm_above_usd, users.confirm_above_usd)


def _settings(repo: Path | None, overrides: dict[str, Any], users_tiers: list[str] | None = None) -> Settings:
    """The settings from the files `_config_files` names; with `users_tiers`, a `tiers` list that differs
    from them is the repository's, and is narrowed to the tiers the user declares."""
    token = _active_repo.set(repo)
    try:
        settings = Settings(**overrides)
        if repo is not None and users_tiers is not None and settings.tiers != users_tiers:
            settings.tiers = _repo_tiers(settings.tiers, users_tiers, settings.tier_specs(), repo / REPO_CONFIG_NAME)
        check_order(settings.tiers, settings.tier_specs())
        return settings
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        msg = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid setting '{key}' ({_where()}): {msg}") from exc
    except TierConfigError as exc:
        raise ConfigError(f"invalid tier configuration ({_where()}): {exc}") from exc
    finally:
        _active_repo.reset(token)


def _repo_tiers(theirs: list[str], users: list[str], declared: dict[str, TierSpec], path: Path) -> list[str]:
    """A repository's cascade: its order of the tiers the user declares. A name the user does not declare,
    or a repeat, is left out with a warning; when none is left, the user's own cascade, with a warning."""
    kept: list[str] = []
    for name in theirs:
        if name not in declared:
            _warn_once(f"ignoring '{name}' in tiers of {path}: you declare no such tier ({', '.join(declared)}); "
                       "a repository may order or narrow your tiers, never add one")
        elif name in kept:
            _warn_once(f"ignoring the second '{name}' in tiers of {path}")
        else:
            kept.append(name)
    if not kept:
        _warn_once(f"ignoring tiers in {path}: it names none of your tiers; using yours ({', '.join(users)})")
    return kept or users


def _where() -> str:
    """The config files that were read, for an error message."""
    return ", ".join(str(p) for p, _ in _config_files() if p.is_file()) or "environment or flags"


@dataclass(frozen=True)
class SettingOrigin:
    """One effective setting, where its value came from, and what it means."""

    key: str
    value: str
    source: str
    """default, user file, repo file, environment or flag."""
    doc: str


def explain_settings(repo: Path | None = None, **flags: Any) -> list[SettingOrigin]:
    """Every setting's effective value and its source (`tiercode config`); secrets are masked."""
    settings = load_settings(repo, **flags)
    user = read_config_file(paths.user_config_file(), False)
    repo_data = read_config_file(repo / REPO_CONFIG_NAME, True) if repo else {}
    given = {k for k, v in flags.items() if v is not None}
    rows: list[SettingOrigin] = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                source = _source(f"{name}.{sub}", [f"TIERCODE_{name}__{sub}".upper()], given,
                                 user.get(name, {}), repo_data.get(name, {}), sub, getattr(value, sub))
                rows.append(SettingOrigin(f"{name}.{sub}", _show(getattr(value, sub)), source,
                                          attribute_docs(type(value)).get(sub, "")))
            continue
        env_names = [f"TIERCODE_{name}".upper()]
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            env_names = [str(choice) for choice in alias.choices if str(choice).isupper()]
        source = _source(name, env_names, given, user, repo_data, name, value)
        sdk_env = SDK_BASE_URL_ENV.get(name, "")
        if value is None and os.environ.get(sdk_env):  # not a setting, but where the SDK will send the calls
            value, source = os.environ[sdk_env], f"environment ({sdk_env}, read by the SDK)"
        rows.append(SettingOrigin(name, _show(value), source, attribute_docs(Settings).get(name, "")))
    return rows


@functools.cache
def attribute_docs(model: type) -> dict[str, str]:
    """The docstring under each annotated attribute of a class, read from its source when `tiercode config` shows
    them (pydantic's `use_attribute_docstrings` would read every settings class's source at each start-up)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(model)))
    except (OSError, TypeError, SyntaxError):  # no source (a frozen build): the settings show no docs
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, after in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _source(key: str, env_names: list[str], given: set[str], user: dict[str, Any], repo: dict[str, Any],
            leaf: str, value: Any) -> str:
    if key in given:
        return "flag"
    for env in env_names:
        if env in os.environ:
            return f"environment ({env})"
    if leaf in repo and repo[leaf] == value:
        return "repo file"
    if leaf in repo and isinstance(value, list) and value and all(item in repo[leaf] for item in value):
        return "repo file (less what it may not name: see the warning)"
    kept = " (the repo file's looser value is not used)" if leaf in repo else ""
    if leaf in user:
        return f"user file{kept}"
    return f"default{kept}"


def _show(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(set)"
    if value is None:
        return "(none)"
    return str(value)
