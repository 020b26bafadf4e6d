"""A loopback emulator of Anthropic's Messages API (`POST /v1/messages`), streaming or not.

Streams use the real event sequence: `message_start` (with the input usage), `content_block_start`,
`ping`, `content_block_delta` (`text_delta`; `thinking_delta` and `signature_delta` for a thinking
block), `content_block_stop`, `message_delta` (stop reason and cumulative usage) and `message_stop`;
an error inside a stream is an `error` event. Usage has `input_tokens` (uncached only),
`output_tokens`, `cache_creation_input_tokens`, `cache_read_input_tokens` and `cache_creation` split
into `ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`.

The API key is accepted as `x-api-key` or as `Authorization: Bearer` (what the SDK sends).

Prompt caching honours `cache_control` breakpoints (on system or message blocks, or top-level for
automatic caching): the prefix up to the last breakpoint is written to the cache the first time
(reported as a cache write with the breakpoint's TTL) and read from it on a repeat, when it is at
least `min_cache_tokens` long; as Anthropic does, a prefix cached earlier that ends at a block boundary up
to 20 blocks before a breakpoint is found too (a conversation's next turn reads the turns before it).

Message Batches (tests/emulators/batches.py): `POST /v1/messages/batches` answers each request's params as
`/v1/messages` would (the next behaviour each: a `Reply` succeeds, a `Fail` errors with its error body);
`GET /v1/messages/batches/{id}` gives the batch with its `request_counts` and, once ended, its
`results_url`; `GET .../results` streams the JSONL results (`results_drop_after`: the connection is cut
after that many lines); `POST .../cancel` starts canceling.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from tests.emulators.batches import BatchBook, EmulatedBatch, EmulatedRequest, Status, rfc3339
from tests.emulators.server import (
    Drop,
    Emulator,
    Exchange,
    Fail,
    RecordedRequest,
    Reply,
    StreamFail,
    count_tokens,
    prefix_key,
    split_text,
)

ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
    529: "overloaded_error",
}
_MESSAGES = {
    "invalid_request_error": "Invalid request.", "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found.", "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error.", "timeout_error": "Request timed out.", "overloaded_error": "Overloaded",
}
_STOP = {"stop": "end_turn", "length": "max_tokens"}
_LOOKBACK_BLOCKS = 20
"""How many block boundaries before a breakpoint Anthropic checks for a cached prefix."""
_BATCH_PATH = re.compile(r"^/v1/messages/batches(?:/(?P<id>[^/]+)(?:/(?P<action>results|cancel))?)?$")
_REQUIRED = {"model", "max_tokens", "messages"}
_COUNTED: tuple[Status, ...] = ("processing", "succeeded", "errored", "canceled", "expired")


class AnthropicEmulator(Emulator):
    """Anthropic's Messages API; pass `base_url` to `anthropic.Anthropic`."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.batches = BatchBook()
        """The Message Batches created; `batches.hold = True` keeps new ones in progress until `batches.end()`."""
        self.results_drop_after: int | None = None
        """Cut a results stream's connection after this many lines."""

    def handle(self, exchange: Exchange, request: RecordedRequest) -> None:
        """Serve `POST /v1/messages` and the Message Batches endpoints."""
        batches = _BATCH_PATH.match(request.path)
        if batches is None and (request.method != "POST" or request.path != "/v1/messages"):
            exchange.json(404, _error("not_found_error", f"{request.method} {request.path} not found"))
            return
        if self.api_key is not None and api_key(request) != self.api_key:
            exchange.json(401, _error("authentication_error"), {"request-id": _request_id()})
            return
        if batches is not None:
            self._batch_endpoint(exchange, request, batches["id"], batches["action"])
            return
        body = request.body
        if not isinstance(body, dict) or not body.keys() >= _REQUIRED:
            exchange.json(400, _error("invalid_request_error", "model, max_tokens and messages are required"))
            return
        behaviour = self.next_behaviour()
        if isinstance(behaviour, Fail):
            self._fail(exchange, behaviour)
            return
        usage = self._usage(body, behaviour)
        if not body.get("stream"):
            self._message(exchange, body, behaviour, usage)
            return
        exchange.start_stream({"request-id": _request_id()})
        self._stream(exchange, body, behaviour, usage)

    def _fail(self, exchange: Exchange, fail: Fail) -> None:
        error_type = fail.error_type or ERROR_TYPES.get(fail.status, "api_error")
        headers = {"request-id": _request_id(), **fail.headers}
        if fail.retry_after is not None:
            headers["retry-after"] = str(fail.retry_after)
        exchange.json(fail.status, _error(error_type, fail.message), headers)

    def _usage(self, body: dict[str, Any], behaviour: Reply | Drop | StreamFail) -> dict[str, Any]:
        blocks = _blocks(body)
        total = sum(count_tokens(text) for text, _ in blocks)
        read, written, ttl = self._cache(body["model"], blocks)
        reply = behaviour if isinstance(behaviour, Reply) else Reply(behaviour.text)
        usage: dict[str, Any] = {
            "input_tokens": total - read - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written if ttl == "5m" else 0,
                "ephemeral_1h_input_tokens": written if ttl == "1h" else 0,
            },
            "output_tokens": count_tokens(reply.text) + count_tokens(reply.thinking),
            "service_tier": "standard",
        }
        usage.update(reply.usage or {})
        return usage

    def _cache(self, model: str, blocks: list[tuple[str, dict[str, Any] | None]]) -> tuple[int, int, str]:
        """(tokens read, tokens written, TTL of the write) for a request's breakpoints."""
        texts = [text for text, _ in blocks]
        eligible = []
        for i, (_, control) in enumerate(blocks):
            tokens = sum(count_tokens(t) for t in texts[: i + 1])
            if control is not None and tokens >= self.min_cache_tokens:
                eligible.append((prefix_key(model, texts[: i + 1]), tokens, control.get("ttl", "5m")))
        if not eligible:
            return 0, 0, "5m"
        read = max((tokens for key, tokens, _ in eligible if self.cache_contains(key)), default=0)
        read = max(read, self._looked_back(model, texts, [i for i, (_, c) in enumerate(blocks) if c is not None]))
        _, last_tokens, ttl = eligible[-1]
        for key, _, _ in eligible:
            self.cache_store(key)
        return read, last_tokens - read, ttl

    def _looked_back(self, model: str, texts: list[str], breakpoints: list[int]) -> int:
        """Tokens of the longest cached prefix ending at a block boundary up to 20 blocks before a breakpoint
        (Anthropic's lookback: a conversation's next turn finds the prefix the turn before it cached)."""
        found = 0
        for end in breakpoints:
            for i in range(max(0, end - _LOOKBACK_BLOCKS), end + 1):
                if self.cache_contains(prefix_key(model, texts[: i + 1])):
                    found = max(found, sum(count_tokens(t) for t in texts[: i + 1]))
        return found

    def _message(self, exchange: Exchange, body: dict[str, Any], behaviour: Any, usage: dict[str, Any]) -> None:
        if not isinstance(behaviour, Reply):
            exchange.json(500, _error("api_error", "this behaviour needs a streaming request"))
            return
        exchange.json(200, _message_body(body, behaviour, usage), {"request-id": _request_id()})

    # -- Message Batches ----------------------------------------------------------------------

    def _batch_endpoint(self, exchange: Exchange, request: RecordedRequest, batch_id: str | None,
                        action: str | None) -> None:
        if batch_id is None:
            if request.method != "POST":
                exchange.json(405, _error("invalid_request_error", "listing batches is not emulated"))
                return
            self._create_batch(exchange, request.body)
            return
        batch = self.batches.cancel(batch_id) if action == "cancel" else self.batches.get(batch_id)
        if batch is None:
            exchange.json(404, _error("not_found_error", f"no batch {batch_id}"))
        elif action == "results":
            self._results(exchange, batch)
        else:
            exchange.json(200, self._batch_body(batch))

    def _create_batch(self, exchange: Exchange, body: Any) -> None:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            exchange.json(400, _error("invalid_request_error", "requests: a non-empty list is required"))
            return
        ids = [r.get("custom_id") for r in requests if isinstance(r, dict)]
        if len(set(ids)) != len(requests) or not all(isinstance(r.get("params"), dict) for r in requests):
            exchange.json(400, _error("invalid_request_error", "each request needs a unique custom_id and params"))
            return
        bad = next((r["custom_id"] for r in requests if not r["params"].keys() >= _REQUIRED or "stream" in r["params"]),
                   None)
        if bad is not None:
            exchange.json(400, _error("invalid_request_error", f"requests.{bad}.params: model, max_tokens and messages"
                                                               " are required, and stream is not allowed"))
            return
        answered = [self._answer(r["custom_id"], r["params"]) for r in requests]
        exchange.json(200, self._batch_body(self.batches.create("msgbatch_emu", answered)))

    def _answer(self, custom_id: str, params: dict[str, Any]) -> EmulatedRequest:
        """One batch request answered now, as `/v1/messages` would answer it."""
        behaviour = self.next_behaviour()
        if isinstance(behaviour, Reply):
            return EmulatedRequest(custom_id, _message_body(params, behaviour, self._usage(params, behaviour)))
        status = behaviour.status if isinstance(behaviour, Fail) else 500
        error_type = (behaviour.error_type if isinstance(behaviour, Fail) else None) or ERROR_TYPES.get(status)
        message = behaviour.message if isinstance(behaviour, Fail) else None
        return EmulatedRequest(custom_id, None, _error(error_type or "api_error", message))

    def _batch_body(self, batch: EmulatedBatch) -> dict[str, Any]:
        ended = batch.state == "ended"
        return {
            "id": batch.id, "type": "message_batch", "processing_status": batch.state,
            "request_counts": {status: batch.count(status) for status in _COUNTED},
            "created_at": rfc3339(batch.created), "expires_at": rfc3339(batch.created + 86400),
            "ended_at": rfc3339(batch.ended) if batch.ended else None, "archived_at": None,
            "cancel_initiated_at": rfc3339(batch.created) if batch.canceled else None,
            "results_url": f"{self.url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def _results(self, exchange: Exchange, batch: EmulatedBatch) -> None:
        if batch.state != "ended":
            exchange.json(400, _error("invalid_request_error", f"batch {batch.id} is still {batch.state}"))
            return
        exchange.start_stream({"request-id": _request_id()}, content_type="application/binary")
        for sent, request in enumerate(batch.requests):
            if sent == self.results_drop_after:
                exchange.drop()
                return
            result: dict[str, Any] = {"type": request.status}
            if request.status == "succeeded":
                result["message"] = request.answer
            elif request.status == "errored":
                result["error"] = request.error
            exchange.raw((json.dumps({"custom_id": request.custom_id, "result": result}) + "\n").encode())
        exchange.end_stream()

    def _stream(self, exchange: Exchange, body: dict[str, Any], behaviour: Any, usage: dict[str, Any]) -> None:
        start_usage = {**usage, "output_tokens": 1}
        exchange.sse({"type": "message_start", "message": {
            "id": _message_id(), "type": "message", "role": "assistant", "model": body["model"], "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage,
        }}, "message_start")
        index = 0
        if isinstance(behaviour, Reply) and behaviour.thinking:
            self._thinking_block(exchange, behaviour.thinking)
            index = 1
        exchange.sse({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
                     "content_block_start")
        exchange.sse({"type": "ping"}, "ping")
        deltas = behaviour.deltas() if isinstance(behaviour, Reply) else split_text(behaviour.text)
        for sent, delta in enumerate(deltas):
            if not isinstance(behaviour, Reply) and sent == behaviour.after:
                break
            exchange.sse({"type": "content_block_delta", "index": index,
                          "delta": {"type": "text_delta", "text": delta}}, "content_block_delta")
            if isinstance(behaviour, Reply):
                self.pause(behaviour, sent + 1)
                time.sleep(behaviour.delay)
        if isinstance(behaviour, Drop):
            exchange.cut(behaviour)
            return
        if isinstance(behaviour, StreamFail):
            error_type = ERROR_TYPES.get(behaviour.status, "api_error")
            exchange.sse(_error(error_type, behaviour.message), "error")
            exchange.end_stream()
            return
        exchange.sse({"type": "content_block_stop", "index": index}, "content_block_stop")
        final = {key: usage[key] for key in (
            "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
        ) if key in usage}
        exchange.sse({"type": "message_delta", "delta": {
            "stop_reason": _STOP.get(behaviour.finish, behaviour.finish), "stop_sequence": None,
        }, "usage": final}, "message_delta")
        exchange.sse({"type": "message_stop"}, "message_stop")
        exchange.end_stream()

    @staticmethod
    def _thinking_block(exchange: Exchange, thinking: str) -> None:
        exchange.sse({"type": "content_block_start", "index": 0,
                      "content_block": {"type": "thinking", "thinking": "", "signature": ""}}, "content_block_start")
        for delta in split_text(thinking):
            exchange.sse({"type": "content_block_delta", "index": 0,
                          "delta": {"type": "thinking_delta", "thinking": delta}}, "content_block_delta")
        exchange.sse({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}}, "content_block_delta")
        exchange.sse({"type": "content_block_stop", "index": 0}, "content_block_stop")


def api_key(request: RecordedRequest) -> str | None:
    """The key a request carries: `x-api-key`, or the `Authorization: Bearer` token the SDK sends."""
    bearer = request.headers.get("authorization", "")
    return request.headers.get("x-api-key") or (bearer[len("Bearer "):] if bearer.startswith("Bearer ") else None)


def _blocks(body: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """The prompt's text blocks in order, each with its `cache_control` (top-level: on the last one)."""
    blocks: list[tuple[str, dict[str, Any] | None]] = []
    system = body.get("system")
    if isinstance(system, str):
        blocks.append((system, None))
    elif isinstance(system, list):
        blocks.extend((b.get("text", ""), b.get("cache_control")) for b in system)
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            blocks.append((content, None))
        else:
            blocks.extend((b.get("text", ""), b.get("cache_control")) for b in content or [])
    if body.get("cache_control") and blocks:
        blocks[-1] = (blocks[-1][0], body["cache_control"])
    return blocks


def _message_body(body: dict[str, Any], reply: Reply, usage: dict[str, Any]) -> dict[str, Any]:
    """A whole message answering `body` with `reply`."""
    content = [{"type": "text", "text": reply.text}]
    if reply.thinking:
        content.insert(0, {"type": "thinking", "thinking": reply.thinking, "signature": "c2lnbmF0dXJl"})
    return {"id": _message_id(), "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": _STOP.get(reply.finish, reply.finish), "stop_sequence": None, "usage": usage}


def _error(error_type: str, message: str | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message or _MESSAGES.get(error_type, "Error")},
            "request_id": _request_id()}


def _request_id() -> str:
    return f"req_emu{uuid.uuid4().hex[:20]}"


def _message_id() -> str:
    return f"msg_emu{uuid.uuid4().hex[:20]}"
