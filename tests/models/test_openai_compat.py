"""The openai-compatible tier through the official `openai` SDK: against llama.cpp's own server serving
the quick-start GGUF, and against the loopback Groq emulator (OpenAI's wire format) for failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.cascade.confidence import judge, logprob_score
from assistant.route.router import KINDS, classify_with_model
from models.base import (
    Backend,
    Cancelled,
    Capabilities,
    GenerationRequest,
    Message,
    ModelError,
    Usage,
    capabilities_of,
)
from models.cloud.openai_compat import TOP_LOGPROBS, OpenAICompatTier
from models.local import LocalBackend, LocalModel, LocalOptions
from models.retry import call_with_retry
from tests.emulators import fixtures
from tests.emulators.groq_api import GroqEmulator
from tests.emulators.server import Drop, Fail, Garbage, Reply, StreamFail
from tests.models import llama_server as llama_server_module
from tests.models.llama_server import LlamaServer, free_port
from tests.models.test_cloud_tiers import Recorder

llama_server = llama_server_module.llama_server
loopback_only = fixtures.loopback_only
pytestmark = pytest.mark.usefixtures("loopback_only")

SERVED = Capabilities(free=True, logprobs=True, retries=True, context_window=2048, prompt_caching=False)
"""A served local model's capabilities."""
KEY = "sk-compat-7f3e9a1b2c"


def ask(question: str, **options: object) -> GenerationRequest:
    system = Message("system", "You are a helpful assistant. Answer in one short sentence.")
    return GenerationRequest((system, Message("user", question)), **options)  # type: ignore[arg-type]


@pytest.fixture
def served(llama_server: LlamaServer) -> Iterator[OpenAICompatTier]:
    tier = OpenAICompatTier(llama_server.model_id, llama_server.base_url, name="served", capabilities=SERVED)
    yield tier
    tier.close()


# -- llama.cpp's server -----------------------------------------------------------------------------


def test_the_server_lists_its_model(served: OpenAICompatTier, llama_server: LlamaServer) -> None:
    assert isinstance(served, Backend) and capabilities_of(served) == SERVED
    assert served.list_models() == [llama_server.model_id]
    assert served.provider == "openai-compatible" and served.endpoint == llama_server.base_url


def test_answers_stream_and_join_to_the_text(served: OpenAICompatTier) -> None:
    deltas: list[str] = []
    result = served.generate(ask("What is a Python list?", max_tokens=24), on_text=deltas.append)
    assert len(deltas) > 1 and "".join(deltas) == result.text and result.text.strip()
    assert result.finish_reason in ("stop", "length") and result.ttft_ms is not None
    assert (result.provider, result.model) == ("openai-compatible", served.model)


def test_usage_from_a_server_that_reports_none_in_streams(served: OpenAICompatTier) -> None:
    result = served.generate(ask("Name a Python keyword.", max_tokens=12, logprobs=True))
    assert result.usage.output_tokens == len(result.token_logprobs) > 0  # counted, not estimated
    assert result.usage.input_tokens > 0 and result.usage.cache_read_tokens == 0
    assert result.notes == ()  # a free tier's estimate costs nothing: no note
    priced = OpenAICompatTier(served.model, served.endpoint, name="priced", capabilities=Capabilities())
    assert priced.generate(ask("Name a Python keyword.", max_tokens=8)).notes == (
        f"priced at {served.endpoint} reported no token usage; the counts are estimates",
    )


def test_logprobs_have_the_local_tiers_shape(served: OpenAICompatTier) -> None:
    result = served.generate(ask("Name a Python keyword.", max_tokens=16, logprobs=True))
    assert len(result.token_logprobs) == len(result.top_logprobs) > 0
    for chosen, alternatives in zip(result.token_logprobs, result.top_logprobs, strict=True):
        assert chosen <= 0 and alternatives[0][1] == chosen
        assert 1 < len(alternatives) <= TOP_LOGPROBS + 1
        others = [logprob for _, logprob in alternatives[1:]]
        assert others == sorted(others, reverse=True)
    assert "".join(alternatives[0][0] for alternatives in result.top_logprobs) == result.text  # token by token
    assert served.generate(ask("Name a Python keyword.", max_tokens=8)).token_logprobs == ()


def test_the_served_model_is_judged_like_the_in_process_one(served: OpenAICompatTier, quickstart_gguf: Path) -> None:
    request = ask("What does the Python keyword `def` do?", max_tokens=32, temperature=0.0, logprobs=True)
    remote = served.generate(request)
    local = LocalBackend(LocalModel(quickstart_gguf, LocalOptions(context_tokens=2048, threads=1)), "smollm2")
    here = local.generate(request)
    assert remote.top_logprobs[0][0][0] == here.top_logprobs[0][0][0]  # the same first token, greedily
    assert remote.token_logprobs[0] == pytest.approx(here.token_logprobs[0], abs=0.05)
    score = logprob_score(remote.token_logprobs)
    assert score is not None and 0 < score <= 1
    assert judge(remote, threshold=1.0).reason == f"low token confidence ({score:.2f} < 1.00)"
    assert "token confidence" not in judge(remote, threshold=0.0).reason


def test_the_classifier_reads_its_label_probability_through_the_server(served: OpenAICompatTier) -> None:
    route = classify_with_model("hmm, the thing with the tokens again", served)
    assert route.kind in KINDS and route.stage == "classifier"
    assert 0 < route.probability <= 1  # read from the top log-probabilities at the label's first token


def test_cancel_keeps_the_partial_answer(served: OpenAICompatTier) -> None:
    cancel = threading.Event()
    with pytest.raises(Cancelled) as caught:
        served.generate(ask("Write a long story about a list.", max_tokens=64), lambda _: cancel.set(), cancel)
    assert caught.value.result.finish_reason == "cancelled" and caught.value.result.text


def test_a_server_that_is_down_fails_in_one_line_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    tier = OpenAICompatTier("smollm2", url, KEY, name="served", timeout=5)
    recorder = Recorder()
    with pytest.raises(ModelError) as caught:
        call_with_retry(lambda: tier.generate(ask("hi")), on_attempt=recorder.on_attempt, sleep=recorder.sleep)
    message = str(caught.value)
    assert message == (f"served at {url} refused the connection: nothing listens there; is the server running "
                       "and the port right?") and KEY not in message
    assert not caught.value.transient and caught.value.partial_usage == Usage()  # the cascade moves on
    assert len(recorder.attempts) == 1  # a refusal is not retried: nothing listens there seconds later either
    with pytest.raises(ModelError, match=f"^served at {url} refused the connection"):
        tier.list_models()


# -- the loopback emulator: OpenAI's wire format and its failures -------------------------------------


@pytest.fixture
def emulator() -> Iterator[GroqEmulator]:
    with GroqEmulator(api_key=KEY) as running:  # Groq's chat completions are OpenAI's, under /openai/v1
        yield running


def tier_on(
    emulator: GroqEmulator, key: str | None = KEY, capabilities: Capabilities | None = None
) -> OpenAICompatTier:
    return OpenAICompatTier("gateway-model", f"{emulator.url}/openai/v1", key, name="gateway", timeout=10,
                            capabilities=capabilities)


def test_cached_prompt_tokens_are_normalized(emulator: GroqEmulator) -> None:
    emulator.script(Reply("Cached.", usage={"prompt_tokens": 2530, "prompt_tokens_details": {"cached_tokens": 2000},
                                            "completion_tokens": 42}))
    result = tier_on(emulator).generate(ask("Where is the router?"))
    assert result.usage == Usage(input_tokens=530, output_tokens=42, cache_read_tokens=2000) and result.notes == ()
    body = emulator.bodies()[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 512 and "logprobs" not in body  # a priced gateway is not asked for them


def test_logprobs_are_asked_for_only_where_the_tier_gives_them(emulator: GroqEmulator) -> None:
    tier_on(emulator, capabilities=SERVED).generate(ask("hi", logprobs=True))
    tier_on(emulator, capabilities=SERVED).generate(ask("hi"))
    asked, plain = [r.body for r in emulator.requests if r.method == "POST"]  # a free tier also lists models
    assert (asked["logprobs"], asked["top_logprobs"]) == (True, TOP_LOGPROBS) and "logprobs" not in plain


def test_a_rate_limit_then_success_honours_retry_after(emulator: GroqEmulator) -> None:
    emulator.script(Fail(429, retry_after=2), Reply("Answered after the limit."))
    recorder = Recorder()
    result = call_with_retry(lambda: tier_on(emulator).generate(ask("hi")), on_attempt=recorder.on_attempt,
                             sleep=recorder.sleep)
    assert result.text == "Answered after the limit." and recorder.sleeps == [2.0]
    first = recorder.attempts[0][1]
    assert isinstance(first, ModelError) and first.status == 429 and first.transient
    assert str(first) == f"gateway at {emulator.url}/openai/v1 rate limit (429), retry after 2s"


def test_server_errors_are_retried_then_reported_in_one_line(emulator: GroqEmulator) -> None:
    emulator.script(Fail(500), Reply("Recovered."))
    recorder = Recorder()
    assert call_with_retry(lambda: tier_on(emulator).generate(ask("hi")), sleep=recorder.sleep,
                           rng=lambda: 0.5).text == "Recovered."
    assert recorder.sleeps == [0.25]  # full jitter, half of the first ceiling
    emulator.script(*[Fail(500)] * 4)
    with pytest.raises(ModelError) as caught:
        call_with_retry(lambda: tier_on(emulator).generate(ask("hi")), sleep=recorder.sleep)
    assert str(caught.value) == f"gateway at {emulator.url}/openai/v1 server error (500)"
    assert emulator.pending == 0  # four attempts: the first and three retries


def test_a_wrong_key_fails_at_once_without_the_key(emulator: GroqEmulator) -> None:
    wrong = "sk-wrong-4d5e6f7a8b"
    with pytest.raises(ModelError) as caught:
        tier_on(emulator, key=wrong).generate(ask("hi"))
    assert not caught.value.transient and caught.value.status == 401
    assert str(caught.value) == f"gateway at {emulator.url}/openai/v1 rejected the API key (401)"
    assert emulator.requests[0].headers["authorization"] == f"Bearer {wrong}"


def test_no_key_sends_none_and_never_the_openai_variables(
    emulator: GroqEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-users-real-openai-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-users-own")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Team-Secret: s3cr3t")
    with pytest.raises(ModelError, match="rejected the API key"):
        tier_on(emulator, key=None).generate(ask("hi"))
    headers = emulator.requests[0].headers
    assert headers["authorization"] == "Bearer no-key"
    assert "openai-organization" not in headers and "x-team-secret" not in headers


def test_broken_streams_are_transient_with_what_they_delivered(emulator: GroqEmulator) -> None:
    emulator.script(Drop(after=3), StreamFail(status=503, after=2))
    with pytest.raises(ModelError) as dropped:
        tier_on(emulator).generate(ask("hi"))
    assert dropped.value.transient and dropped.value.partial_text and dropped.value.partial_usage.output_tokens > 0
    with pytest.raises(ModelError) as failed:
        tier_on(emulator).generate(ask("hi"))
    assert failed.value.transient and str(failed.value).startswith(f"gateway at {emulator.url}/openai/v1 failed mid")


@pytest.mark.parametrize(("raw", "after", "what"), [
    (b"data: \xff\xfe\xfd not utf-8\n\n", 0, "the body is not UTF-8"),
    (b"data: \xff\xfe\xfd not utf-8\n\n", 2, "the body is not UTF-8"),
    (b"data: {\"choices\": [{\"delta\n\n", 2, "a data line is not JSON"),
    (b"data: 42\n\n", 2, "a chunk without choices"),
])
def test_a_malformed_body_is_one_final_line_with_what_it_delivered(
        emulator: GroqEmulator, raw: bytes, after: int, what: str) -> None:
    emulator.script(Garbage(raw, "Two words then garbage.", after=after))
    with pytest.raises(ModelError) as caught:
        tier_on(emulator).generate(ask("hi"))
    assert str(caught.value) == (f"gateway at {emulator.url}/openai/v1 sent a malformed response ({what}); "
                                 "is base_url an OpenAI-compatible server?")
    assert not caught.value.transient  # the same server would send the same again
    assert caught.value.partial_text == "Two words "[: 10 if after else 0]
    assert caught.value.partial_usage.input_tokens > 0  # the server had the request: the ledger counts it


def test_the_model_is_the_one_the_server_says_answered(emulator: GroqEmulator) -> None:
    result = tier_on(emulator).generate(ask("hi"))
    assert result.model == "gateway-model"  # the emulator reports the model it was asked for


def test_a_json_schema_is_sent_as_openai_defines_it(emulator: GroqEmulator) -> None:
    schema = {"type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"]}
    tier_on(emulator).generate(ask("hi", json_schema=schema))
    format_ = emulator.bodies()[0]["response_format"]
    assert format_ == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
