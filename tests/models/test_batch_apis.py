"""The providers' batch APIs (Anthropic Message Batches, Gemini batch mode) through the official SDKs, against
the loopback emulators: submit, status, results with partial failures, expiry, cancel, a results stream cut
off, and what a batch request carries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from models.base import GenerationRequest, Message, ModelError
from models.batching import BatchApi, BatchCounts, BatchItem, batches_of
from models.cloud import AnthropicTier, GeminiTier, GroqTier
from models.tier_registry import builtin_specs, parse_tier_tables
from tests.emulators import fixtures
from tests.emulators.anthropic_api import AnthropicEmulator
from tests.emulators.gemini_api import GeminiEmulator
from tests.emulators.server import Emulator, Fail, Reply

KEYS = fixtures.KEYS
loopback_only = fixtures.loopback_only
pytestmark = pytest.mark.usefixtures("loopback_only")

SYSTEM = "You are Tiercode. " * 400  # long enough for Anthropic to cache it
REQUEST = GenerationRequest(messages=(Message("system", SYSTEM), Message("user", "explain Circle.area")),
                            max_tokens=300, effort="low")
IDS = ["line-1", "line-2", "line-3"]


@dataclass(frozen=True)
class Provider:
    """One provider's emulator and the batch API of a tier pointed at it."""

    emulator: Emulator
    api: BatchApi


def _anthropic(emulator: Emulator) -> BatchApi:
    api = batches_of(AnthropicTier("claude-sonnet-5-5", KEYS["anthropic"], emulator.base_url))
    assert api is not None
    return api


def _gemini(emulator: Emulator) -> BatchApi:
    api = batches_of(GeminiTier("gemini-3.8-flash", KEYS["gemini"], emulator.base_url))
    assert api is not None
    return api


CASES: dict[str, tuple[type[Emulator], str, Callable[[Emulator], BatchApi]]] = {
    "anthropic": (AnthropicEmulator, "anthropic", _anthropic),
    "gemini": (GeminiEmulator, "gemini", _gemini),
}


@pytest.fixture(params=sorted(CASES))
def provider(request: pytest.FixtureRequest) -> Iterator[Provider]:
    """Each provider's emulator, batches held in progress until the test ends them."""
    kind, key, make = CASES[request.param]
    with kind(api_key=KEYS[key]) as emulator:
        emulator.batches.hold = True  # type: ignore[attr-defined]
        yield Provider(emulator, make(emulator))


def _submit(provider: Provider, *behaviours: Reply | Fail) -> str:
    provider.emulator.script(*behaviours)
    return provider.api.submit([BatchItem(custom_id, REQUEST) for custom_id in IDS])


def test_a_batch_is_in_progress_then_ended_with_each_request_outcome(provider: Provider) -> None:
    batch_id = _submit(provider, Reply("Circle.area is pi r squared."), Fail(500), Reply("second answer"))
    assert provider.api.status(batch_id, 3).state == "in_progress"
    assert provider.api.status(batch_id, 3).counts == BatchCounts(processing=3)
    provider.emulator.batches.end()  # type: ignore[attr-defined]
    status = provider.api.status(batch_id, 3)
    assert status.state == "ended" and status.counts == BatchCounts(succeeded=2, errored=1)
    outcomes = {o.custom_id: o for o in provider.api.results(batch_id, IDS)}
    assert [outcomes[i].status for i in IDS] == ["succeeded", "errored", "succeeded"]
    first = outcomes["line-1"].result
    assert first is not None and first.text == "Circle.area is pi r squared."
    assert first.usage.output_tokens > 0 and first.usage.total_input_tokens > len(SYSTEM) // 4
    assert outcomes["line-2"].result is None and outcomes["line-2"].error
    assert provider.emulator.errors == []


def test_an_expired_batch_gives_expired_requests_and_no_answers(provider: Provider) -> None:
    batch_id = _submit(provider)
    provider.emulator.batches.end(expire=True)  # type: ignore[attr-defined]
    assert provider.api.status(batch_id, 3).counts == BatchCounts(expired=3)
    assert {o.status for o in provider.api.results(batch_id, IDS)} == {"expired"}


def test_a_canceled_batch_ends_with_its_requests_canceled(provider: Provider) -> None:
    batch_id = _submit(provider)
    provider.api.cancel(batch_id)
    status = provider.api.status(batch_id, 3)
    assert status.state == "ended" and status.counts == BatchCounts(canceled=3)
    assert [o.status for o in provider.api.results(batch_id, IDS)] == ["canceled"] * 3


def test_results_of_a_batch_in_progress_are_a_one_line_error(provider: Provider) -> None:
    batch_id = _submit(provider)
    with pytest.raises(ModelError) as raised:
        list(provider.api.results(batch_id, IDS))
    assert "\n" not in str(raised.value)


def test_a_wrong_key_is_a_one_line_error_without_the_key() -> None:
    with AnthropicEmulator(api_key=KEYS["anthropic"]) as emulator:
        api = batches_of(AnthropicTier("claude-sonnet-5-5", "sk-ant-wrong-key-123", emulator.base_url))
        assert api is not None
        with pytest.raises(ModelError) as raised:
            api.submit([BatchItem("a", REQUEST)])
    assert "401" in str(raised.value) and "sk-ant-wrong-key-123" not in str(raised.value)


def test_an_anthropic_batch_request_carries_the_params_of_the_streamed_call() -> None:
    with AnthropicEmulator(api_key=KEYS["anthropic"]) as emulator:
        tier = AnthropicTier("claude-sonnet-5-5", KEYS["anthropic"], emulator.base_url)
        tier.generate(REQUEST)
        api = batches_of(tier)
        assert api is not None
        api.submit([BatchItem("a", REQUEST)])
        streamed, batched = emulator.bodies()
    params = batched["requests"][0]["params"]
    assert {k: v for k, v in streamed.items() if k != "stream"} == params
    assert params["system"][0]["cache_control"]["type"] == "ephemeral"
    assert params["max_tokens"] == 300 and params["output_config"] == {"effort": "low"}


def test_an_anthropic_results_stream_cut_off_gives_the_lines_that_came_then_a_transient_error() -> None:
    with AnthropicEmulator(api_key=KEYS["anthropic"]) as emulator:
        emulator.results_drop_after = 1
        provider = Provider(emulator, _anthropic(emulator))
        batch_id = _submit(provider)
        seen: list[str] = []
        with pytest.raises(ModelError) as raised:
            for outcome in provider.api.results(batch_id, IDS):
                seen.append(outcome.custom_id)
    assert seen == ["line-1"] and raised.value.transient


def test_gemini_requests_are_matched_to_their_responses_by_order() -> None:
    with GeminiEmulator(api_key=KEYS["gemini"]) as emulator:
        provider = Provider(emulator, _gemini(emulator))
        batch_id = _submit(provider, Reply("one"), Fail(429), Reply("three"))
        outcomes = list(provider.api.results(batch_id, IDS))
        body = emulator.bodies()[0]
    assert [(o.custom_id, o.result.text if o.result else o.status) for o in outcomes] == [
        ("line-1", "one"), ("line-2", "errored"), ("line-3", "three")]
    sent = body["batch"]["inputConfig"]["requests"]["requests"]
    assert [r["metadata"]["key"] for r in sent] == IDS
    assert sent[0]["request"]["systemInstruction"]["parts"][0]["text"] == SYSTEM
    assert sent[0]["request"]["generationConfig"]["maxOutputTokens"] == 300


def test_only_anthropic_and_gemini_backends_batch() -> None:
    assert batches_of(GroqTier("openai/gpt-oss-120b", KEYS["groq"], "http://127.0.0.1:9")) is None
    specs = builtin_specs()
    assert [name for name, spec in specs.items() if spec.capabilities.batch] == ["gemini", "sonnet"]
    declared = parse_tier_tables({"team": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1",
                                           "model": "m", "input": 1, "output": 2}})
    assert not declared["team"].capabilities.batch and declared["team"].batch_factor == 1.0
    assert specs["sonnet"].batch_factor == 0.5
