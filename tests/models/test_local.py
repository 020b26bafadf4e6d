"""The local tier on real llama.cpp with the quickstart GGUF."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from assistant.route.router import KINDS, classify_with_model
from models.base import Cancelled, GenerationRequest, Message, ModelError, ModelUnavailable
from models.local import LocalBackend, LocalModel, LocalOptions, check_gguf

SYSTEM = Message("system", "You are a concise assistant for Python developers. " * 20)


@pytest.fixture(scope="module")
def model(quickstart_gguf: Path) -> LocalModel:
    return LocalModel(quickstart_gguf, LocalOptions(context_tokens=2048))


def ask(question: str, max_tokens: int = 24, **kwargs: object) -> GenerationRequest:
    return GenerationRequest((SYSTEM, Message("user", question)), max_tokens=max_tokens, temperature=0.0, **kwargs)


def test_streams_deltas_that_add_up_to_the_answer(model: LocalModel) -> None:
    deltas: list[str] = []
    result = LocalBackend(model, "smollm2").generate(ask("What is a Python list?"), on_text=deltas.append)
    assert len(deltas) > 1
    assert "".join(deltas) == result.text
    assert result.usage.input_tokens > 100
    assert 0 < result.usage.output_tokens <= 24
    assert result.ttft_ms is not None and result.ttft_ms <= result.latency_ms
    assert result.provider == "local" and result.model == "smollm2"


def test_logprobs_one_per_generated_token(model: LocalModel) -> None:
    result = LocalBackend(model, "smollm2").generate(ask("Name a Python keyword.", logprobs=True))
    assert len(result.token_logprobs) == result.usage.output_tokens
    assert all(lp <= 0.0 for lp in result.token_logprobs)
    assert len(result.top_logprobs) == len(result.token_logprobs)
    # the chosen token comes first in each step's alternatives, with the same log-probability
    pairs = zip(result.top_logprobs, result.token_logprobs, strict=True)
    assert all(step[0][1] == pytest.approx(logprob) for step, logprob in pairs)


def test_a_result_says_where_its_time_went_load_prompt_and_decode(quickstart_gguf: Path) -> None:
    backend = LocalBackend(LocalModel(quickstart_gguf, LocalOptions(context_tokens=2048)), "smollm2")
    assert not backend.loaded
    first = backend.generate(ask("What is a tuple?", max_tokens=16))
    second = backend.generate(ask("What is a set?", max_tokens=16))
    assert backend.loaded
    assert first.timings.load_ms is not None and second.timings.load_ms is None  # the first call loaded it
    assert first.timings.prompt_tokens == first.usage.input_tokens
    assert second.timings.prompt_tokens < second.usage.input_tokens  # the system prompt's state was reused
    load, prompt, decode = first.timings.load_ms, first.timings.prompt_ms, first.timings.decode_ms
    assert prompt is not None and decode is not None and load + prompt + decode == pytest.approx(first.latency_ms)


def test_json_schema_constrains_the_output(model: LocalModel) -> None:
    schema = {"type": "object", "properties": {"kind": {"type": "string", "enum": list(KINDS)}},
              "required": ["kind"]}
    result = LocalBackend(model, "smollm2").generate(ask("where is main defined?", max_tokens=16, json_schema=schema))
    assert json.loads(result.text)["kind"] in KINDS


def test_classifier_gives_a_label_with_its_probability(model: LocalModel) -> None:
    route = classify_with_model("hmm, the thing with the tokens again", LocalBackend(model, "smollm2"))
    assert route.kind in KINDS
    assert route.stage == "classifier"
    assert 0.0 < route.probability <= 1.0


def test_prefix_reuse_gives_the_same_output_as_without_it(model: LocalModel) -> None:
    reuse, fresh = LocalBackend(model, "smollm2", reuse_prefix=True), LocalBackend(model, "smollm2", reuse_prefix=False)
    questions = ["What is a tuple?", "What is a dict?", "What is a tuple?"]
    with_reuse = [reuse.generate(ask(q)).text for q in questions]
    without = [fresh.generate(ask(q)).text for q in questions]
    assert with_reuse == without
    assert with_reuse[0] != with_reuse[1]


def test_a_prompt_longer_than_the_context_is_refused_not_truncated(quickstart_gguf: Path) -> None:
    small = LocalModel(quickstart_gguf, LocalOptions(context_tokens=512))
    backend = LocalBackend(small, "smollm2")
    with pytest.raises(ModelError, match="does not fit"):
        backend.generate(ask("word " * 600))


def test_an_answer_that_would_overflow_is_shortened_and_says_so(quickstart_gguf: Path) -> None:
    small = LocalModel(quickstart_gguf, LocalOptions(context_tokens=512))
    backend = LocalBackend(small, "smollm2")
    prompt_tokens = backend.count_tokens("word " * 300)
    result = backend.generate(ask("word " * 300, max_tokens=400))
    assert prompt_tokens > 250
    assert result.usage.input_tokens + result.usage.output_tokens <= 512
    assert any("context window" in note for note in result.notes)


def test_cancel_stops_the_stream_and_keeps_the_partial_result(model: LocalModel) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def on_text(delta: str) -> None:
        seen.append(delta)
        cancel.set()

    with pytest.raises(Cancelled) as stopped:
        LocalBackend(model, "smollm2").generate(ask("Explain Python generators.", max_tokens=64), on_text, cancel)
    partial = stopped.value.result
    assert partial.finish_reason == "cancelled"
    assert 0 < partial.usage.output_tokens < 64
    assert seen


class CancelDuringPrompt(threading.Event):
    """A cancel flag that the user sets right after the generation first looks at it."""

    def is_set(self) -> bool:
        seen = super().is_set()
        self.set()
        return seen


def test_cancel_while_the_prompt_is_evaluated_stops_before_its_end(model: LocalModel) -> None:
    backend = LocalBackend(model, "smollm2", reuse_prefix=False)
    request = ask("Explain Python generators.", max_tokens=16)
    seen: list[str] = []
    with pytest.raises(Cancelled) as stopped:
        backend.generate(request, seen.append, CancelDuringPrompt())
    partial = stopped.value.result
    full = backend.generate(request)  # the model still answers afterwards, from a clean state
    assert partial.finish_reason == "cancelled" and full.finish_reason in ("stop", "length")
    assert 0 < partial.usage.input_tokens < full.usage.input_tokens  # stopped inside the prompt
    assert partial.usage.output_tokens == 0 and not seen
    assert full.text == backend.generate(request).text


def test_missing_and_corrupt_files_are_reported_not_crashed(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="not found"):
        check_gguf(tmp_path / "nope.gguf")
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"not a model at all")
    with pytest.raises(ModelUnavailable, match="corrupt"):
        LocalBackend(LocalModel(corrupt), "x").generate(ask("hi"))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        LocalBackend(LocalModel(truncated), "x").generate(ask("hi"))
