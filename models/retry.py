"""Retrying transient model failures: few retries, full-jitter backoff, `retry-after`, and the budget.

Only `ModelError`s marked `transient` are retried (rate limits, overload, server errors, dropped
connections); anything else fails at once. An attempt whose stream already delivered text is not
retried either: that text has reached the user (stdout, a pipe, the TUI), and a new attempt would be a
different answer after it, so it fails like the official SDKs' streams do and the cascade's next tier
answers instead. Every attempt, successful or not, is reported to
`on_attempt` so the caller can write one ledger record per attempt: a failed attempt may still have
cost money (its `partial_usage`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from models.base import ModelError

T = TypeVar("T")

AttemptCallback = Callable[[int, object], None]
"""Called with (attempt number from 1, the attempt's result or the exception it raised)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before trying again."""

    max_retries: int = 3
    """Retries after the first attempt."""
    base_delay: float = 0.5
    """Seconds; the backoff ceiling doubles from here with each retry."""
    max_delay: float = 20.0
    """Seconds; the backoff ceiling never exceeds this."""
    max_retry_after: float = 60.0
    """Give up instead of waiting when the provider asks for a longer pause than this (seconds)."""

    def backoff(self, retry: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (from 1): full jitter, uniform in [0, ceiling]."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return rng() * ceiling

    def delay(self, retry: int, error: ModelError, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before retrying after `error`, or None when it should not be retried."""
        if not error.transient or error.partial_text or retry > self.max_retries:
            return None
        if error.retry_after is not None:
            return None if error.retry_after > self.max_retry_after else max(0.0, error.retry_after)
        return self.backoff(retry, rng)


DEFAULT_POLICY = RetryPolicy()
NO_RETRIES = RetryPolicy(max_retries=0)
"""For backends whose failures are not worth retrying (their capabilities say so)."""


def call_with_retry(
    call: Callable[[], T],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    on_attempt: AttemptCallback | None = None,
    on_retry: Callable[[int, ModelError], object] | None = None,
    can_afford: Callable[[], bool] | None = None,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], object] | None = None,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run `call`, retrying transient ModelErrors per `policy`; return its result or raise its last error.

    `on_attempt` sees every attempt; `on_retry` (retry number from 1, the error) each retry about to be
    made. Before each retry, `can_afford()` is asked whether the budget can
    pay for another attempt; when it says no, the last error is raised instead. Setting `cancel`
    stops further retries (the wait is cut short when `sleep` is left to its default). `sleep` and
    `rng` are injectable so tests neither wait nor depend on chance.
    """
    wait = sleep or (cancel.wait if cancel is not None else time.sleep)
    attempt = 1
    while True:
        try:
            result = call()
        except Exception as exc:
            if on_attempt is not None:
                on_attempt(attempt, exc)
            if not isinstance(exc, ModelError):
                raise
            delay = policy.delay(attempt, exc, rng)
            if delay is None or _stopped(cancel) or (can_afford is not None and not can_afford()):
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            wait(delay)
            if _stopped(cancel):
                raise
            attempt += 1
            continue
        if on_attempt is not None:
            on_attempt(attempt, result)
        return result


def _stopped(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()
