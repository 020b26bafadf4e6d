"""The cloud tiers, through the real SDKs, against the loopback emulators of each provider's API."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from models import pricing
from models.base import (
    Backend,
    Cancelled,
    GenerationRequest,
    GenerationResult,
    Message,
    ModelError,
    ModelUnavailable,
    Usage,
)
from models.cloud import AnthropicTier, GeminiTier, GroqTier
from models.retry import call_with_retry
from models.tier_registry import build_backend, builtin_specs
from tests.emulators import fixtures
from tests.emulators.anthropic_api import AnthropicEmulator
from tests.emulators.gemini_api import GeminiEmulator
from tests.emulators.groq_api import GroqEmulator
from tests.emulators.server import Drop, Emulator, Fail, RecordedRequest, Reply, StreamFail

KEYS = fixtures.KEYS
anthropic_emulator = fixtures.anthropic_emulator
gemini_emulator = fixtures.gemini_emulator
cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only

pytestmark = pytest.mark.usefixtures("loopback_only")


def _bearer(request: RecordedRequest) -> str | None:
    return request.headers.get("authorization", "").removeprefix("Bearer ") or None


@dataclass(frozen=True)
class Case:
    """One provider: its emulator, its tier, and what its wire format looks like."""

    name: str
    emulator: type[Emulator]
    tier: type[AnthropicTier | GeminiTier | GroqTier]
    model: str
    sent_key: Callable[[RecordedRequest], str | None]
    rejected: str
    """The error message for a wrong API key."""
    overloaded: int
    native_usage: dict[str, Any]
    """Usage as the provider reports it (cached tokens: 2000; 42 tokens generated)."""
    usage: Usage
    """The same usage, normalized."""
    key_env: str

    def __str__(self) -> str:
        return self.name


CASES = [
    Case(
        "anthropic", AnthropicEmulator, AnthropicTier, "claude-sonnet-5-5", _bearer,
        "Anthropic rejected the API key (401)", 529,
        {"input_tokens": 30, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 500,
         "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 500}, "output_tokens": 42},
        Usage(input_tokens=30, output_tokens=42, cache_read_tokens=2000, cache_write_1h_tokens=500),
        "ANTHROPIC_API_KEY",
    ),
    Case(
        "gemini", GeminiEmulator, GeminiTier, "gemini-3.8-flash", lambda r: r.headers.get("x-goog-api-key"),
        "Gemini rejected the API key (400)", 503,
        {"promptTokenCount": 2530, "cachedContentTokenCount": 2000, "candidatesTokenCount": 40,
         "thoughtsTokenCount": 2},
        Usage(input_tokens=530, output_tokens=42, cache_read_tokens=2000, thinking_tokens=2),
        "GEMINI_API_KEY",
    ),
    Case(
        "groq", GroqEmulator, GroqTier, "openai/gpt-oss-120b", _bearer,
        "Groq rejected the API key (401)", 503,
        {"prompt_tokens": 2530, "prompt_tokens_details": {"cached_tokens": 2000}, "completion_tokens": 42,
         "total_tokens": 2572},
        Usage(input_tokens=530, output_tokens=42, cache_read_tokens=2000),
        "GROQ_API_KEY",
    ),
]

SYSTEM = "You answer questions about a Python repository. Cite files as path:line."
REQUEST = GenerationRequest((Message("system", SYSTEM), Message("user", "Where is the router?")), max_tokens=64)


@pytest.fixture(params=CASES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def emulator(case: Case) -> Iterator[Emulator]:
    with case.emulator(api_key=KEYS[case.name]) as running:
        yield running


def make_tier(case: Case, emulator: Emulator, key: str | None = None) -> AnthropicTier | GeminiTier | GroqTier:
    return case.tier(case.model, key or KEYS[case.name], emulator.base_url, 10)


class Recorder:
    """An injected sleep and on_attempt that remember what they were asked."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.attempts: list[tuple[int, object]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_attempt(self, attempt: int, outcome: object) -> None:
        self.attempts.append((attempt, outcome))


# -- streaming and usage ------------------------------------------------------------------------


def test_tiers_are_backends(case: Case, emulator: Emulator) -> None:
    tier = make_tier(case, emulator)
    assert isinstance(tier, Backend)
    assert (tier.provider, tier.model) == (case.name, case.model)
    assert tier.count_tokens("x" * 9) == 3
    tier.close()


def test_deltas_arrive_in_order(case: Case, emulator: Emulator) -> None:
    emulator.script(Reply(chunks=("The router ", "lives in ", "assistant/router.py", ":12.")))
    deltas: list[str] = []
    result = make_tier(case, emulator).generate(REQUEST, on_text=deltas.append)
    assert deltas == ["The router ", "lives in ", "assistant/router.py", ":12."]
    assert result.text == "The router lives in assistant/router.py:12."
    assert (result.provider, result.model, result.finish_reason) == (case.name, case.model, "stop")
    assert result.ttft_ms is not None
    assert emulator.errors == []


def test_usage_is_normalized(case: Case, emulator: Emulator) -> None:
    emulator.script(Reply("Cached answer.", usage=case.native_usage))
    result = make_tier(case, emulator).generate(REQUEST)
    assert result.usage == case.usage
    assert result.notes == ()


def test_length_finish_reason(case: Case, emulator: Emulator) -> None:
    emulator.script(Reply("Truncated", finish="length"))
    assert make_tier(case, emulator).generate(REQUEST).finish_reason == "length"


@pytest.mark.parametrize("name", ["gemini", "groq"])
def test_implicit_prefix_cache_is_read_on_repeat(name: str) -> None:
    case = next(c for c in CASES if c.name == name)
    conversation = GenerationRequest((
        Message("system", "s" * 4000), Message("user", "u" * 4000), Message("assistant", "a" * 400),
        Message("user", "And the tests?"),
    ))
    with case.emulator(api_key=KEYS[name], min_cache_tokens=1024) as emulator:
        tier = make_tier(case, emulator)
        first = tier.generate(conversation)
        second = tier.generate(conversation)
    assert first.usage.cache_read_tokens == 0
    assert first.usage.input_tokens == 1000 + 1000 + 100 + 4
    assert second.usage.cache_read_tokens == 2100
    assert second.usage.input_tokens == 4
    assert second.usage.total_input_tokens == first.usage.total_input_tokens


def test_anthropic_cache_write_then_read(anthropic_emulator: AnthropicEmulator) -> None:
    tier = AnthropicTier("claude-sonnet-4-6", KEYS["anthropic"], anthropic_emulator.base_url)
    request = GenerationRequest((Message("system", "r" * 8000), Message("user", "What does scan.py do?")))
    first = tier.generate(request)
    second = tier.generate(request)
    assert first.usage == Usage(input_tokens=6, output_tokens=6, cache_write_5m_tokens=2000)
    assert second.usage == Usage(input_tokens=6, output_tokens=6, cache_read_tokens=2000)
    hour = GenerationRequest((Message("system", "h" * 8000), Message("user", "Again?")), cache_ttl="1h")
    assert tier.generate(hour).usage.cache_write_1h_tokens == 2000
    assert pricing.cost_usd(tier.model, second.usage) < pricing.cost_usd(tier.model, first.usage)


def _cache_controls(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = list(body.get("system") or [])
    for message in body["messages"]:
        blocks.extend(message["content"])
    return [b["cache_control"] for b in blocks if "cache_control" in b]


def test_cache_control_only_above_the_minimum_length(anthropic_emulator: AnthropicEmulator) -> None:
    tier = AnthropicTier("claude-sonnet-4-6", KEYS["anthropic"], anthropic_emulator.base_url)
    assert tier.min_cache_tokens == 1024
    short = GenerationRequest((Message("system", "s" * 4000), Message("user", "q")))  # 1000 tokens
    long = GenerationRequest((Message("system", "s" * 4096), Message("user", "q")), cache_ttl="1h")  # 1024
    no_prefix = GenerationRequest(long.messages, stable_prefix=0)
    two = GenerationRequest((Message("system", "s" * 3000), Message("user", "u" * 3000), Message("user", "q")),
                            stable_prefix=2)
    for request in (short, long, no_prefix, two):
        tier.generate(request)
    bodies = anthropic_emulator.bodies()
    assert _cache_controls(bodies[0]) == []
    assert bodies[1]["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert _cache_controls(bodies[1]) == [{"type": "ephemeral", "ttl": "1h"}]
    assert _cache_controls(bodies[2]) == []
    assert "cache_control" not in bodies[3]["system"][0]
    assert bodies[3]["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert "cache_control" not in bodies[3]["messages"][1]["content"][0]


def test_minimum_cache_length_comes_from_the_price_list(anthropic_emulator: AnthropicEmulator) -> None:
    url = anthropic_emulator.base_url
    listed = pricing.price("claude-sonnet-5-5").min_cache_tokens
    assert AnthropicTier("claude-sonnet-5-5", "k", url).min_cache_tokens == listed == 512
    assert AnthropicTier("claude-haiku-4-5", "k", url).min_cache_tokens == 4096
    assert AnthropicTier("claude-unlisted", "k", url).min_cache_tokens == 1024
    assert AnthropicTier("claude-unlisted", "k", url, min_cache_tokens=2048).min_cache_tokens == 2048


def test_thinking_is_billed_but_not_streamed(case: Case, emulator: Emulator) -> None:
    emulator.script(Reply("Short answer.", thinking="First I look at the imports, then at the call sites."))
    deltas: list[str] = []
    result = make_tier(case, emulator).generate(REQUEST, on_text=deltas.append)
    assert "".join(deltas) == result.text == "Short answer."
    assert result.usage.output_tokens == 4 + 13
    assert result.usage.thinking_tokens == 13  # reported apart (Gemini, Groq), or the output the text leaves


def test_gemini_request_shape(gemini_emulator: GeminiEmulator) -> None:
    conversation = GenerationRequest((
        Message("system", SYSTEM), Message("user", "Hi"), Message("assistant", "Hello"), Message("user", "Router?"),
    ), max_tokens=99, temperature=0.3)
    GeminiTier("gemini-3.8-flash", KEYS["gemini"], gemini_emulator.base_url).generate(conversation)
    GeminiTier("gemini-2.5-flash", KEYS["gemini"], gemini_emulator.base_url).generate(conversation)
    first, second = gemini_emulator.requests
    assert first.path == "/v1beta/models/gemini-3.8-flash:streamGenerateContent"
    assert first.query == {"alt": "sse"}
    assert first.body["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    assert [(c["role"], c["parts"][0]["text"]) for c in first.body["contents"]] == [
        ("user", "Hi"), ("model", "Hello"), ("user", "Router?"),
    ]
    assert first.body["generationConfig"]["maxOutputTokens"] == 99
    assert "temperature" not in first.body["generationConfig"]
    assert second.body["generationConfig"]["temperature"] == 0.3


# -- errors and retries -------------------------------------------------------------------------


def test_rate_limit_retry_after_is_honoured(case: Case, emulator: Emulator) -> None:
    emulator.script(Fail(429, retry_after=2), Reply("After the wait."))
    recorder = Recorder()
    tier = make_tier(case, emulator)
    result = call_with_retry(lambda: tier.generate(REQUEST), sleep=recorder.sleep, on_attempt=recorder.on_attempt)
    assert result.text == "After the wait."
    assert recorder.sleeps == [2.0]
    (n1, error), (n2, answer) = recorder.attempts
    assert (n1, n2) == (1, 2)
    assert isinstance(error, ModelError)
    assert (error.status, error.transient, error.retry_after) == (429, True, 2.0)
    assert str(error) == f"{case.rejected.split()[0]} rate limit (429), retry after 2s"
    assert answer is result
    assert len(emulator.requests) == 2


def test_gemini_honours_a_retry_after_header_too(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.script(Fail(429, headers={"retry-after": "3"}))
    with pytest.raises(ModelError) as caught:
        GeminiTier("gemini-3.8-flash", KEYS["gemini"], gemini_emulator.base_url).generate(REQUEST)
    assert caught.value.retry_after == 3.0
    assert "retryDelay" not in str(gemini_emulator.requests[0].body)


def test_overload_and_server_error_are_retried(case: Case, emulator: Emulator) -> None:
    emulator.script(Fail(case.overloaded), Fail(500), Reply("Third time lucky."))
    recorder = Recorder()
    tier = make_tier(case, emulator)
    result = call_with_retry(
        lambda: tier.generate(REQUEST), sleep=recorder.sleep, on_attempt=recorder.on_attempt, rng=lambda: 1.0,
    )
    assert result.text == "Third time lucky."
    assert recorder.sleeps == [0.5, 1.0]
    statuses = [o.status for _, o in recorder.attempts if isinstance(o, ModelError)]
    assert statuses == [case.overloaded, 500]
    assert [n for n, _ in recorder.attempts] == [1, 2, 3]
    assert len(emulator.requests) == 3


def test_wrong_key_fails_at_once(case: Case, emulator: Emulator) -> None:
    wrong = f"{KEYS[case.name]}-revoked"
    recorder = Recorder()
    tier = make_tier(case, emulator, key=wrong)
    with pytest.raises(ModelError) as caught:
        call_with_retry(lambda: tier.generate(REQUEST), sleep=recorder.sleep, on_attempt=recorder.on_attempt)
    assert str(caught.value) == case.rejected
    assert not caught.value.transient
    assert recorder.sleeps == []
    assert len(recorder.attempts) == 1
    assert len(emulator.requests) == 1
    assert wrong not in str(caught.value)


@pytest.mark.parametrize("status", [400, 403, 404, 413, 422])
def test_client_errors_are_not_transient(case: Case, emulator: Emulator, status: int) -> None:
    emulator.script(Fail(status, message="max_tokens: too large"))
    with pytest.raises(ModelError) as caught:
        make_tier(case, emulator).generate(REQUEST)
    assert caught.value.status == status
    assert not caught.value.transient
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith(f"({status}): max_tokens: too large")


def test_key_is_sent_but_never_in_an_error(case: Case, emulator: Emulator) -> None:
    key = KEYS[case.name]
    emulator.script(Fail(400, message=f"invalid request from key {key}"))
    with pytest.raises(ModelError) as caught:
        make_tier(case, emulator).generate(REQUEST)
    assert case.sent_key(emulator.requests[0]) == key
    assert key not in str(caught.value)
    assert "***" in str(caught.value)


def test_stream_dropped_midway_is_transient_with_partial_usage(case: Case, emulator: Emulator) -> None:
    emulator.script(Drop("The router lives in assistant/router.py and decides", after=3))
    with pytest.raises(ModelError) as caught:
        make_tier(case, emulator).generate(REQUEST)
    error = caught.value
    assert error.transient
    assert error.status is None
    assert error.partial_text == "The router lives "
    assert "stream dropped after 17 characters" in str(error)
    assert error.partial_usage.output_tokens >= 5
    prompt_tokens = sum(-(-len(m.content) // 4) for m in REQUEST.messages)
    assert error.partial_usage.total_input_tokens == prompt_tokens


def test_stream_that_stops_short_is_a_dropped_stream(case: Case, emulator: Emulator) -> None:
    emulator.script(Drop("Half an answer and then nothing", after=2, clean=True))
    with pytest.raises(ModelError) as caught:
        make_tier(case, emulator).generate(REQUEST)
    assert caught.value.transient
    assert caught.value.partial_text == "Half an "
    assert "stream dropped after 8 characters (stream ended " in str(caught.value)


def test_a_dropped_stream_is_retried_only_before_any_text(case: Case, emulator: Emulator) -> None:
    emulator.script(Drop(after=0), Reply("Complete answer."), Drop(after=2))
    recorder = Recorder()
    tier = make_tier(case, emulator)
    result = call_with_retry(lambda: tier.generate(REQUEST), sleep=recorder.sleep, on_attempt=recorder.on_attempt)
    assert result.text == "Complete answer."
    first = recorder.attempts[0][1]
    assert isinstance(first, ModelError) and first.transient and not first.partial_text
    assert isinstance(recorder.attempts[1][1], GenerationResult)
    with pytest.raises(ModelError) as caught:  # its text reached the caller: another attempt would repeat it
        call_with_retry(lambda: tier.generate(REQUEST), sleep=recorder.sleep, on_attempt=recorder.on_attempt)
    assert caught.value.partial_text and caught.value.partial_usage.output_tokens > 0
    assert len(recorder.attempts) == 3 and emulator.pending == 0


def test_error_event_inside_the_stream(case: Case, emulator: Emulator) -> None:
    emulator.script(StreamFail(500, "Partial then failure.", after=2))
    with pytest.raises(ModelError) as caught:
        make_tier(case, emulator).generate(REQUEST)
    assert caught.value.transient
    assert caught.value.partial_text == "Partial then "


def test_anthropic_overloaded_event_mid_stream(anthropic_emulator: AnthropicEmulator) -> None:
    anthropic_emulator.script(StreamFail(529, after=1))
    tier = AnthropicTier("claude-sonnet-5-5", KEYS["anthropic"], anthropic_emulator.base_url)
    with pytest.raises(ModelError) as caught:
        tier.generate(REQUEST)
    assert (caught.value.status, str(caught.value)) == (529, "Anthropic overloaded (529)")


def test_unreachable_server_is_transient(case: Case) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tier = case.tier(case.model, KEYS[case.name], f"http://127.0.0.1:{port}", 5)
    with pytest.raises(ModelError) as caught:
        tier.generate(REQUEST)
    assert caught.value.transient
    assert str(caught.value).startswith(f"{case.rejected.split()[0]} unreachable")


# -- keys, cancellation, factory ----------------------------------------------------------------


def test_missing_key_makes_the_tier_unavailable(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ModelUnavailable) as caught:
        case.tier(case.model)
    label = case.rejected.split()[0]
    assert str(caught.value) == f"{label}: no API key; set {case.key_env}"
    assert caught.value.provider == case.name


def test_key_from_the_environment(case: Case, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(case.key_env, KEYS[case.name])
    tier = case.tier(case.model, None, emulator.base_url)
    assert tier.generate(REQUEST).text == "Hello from the emulator."
    assert case.sent_key(emulator.requests[0]) == KEYS[case.name]


def test_cancel_stops_reading_the_stream(case: Case, emulator: Emulator) -> None:
    emulator.script(Reply(chunks=("First ", "second ", "third."), pause_after=1))
    cancel = threading.Event()
    deltas: list[str] = []

    def on_text(delta: str) -> None:
        deltas.append(delta)
        cancel.set()

    with pytest.raises(Cancelled) as caught:
        make_tier(case, emulator).generate(REQUEST, on_text=on_text, cancel=cancel)
    result = caught.value.result
    assert deltas == ["First "]
    assert (result.text, result.finish_reason) == ("First ", "cancelled")
    assert result.usage.output_tokens >= 1


def test_cancel_before_the_call_sends_nothing(case: Case, emulator: Emulator) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled) as caught:
        make_tier(case, emulator).generate(REQUEST, cancel=cancel)
    assert caught.value.result.text == ""
    assert emulator.requests == []


def test_builtin_tiers_use_the_price_list_defaults(cloud_emulators: fixtures.CloudEmulators) -> None:
    specs = builtin_specs()
    for tier_name, provider in (("groq", "groq"), ("gemini", "gemini"), ("sonnet", "anthropic")):
        backend = build_backend(specs[tier_name])
        assert backend.model == pricing.default_model(tier_name)
        assert backend.provider == provider
        assert backend.generate(REQUEST).text == "Hello from the emulator."
    assert len(cloud_emulators.anthropic.requests) == 1
    assert cloud_emulators.gemini.requests[0].path.endswith(f"{pricing.default_model('gemini')}:streamGenerateContent")
    with pytest.raises(ValueError, match=r"needs BuildContext\.manager"):
        build_backend(specs["local"])

