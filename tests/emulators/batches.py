"""What the emulators' batch endpoints share: the batches an emulator holds and how they move on.

A batch's requests are answered when it is created, each by the emulator's next behaviour (its script,
then its default), with the emulator's own answer and usage generation: a `Reply` succeeds, anything
else errors. A new batch ends at once unless `hold` is set; a held batch stays in progress until the
test calls `end()` (or `end(expire=True)`: its requests expire unanswered). Canceling a batch in
progress makes it `canceling`; the next look at it finds it ended, its requests canceled.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["in_progress", "canceling", "ended"]
Status = Literal["processing", "succeeded", "errored", "canceled", "expired"]


@dataclass
class EmulatedRequest:
    """One request of a batch: its answer (made at creation) and what became of it."""

    custom_id: str
    answer: dict[str, Any] | None
    """The provider's response body when it succeeds; None when it errors."""
    error: dict[str, Any] | None = None
    """The provider's error body when it errors."""
    status: Status = "processing"

    def finish(self) -> None:
        """Processing ended: succeeded or errored, as answered."""
        self.status = "succeeded" if self.answer is not None else "errored"


@dataclass
class EmulatedBatch:
    """One batch an emulator holds."""

    id: str
    requests: list[EmulatedRequest]
    model: str = ""
    created: float = field(default_factory=time.time)
    state: State = "in_progress"
    ended: float | None = None
    expired: bool = False
    canceled: bool = False

    def count(self, status: Status) -> int:
        """Requests in `status`."""
        return sum(1 for r in self.requests if r.status == status)

    def end(self, expire: bool = False, cancel: bool = False) -> None:
        """End it: its requests answered, or (`expire`, `cancel`) those still processing expired or canceled."""
        for request in self.requests:
            if request.status == "processing":
                if expire:
                    request.status = "expired"
                elif cancel:
                    request.status = "canceled"
                else:
                    request.finish()
        self.state, self.ended = "ended", time.time()
        self.expired, self.canceled = expire, cancel


class BatchBook:
    """The batches of one emulator."""

    def __init__(self) -> None:
        self.hold = False
        """New batches stay in progress until `end` is called."""
        self._batches: dict[str, EmulatedBatch] = {}
        self._lock = threading.Lock()

    def create(self, prefix: str, requests: list[EmulatedRequest], model: str = "") -> EmulatedBatch:
        """A new batch of these requests, ended at once unless held."""
        batch = EmulatedBatch(f"{prefix}{uuid.uuid4().hex[:20]}", requests, model)
        if not self.hold:
            batch.end()
        with self._lock:
            self._batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> EmulatedBatch | None:
        """The batch, moved on: one being canceled has ended with its requests canceled."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None and batch.state == "canceling":
                batch.end(cancel=True)
            return batch

    def cancel(self, batch_id: str) -> EmulatedBatch | None:
        """Start canceling a batch in progress (an ended one stays as it is)."""
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is not None and batch.state == "in_progress":
                batch.state = "canceling"
            return batch

    def end(self, expire: bool = False) -> None:
        """End every batch in progress: answered, or (`expire`) with its requests expired."""
        with self._lock:
            for batch in self._batches.values():
                if batch.state == "in_progress":
                    batch.end(expire=expire)

    @property
    def all(self) -> list[EmulatedBatch]:
        """Every batch, oldest first."""
        with self._lock:
            return list(self._batches.values())


def rfc3339(when: float) -> str:
    """A Unix time as the APIs write it: RFC 3339 in UTC with a `Z`."""
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat().replace("+00:00", "Z")
