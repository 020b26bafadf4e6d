"""The tier registry: built-in specs, user [tier.NAME] tables, and backends built from specs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from models import cloud, pricing
from models.base import Backend, Capabilities, ModelUnavailable, Usage, capabilities_of
from models.catalog import QUICKSTART_MODEL
from models.cloud.openai_compat import OpenAICompatTier
from models.local import LocalBackend
from models.manager import ModelManager
from models.tier_registry import (
    DEFAULT_ORDER,
    PROVIDER_KINDS,
    Budgets,
    BuildContext,
    TierConfigError,
    TierSpec,
    build_backend,
    builtin_specs,
    check_order,
    parse_tier_tables,
)
from tests.emulators import fixtures

KEYS = fixtures.KEYS
cloud_emulators = fixtures.cloud_emulators

OLLAMA = """
[tier.ollama]
provider = "openai-compatible"
base_url = "http://127.0.0.1:11434/v1"
model = "qwen2.5-coder:7b"
free = true
api_key_env = "OLLAMA_API_KEY"

[tier.gateway]
provider = "openai-compatible"
base_url = "https://gateway.example/v1/"
model = "anthropic/claude-sonnet"
input = 3.0
output = 15.0
cache_read = 0.3
context_tokens = 9000
"""


def tables(text: str) -> dict[str, object]:
    return tomllib.loads(text)["tier"]


# -- the built-ins ----------------------------------------------------------------------------------


def test_builtins_reproduce_todays_cascade() -> None:
    specs = builtin_specs()
    assert DEFAULT_ORDER == ("local", "groq", "gemini", "sonnet") and tuple(specs) == DEFAULT_ORDER
    assert [specs[n].provider for n in DEFAULT_ORDER] == ["llama-cpp", "groq", "gemini", "anthropic"]
    assert [specs[n].model for n in DEFAULT_ORDER[1:]] == [pricing.default_model(n) for n in DEFAULT_ORDER[1:]]
    assert specs["local"].model == "auto" and specs["local"].context_window == 4096
    # assistant/config.py ContextSettings, pipeline.MAP_BUDGETS, conversation.HISTORY_BUDGETS
    assert {n: s.budgets for n, s in specs.items()} == {
        "local": Budgets(1500, 0, 512), "groq": Budgets(6000, 1024, 3000),
        "gemini": Budgets(12000, 2048, 6000), "sonnet": Budgets(12000, 2048, 6000),
    }
    assert [specs[n].free for n in DEFAULT_ORDER] == [True, False, False, False]
    assert specs["gemini"].api_key_env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")


def test_builtin_capabilities_are_todays() -> None:
    specs = builtin_specs()
    local = specs["local"].capabilities
    assert (local.free, local.logprobs, local.retries, local.prompt_caching) == (True, True, False, False)
    assert specs["groq"].capabilities == Capabilities(thinking=True)  # gpt-oss reasons: prices.toml says `thinks`
    assert specs["gemini"].capabilities == Capabilities(thinking=True, batch=True)  # thinking levels, batch mode
    assert specs["sonnet"].capabilities == Capabilities(thinking=True, batch=True)  # Claude thinks, steered by effort


def test_cloud_kinds_take_keys_where_their_sdk_classes_do() -> None:
    for kind, cls in cloud.PROVIDERS.items():
        assert PROVIDER_KINDS[kind].key_env == cls.key_env


def test_builtin_costs_come_from_the_price_list() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=3000)
    specs = builtin_specs()
    assert specs["local"].cost_usd(usage) == 0.0 and specs["local"].max_cost_usd(10_000, 500) == 0.0
    for name in ("groq", "gemini", "sonnet"):
        model = pricing.default_model(name)
        assert specs[name].cost_usd(usage) == pytest.approx(pricing.cost_usd(model, usage))
        assert specs[name].max_cost_usd(1000, 100) == pytest.approx(pricing.max_cost_usd(model, 1000, 100))


# -- user tables ------------------------------------------------------------------------------------


def test_declared_tiers_join_the_builtins() -> None:
    specs = parse_tier_tables(tables(OLLAMA))
    assert list(specs) == [*DEFAULT_ORDER, "ollama", "gateway"]
    ollama = specs["ollama"]
    assert ollama == TierSpec("ollama", "openai-compatible", "qwen2.5-coder:7b", Budgets(1500, 0, 512),
                              base_url="http://127.0.0.1:11434/v1", api_key_env=("OLLAMA_API_KEY",), free=True)
    assert ollama.capabilities.logprobs and ollama.capabilities.free
    gateway = specs["gateway"]
    assert gateway.base_url == "https://gateway.example/v1" and gateway.api_key_env == ()
    assert gateway.budgets == Budgets(9000, 1024, 3000)
    assert not gateway.capabilities.logprobs and not gateway.capabilities.free
    assert gateway.rates is not None and gateway.rates.cache_write_5m == 3.0
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    assert gateway.cost_usd(usage) == pytest.approx(18.3)
    assert gateway.max_cost_usd(1_000_000, 0) == pytest.approx(3.0)


def test_a_table_for_a_builtin_changes_only_its_keys() -> None:
    specs = parse_tier_tables({"groq": {"model": "openai/gpt-oss-120b", "base_url": "http://127.0.0.1:9/openai/v1",
                                        "map_tokens": 0}})
    groq = specs["groq"]
    assert groq.provider == "groq" and groq.api_key_env == ("GROQ_API_KEY",) and not groq.free
    assert groq.budgets == Budgets(6000, 0, 3000)


def test_a_builtin_redeclared_with_another_provider_starts_afresh() -> None:
    specs = parse_tier_tables({"local": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:8080/v1",
                                         "model": "smollm2", "free": True, "context_window": 2048}})
    local = specs["local"]
    assert local.provider == "openai-compatible" and local.api_key_env == () and local.context_window == 2048
    assert local.capabilities == Capabilities(free=True, logprobs=True, retries=True, context_window=2048)


@pytest.mark.parametrize(("name", "table", "message"), [
    ("Ollama", {}, "tier.Ollama: a tier name is 1-32 lowercase letters"),
    ("index", {"provider": "openai-compatible"}, "tier.index: 'index' is reserved"),
    ("x", "a string", "tier.x must be a table"),
    ("x", {"provider": "olama"}, "tier.x.provider must be one of llama-cpp, openai-compatible, anthropic, gemini, "
                                 "groq, not 'olama'"),
    ("x", {"provider": "openai-compatible", "model": "m", "free": True}, "tier.x.base_url is required for provider "
                                                                         "openai-compatible"),
    ("x", {"provider": "openai-compatible", "base_url": "ftp://h/v1", "model": "m", "free": True},
     "tier.x.base_url must be an http:// or https:// URL, not 'ftp://h/v1'"),
    ("x", {"provider": "openai-compatible", "base_url": "http://u:secret@h/v1", "model": "m", "free": True},
     "tier.x.base_url may not hold credentials"),
    ("x", {"provider": "groq"}, "tier.x.model must name the model"),
    ("x", {"provider": "groq", "model": "m", "baseurl": "http://h"}, "tier.x: unknown key 'baseurl'"),
    ("x", {"provider": "groq", "model": "unpriced"}, "tier.x: model 'unpriced' has no price in prices.toml"),
    ("x", {"provider": "groq", "model": "m", "free": True, "input": 1.0}, "tier.x: give free = true or prices"),
    ("x", {"provider": "groq", "model": "m", "input": 1.0}, "tier.x: prices need both input and output"),
    ("x", {"provider": "groq", "model": "m", "input": -1, "output": 1}, "tier.x.input must be a non-negative"),
    ("x", {"provider": "llama-cpp", "model": "auto", "input": 1, "output": 1}, "tier.x: a llama-cpp tier is free"),
    ("x", {"provider": "groq", "model": "m", "free": "yes"}, "tier.x.free must be true or false"),
    ("x", {"provider": "groq", "model": "m", "free": True, "context_window": 10}, "tier.x.context_window must be"),
    ("x", {"provider": "groq", "model": "m", "free": True, "map_tokens": 1.5}, "tier.x.map_tokens must be"),
    ("x", {"provider": "groq", "model": "m", "free": True, "api_key_env": "$KEY"}, "tier.x.api_key_env must name"),
])
def test_invalid_tables_fail_in_one_line(name: str, table: object, message: str) -> None:
    with pytest.raises(TierConfigError) as caught:
        parse_tier_tables({name: table})
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_secret_in_a_base_url_is_not_repeated() -> None:
    with pytest.raises(TierConfigError) as caught:
        parse_tier_tables({"x": {"provider": "openai-compatible", "base_url": "http://u:hunter22@h/v1", "model": "m",
                                 "free": True}})
    assert "hunter22" not in str(caught.value)


def test_the_order_must_name_declared_tiers_once() -> None:
    specs = parse_tier_tables(tables(OLLAMA))
    check_order(["local", "ollama", "groq", "gemini", "sonnet"], specs)
    for order, message in ((["local", "olama"], "tiers names 'olama', which no [tier.olama] table declares"),
                           (["local", "local"], "tiers names 'local' twice"), ([], "tiers: the cascade needs")):
        with pytest.raises(TierConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_order(order, specs)


# -- building backends ------------------------------------------------------------------------------


def test_builtin_cloud_tiers_build_their_sdk_classes(cloud_emulators: fixtures.CloudEmulators) -> None:
    specs = builtin_specs()
    for name, cls in (("groq", cloud.GroqTier), ("gemini", cloud.GeminiTier), ("sonnet", cloud.AnthropicTier)):
        backend = build_backend(specs[name])
        assert isinstance(backend, cls) and isinstance(backend, Backend)
        assert backend.model == specs[name].model and capabilities_of(backend) == specs[name].capabilities


def test_a_key_from_the_settings_wins_over_the_environment(cloud_emulators: fixtures.CloudEmulators) -> None:
    groq = builtin_specs()["groq"]
    backend = build_backend(groq, BuildContext(api_keys={"groq": "gsk_from_the_user_file"}))
    assert backend._key == "gsk_from_the_user_file"  # type: ignore[attr-defined]


def test_a_missing_key_names_the_declared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", KEYS["groq"])
    specs = parse_tier_tables({"team": {"provider": "groq", "model": "openai/gpt-oss-120b",
                                        "api_key_env": "TEAM_GROQ_KEY"}})
    with pytest.raises(ModelUnavailable, match="Groq: no API key; set TEAM_GROQ_KEY"):
        build_backend(specs["team"])
    monkeypatch.delenv("GROQ_API_KEY")
    with pytest.raises(ModelUnavailable, match="Groq: no API key; set GROQ_API_KEY"):
        build_backend(specs["groq"])


def test_openai_compatible_tiers_need_their_declared_key_only(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = parse_tier_tables(tables(OLLAMA))
    with pytest.raises(ModelUnavailable, match=r"^ollama at http://127.0.0.1:11434/v1: no API key; set OLLAMA_API_KEY"):
        build_backend(specs["ollama"])
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-key-1234")
    ollama = build_backend(specs["ollama"])
    assert isinstance(ollama, OpenAICompatTier) and ollama.endpoint == "http://127.0.0.1:11434/v1"
    assert capabilities_of(ollama) == specs["ollama"].capabilities
    gateway = build_backend(specs["gateway"])  # declares no key variable: sends none, reads no OPENAI_API_KEY
    assert gateway.capabilities.logprobs is False and gateway._key == ""  # type: ignore[attr-defined]


def test_the_local_tier_builds_on_the_installed_model(installed_model: Path, isolated_xdg: Path) -> None:
    context = BuildContext(manager=ModelManager(isolated_xdg / "data" / "tiercode" / "models"))
    backend = build_backend(builtin_specs()["local"], context)
    assert isinstance(backend, LocalBackend) and backend.model == QUICKSTART_MODEL
    assert capabilities_of(backend) == Capabilities(free=True, logprobs=True, retries=False, context_window=4096,
                                                   prompt_caching=False)
    again = build_backend(TierSpec("other", "llama-cpp", QUICKSTART_MODEL, Budgets(1, 0, 1), free=True), context)
    assert again._model is backend._model  # one GGUF, loaded once  # type: ignore[attr-defined]


def test_the_local_tier_without_a_model_is_unavailable(isolated_xdg: Path) -> None:
    context = BuildContext(manager=ModelManager(isolated_xdg / "data" / "tiercode" / "models"))
    with pytest.raises(ModelUnavailable, match="no local coder model is installed"):
        build_backend(builtin_specs()["local"], context)
