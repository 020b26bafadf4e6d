"""The Sonnet tier: Anthropic's Messages API through the `anthropic` SDK, streamed, with prompt caching.

Prompt caching: the request's stable prefix (its first `stable_prefix` messages: the system prompt, then
a conversation's earlier turns) gets a `cache_control` breakpoint at the end of the system prompt and one
at its own end, with the request's TTL, each when the prefix up to it is long enough for the model to cache
it (`min_cache_tokens` in prices.toml; 1024 for a model the list does not know), counting 4 characters per
token. A shorter prefix gets no breakpoint: Anthropic would not cache it, and a breakpoint would only
suggest it does.

Sampling: the SDK no longer sends `temperature`, and current Claude models reject non-default sampling
parameters, so `request.temperature` is not sent. Thinking tokens are billed as output and counted
in `output_tokens`; only text deltas reach `on_text`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from models import pricing
from models.base import (
    Capabilities,
    GenerationRequest,
    GenerationResult,
    ModelError,
    TextCallback,
    Usage,
    approx_tokens,
)
from models.cloud.anthropic_batch import AnthropicBatches
from models.cloud.common import (
    DEFAULT_TIMEOUT,
    CloudTier,
    StreamState,
    connection_error,
    is_set,
    parse_retry_after,
    status_error,
)

PROVIDER = "anthropic"
LABEL = "Anthropic"
KEY_ENV = ("ANTHROPIC_API_KEY",)
DEFAULT_MIN_CACHE_TOKENS = 1024
"""Minimum cacheable prefix for an Anthropic model prices.toml does not list (Sonnet 4.x's)."""
_FINISH = {
    "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "model_context_window_exceeded": "length",
}
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403, "not_found_error": 404,
    "request_too_large": 413, "rate_limit_error": 429, "api_error": 500, "timeout_error": 504,
    "overloaded_error": 529,
}
"""HTTP status of each error type, for errors sent as an SSE `error` event inside a 200 stream."""


class AnthropicTier(CloudTier):
    """Claude via the Messages API, as a `Backend`."""

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
        *,
        min_cache_tokens: int | None = None,
        effort: str | None = None,
    ) -> None:
        """`api_key` defaults to ANTHROPIC_API_KEY and `base_url` to the SDK's (ANTHROPIC_BASE_URL).

        `effort` (low … max) is sent as `output_config.effort` when given; a request's own effort wins.
        """
        super().__init__(model, api_key)
        self.min_cache_tokens = (
            min_cache_tokens if min_cache_tokens is not None
            else pricing.min_cache_tokens(model, DEFAULT_MIN_CACHE_TOKENS)
        )
        self.effort = effort
        self._client = anthropic.Anthropic(api_key=self._key, base_url=base_url, timeout=timeout, max_retries=0)

    def cache_breakpoints(self, request: GenerationRequest) -> tuple[int, ...]:
        """Indexes of the messages that carry a cache breakpoint: the end of the system prompt (shared by every
        question) and the end of the stable prefix (a conversation's earlier turns), each when the prefix up to
        it is long enough to be cached. Anthropic finds an earlier turn's cached prefix by looking back from a
        breakpoint, so each turn of a conversation reads the turns before it from the cache."""
        stable = request.messages[: request.stable_prefix]
        system_end = sum(1 for m in stable if m.role == "system") - 1
        found = []
        for end in dict.fromkeys(i for i in (system_end, len(stable) - 1) if i >= 0):
            if approx_tokens("".join(m.content for m in stable[: end + 1])) >= self.min_cache_tokens:
                found.append(end)
        return tuple(found)

    def generate(
        self,
        request: GenerationRequest,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Stream one message; see `Backend.generate`."""
        state = self._begin(request, on_text, cancel)
        try:
            stream = self._client.messages.create(**self._params(request), stream=True)
        except anthropic.APIStatusError as exc:
            raise self._status_error(exc, None) from exc
        except anthropic.APIConnectionError as exc:
            raise connection_error(LABEL, PROVIDER, exc) from exc
        seen = _Seen()
        with stream:
            try:
                for event in stream:
                    _on_event(event, state, seen, request.cache_ttl)
                    if is_set(cancel):
                        raise state.cancelled()
            except anthropic.APIStatusError as exc:
                raise self._status_error(exc, state) from exc
            except (anthropic.APIConnectionError, httpx2.TransportError) as exc:
                raise state.dropped(type(exc).__name__) from exc
        if state.finish_reason is None:
            raise state.dropped("stream ended before message_stop")
        return state.result()

    def batches(self) -> AnthropicBatches:
        """Message Batches on this tier's client and model, each request built as `generate` builds it."""
        return AnthropicBatches(self._client, self._params, self._message_result, self._key)

    def _message_result(self, message: anthropic.types.Message) -> GenerationResult:
        """A whole (not streamed) message as a result, read as a stream's events would be: its text blocks,
        its thinking apart, usage and stop reason."""
        state = StreamState(LABEL, PROVIDER, message.model, GenerationRequest(messages=()))
        usage: dict[str, Any] = {}
        _merge_usage(usage, message.usage)
        state.usage = _normalize(usage, "5m")
        for block in message.content:
            if block.type == "thinking":
                state.think(block.thinking)
            elif block.type == "text":
                state.emit(block.text)
        reason = message.stop_reason or "end_turn"
        return state.result(_FINISH.get(reason, reason))

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        breakpoints = self.cache_breakpoints(request)
        system: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        for i, message in enumerate(request.messages):
            block: dict[str, Any] = {"type": "text", "text": message.content}
            if i in breakpoints:
                block["cache_control"] = {"type": "ephemeral", "ttl": request.cache_ttl}
            if message.role == "system":
                system.append(block)
            else:
                messages.append({"role": message.role, "content": [block]})
        params: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens, "messages": messages}
        if system:
            params["system"] = system
        effort = request.effort or self.effort
        if effort:
            params["output_config"] = {"effort": effort}
        return params

    def _status_error(self, exc: anthropic.APIStatusError, state: StreamState | None) -> ModelError:
        status = exc.status_code
        if status == 200:  # an `error` event inside the stream
            status = _STREAM_ERROR_STATUS.get(str(exc.type), 500)
        return status_error(
            LABEL, PROVIDER, status, retry_after=parse_retry_after(exc.response.headers),
            detail=exc.api_message, secret=self._key, partial=state,
        )


@dataclass
class _Seen:
    """What the stream's events said so far: the latest usage fields and the stop reason."""

    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None


def _on_event(event: Any, state: StreamState, seen: _Seen, ttl: str) -> None:
    if event.type == "message_start":
        _merge_usage(seen.usage, event.message.usage)
        state.usage = _normalize(seen.usage, ttl)
    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
        state.emit(event.delta.text)
    elif event.type == "content_block_delta" and event.delta.type == "thinking_delta":
        state.think(event.delta.thinking)
    elif event.type == "message_delta":
        _merge_usage(seen.usage, event.usage)
        state.usage = _normalize(seen.usage, ttl)
        seen.stop_reason = event.delta.stop_reason or seen.stop_reason
    elif event.type == "message_stop":
        reason = seen.stop_reason or "end_turn"
        state.finish_reason = _FINISH.get(reason, reason)


def _merge_usage(into: dict[str, Any], usage: Any) -> None:
    """Keep the latest value of each usage field the event reports (the counts are cumulative)."""
    for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
        value = getattr(usage, name, None)
        if value is not None:
            into[name] = value
    creation = getattr(usage, "cache_creation", None)
    if creation is not None:
        into["cache_creation"] = (creation.ephemeral_5m_input_tokens, creation.ephemeral_1h_input_tokens)


def _normalize(usage: dict[str, Any], ttl: str) -> Usage:
    """Anthropic's `input_tokens` already leaves out cached tokens; writes split by TTL."""
    written = usage.get("cache_creation_input_tokens") or 0
    write_5m, write_1h = usage.get("cache_creation", (written, 0) if ttl == "5m" else (0, written))
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
    )
