"""Costs from the price list, computed by hand; the tier defaults; a malformed price list."""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path

import anthropic
import pytest
from anthropic._data import DEPRECATED_MODELS

from models import pricing
from models.base import Usage

M = 1_000_000
BEFORE = dt.date(2026, 11, 25)


def test_sonnet_with_every_kind_of_token() -> None:
    usage = Usage(input_tokens=M, output_tokens=M, cache_read_tokens=M, cache_write_5m_tokens=M,
                  cache_write_1h_tokens=M)
    # 3 input + 15 output + 0.30 read + 3.75 five-minute write + 6 one-hour write
    assert pricing.cost_usd("claude-sonnet-4-6", usage) == pytest.approx(28.05)


def test_a_realistic_cached_sonnet_call() -> None:
    usage = Usage(input_tokens=12_000, output_tokens=800, cache_read_tokens=30_000, cache_write_5m_tokens=4_000)
    # 0.036 + 0.012 + 0.009 + 0.015
    assert pricing.cost_usd("claude-sonnet-4-6", usage) == pytest.approx(0.072)


def test_the_most_a_call_can_cost_prices_input_as_a_cache_write() -> None:
    # Sonnet 4.6: a five-minute cache write (3.75) is dearer than input (3); Gemini and Groq write no cache
    assert pricing.max_cost_usd("claude-sonnet-4-6", M, M) == pytest.approx(3.75 + 15)
    assert pricing.max_cost_usd("claude-sonnet-4-6", M, 0, cache_ttl="1h") == pytest.approx(6)
    gemini = pricing.default_model("gemini")
    assert pricing.max_cost_usd(gemini, M, M) == pytest.approx(pricing.cost_usd(gemini, Usage(M, M)))
    assert pricing.max_cost_usd("smollm2", M, M) == 0.0


def test_the_default_sonnet() -> None:
    usage = Usage(input_tokens=M, output_tokens=M, cache_read_tokens=M, cache_write_5m_tokens=M,
                  cache_write_1h_tokens=M)
    # 2 + 10 + 0.10 + 2.50 + 4
    assert pricing.cost_usd(pricing.default_model("sonnet"), usage, on=BEFORE) == pytest.approx(18.60)


def test_gemini_cached_tokens_at_the_read_rate() -> None:
    usage = Usage(input_tokens=530, output_tokens=42, cache_read_tokens=2000)
    # (530 * 0.75 + 42 * 3.75 + 2000 * 0.075) / 1e6
    assert pricing.cost_usd("gemini-3.8-flash", usage, on=BEFORE) == pytest.approx(0.0007050)


def test_announced_price_change_applies_from_its_day() -> None:
    usage = Usage(input_tokens=M, output_tokens=M, cache_read_tokens=M)
    assert pricing.cost_usd("gemini-3.8-flash", usage, on=dt.date(2026, 12, 31)) == pytest.approx(0.75 + 3.75 + 0.075)
    assert pricing.cost_usd("gemini-3.8-flash", usage, on=dt.date(2027, 1, 1)) == pytest.approx(1.50 + 7.50 + 0.15)


def test_groq_cached_tokens_at_half_price() -> None:
    usage = Usage(input_tokens=M, output_tokens=M, cache_read_tokens=M)
    assert pricing.cost_usd("openai/gpt-oss-120b", usage) == pytest.approx(0.15 + 0.60 + 0.075)


def test_batch_halves_the_cost() -> None:
    usage = Usage(input_tokens=M, output_tokens=M)
    assert pricing.cost_usd("claude-sonnet-4-6", usage, batch=True) == pytest.approx(9.0)


def test_aliases_and_prefixed_ids() -> None:
    usage = Usage(input_tokens=M)
    assert pricing.cost_usd("claude-sonnet-4-5-20250929", usage) == pricing.cost_usd("claude-sonnet-4-5", usage) == 3.0
    assert pricing.cost_usd("models/gemini-3.8-flash", usage, on=BEFORE) == pytest.approx(0.75)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(pricing.UnknownModel) as caught:
        pricing.cost_usd("claude-imaginary-9", Usage(input_tokens=1))
    assert "no price for model 'claude-imaginary-9'" in str(caught.value)
    assert "prices.toml" in str(caught.value)
    assert caught.value.model == "claude-imaginary-9"


def test_local_models_cost_nothing() -> None:
    usage = Usage(input_tokens=M, output_tokens=M)
    assert pricing.cost_usd("smollm2", usage) == 0.0
    assert pricing.cost_usd("/models/my-finetune.Q4_K_M.gguf", usage) == 0.0
    assert pricing.cost_usd("my-finetune", usage, provider="local") == 0.0
    with pytest.raises(pricing.UnknownModel):
        pricing.cost_usd("my-finetune", usage)


def test_one_default_model_per_cloud_tier() -> None:
    expected = {"groq": "groq", "gemini": "gemini", "sonnet": "anthropic"}
    assert set(pricing.book().tiers) == set(expected)
    for tier, provider in expected.items():
        assert pricing.price(pricing.default_model(tier)).provider == provider
    with pytest.raises(pricing.UnknownTier):
        pricing.default_model("local")


def test_default_sonnet_is_supported_by_the_sdk_and_not_deprecated() -> None:
    sonnet = pricing.default_model("sonnet")
    assert sonnet in typing.get_args(typing.get_args(anthropic.types.Model)[0])
    assert sonnet not in DEPRECATED_MODELS
    assert not sonnet.startswith("claude-sonnet-4-5")


def test_every_price_says_when_and_where_it_was_checked() -> None:
    for entry in pricing.book().models.values():
        assert entry.checked <= dt.date.today()
        assert entry.source.startswith("https://")
        assert entry.rates.cache_read <= entry.rates.input
        assert 0 < entry.batch_factor <= 1


def test_price_list_ships_next_to_the_module() -> None:
    assert Path(pricing.__file__).with_name("prices.toml") == pricing.PRICES_FILE
    assert pricing.PRICES_FILE.is_file()


def test_min_cache_tokens_lookup() -> None:
    assert pricing.min_cache_tokens("claude-sonnet-4-6", 99) == 1024
    assert pricing.min_cache_tokens("openai/gpt-oss-120b", 99) == 99
    assert pricing.min_cache_tokens("claude-unlisted", 1024) == 1024


GOOD_MODEL = """
[models."m"]
provider = "groq"
input = 1.0
output = 2.0
cache_read = 0.5
cache_write_5m = 1.0
cache_write_1h = 1.0
batch_factor = 0.5
checked = "2026-11-25"
source = "https://example.invalid/pricing"
"""


@pytest.mark.parametrize(("text", "complaint"), [
    ('[tiers]\ngroq = "m"\n' + GOOD_MODEL.replace("input = 1.0", "input = -1"), 'models."m".input'),
    ('[tiers]\ngroq = "missing"\n' + GOOD_MODEL, "tiers.groq names 'missing'"),
    ('[tiers]\ngroq = "m"\n' + GOOD_MODEL.replace('"groq"', '"acme"'), 'models."m".provider'),
    ('[tiers]\ngroq = "m"\n' + GOOD_MODEL.replace('"2026-11-25"', '"soon"'), 'models."m".checked'),
    (GOOD_MODEL, "missing [tiers] table"),
    ("[tiers\n", "prices.toml"),
])
def test_malformed_price_list_names_the_key(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(pricing.PriceFileError) as caught:
        pricing.load(path)
    assert complaint in str(caught.value)


def test_a_good_price_list_with_a_change(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    change = '[[models."m".changes]]\nfrom = "2027-02-01"\noutput = 4.0\n'
    path.write_text('[tiers]\ngroq = "m"\n' + GOOD_MODEL + change, encoding="utf-8")
    book = pricing.load(path)
    entry = book.price("m")
    assert entry.rates_on(dt.date(2027, 1, 31)).output == 2.0
    assert entry.rates_on(dt.date(2027, 2, 1)) == pricing.Rates(1.0, 4.0, 0.5, 1.0, 1.0)
    assert book.default_model("groq") == "m"
