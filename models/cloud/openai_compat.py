"""The `openai-compatible` provider: any server that speaks OpenAI's chat completions, through the
official `openai` SDK, streamed (llama.cpp's server, vLLM, Ollama, LM Studio, LiteLLM, OpenRouter).

Usage is asked for with `stream_options.include_usage` and comes in the last chunk; `prompt_tokens`
include the cached ones (`prompt_tokens_details.cached_tokens`, where the server reports them), which
are subtracted. Token log-probabilities are asked for only when the request wants them and the tier
gives them, and come back in the local tier's shape: each generated token's log-probability, and per
token the chosen (text, log-probability) first, then the likeliest others. The SDK never reads
`OPENAI_API_KEY` or `OPENAI_BASE_URL` here, and sends no header from `OPENAI_ORG_ID`,
`OPENAI_PROJECT_ID` or `OPENAI_CUSTOM_HEADERS`: the key and the endpoint are always the tier's own.

The model an answer is recorded under is the one the server says answered (each chunk's `model`). A
free tier (a server one runs: Ollama, llama.cpp, vLLM) is also asked once which models it lists: a
declared model it does not list is one warning note, and a server that lists one model answered with
that one, whatever name it echoes (llama.cpp's servers echo the requested name). A body that is not
UTF-8 or not the chat completions format is a one-line, final ModelError, and a refused connection
is final too: nothing listens at the tier's address.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import openai

from models.base import (
    Capabilities,
    GenerationRequest,
    GenerationResult,
    ModelError,
    ModelUnavailable,
    TextCallback,
    TierHealth,
)
from models.cloud.common import (
    DEFAULT_TIMEOUT,
    CloudTier,
    StreamState,
    chat_completion_usage,
    connection_error,
    error_message,
    is_set,
    parse_retry_after,
    require_key,
    status_error,
)
from models.tier_registry import BuildContext, TierSpec, endpoint_of

PROVIDER = "openai-compatible"
AUTO_MODEL = "auto"
"""A tier's model that means: whatever the server serves (the first model it lists)."""
TOP_LOGPROBS = 20
"""Alternatives asked for per token: the most OpenAI's API allows, and what the local tier keeps."""
_NO_KEY = "no-key"
"""Sent as the bearer token to a server that needs none (the SDK insists on one)."""

TopLogprobs = tuple[tuple[str, float], ...]


def _without_openai_headers() -> dict[str, Any]:
    """Headers the SDK would add from OPENAI_ORG_ID, OPENAI_PROJECT_ID and OPENAI_CUSTOM_HEADERS, omitted:
    they are the user's settings for OpenAI, not for this endpoint."""
    custom = os.environ.get("OPENAI_CUSTOM_HEADERS", "").split("\n")
    names = {"OpenAI-Organization", "OpenAI-Project"}
    names |= {line.split(":", 1)[0].strip() for line in custom if ":" in line}
    return {name: openai.Omit() for name in names if name.lower() != "authorization"}


class OpenAICompatTier(CloudTier):
    """A model behind an OpenAI-compatible chat completions endpoint, as a `Backend`."""

    provider = PROVIDER

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        *,
        name: str = PROVIDER,
        timeout: float = DEFAULT_TIMEOUT,
        capabilities: Capabilities | None = None,
    ) -> None:
        """`api_key`: sent as the bearer token when given; `name`: the tier's name, for errors."""
        super().__init__(model, api_key)
        self.endpoint = endpoint_of(base_url)
        """Where the tier's calls go (what the ledger names)."""
        self.label = f"{name} at {self.endpoint}"
        self.capabilities = capabilities or Capabilities(prompt_caching=False)
        self._schema_type = "json_schema"
        """How a JSON schema is sent: OpenAI's `json_schema`, or `json_object` for servers that know only that."""
        self._listed: tuple[str, ...] | None = None
        """The models the server lists, once asked (free tiers only); None: not asked or it would not say."""
        self._asked = False
        self._warned = False
        self._client = openai.OpenAI(
            api_key=self._key or _NO_KEY, base_url=base_url, timeout=timeout, max_retries=0,
            default_headers=_without_openai_headers(),
        )

    def generate(
        self,
        request: GenerationRequest,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Stream one chat completion; see `Backend.generate`."""
        state = self._begin(request, on_text, cancel)
        tokens = _Logprobs()
        with self._errors(state):
            stream = self._open(request)
            with stream:
                for chunk in stream:
                    _on_chunk(chunk, state, tokens)
                    if is_set(cancel):
                        raise state.cancelled()
        if state.finish_reason is None:
            raise state.dropped("stream ended without a finish reason")
        return self._result(state, tokens)

    def list_models(self, timeout: float | None = None) -> list[str]:
        """The model ids the server lists (`GET /models`); ModelError when it cannot be asked."""
        client = self._client if timeout is None else self._client.with_options(timeout=timeout)
        with self._errors(None):
            models = [model.id for model in client.models.list()]
        self._listed = tuple(models)
        return models

    def first_model(self) -> str:
        """The first model the server lists; ModelUnavailable when it lists none or cannot be asked."""
        try:
            models = self.list_models()
        except ModelError as exc:
            raise ModelUnavailable(str(exc), provider=PROVIDER) from None
        if not models:
            raise ModelUnavailable(f"{self.label} lists no model; name one with model = ...", provider=PROVIDER)
        return models[0]

    def check(self, timeout: float) -> TierHealth:
        """Whether the server answers `GET /models` and lists this tier's model (`doctor`)."""
        try:
            listed = self.list_models(timeout)
        except ModelError as exc:
            if exc.status == 404:  # a server without the listing endpoint may still answer chat completions
                return TierHealth(True, f"{self.label} answers but lists no models (GET /models: 404)")
            return TierHealth(False, str(exc))
        return TierHealth(True, f"{self.label} serves {self.model}", self._unlisted_warning(listed))

    def _unlisted_warning(self, listed: tuple[str, ...] | list[str]) -> str:
        """A one-line warning when the server does not list this tier's model; empty when it does."""
        if self.model in listed:
            return ""
        shown = ", ".join(listed[:5]) + (f" and {len(listed) - 5} more" if len(listed) > 5 else "")
        return f"{self.label} does not list model '{self.model}' (it lists: {shown or 'none'})"

    def _served_listing(self) -> tuple[str, ...] | None:
        """The models a free tier's server lists, asked once; None for a priced API (it refuses a model it
        does not serve) or a server that would not say."""
        if not self._asked and self.capabilities.free:
            self._asked = True
            try:
                self.list_models()
            except ModelError:
                return None
        return self._listed

    def _answered_by(self, state: StreamState) -> tuple[str, tuple[str, ...]]:
        """The model that answered (what the server reported; a one-model server's one model when it echoed
        an unlisted name) and the warning to give once about an unlisted model."""
        listed = self._served_listing()
        if listed is None or self.model in listed:
            return state.model, ()
        model = listed[0] if len(listed) == 1 and state.model == self.model else state.model
        warned, self._warned = self._warned, True
        return model, () if warned else (f"{self._unlisted_warning(listed)}; the answer came from {model}",)

    def _open(self, request: GenerationRequest) -> Any:
        """The response stream; a server that refuses OpenAI's `json_schema` format is asked again with
        `json_object` and the schema (llama-cpp-python's server answers `json_schema` with a 500)."""
        try:
            return self._client.chat.completions.create(**self._arguments(request))
        except openai.APIStatusError as exc:
            if request.json_schema is None or self._schema_type != "json_schema" or "response_format" not in str(exc):
                raise
        self._schema_type = "json_object"
        return self._client.chat.completions.create(**self._arguments(request))

    def _result(self, state: StreamState, tokens: _Logprobs) -> GenerationResult:
        """The whole result. A server that reports no usage (llama-cpp-python's never does in a stream)
        has its output counted from the log-probabilities when it gave them; a free tier gets no note."""
        result = replace(state.result(), token_logprobs=tuple(tokens.chosen), top_logprobs=tuple(tokens.top))
        if state.usage is None and tokens.chosen:
            result = replace(result, usage=replace(result.usage, output_tokens=len(tokens.chosen)))
        if state.usage is None and self.capabilities.free:
            result = replace(result, notes=())
        model, warning = self._answered_by(state)
        return replace(result, model=model, notes=result.notes + warning)

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        """The chat completions arguments for `request`."""
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.logprobs and self.capabilities.logprobs:
            arguments.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        schema = request.json_schema
        if schema is not None and self._schema_type == "json_object":
            arguments["response_format"] = {"type": "json_object", "schema": schema}
        elif schema is not None:
            arguments["response_format"] = {
                "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True},
            }
        return arguments

    @contextmanager
    def _errors(self, state: StreamState | None) -> Iterator[None]:
        """Turn the SDK's and the transport's exceptions into one-line ModelErrors naming the endpoint."""
        try:
            yield
        except openai.APIStatusError as exc:
            raise status_error(
                self.label, PROVIDER, exc.status_code, retry_after=parse_retry_after(exc.response.headers),
                detail=error_message(exc.body) or exc.message, secret=self._key, partial=_started(state),
            ) from exc
        except (openai.APIConnectionError, httpx.TransportError) as exc:  # before the stream began nothing was billed
            started = _started(state)
            if started is not None:
                raise started.dropped(type(exc).__name__) from exc
            raise connection_error(self.label, PROVIDER, exc, refusal_is_final=True) from exc
        except openai.APIError as exc:  # an error event inside the stream
            raise ModelError(
                f"{self.label} failed mid-stream ({error_message(exc.body) or 'error event'})"[:300], provider=PROVIDER,
                transient=True, partial_usage=state.partial_usage() if state else None,
                partial_text=state.text if state else "",
            ) from exc
        except (ValueError, httpx.DecodingError) as exc:  # a body that is not UTF-8, JSON or the API's shape
            raise ModelError(
                f"{self.label} sent a malformed response ({_malformed(exc)}); is base_url an OpenAI-compatible "
                "server?", provider=PROVIDER, partial_usage=state.partial_usage() if state else None,
                partial_text=state.text if state else "",
            ) from exc


def from_spec(spec: TierSpec, context: BuildContext) -> OpenAICompatTier:
    """The backend of an openai-compatible tier spec (models/tier_registry.py's builder).

    With `api_key_env` declared, the key must be set (ModelUnavailable names the variable); without it,
    no key is sent. Model `auto` is the first model the server lists (a local server serving one).
    """
    if spec.base_url is None:
        raise ValueError(f"tier {spec.name}: an openai-compatible tier needs a base_url")
    key = context.api_keys.get(spec.name)
    if spec.api_key_env:
        key = require_key(f"{spec.name} at {endpoint_of(spec.base_url)}", PROVIDER, key, spec.api_key_env)
    tier = OpenAICompatTier(
        spec.model, spec.base_url, key, name=spec.name, timeout=context.timeout or DEFAULT_TIMEOUT,
        capabilities=spec.capabilities,
    )
    if spec.model == AUTO_MODEL:
        tier.model = tier.first_model()
    return tier


@dataclass
class _Logprobs:
    """The log-probabilities a stream has delivered so far, in the local tier's shape."""

    chosen: list[float] = field(default_factory=list)
    top: list[TopLogprobs] = field(default_factory=list)

    def add(self, entries: Any) -> None:
        """Keep each token's log-probability and its alternatives, the chosen one first."""
        for entry in entries or ():
            self.chosen.append(entry.logprob)
            others = ((t.token, t.logprob) for t in entry.top_logprobs or () if t.token != entry.token)
            self.top.append(((entry.token, entry.logprob), *others))


def _on_chunk(chunk: Any, state: StreamState, tokens: _Logprobs) -> None:
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        raise ValueError("a chunk without choices")
    if isinstance(getattr(chunk, "model", None), str) and chunk.model:
        state.model = chunk.model
    if getattr(chunk, "usage", None) is not None:
        state.usage = chat_completion_usage(chunk.usage)
    for choice in choices[:1]:
        if choice.logprobs is not None:
            tokens.add(choice.logprobs.content)
        if choice.delta is not None and choice.delta.content:
            state.emit(choice.delta.content)
        reasoning = _reasoning(choice.delta)
        if reasoning:
            state.think(reasoning)
        if choice.finish_reason:
            state.finish_reason = choice.finish_reason


def _malformed(exc: BaseException) -> str:
    """What was wrong with a response body, in a few words."""
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return "a data line is not JSON"
    return " ".join(str(exc).split())[:80] or type(exc).__name__


def _reasoning(delta: Any) -> str:
    """A reasoning delta, under the name the server uses (llama.cpp, vLLM: `reasoning_content`; Ollama, Groq:
    `reasoning`): extra fields the SDK keeps as they came."""
    if delta is None:
        return ""
    value = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
    return value if isinstance(value, str) else ""


def _started(state: StreamState | None) -> StreamState | None:
    """The stream's state once it has delivered something (an error before that billed nothing)."""
    return state if state is not None and (state.text or state.usage is not None) else None
