"""The Groq tier: Groq's OpenAI-compatible chat completions through the `groq` SDK, streamed.

Groq sends usage only with the last chunk (in `x_groq.usage`, and in `usage` when asked for); its
`prompt_tokens` include the prompt-cache hits in `prompt_tokens_details.cached_tokens`, which are
subtracted. Reasoning deltas (`delta.reasoning`) are billed as output but not passed to `on_text`. A model
the price list says `thinks` (gpt-oss) is sent the request's effort as `reasoning_effort`; the others would
reject it.
"""

from __future__ import annotations

import threading
from typing import Any

import groq
import httpx

from models import pricing
from models.base import Capabilities, GenerationRequest, GenerationResult, ModelError, TextCallback
from models.cloud.common import (
    DEFAULT_TIMEOUT,
    CloudTier,
    StreamState,
    chat_completion_usage,
    connection_error,
    is_set,
    parse_retry_after,
    status_error,
)

PROVIDER = "groq"
LABEL = "Groq"
KEY_ENV = ("GROQ_API_KEY",)
_REASONING_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}
"""A request's effort as Groq's `reasoning_effort` (high is its most)."""


class GroqTier(CloudTier):
    """A Groq-hosted model via chat completions, as a `Backend`."""

    provider = PROVIDER
    label = LABEL
    key_env = KEY_ENV

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """`api_key` defaults to GROQ_API_KEY and `base_url` to the SDK's (GROQ_BASE_URL)."""
        super().__init__(model, api_key)
        self._client = groq.Groq(api_key=self._key, base_url=base_url, timeout=timeout, max_retries=0)
        self.capabilities = Capabilities(thinking=pricing.thinks(model))
        """Some Groq models reason and take an effort for it (the price list says which); the others reject one."""

    def generate(
        self,
        request: GenerationRequest,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Stream one chat completion; see `Backend.generate`."""
        state = self._begin(request, on_text, cancel)
        try:
            stream = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],  # type: ignore[misc]
                max_completion_tokens=request.max_tokens,
                temperature=request.temperature,
                stream=True,
                **({"reasoning_effort": _REASONING_EFFORTS.get(request.effort, "high")} if request.effort else {}),
            )
        except groq.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except groq.APIConnectionError as exc:
            raise connection_error(LABEL, PROVIDER, exc) from exc
        with stream:
            try:
                for chunk in stream:
                    _on_chunk(chunk, state)
                    if is_set(cancel):
                        raise state.cancelled()
            except groq.APIStatusError as exc:
                raise self._status_error(exc, state) from exc
            except groq.APIError as exc:  # an error event inside the stream
                raise ModelError(
                    f"{LABEL} failed mid-stream ({_error_type(exc.body)})", provider=PROVIDER, transient=True,
                    partial_usage=state.partial_usage(), partial_text=state.text,
                ) from exc
            except httpx.TransportError as exc:
                raise state.dropped(type(exc).__name__) from exc
        if state.finish_reason is None:
            raise state.dropped("stream ended without a finish reason")
        return state.result()

    def _status_error(self, exc: groq.APIStatusError, state: StreamState | None = None) -> ModelError:
        return status_error(
            LABEL, PROVIDER, exc.status_code, retry_after=parse_retry_after(exc.response.headers),
            detail=_message(exc.body) or exc.message, secret=self._key, partial=state,
        )


def _on_chunk(chunk: Any, state: StreamState) -> None:
    usage = chunk.usage or (chunk.x_groq.usage if chunk.x_groq is not None else None)
    if usage is not None:
        state.usage = chat_completion_usage(usage)
    for choice in chunk.choices[:1]:
        if choice.delta.content:
            state.emit(choice.delta.content)
        if getattr(choice.delta, "reasoning", None):
            state.think(choice.delta.reasoning)
        if choice.finish_reason:
            state.finish_reason = choice.finish_reason


def _message(body: object) -> str | None:
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def _error_type(body: object) -> str:
    error = body.get("error", body) if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else "error event"
