"""Provider batches: many requests sent in one call, answered within a day at the provider's batch price.

A backend whose capabilities say `batch` (Anthropic's Message Batches, Gemini's batch mode) also has
`batches() -> BatchApi`, read with `batches_of`. A batch is known by the provider's id; each request in it
by the caller's `custom_id`. Failures are one-line `ModelError`s naming the provider, as for `generate`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from models.base import Backend, GenerationRequest, GenerationResult, capabilities_of

BatchState = Literal["in_progress", "canceling", "ended"]
"""Where a batch is: still being processed, being canceled, or ended (every request has its outcome)."""
RequestStatus = Literal["succeeded", "errored", "canceled", "expired"]
"""How one request of an ended batch came out; only a succeeded one is billed."""


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch, under the caller's id (letters, digits, `_` and `-`; at most 64)."""

    custom_id: str
    request: GenerationRequest


@dataclass(frozen=True)
class BatchCounts:
    """How many requests of a batch are in each state."""

    processing: int = 0
    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0


@dataclass(frozen=True)
class BatchStatus:
    """What the provider says about a batch now."""

    batch_id: str
    state: BatchState
    counts: BatchCounts


@dataclass(frozen=True)
class BatchOutcome:
    """One request's result in an ended batch: the answer when it succeeded, else why not."""

    custom_id: str
    status: RequestStatus
    result: GenerationResult | None = None
    error: str = ""


@runtime_checkable
class BatchApi(Protocol):
    """A provider's batch API, on one model."""

    def submit(self, items: Sequence[BatchItem]) -> str:
        """Send the requests as one batch; the provider's id of it."""
        ...

    def status(self, batch_id: str, size: int) -> BatchStatus:
        """The batch's state and counts (`size`: how many requests it holds)."""
        ...

    def results(self, batch_id: str, custom_ids: Sequence[str]) -> Iterator[BatchOutcome]:
        """Each request's outcome, once the batch has ended (`custom_ids`: its requests, in the order sent)."""
        ...

    def cancel(self, batch_id: str) -> None:
        """Ask the provider to stop the batch: requests not yet processed end as canceled."""
        ...


def batches_of(backend: Backend) -> BatchApi | None:
    """The batch API of a backend whose capabilities say `batch`; None for any other."""
    make = getattr(backend, "batches", None)
    if not capabilities_of(backend).batch or not callable(make):
        return None
    api = make()
    assert isinstance(api, BatchApi)
    return api
