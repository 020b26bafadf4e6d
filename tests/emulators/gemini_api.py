"""A loopback emulator of the Gemini API's `generateContent` and `streamGenerateContent?alt=sse`.

`POST /v1beta/models/{model}:streamGenerateContent?alt=sse` streams `data: {GenerateContentResponse}`
events: candidates with text parts, `usageMetadata` with running totals on every chunk, and
`finishReason` on the last one. `promptTokenCount` INCLUDES `cachedContentTokenCount`; thinking
tokens are reported as `thoughtsTokenCount`. Errors are `{"error": {"code", "message", "status",
"details"}}`; a 429 carries a google.rpc.RetryInfo `retryDelay`, and a bad API key is a 400
INVALID_ARGUMENT with reason API_KEY_INVALID, as the real API answers. An error inside a stream is a
`data: {"error": ...}` event.

Implicit caching: the prompt minus its last turn (system instruction first) is cached when it is at
least `min_cache_tokens` long; a repeat reports it as `cachedContentTokenCount`.

Batch mode (tests/emulators/batches.py): `POST /v1beta/models/{model}:batchGenerateContent` with inline
requests answers each as `generateContent` would (the next behaviour each: a `Reply` succeeds, a `Fail`
errors) and returns the batch's operation; `GET /v1beta/batches/{id}` gives it, its `metadata.state` a
`BATCH_STATE_*` and, once it succeeded, its responses inline in the order of the requests (without their
metadata, as the real API); `POST /v1beta/batches/{id}:cancel` starts canceling. An expired or canceled
batch has no responses.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from tests.emulators.batches import BatchBook, EmulatedBatch, EmulatedRequest, rfc3339
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

STATUSES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "PERMISSION_DENIED": "The caller does not have permission.",
    "NOT_FOUND": "models/unknown is not found for API version v1beta.",
    "RESOURCE_EXHAUSTED": "Resource has been exhausted (e.g. check quota).",
    "INTERNAL": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    "UNAVAILABLE": "The model is overloaded. Please try again later.",
    "DEADLINE_EXCEEDED": "Deadline exceeded.",
}
_PATH = re.compile(
    r"^/(?P<version>v1beta|v1|v1alpha)/models/(?P<model>[^:/]+)"
    r":(?P<method>streamGenerateContent|generateContent|batchGenerateContent)$"
)
_BATCH_PATH = re.compile(r"^/(?:v1beta|v1|v1alpha)/batches/(?P<id>[^:/]+)(?P<cancel>:cancel)?$")
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS"}


class GeminiEmulator(Emulator):
    """The Gemini API; pass `base_url` as `http_options.base_url` (or GOOGLE_GEMINI_BASE_URL)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.batches = BatchBook()
        """The batches created; `batches.hold = True` keeps new ones in progress until `batches.end()`."""

    def handle(self, exchange: Exchange, request: RecordedRequest) -> None:
        """Serve `POST /v1beta/models/{model}:(stream)generateContent` and batch mode."""
        match = _PATH.match(request.path)
        batch = _BATCH_PATH.match(request.path)
        if batch is None and (request.method != "POST" or match is None):
            exchange.json(404, _error(404, f"{request.path} is not found"))
            return
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if self.api_key is not None and key != self.api_key:
            exchange.json(400, _error(400, "API key not valid. Please pass a valid API key.", [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"},
            }]))
            return
        if batch is not None:
            found = self.batches.cancel(batch["id"]) if batch["cancel"] else self.batches.get(batch["id"])
            if found is None:
                exchange.json(404, _error(404, f"batches/{batch['id']} is not found"))
            else:
                exchange.json(200, {} if batch["cancel"] else _operation(found))
            return
        assert match is not None
        if match["method"] == "batchGenerateContent":
            self._create_batch(exchange, match["model"], request.body)
            return
        body = request.body
        if not isinstance(body, dict) or not body.get("contents"):
            exchange.json(400, _error(400, "* GenerateContentRequest.contents: contents is not specified"))
            return
        behaviour = self.next_behaviour()
        if isinstance(behaviour, Fail):
            self._fail(exchange, behaviour)
            return
        model = match["model"]
        usage = self._usage(model, body, behaviour)
        if match["method"] == "generateContent":
            self._whole(exchange, model, behaviour, usage)
        else:
            exchange.start_stream()
            self._stream(exchange, model, behaviour, usage, _shows_thoughts(body))

    def _create_batch(self, exchange: Exchange, model: str, body: Any) -> None:
        batch = body.get("batch") if isinstance(body, dict) else None
        config = (batch or {}).get("inputConfig", {}).get("requests", {}) if isinstance(batch, dict) else {}
        requests = config.get("requests") if isinstance(config, dict) else None
        if not isinstance(requests, list) or not requests:
            exchange.json(400, _error(400, "* BatchGenerateContentRequest.batch.input_config: requests are required"))
            return
        if not all(isinstance(r, dict) and (r.get("request") or {}).get("contents") for r in requests):
            exchange.json(400, _error(400, "* InlinedRequest.request.contents: contents is not specified"))
            return
        answered = [self._answer(model, str(i), r["request"]) for i, r in enumerate(requests)]
        exchange.json(200, _operation(self.batches.create("emu", answered, model)))

    def _answer(self, model: str, index: str, body: dict[str, Any]) -> EmulatedRequest:
        """One inline request answered now, as `generateContent` would answer it."""
        behaviour = self.next_behaviour()
        if isinstance(behaviour, Reply):
            usage = self._usage(model, body, behaviour)
            return EmulatedRequest(index, _response(model, behaviour.text, _FINISH.get(behaviour.finish), usage))
        status = behaviour.status if isinstance(behaviour, Fail) else 500
        message = (behaviour.message if isinstance(behaviour, Fail) else None) or _MESSAGES["INTERNAL"]
        return EmulatedRequest(index, None, {"code": status, "message": message})

    def _fail(self, exchange: Exchange, fail: Fail) -> None:
        details = []
        if fail.retry_after is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{fail.retry_after}s"})
        exchange.json(fail.status, _error(fail.status, fail.message, details, fail.error_type), dict(fail.headers))

    def _usage(self, model: str, body: dict[str, Any], behaviour: Reply | Drop | StreamFail) -> dict[str, Any]:
        system = [p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", [])]
        turns = [[p.get("text", "") for p in c.get("parts", [])] for c in body["contents"]]
        prompt = sum(count_tokens(t) for t in system) + sum(count_tokens(t) for turn in turns for t in turn)
        prefix = system + [t for turn in turns[:-1] for t in turn]
        prefix_tokens = sum(count_tokens(t) for t in prefix)
        cached = prefix_tokens if self.cache_lookup(prefix_key(model, prefix), prefix_tokens) else 0
        reply = behaviour if isinstance(behaviour, Reply) else Reply(behaviour.text)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": count_tokens(reply.text),
            "totalTokenCount": prompt + count_tokens(reply.text) + count_tokens(reply.thinking),
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if cached:
            usage["cachedContentTokenCount"] = cached
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
        if reply.thinking:
            usage["thoughtsTokenCount"] = count_tokens(reply.thinking)
        usage.update(reply.usage or {})
        return usage

    def _whole(self, exchange: Exchange, model: str, behaviour: Any, usage: dict[str, Any]) -> None:
        if not isinstance(behaviour, Reply):
            exchange.json(500, _error(500, "this behaviour needs a streaming request"))
            return
        exchange.json(200, _response(model, behaviour.text, _FINISH.get(behaviour.finish, behaviour.finish), usage))

    def _stream(self, exchange: Exchange, model: str, behaviour: Any, usage: dict[str, Any],
                thoughts: bool = False) -> None:
        deltas = behaviour.deltas() if isinstance(behaviour, Reply) else split_text(behaviour.text)
        response_id = uuid.uuid4().hex[:22]
        if thoughts and isinstance(behaviour, Reply) and behaviour.thinking:  # the summary streams first
            summary = {"promptTokenCount": usage["promptTokenCount"], "totalTokenCount": usage["promptTokenCount"]}
            exchange.sse(_response(model, behaviour.thinking, None, summary, response_id, thought=True),
                         newline="\r\n")
        sent_tokens = 0
        for sent, delta in enumerate(deltas):
            if not isinstance(behaviour, Reply) and sent == behaviour.after:
                break
            last = isinstance(behaviour, Reply) and sent == len(deltas) - 1
            sent_tokens += count_tokens(delta)
            running = usage if last else {
                "promptTokenCount": usage["promptTokenCount"], "candidatesTokenCount": sent_tokens,
                "totalTokenCount": usage["promptTokenCount"] + sent_tokens,
                **{k: usage[k] for k in ("cachedContentTokenCount", "thoughtsTokenCount") if k in usage},
            }
            finish = _FINISH.get(behaviour.finish, behaviour.finish) if last else None
            exchange.sse(_response(model, delta, finish, running, response_id), newline="\r\n")
            if isinstance(behaviour, Reply):
                self.pause(behaviour, sent + 1)
                time.sleep(behaviour.delay)
        if isinstance(behaviour, Drop):
            exchange.cut(behaviour)
            return
        if isinstance(behaviour, StreamFail):
            exchange.sse(_error(behaviour.status, behaviour.message), newline="\r\n")
        elif not deltas:
            exchange.sse(_response(model, "", _FINISH.get(behaviour.finish, behaviour.finish), usage, response_id),
                         newline="\r\n")
        exchange.end_stream()


def _shows_thoughts(body: dict[str, Any]) -> bool:
    """Whether a request asks for thought summaries (`generationConfig.thinkingConfig.includeThoughts`; the
    API reads protobuf JSON, which takes a field's snake_case name too, and the SDK sends that one)."""
    config = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
    return bool(config.get("includeThoughts", config.get("include_thoughts")))


def _response(
    model: str, text: str, finish: str | None, usage: dict[str, Any], response_id: str = "", thought: bool = False,
) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text, "thought": True} if thought else {"text": text}
    candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
            "responseId": response_id or uuid.uuid4().hex[:22]}


def _operation(batch: EmulatedBatch) -> dict[str, Any]:
    """The long-running operation of a batch, as `batches.get` returns it."""
    name = f"batches/{batch.id}"
    state = {"in_progress": "BATCH_STATE_RUNNING", "canceling": "BATCH_STATE_RUNNING"}.get(batch.state)
    if state is None:
        state = "BATCH_STATE_EXPIRED" if batch.expired else "BATCH_STATE_CANCELLED" if batch.canceled \
            else "BATCH_STATE_SUCCEEDED"
    metadata: dict[str, Any] = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch", "name": name,
        "model": f"models/{batch.model}", "displayName": "emulated", "state": state,
        "createTime": rfc3339(batch.created), "updateTime": rfc3339(batch.ended or batch.created),
        "batchStats": {"requestCount": str(len(batch.requests)),
                       "successfulRequestCount": str(batch.count("succeeded")),
                       "failedRequestCount": str(batch.count("errored")),
                       "pendingRequestCount": str(batch.count("processing"))},
    }
    if state == "BATCH_STATE_SUCCEEDED":
        metadata["endTime"] = rfc3339(batch.ended or batch.created)
        metadata["output"] = {"inlinedResponses": {"inlinedResponses": [
            {"response": r.answer} if r.answer is not None else {"error": r.error} for r in batch.requests]}}
    return {"name": name, "metadata": metadata, "done": batch.state == "ended"}


def _error(code: int, message: str | None = None, details: list[dict[str, Any]] | None = None,
           status: str | None = None) -> dict[str, Any]:
    status = status or STATUSES.get(code, "UNKNOWN")
    error: dict[str, Any] = {"code": code, "message": message or _MESSAGES.get(status, "Error"), "status": status}
    if details:
        error["details"] = details
    return {"error": error}
