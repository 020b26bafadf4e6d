"""Anthropic's Message Batches through the `anthropic` SDK: `messages.batches.create`, `retrieve`, `results`
(a JSONL stream of succeeded, errored, canceled and expired results) and `cancel`.

Each request's params are built exactly as the streamed tier builds a call (system blocks with their
`cache_control`, `max_tokens`, effort), without `stream`; a succeeded result's message becomes a
`GenerationResult` the same way. The tier hands both in, so this module needs nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import anthropic
import httpx2
from anthropic.types import Message
from anthropic.types.messages import MessageBatchIndividualResponse

from models.base import GenerationRequest, GenerationResult, ModelError
from models.batching import BatchCounts, BatchItem, BatchOutcome, BatchStatus
from models.cloud.common import connection_error, parse_retry_after, status_error

PROVIDER = "anthropic"
LABEL = "Anthropic Message Batches"
T = TypeVar("T")


class AnthropicBatches:
    """Message Batches on one client, as a `BatchApi`."""

    def __init__(
        self, client: anthropic.Anthropic, params: Callable[[GenerationRequest], dict[str, Any]],
        result_of: Callable[[Message], GenerationResult], secret: str,
    ) -> None:
        self._client = client
        self._params = params
        self._result_of = result_of
        self._secret = secret

    def submit(self, items: Sequence[BatchItem]) -> str:
        """Create the batch; its id (`msgbatch_...`)."""
        requests: Any = [{"custom_id": item.custom_id, "params": self._params(item.request)} for item in items]
        return self._call(lambda: self._client.messages.batches.create(requests=requests)).id

    def status(self, batch_id: str, size: int) -> BatchStatus:
        """The batch's processing status and request counts."""
        batch = self._call(lambda: self._client.messages.batches.retrieve(batch_id))
        counts = batch.request_counts
        return BatchStatus(batch.id, batch.processing_status, BatchCounts(
            counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired))

    def results(self, batch_id: str, custom_ids: Sequence[str]) -> Iterator[BatchOutcome]:
        """Each line of the results file as it arrives; a stream cut off midway is a transient ModelError after
        the lines that came."""
        lines = self._call(lambda: self._client.messages.batches.results(batch_id))
        try:
            for line in lines:
                yield self._outcome(line)
        except (anthropic.APIConnectionError, httpx2.TransportError, ValueError) as exc:
            raise ModelError(f"{LABEL}: the results of {batch_id} broke off ({type(exc).__name__})",
                             provider=PROVIDER, transient=True) from exc
        finally:
            lines.close()

    def cancel(self, batch_id: str) -> None:
        """Start canceling the batch."""
        self._call(lambda: self._client.messages.batches.cancel(batch_id))

    def _outcome(self, line: MessageBatchIndividualResponse) -> BatchOutcome:
        result = line.result
        if result.type == "succeeded":
            return BatchOutcome(line.custom_id, "succeeded", self._result_of(result.message))
        if result.type == "errored":
            error = result.error.error
            return BatchOutcome(line.custom_id, "errored", error=f"{error.type}: {error.message}")
        return BatchOutcome(line.custom_id, result.type)

    def _call(self, call: Callable[[], T]) -> T:
        """One SDK call, its failures as one-line ModelErrors without the key."""
        try:
            return call()
        except anthropic.APIStatusError as exc:
            raise status_error(LABEL, PROVIDER, exc.status_code, retry_after=parse_retry_after(exc.response.headers),
                               detail=exc.api_message, secret=self._secret) from exc
        except anthropic.APIConnectionError as exc:
            raise connection_error(LABEL, PROVIDER, exc) from exc
        except anthropic.AnthropicError as exc:  # e.g. results asked of a batch that has not ended
            raise ModelError(f"{LABEL}: {exc}", provider=PROVIDER) from exc
