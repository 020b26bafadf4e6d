"""What the cloud tiers share: token estimates, API keys, one-line errors and a stream's running state.

Token counts for cloud models are estimates (one token per 4 characters, rounded up): the providers'
tokenizers are not available offline, and the estimate only sizes context and budgets; what a call
costs always comes from the usage the provider reports.
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from models.base import (
    CallTimings,
    Cancelled,
    Capabilities,
    GenerationRequest,
    GenerationResult,
    MissingKey,
    ModelError,
    TextCallback,
    TierHealth,
    Usage,
    approx_tokens,
)

DEFAULT_TIMEOUT = 60.0
"""Seconds an SDK waits for the connection or for the next bytes of a stream."""
TRANSIENT_STATUSES = frozenset({408, 409, 429, 498, 500, 502, 503, 504, 529})
"""HTTP statuses worth retrying (498: Groq's flex tier is at capacity; 529: Anthropic is overloaded)."""
_DETAIL_CHARS = 160
_REASONS = {
    400: "rejected the request",
    401: "rejected the API key",
    403: "refused access",
    404: "does not know the model or endpoint",
    408: "timed out the request",
    409: "reported a conflict",
    413: "found the request too large",
    422: "could not process the request",
    429: "rate limit",
    498: "flex capacity exceeded",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
    529: "overloaded",
}
_WITH_DETAIL = frozenset({400, 403, 404, 413, 422})
"""Statuses whose server message helps the user fix the request."""


def require_key(label: str, provider: str, api_key: str | None, env_names: Sequence[str]) -> str:
    """`api_key`, else the first of `env_names` that is set; ModelUnavailable when there is none."""
    key = api_key or next((os.environ[n] for n in env_names if os.environ.get(n)), None)
    if not key:
        raise MissingKey(label, env_names[0], provider=provider)
    return key


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` masked."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    headers = {name.lower(): value for name, value in headers.items()}
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_message(body: object) -> str | None:
    """The `message` of an OpenAI-shaped error body (`{"error": {"message": ...}}` or the inner object)."""
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else None


def status_error(
    label: str,
    provider: str,
    status: int,
    *,
    retry_after: float | None = None,
    detail: str | None = None,
    secret: str | None = None,
    partial: StreamState | None = None,
    reason: str | None = None,
) -> ModelError:
    """A one-line ModelError for an HTTP error status, transient when retrying may help.

    `reason` replaces the usual wording for `status` (e.g. a bad key that a provider answers with 400).
    """
    message = f"{label} {reason or _REASONS.get(status, 'error')} ({status})"
    if retry_after is not None and status in TRANSIENT_STATUSES:
        message += f", retry after {retry_after:g}s"
    if detail and status in _WITH_DETAIL and reason is None:
        line = " ".join(redact(detail, secret).split())
        message += f": {line[:_DETAIL_CHARS]}{'…' if len(line) > _DETAIL_CHARS else ''}"
    return _error(message, provider, status, status in TRANSIENT_STATUSES, retry_after, partial)


def connection_error(
    label: str, provider: str, exc: BaseException, partial: StreamState | None = None, *,
    refusal_is_final: bool = False,
) -> ModelError:
    """A ModelError for a failed or timed-out connection, transient unless `refusal_is_final` and the
    host refused it: nothing listens at a server's address, which a retry seconds later will not change."""
    if refusal_is_final and refused(exc):
        return _error(f"{label} refused the connection: nothing listens there; is the server running and the port "
                      "right?", provider, None, False, None, partial)
    kind = "timed out" if "timeout" in type(exc).__name__.lower() else "unreachable"
    return _error(f"{label} {kind} ({type(exc).__name__})", provider, None, True, None, partial)


def refused(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from, is a refused connection (ECONNREFUSED)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionRefusedError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _error(
    message: str, provider: str, status: int | None, transient: bool, retry_after: float | None,
    partial: StreamState | None,
) -> ModelError:
    return ModelError(
        message, provider=provider, status=status, transient=transient, retry_after=retry_after,
        partial_usage=partial.partial_usage() if partial is not None else None,
        partial_text=partial.text if partial is not None else "",
    )


@dataclass
class StreamState:
    """The running state of one streamed generation: text so far, timings and reported usage."""

    label: str
    provider: str
    model: str
    request: GenerationRequest
    on_text: TextCallback | None = None
    started: float = field(default_factory=time.perf_counter)
    ttft_ms: float | None = None
    usage: Usage | None = None
    """The latest usage the provider reported, normalized; None until it reports any."""
    finish_reason: str | None = None
    """Set when the provider says the generation ended."""
    _parts: list[str] = field(default_factory=list)
    _thinking: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text generated so far."""
        return "".join(self._parts)

    def think(self, delta: str) -> None:
        """Record a piece of the model's shown thinking (never passed on as answer text)."""
        self._thinking.append(delta)

    def emit(self, delta: str) -> None:
        """Record a text delta and pass it on."""
        if not delta:
            return
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000
        self._parts.append(delta)
        if self.on_text is not None:
            self.on_text(delta)

    def partial_usage(self) -> Usage:
        """What the provider will bill so far: reported counts, with unreported ones estimated.

        Input tokens not yet reported are estimated from the request, output tokens from the text
        received (the provider bills what it generated even when the stream is cut).
        """
        usage = self.usage or Usage(input_tokens=sum(approx_tokens(m.content) for m in self.request.messages))
        generated = approx_tokens(self.text)
        return replace(usage, output_tokens=generated) if usage.output_tokens < generated else usage

    def result(self, finish_reason: str | None = None) -> GenerationResult:
        """The GenerationResult so far (the whole one once the stream has ended)."""
        notes: tuple[str, ...] = ()
        usage = self.usage
        if usage is None or finish_reason == "cancelled":
            usage = self.partial_usage()
            if finish_reason != "cancelled":
                notes = (f"{self.label} reported no token usage; the counts are estimates",)
        latency_ms = (time.perf_counter() - self.started) * 1000
        thinking = "".join(self._thinking)
        if thinking and not usage.thinking_tokens:  # not reported apart: the output the answer's text does not use
            usage = replace(usage, thinking_tokens=max(0, usage.output_tokens - approx_tokens(self.text)))
        return GenerationResult(
            text=self.text,
            thinking=thinking,
            provider=self.provider,
            model=self.model,
            usage=usage,
            latency_ms=latency_ms,
            ttft_ms=self.ttft_ms,
            finish_reason=finish_reason or self.finish_reason or "stop",
            notes=notes,
            timings=CallTimings(decode_ms=None if self.ttft_ms is None else latency_ms - self.ttft_ms),
        )

    def cancelled(self) -> Cancelled:
        """The Cancelled exception carrying the partial result."""
        return Cancelled(self.result("cancelled"))

    def dropped(self, cause: str) -> ModelError:
        """A transient ModelError for a stream that broke off, with what it had delivered."""
        return _error(
            f"{self.label} stream dropped after {len(self.text)} characters ({cause})",
            self.provider, None, True, None, self,
        )


def is_set(cancel: threading.Event | None) -> bool:
    """Whether a cancel event (or None) is set."""
    return cancel is not None and cancel.is_set()


class CloudTier:
    """What every cloud tier shares: its model and key, token estimates, and the start of a stream.

    Subclasses set `provider`, `label` and `key_env` (empty: the tier needs no key), and create
    `_client`, their SDK client.
    """

    provider: str = ""
    label: str = ""
    key_env: tuple[str, ...] = ()
    capabilities: Capabilities = Capabilities()
    """A priced cloud tier's: billed, retried, no token log-probabilities, prefix caching."""
    _client: Any

    def __init__(self, model: str, api_key: str | None) -> None:
        self.model = model
        self._key = require_key(self.label, self.provider, api_key, self.key_env) if self.key_env else api_key or ""

    def check(self, timeout: float) -> TierHealth:
        """Built, so its key is set; only a call tests the key (`doctor` checks the provider answers)."""
        return TierHealth(True, f"{self.label} {self.model}: key set")

    def count_tokens(self, text: str) -> int:
        """Estimated tokens (4 characters each); the billed count comes from the API's usage."""
        return approx_tokens(text)

    def close(self) -> None:
        """Release the SDK client's connections."""
        self._client.close()

    def _begin(
        self, request: GenerationRequest, on_text: TextCallback | None, cancel: threading.Event | None
    ) -> StreamState:
        """The state of a new stream; Cancelled at once when `cancel` is already set."""
        state = StreamState(self.label, self.provider, self.model, request, on_text)
        if is_set(cancel):
            raise state.cancelled()
        return state


def chat_completion_usage(usage: Any) -> Usage:
    """An OpenAI-style chat completion's usage, normalized: `prompt_tokens` include the cached ones (where the
    server reports any), `completion_tokens` the reasoning ones (`completion_tokens_details.reasoning_tokens`)."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    completion = getattr(usage, "completion_tokens_details", None)
    reasoning = (getattr(completion, "reasoning_tokens", 0) or 0) if completion is not None else 0
    return Usage(
        input_tokens=max(0, usage.prompt_tokens - cached),
        output_tokens=usage.completion_tokens,
        cache_read_tokens=cached,
        thinking_tokens=reasoning,
    )

