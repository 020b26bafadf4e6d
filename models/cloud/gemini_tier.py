"""The Gemini tier: Google's Gemini API through the `google-genai` SDK, streamed.

The system prompt goes in `system_instruction` and the conversation follows in order, so the stable
prefix always comes first, which is what Gemini's implicit prefix caching reuses. Gemini reports
`prompt_token_count` including cached tokens; usage is normalized by subtracting them, and thinking
tokens (billed as output) are added to `output_tokens`.

No SDK retry or automatic continuation happens (each would be an attempt the caller cannot see).
Gemini 3 models are sent no temperature: Google recommends their default of 1.0 and warns that lower
values can make them loop.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
from google import genai
from google.genai import errors, types

from models.base import Capabilities, GenerationRequest, GenerationResult, ModelError, TextCallback, Usage
from models.cloud.common import (
    DEFAULT_TIMEOUT,
    CloudTier,
    StreamState,
    connection_error,
    is_set,
    parse_retry_after,
    status_error,
)
from models.cloud.gemini_batch import GeminiBatches

PROVIDER = "gemini"
LABEL = "Gemini"
KEY_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_ENV = "GOOGLE_GEMINI_BASE_URL"
API_VERSION = "v1beta"
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"}
_TRANSPORT_ERRORS = (httpx.TransportError, httpx2.TransportError)
_BAD_STREAM = (errors.UnknownApiResponseError, *_TRANSPORT_ERRORS)
_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")
_GENERATION = re.compile(r"gemini-(\d+)")


class GeminiTier(CloudTier):
    """Gemini via `generateContent` (streamed), as a `Backend`."""

    provider = PROVIDER
    label = LABEL
    key_env = KEY_ENV
    capabilities = Capabilities(thinking=True, batch=True)

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """`api_key` defaults to GEMINI_API_KEY (or GOOGLE_API_KEY), `base_url` to GOOGLE_GEMINI_BASE_URL."""
        super().__init__(model, api_key)
        options = types.HttpOptions(
            base_url=base_url or os.environ.get(BASE_URL_ENV) or None,
            api_version=API_VERSION,
            timeout=int(timeout * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=self._key, http_options=options)

    def generate(
        self,
        request: GenerationRequest,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Stream one generation; see `Backend.generate`."""
        state = self._begin(request, on_text, cancel)
        chunks = self._client.models.generate_content_stream(
            model=self.model, contents=_contents(request), config=self._config(request),
        )
        received = False
        try:
            chunk = self._first(chunks)
            while chunk is not None:
                received = True
                _on_chunk(chunk, state)
                if is_set(cancel):
                    raise state.cancelled()
                chunk = next(chunks, None)
        except errors.APIError as exc:
            raise self._status_error(exc, state if received else None) from exc
        except _BAD_STREAM as exc:
            raise state.dropped(type(exc).__name__) from exc
        finally:
            chunks.close()
        if state.finish_reason is None:
            raise state.dropped("stream ended without a finish reason")
        return state.result()

    def batches(self) -> GeminiBatches:
        """Batch mode on this tier's client and model, each request's contents and config as `generate` sends."""
        return GeminiBatches(self._client, self.model, _contents, self._config, self._response_result, self._key)

    def _response_result(self, response: types.GenerateContentResponse) -> GenerationResult:
        """A whole (not streamed) response as a result, read as the last chunk of a stream would be."""
        state = StreamState(LABEL, PROVIDER, self.model, GenerationRequest(messages=()))
        _on_chunk(response, state)
        return state.result()

    def _first(self, chunks: Iterator[types.GenerateContentResponse]) -> types.GenerateContentResponse | None:
        """The first chunk: the request is only sent when the stream is first read."""
        try:
            return next(chunks, None)
        except _TRANSPORT_ERRORS as exc:
            raise connection_error(LABEL, PROVIDER, exc) from exc

    def _config(self, request: GenerationRequest) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            system_instruction=request.system or None,
            max_output_tokens=request.max_tokens,
            temperature=request.temperature if _honours_temperature(self.model) else None,
            automatic_continuation=False,
            thinking_config=_thinking(request.effort),
        )

    def _status_error(self, exc: errors.APIError, state: StreamState | None) -> ModelError:
        headers = getattr(exc.response, "headers", None)
        retry_after = parse_retry_after(headers) if headers is not None else None
        return status_error(
            LABEL, PROVIDER, exc.code or 500, retry_after=retry_after or _retry_delay(exc.details),
            detail=exc.message, secret=self._key, partial=state,
            reason="rejected the API key" if _key_rejected(exc) else None,
        )


_THINKING_LEVELS = {"low": types.ThinkingLevel.LOW, "medium": types.ThinkingLevel.MEDIUM,
                    "high": types.ThinkingLevel.HIGH, "max": types.ThinkingLevel.HIGH}
"""A request's effort as Gemini's thinking level (a Flash model thinks at most at `high`)."""


def _thinking(effort: str | None) -> types.ThinkingConfig | None:
    """How much the model thinks for a request's effort, its thought summaries shown (as Claude's thinking
    is: beside the answer, never in it); None leaves the model's default."""
    if effort is None:
        return None
    return types.ThinkingConfig(thinking_level=_THINKING_LEVELS.get(effort, types.ThinkingLevel.HIGH),
                                include_thoughts=True)


def _contents(request: GenerationRequest) -> list[types.Content]:
    return [
        types.Content(role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)])
        for m in request.chat
    ]


def _on_chunk(chunk: types.GenerateContentResponse, state: StreamState) -> None:
    if chunk.usage_metadata is not None:
        state.usage = _normalize(chunk.usage_metadata)
    if not chunk.candidates:
        return
    candidate = chunk.candidates[0]
    for part in (candidate.content.parts or []) if candidate.content else []:
        if part.text and part.thought:
            state.think(part.text)
        elif part.text:
            state.emit(part.text)
    if candidate.finish_reason is not None:
        reason = str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
        state.finish_reason = _FINISH.get(reason, reason.lower())


def _normalize(meta: types.GenerateContentResponseUsageMetadata) -> Usage:
    """Gemini's prompt count includes the cached tokens; thinking tokens are billed as output."""
    cached = meta.cached_content_token_count or 0
    prompt = (meta.prompt_token_count or 0) + (meta.tool_use_prompt_token_count or 0)
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=(meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0),
        cache_read_tokens=cached,
        thinking_tokens=meta.thoughts_token_count or 0,
    )


def _honours_temperature(model: str) -> bool:
    """Whether to send a temperature: not to Gemini 3 and later, whose default Google recommends."""
    match = _GENERATION.search(model)
    return match is None or int(match[1]) < 3


def _key_rejected(exc: errors.APIError) -> bool:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT and reason API_KEY_INVALID."""
    return exc.code == 401 or "API_KEY_INVALID" in str(exc.details)


def _retry_delay(details: Any) -> float | None:
    """The `retryDelay` of a google.rpc.RetryInfo in an error body (e.g. "2s"), in seconds."""
    error = details.get("error", details) if isinstance(details, dict) else {}
    for detail in error.get("details", []) if isinstance(error, dict) else []:
        match = _RETRY_DELAY.match(str(detail.get("retryDelay", ""))) if isinstance(detail, dict) else None
        if match:
            return float(match[1])
    return None
