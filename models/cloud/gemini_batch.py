"""Gemini's batch mode through the `google-genai` SDK: `batches.create` with inline requests, `batches.get`
(the job's state, and once it succeeded its responses inline, in the order of the requests) and
`batches.cancel`.

Each inline request carries the contents and config the streamed tier would send; a response becomes a
`GenerationResult` the same way a streamed one does. The tier hands both in, so this module needs
nothing of it. Gemini does not send a request's metadata back, so responses are matched by their order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import httpx
import httpx2
from google import genai
from google.genai import errors, types

from models.base import GenerationRequest, GenerationResult, ModelError
from models.batching import BatchCounts, BatchItem, BatchOutcome, BatchState, BatchStatus, RequestStatus
from models.cloud.common import connection_error, status_error

PROVIDER = "gemini"
LABEL = "Gemini batch mode"
DISPLAY_NAME = "tiercode"
_STATES: dict[str, tuple[BatchState, RequestStatus | None]] = {
    "JOB_STATE_QUEUED": ("in_progress", None), "JOB_STATE_PENDING": ("in_progress", None),
    "JOB_STATE_RUNNING": ("in_progress", None), "JOB_STATE_UPDATING": ("in_progress", None),
    "JOB_STATE_PAUSED": ("in_progress", None), "JOB_STATE_CANCELLING": ("canceling", None),
    "JOB_STATE_SUCCEEDED": ("ended", None), "JOB_STATE_PARTIALLY_SUCCEEDED": ("ended", None),
    "JOB_STATE_FAILED": ("ended", "errored"), "JOB_STATE_CANCELLED": ("ended", "canceled"),
    "JOB_STATE_EXPIRED": ("ended", "expired"),
}
"""The batch state of each job state, and for a job that ended without responses what its requests became."""
T = TypeVar("T")


class GeminiBatches:
    """Batch mode on one client and model, as a `BatchApi`."""

    def __init__(
        self, client: genai.Client, model: str, contents: Callable[[GenerationRequest], list[types.Content]],
        config: Callable[[GenerationRequest], types.GenerateContentConfig],
        result_of: Callable[[types.GenerateContentResponse], GenerationResult], secret: str,
    ) -> None:
        self._client = client
        self._model = model
        self._contents = contents
        self._config = config
        self._result_of = result_of
        self._secret = secret

    def submit(self, items: Sequence[BatchItem]) -> str:
        """Create the batch job with the requests inline; its name (`batches/...`)."""
        inline = [types.InlinedRequest(contents=self._contents(item.request), config=self._config(item.request),
                                       metadata={"key": item.custom_id}) for item in items]
        job = self._call(lambda: self._client.batches.create(
            model=self._model, src=types.BatchJobSource(inlined_requests=inline),
            config=types.CreateBatchJobConfig(display_name=DISPLAY_NAME)))
        if not job.name:
            raise ModelError(f"{LABEL} created a batch without a name", provider=PROVIDER)
        return job.name

    def status(self, batch_id: str, size: int) -> BatchStatus:
        """The job's state; counts from its responses once it ended (Gemini reports none before)."""
        job = self._job(batch_id)
        state, every = _state_of(job)
        if state != "ended":
            return BatchStatus(batch_id, state, BatchCounts(processing=size))
        if every is not None:
            return BatchStatus(batch_id, state, BatchCounts(**{every: size}))
        responses = _responses(job)
        failed = sum(1 for r in responses if r.error is not None)
        return BatchStatus(batch_id, state, BatchCounts(succeeded=len(responses) - failed, errored=failed,
                                                        expired=max(0, size - len(responses))))

    def results(self, batch_id: str, custom_ids: Sequence[str]) -> Iterator[BatchOutcome]:
        """Each request's outcome, matched to `custom_ids` by order; requests without a response expired."""
        job = self._job(batch_id)
        state, every = _state_of(job)
        if state != "ended":
            raise ModelError(f"{LABEL}: {batch_id} has not ended ({job.state})", provider=PROVIDER)
        responses = _responses(job) if every is None else []
        for index, custom_id in enumerate(custom_ids):
            if index >= len(responses):
                yield BatchOutcome(custom_id, every or "expired")
                continue
            inlined = responses[index]
            if inlined.error is not None or inlined.response is None:
                error = inlined.error
                message = f"{error.code}: {error.message}" if error is not None else "no response"
                yield BatchOutcome(custom_id, "errored", error=message)
            else:
                yield BatchOutcome(custom_id, "succeeded", self._result_of(inlined.response))

    def cancel(self, batch_id: str) -> None:
        """Ask Gemini to cancel the job."""
        self._call(lambda: self._client.batches.cancel(name=batch_id))

    def _job(self, batch_id: str) -> types.BatchJob:
        return self._call(lambda: self._client.batches.get(name=batch_id))

    def _call(self, call: Callable[[], T]) -> T:
        """One SDK call, its failures as one-line ModelErrors without the key."""
        try:
            return call()
        except errors.APIError as exc:
            raise status_error(LABEL, PROVIDER, exc.code or 500, detail=exc.message, secret=self._secret) from exc
        except (httpx.TransportError, httpx2.TransportError) as exc:
            raise connection_error(LABEL, PROVIDER, exc) from exc
        except ValueError as exc:  # the SDK refuses a malformed batch name before sending anything
            raise ModelError(f"{LABEL}: {exc}", provider=PROVIDER) from exc


def _state_of(job: types.BatchJob) -> tuple[BatchState, RequestStatus | None]:
    name = str(getattr(job.state, "value", job.state))
    return _STATES.get(name, ("in_progress", None))


def _responses(job: types.BatchJob) -> list[types.InlinedResponse]:
    return list(job.dest.inlined_responses or []) if job.dest is not None else []
