"""A loopback emulator of Groq's OpenAI-compatible chat completions (`POST /openai/v1/chat/completions`).

With `stream: true` the answer is a series of `data: {chat.completion.chunk}` events ended by
`data: [DONE]`: the first chunk carries the role and `x_groq.id`, then content deltas (reasoning
first, as `delta.reasoning`, when the reply has any), and the last chunk has the `finish_reason` and
the usage in `x_groq.usage`. When the request sets `stream_options.include_usage`, one more chunk
with no choices carries `usage`. Usage counts `prompt_tokens` INCLUDING
`prompt_tokens_details.cached_tokens`. Errors are `{"error": {"message", "type", "code"}}`; inside a
stream, an error is a `data: {"error": ...}` event.

Prompt caching is automatic: the messages before the last one are cached when at least
`min_cache_tokens` long, and a repeat reports them as cached tokens.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.emulators.server import (
    Drop,
    Emulator,
    Exchange,
    Fail,
    Garbage,
    RecordedRequest,
    Reply,
    StreamFail,
    count_tokens,
    prefix_key,
    split_text,
)

ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
    403: ("permission_error", None, "Forbidden"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    413: ("invalid_request_error", "request_too_large", "Request Entity Too Large"),
    422: ("invalid_request_error", None, "Unprocessable Entity"),
    429: ("tokens", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    498: ("capacity_exceeded", "flex_tier_capacity_exceeded", "Flex tier capacity exceeded."),
    500: ("internal_server_error", None, "Internal Server Error"),
    502: ("bad_gateway", None, "Bad Gateway"),
    503: ("service_unavailable", None, "Service Unavailable: the model is over capacity."),
}
_PATH = "/openai/v1/chat/completions"


class GroqEmulator(Emulator):
    """Groq's chat completions; pass `base_url` to `groq.Groq`."""

    def handle(self, exchange: Exchange, request: RecordedRequest) -> None:
        """Serve `POST /openai/v1/chat/completions`."""
        if request.method != "POST" or request.path != _PATH:
            exchange.json(404, _error(404, f"Unknown request URL: {request.method} {request.path}"))
            return
        auth = request.headers.get("authorization", "")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            exchange.json(401, _error(401))
            return
        body = request.body
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            exchange.json(400, _error(400, "'model' and 'messages' are required"))
            return
        behaviour = self.next_behaviour()
        if isinstance(behaviour, Fail):
            headers = dict(behaviour.headers)
            if behaviour.retry_after is not None:
                headers["retry-after"] = str(behaviour.retry_after)
            exchange.json(behaviour.status, _error(behaviour.status, behaviour.message, behaviour.error_type), headers)
            return
        usage = self._usage(body, behaviour)
        if not body.get("stream"):
            self._whole(exchange, body, behaviour, usage)
            return
        exchange.start_stream()
        self._stream(exchange, body, behaviour, usage)

    def _usage(self, body: dict[str, Any], behaviour: Reply | Drop | StreamFail | Garbage) -> dict[str, Any]:
        texts = [str(m.get("content") or "") for m in body["messages"]]
        prompt = sum(count_tokens(t) for t in texts)
        prefix_tokens = sum(count_tokens(t) for t in texts[:-1])
        cached = prefix_tokens if self.cache_lookup(prefix_key(body["model"], texts[:-1]), prefix_tokens) else 0
        reply = behaviour if isinstance(behaviour, Reply) else Reply(behaviour.text)
        reasoning = count_tokens(reply.thinking)
        completion = count_tokens(reply.text) + reasoning
        usage: dict[str, Any] = {
            "queue_time": 0.01, "prompt_tokens": prompt, "prompt_time": 0.002, "completion_tokens": completion,
            "completion_time": 0.02, "total_tokens": prompt + completion, "total_time": 0.022,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        usage.update(reply.usage or {})
        return usage

    def _whole(self, exchange: Exchange, body: dict[str, Any], behaviour: Any, usage: dict[str, Any]) -> None:
        if not isinstance(behaviour, Reply):
            exchange.json(500, _error(500, "this behaviour needs a streaming request"))
            return
        message: dict[str, Any] = {"role": "assistant", "content": behaviour.text}
        if behaviour.thinking:
            message["reasoning"] = behaviour.thinking
        exchange.json(200, {
            "id": _id(), "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": behaviour.finish}],
            "usage": usage, "system_fingerprint": "fp_emulator", "x_groq": {"id": _request_id()},
        })

    def _stream(self, exchange: Exchange, body: dict[str, Any], behaviour: Any, usage: dict[str, Any]) -> None:
        completion_id, request_id = _id(), _request_id()

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            return {
                "id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": "fp_emulator",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra,
            }

        exchange.sse(chunk({"role": "assistant", "content": ""}, x_groq={"id": request_id}))
        if isinstance(behaviour, Reply):
            for piece in split_text(behaviour.thinking):
                exchange.sse(chunk({"reasoning": piece}))
        deltas = behaviour.deltas() if isinstance(behaviour, Reply) else split_text(behaviour.text)
        for sent, delta in enumerate(deltas):
            if not isinstance(behaviour, Reply) and sent == behaviour.after:
                break
            exchange.sse(chunk({"content": delta}))
            if isinstance(behaviour, Reply):
                self.pause(behaviour, sent + 1)
                time.sleep(behaviour.delay)
        if isinstance(behaviour, Drop):
            exchange.cut(behaviour)
            return
        if isinstance(behaviour, Garbage):
            exchange.raw(behaviour.raw)
            exchange.end_stream()
            return
        if isinstance(behaviour, StreamFail):
            exchange.sse(_error(behaviour.status, behaviour.message))
            exchange.end_stream()
            return
        exchange.sse(chunk({}, behaviour.finish, x_groq={"id": request_id, "usage": usage}))
        if (body.get("stream_options") or {}).get("include_usage"):
            final = chunk({}, usage=usage)
            final["choices"] = []
            exchange.sse(final)
        exchange.sse("[DONE]")
        exchange.end_stream()


def _error(status: int, message: str | None = None, error_type: str | None = None) -> dict[str, Any]:
    kind, code, default = ERRORS.get(status, ("api_error", None, "Error"))
    error: dict[str, Any] = {"message": message or default, "type": error_type or kind}
    if code:
        error["code"] = code
    return {"error": error}


def _id() -> str:
    return f"chatcmpl-{uuid.uuid4()}"


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:26]}"
