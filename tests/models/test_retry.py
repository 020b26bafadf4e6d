"""call_with_retry: which errors are retried, how long it waits, the budget, and the attempt reports."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from models.base import Cancelled, GenerationResult, ModelError, Usage
from models.retry import RetryPolicy, call_with_retry


def _transient(retry_after: float | None = None, status: int = 503) -> ModelError:
    return ModelError(f"Groq service unavailable ({status})", provider="groq", status=status, transient=True,
                      retry_after=retry_after, partial_usage=Usage(input_tokens=10))


def _permanent() -> ModelError:
    return ModelError("Groq rejected the API key (401)", provider="groq", status=401)


def _result(text: str = "ok") -> GenerationResult:
    return GenerationResult(text, "groq", "m", Usage(1, 1), 1.0, 1.0, "stop")


class Script:
    """A call that raises or returns the scripted outcomes in order, counting its invocations."""

    def __init__(self, *outcomes: BaseException | GenerationResult) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> GenerationResult:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Log:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.attempts: list[tuple[int, object]] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_attempt(self, attempt: int, outcome: object) -> None:
        self.attempts.append((attempt, outcome))


def _run(call: Callable[[], GenerationResult], log: Log, **options: object) -> GenerationResult:
    return call_with_retry(call, sleep=log.sleep, on_attempt=log.on_attempt, **options)  # type: ignore[arg-type]


def test_success_first_time_reports_one_attempt() -> None:
    log, answer = Log(), _result()
    assert _run(Script(answer), log) is answer
    assert log.attempts == [(1, answer)]
    assert log.sleeps == []


def test_transient_errors_are_retried_until_an_answer() -> None:
    log, answer = Log(), _result()
    first, second = _transient(), _transient(status=529)
    script = Script(first, second, answer)
    assert _run(script, log, rng=lambda: 1.0) is answer
    assert script.calls == 3
    assert log.attempts == [(1, first), (2, second), (3, answer)]
    assert log.sleeps == [0.5, 1.0]


def test_at_most_three_retries_then_the_last_error() -> None:
    log = Log()
    errors = [_transient() for _ in range(5)]
    script = Script(*errors)
    with pytest.raises(ModelError) as caught:
        _run(script, log, rng=lambda: 1.0)
    assert caught.value is errors[3]
    assert script.calls == 4
    assert [n for n, _ in log.attempts] == [1, 2, 3, 4]
    assert log.sleeps == [0.5, 1.0, 2.0]


def test_permanent_error_fails_at_once() -> None:
    log, error = Log(), _permanent()
    script = Script(error, _result())
    with pytest.raises(ModelError) as caught:
        _run(script, log)
    assert caught.value is error
    assert script.calls == 1
    assert log.attempts == [(1, error)]
    assert log.sleeps == []


def test_retry_after_is_honoured_instead_of_backoff() -> None:
    log = Log()
    assert _run(Script(_transient(retry_after=2.5), _result()), log, rng=lambda: 1.0).text == "ok"
    assert log.sleeps == [2.5]


def test_retry_after_longer_than_the_limit_gives_up() -> None:
    log, error = Log(), _transient(retry_after=600)
    with pytest.raises(ModelError) as caught:
        _run(Script(error, _result()), log, policy=RetryPolicy(max_retry_after=60))
    assert caught.value is error
    assert log.sleeps == []


def test_full_jitter_stays_under_a_capped_ceiling() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n, rng=lambda: 1.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [0.5, 1, 2, 4, 8, 16, 20]
    assert policy.backoff(3, rng=lambda: 0.25) == 0.5
    assert policy.backoff(1, rng=lambda: 0.0) == 0.0


def test_no_retry_the_budget_cannot_pay_for() -> None:
    log, error = Log(), _transient()
    asked: list[bool] = []

    def can_afford() -> bool:
        asked.append(True)
        return False

    script = Script(error, _result())
    with pytest.raises(ModelError) as caught:
        _run(script, log, can_afford=can_afford)
    assert caught.value is error
    assert script.calls == 1
    assert asked == [True]
    assert log.sleeps == []
    assert log.attempts == [(1, error)]


def test_budget_is_asked_before_every_retry() -> None:
    log = Log()
    answers = iter([True, False])
    errors = [_transient(), _transient()]
    script = Script(*errors, _result())
    with pytest.raises(ModelError) as caught:
        _run(script, log, can_afford=lambda: next(answers))
    assert caught.value is errors[1]
    assert script.calls == 2
    assert len(log.sleeps) == 1


def test_cancel_stops_retrying() -> None:
    log, cancel = Log(), threading.Event()
    error = _transient()

    def call() -> GenerationResult:
        cancel.set()
        raise error

    with pytest.raises(ModelError) as caught:
        _run(call, log, cancel=cancel)
    assert caught.value is error
    assert log.sleeps == []


def test_cancel_during_the_wait_stops_the_retry() -> None:
    cancel = threading.Event()
    script = Script(_transient(), _result())
    attempts: list[int] = []
    with pytest.raises(ModelError):
        call_with_retry(script, cancel=cancel, sleep=lambda _: cancel.set(),
                        on_attempt=lambda n, _: attempts.append(n))
    assert script.calls == 1
    assert attempts == [1]


class _RecordingEvent(threading.Event):
    """A cancel event whose waits return at once and are remembered."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


def test_the_default_wait_is_the_cancel_event() -> None:
    cancel = _RecordingEvent()
    assert call_with_retry(Script(_transient(retry_after=30), _result()), cancel=cancel).text == "ok"
    assert cancel.waits == [30]


def test_cancelled_and_other_exceptions_pass_through_and_are_reported() -> None:
    log = Log()
    stopped = Cancelled(_result("partial"))
    with pytest.raises(Cancelled) as caught:
        _run(Script(stopped, _result()), log)
    assert caught.value is stopped
    assert log.attempts == [(1, stopped)]
    bug = RuntimeError("bug")
    with pytest.raises(RuntimeError):
        _run(Script(bug, _result()), log)
    assert log.attempts[-1] == (1, bug)
    assert log.sleeps == []


def test_failed_attempts_keep_their_partial_usage() -> None:
    log = Log()
    _run(Script(_transient(), _result()), log)
    failed = log.attempts[0][1]
    assert isinstance(failed, ModelError)
    assert failed.partial_usage == Usage(input_tokens=10)
