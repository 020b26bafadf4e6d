"""The local tier: a GGUF model on llama-cpp-python, streaming, with logprobs and prefix reuse."""

from __future__ import annotations

import codecs
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from models.base import (
    LOCAL_CAPABILITIES,
    CallTimings,
    Cancelled,
    Capabilities,
    GenerationRequest,
    GenerationResult,
    ModelError,
    ModelUnavailable,
    TextCallback,
    TierHealth,
    Usage,
)
from models.threads import default_threads

if TYPE_CHECKING:
    import llama_cpp

PROVIDER = "local"
_GGUF_MAGIC = b"GGUF"
_MAX_PREFIX_STATES = 4
_TOP_LOGPROBS = 20
_REPEAT_PENALTY = 1.1
"""llama.cpp's own default; small models loop without it."""
_PROMPT_CHUNK = 64
"""Prompt tokens per llama.cpp call: one call cannot be stopped, so a cancel is seen between chunks.
The size is fixed (chunks end at multiples of it) so an answer never depends on timing or on reuse."""


@dataclass(frozen=True)
class LocalOptions:
    """How to load a local model."""

    context_tokens: int = 4096
    gpu_layers: int = -1
    """Layers to offload when llama.cpp was built with a GPU backend (-1: all)."""
    threads: int | None = None
    """CPU threads; default: the physical cores other work leaves free (models/threads.py)."""


def gpu_offload_available() -> bool:
    """True when llama.cpp was built with CUDA, Metal or Vulkan."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def check_gguf(path: Path) -> None:
    """Raise ModelUnavailable unless `path` is a readable GGUF file."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise ModelUnavailable(f"model file not found: {path}", provider=PROVIDER) from None
    except OSError as exc:
        raise ModelUnavailable(f"cannot read model file {path}: {exc.strerror}", provider=PROVIDER) from None
    if magic != _GGUF_MAGIC:
        raise ModelUnavailable(f"model file {path} is corrupt (not a GGUF file)", provider=PROVIDER)


class LocalModel:
    """One loaded GGUF model, shared by every role that uses the same file.

    Loading is lazy and happens once; generations are serialized by a lock because a llama.cpp
    context holds one sequence.
    """

    def __init__(self, path: Path, options: LocalOptions | None = None) -> None:
        self.path = path
        self.options = options or LocalOptions()
        self.lock = threading.RLock()
        self._llm: llama_cpp.Llama | None = None
        self._prefix_states: OrderedDict[tuple[int, ...], llama_cpp.LlamaState] = OrderedDict()
        self._formatter: Callable[[list[dict[str, str]]], tuple[str, list[str]]] | None = None
        self._prefix_tokens: dict[tuple[tuple[str, str], ...], list[int]] = {}
        self.backend_name = "CPU"

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it loads on first use)."""
        return self._llm is not None

    @property
    def llm(self) -> llama_cpp.Llama:
        """The llama.cpp model, loaded on first use."""
        if self._llm is None:
            with self.lock:
                if self._llm is None:
                    self._llm = self._load()
        return self._llm

    def _load(self) -> llama_cpp.Llama:
        check_gguf(self.path)
        import llama_cpp

        threads = self.options.threads or default_threads()
        layers = self.options.gpu_layers if gpu_offload_available() else 0
        attempts = [layers, layers // 2, 0] if layers else [0]
        if layers < 0:
            attempts = [-1, 16, 0]
        error: Exception | None = None
        for gpu_layers in attempts:
            try:
                llm = llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=self.options.context_tokens,
                    n_threads=threads,
                    n_gpu_layers=gpu_layers,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as exc:  # llama.cpp failed to load (memory, format)
                error = exc
                continue
            self.backend_name = "GPU" if gpu_layers else "CPU"
            return llm
        raise ModelUnavailable(
            f"model file {self.path} could not be loaded ({error}); it may be corrupt", provider=PROVIDER
        )

    def tokenize(self, text: str, special: bool = True) -> list[int]:
        """Tokens of `text` with the model's own tokenizer (no BOS added)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def format_chat(self, messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
        """Apply the model's chat template; returns prompt tokens and stop strings."""
        llm = self.llm
        if self._formatter is None:
            self._formatter = self._make_formatter()
        prompt, stops = self._formatter(messages)
        bos = llm.token_bos()
        bos_text = llm.detokenize([bos]).decode("utf-8", "replace") if bos >= 0 else ""
        add_bos = bool(bos_text) and _adds_bos(llm) and not prompt.startswith(bos_text)
        return llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True), stops

    def prefix_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """Tokens of the template applied to `messages` alone (the stable prefix), cached per content."""
        key = tuple((m["role"], m["content"]) for m in messages)
        if key not in self._prefix_tokens:
            if len(self._prefix_tokens) > 32:
                self._prefix_tokens.clear()
            self._prefix_tokens[key] = self.format_chat(messages)[0]
        return self._prefix_tokens[key]

    def _make_formatter(self) -> Callable[[list[dict[str, str]]], tuple[str, list[str]]]:
        """The chat template, compiled once: the GGUF's own, or ChatML when it has none."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:  # ChatML, what most small instruct models were tuned on

            def chatml(messages: list[dict[str, str]]) -> tuple[str, list[str]]:
                body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
                return body + "<|im_start|>assistant\n", ["<|im_end|>"]

            return chatml
        eos = llm.detokenize([llm.token_eos()]).decode("utf-8", "replace")
        bos = llm.detokenize([llm.token_bos()]).decode("utf-8", "replace") if llm.token_bos() >= 0 else ""
        formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)

        def jinja(messages: list[dict[str, str]]) -> tuple[str, list[str]]:
            formatted = formatter(messages=messages)  # type: ignore[arg-type]
            return formatted.prompt, _as_list(formatted.stop)

        return jinja

    def evaluate(self, tokens: list[int], cancel: threading.Event | None = None) -> bool:
        """Evaluate `tokens` after those the KV cache holds, chunk by chunk; False when `cancel` was
        set before the last chunk (the cache then holds the chunks evaluated so far)."""
        llm = self.llm
        start = position = llm.n_tokens
        end = start + len(tokens)
        while position < end:
            if cancel is not None and cancel.is_set():
                return False
            stop = min(end, (position // _PROMPT_CHUNK + 1) * _PROMPT_CHUNK)
            llm.eval(tokens[position - start : stop - start])
            position = stop
        return True

    def prepare_prefix(self, prefix: list[int], reuse: bool, cancel: threading.Event | None = None) -> bool:
        """Leave exactly `prefix` evaluated in the KV cache, so only the rest of a prompt is evaluated.

        With `reuse`, a prefix already live or saved earlier is not evaluated again; without it the
        prefix is evaluated afresh. Either way every token is evaluated in the same chunk (`evaluate`), so
        reuse changes the time taken and never the output. Returns True on a reuse hit; a `cancel` set
        meanwhile leaves part of the prefix evaluated and nothing saved.
        """
        llm = self.llm
        key = tuple(prefix)
        if reuse and key:
            if list(llm.input_ids[: min(llm.n_tokens, len(key))]) == prefix and llm.n_tokens >= len(key):
                llm.n_tokens = len(key)  # generate() drops the KV cells past the prefix
                return True
            state = self._prefix_states.get(key)
            if state is not None:
                llm.load_state(state)
                self._prefix_states.move_to_end(key)
                return True
        llm.reset()
        if key and self.evaluate(prefix, cancel) and reuse:  # a cancelled prefix is not kept
            self._prefix_states[key] = llm.save_state()
            while len(self._prefix_states) > _MAX_PREFIX_STATES:
                self._prefix_states.popitem(last=False)
        return False


@dataclass
class _Clock:
    """When one generation's phases began and ended: what its `CallTimings` are made of."""

    started: float
    loaded: float
    """When the model was ready (after loading it, when this call did)."""
    load_ms: float | None
    evaluated: int = 0
    """Prompt tokens evaluated, not restored with a saved prefix."""
    first_token: float | None = None

    def timings(self, end: float) -> CallTimings:
        """Load, prompt evaluation (up to the first token, or to `end` without one) and decoding."""
        prompt_end = end if self.first_token is None else self.first_token
        decode_ms = None if self.first_token is None else (end - self.first_token) * 1000
        return CallTimings(load_ms=self.load_ms, prompt_ms=(prompt_end - self.loaded) * 1000,
                           prompt_tokens=self.evaluated, decode_ms=decode_ms)


def _adds_bos(llm: llama_cpp.Llama) -> bool:
    return bool(llm.metadata.get("tokenizer.ggml.add_bos_token", "true") == "true")


def _as_list(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


class LocalBackend:
    """The local tier as a `Backend`: one role (coder, classifier) on a shared LocalModel."""

    provider = PROVIDER

    def __init__(self, model: LocalModel, name: str, reuse_prefix: bool = True) -> None:
        self._model = model
        self.model = name
        self.reuse_prefix = reuse_prefix

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it loads on first use, or with `load`)."""
        return self._model.loaded

    def load(self) -> None:
        """Load the model now, so that its load is timed apart from what first uses it."""
        _ = self._model.llm

    @property
    def context_window(self) -> int:
        """Tokens the loaded context holds, prompt and answer together."""
        return self._model.options.context_tokens

    @property
    def capabilities(self) -> Capabilities:
        """Free, log-probabilities, no retries, no prompt cache; the window is the loaded context's."""
        return replace(LOCAL_CAPABILITIES, context_window=self.context_window)

    def check(self, timeout: float) -> TierHealth:
        """Whether its GGUF is there and readable (loading it is left to the first question)."""
        try:
            check_gguf(self._model.path)
        except ModelUnavailable as exc:
            return TierHealth(False, str(exc))
        return TierHealth(True, f"{self.model}: {self._model.path}")

    def count_tokens(self, text: str) -> int:
        """Exact token count with the model's tokenizer."""
        return len(self._model.tokenize(text, special=False))

    def generate(
        self,
        request: GenerationRequest,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Stream one chat completion; see `Backend.generate`."""
        model = self._model
        with model.lock:
            started, loading = time.perf_counter(), not model.loaded
            llm = model.llm
            loaded = time.perf_counter()
            clock = _Clock(started, loaded, (loaded - started) * 1000 if loading else None)
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            tokens, stops = model.format_chat(messages)
            notes: list[str] = []
            room = self.context_window - len(tokens)
            if room < 16:
                raise ModelError(
                    f"prompt of {len(tokens)} tokens does not fit the local model's {self.context_window}-token"
                    " context; shorten the question or its context",
                    provider=PROVIDER,
                )
            max_tokens = request.max_tokens
            if max_tokens > room:
                max_tokens = room
                notes.append(f"answer limited to {room} tokens by the local context window")
            prefix: list[int] = []
            if request.stable_prefix > 0:
                prefix_tokens = model.prefix_tokens(messages[: request.stable_prefix])
                # keep the chat template's generation prompt out of the reusable prefix
                prefix = tokens[: max(0, _common_prefix(prefix_tokens, tokens) - 1)]
            reused = model.prepare_prefix(prefix, self.reuse_prefix, cancel)
            clock.evaluated = len(tokens) - (len(prefix) if reused else 0)
            if not model.evaluate(tokens[llm.n_tokens : len(tokens) - 1], cancel):  # generate() does the last
                raise Cancelled(self._result("", llm.n_tokens, 0, clock, "cancelled", notes))
            grammar = _grammar(request.json_schema)
            return self._stream(
                llm, tokens, stops, max_tokens, request, grammar, on_text, cancel, clock, notes
            )

    def _stream(
        self,
        llm: llama_cpp.Llama,
        tokens: list[int],
        stops: list[str],
        max_tokens: int,
        request: GenerationRequest,
        grammar: object,
        on_text: TextCallback | None,
        cancel: threading.Event | None,
        clock: _Clock,
        notes: list[str],
    ) -> GenerationResult:
        import llama_cpp
        import numpy as np

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = ""
        emitted = 0
        logprobs: list[float] = []
        top: list[tuple[tuple[str, float], ...]] = []
        ttft: float | None = None
        finish = "length"
        generated = 0
        holdback = max((len(s) for s in stops), default=0)
        n_vocab = llm.n_vocab()
        for token in llm.generate(
            tokens, temp=request.temperature, top_k=40, top_p=0.95, min_p=0.05,
            repeat_penalty=_REPEAT_PENALTY, grammar=grammar,  # type: ignore[arg-type]
        ):
            if clock.first_token is None:
                clock.first_token = time.perf_counter()
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            if llm.token_eos() == token or _is_eog(llm, token):
                finish = "stop"
                break
            generated += 1
            if request.logprobs:
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
                peak = float(logits.max())
                norm = peak + math.log(float(np.exp(logits - peak).sum()))
                logprobs.append(float(logits[token]) - norm)
                best = np.argpartition(logits, -_TOP_LOGPROBS)[-_TOP_LOGPROBS:]
                ranked = [token, *(int(i) for i in best[np.argsort(-logits[best])] if int(i) != token)]
                top.append(tuple(
                    (llm.detokenize([i]).decode("utf-8", "replace"), float(logits[i]) - norm) for i in ranked
                ))
            text += decoder.decode(llm.detokenize([token]))
            stop_at = _find_stop(text, stops)
            if stop_at is not None:
                text = text[:stop_at]
                finish = "stop"
                break
            safe = len(text) - holdback
            if safe > emitted:
                if ttft is None:
                    ttft = (time.perf_counter() - clock.started) * 1000
                if on_text:
                    on_text(text[emitted:safe])
                emitted = safe
            if generated >= max_tokens:
                break
        text += decoder.decode(b"", final=True)
        if len(text) > emitted:
            if ttft is None:
                ttft = (time.perf_counter() - clock.started) * 1000
            if on_text and finish != "cancelled":
                on_text(text[emitted:])
        result = self._result(text, len(tokens), generated, clock, finish, notes, ttft, logprobs, top)
        if finish == "cancelled":
            raise Cancelled(result)
        return result

    def _result(
        self, text: str, prompt_tokens: int, generated: int, clock: _Clock, finish: str, notes: list[str],
        ttft: float | None = None, logprobs: list[float] | None = None,
        top: list[tuple[tuple[str, float], ...]] | None = None,
    ) -> GenerationResult:
        end = time.perf_counter()
        return GenerationResult(
            text=text,
            provider=PROVIDER,
            model=self.model,
            usage=Usage(input_tokens=prompt_tokens, output_tokens=generated),
            latency_ms=(end - clock.started) * 1000,
            ttft_ms=ttft,
            finish_reason=finish,
            token_logprobs=tuple(logprobs or ()),
            top_logprobs=tuple(top or ()),
            notes=tuple(notes),
            timings=clock.timings(end),
        )


def _is_eog(llm: llama_cpp.Llama, token: int) -> bool:
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return bool(llama_cpp.llama_vocab_is_eog(vocab, token))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _find_stop(text: str, stops: list[str]) -> int | None:
    positions = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(positions) if positions else None


def _grammar(schema: dict[str, object] | None) -> object:
    if schema is None:
        return None
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
