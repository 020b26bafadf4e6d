"""SIGINT and SIGTERM stop a long-running command (`index --watch`, the TUI) however it was started."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_on_signals(on_stop: Callable[[], None] | None = None) -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM stop the command: they raise KeyboardInterrupt in the main
    thread, or call `on_stop` when given (the TUI asks its app to exit).

    The handlers are installed explicitly and the signals unblocked, because a process started from a
    non-interactive shell's `&` job, `nohup` or a CI runner inherits SIGINT ignored, and Python then never
    turns Ctrl-C into KeyboardInterrupt. The previous handlers come back on leaving. Main thread only."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if on_stop is None:
            raise KeyboardInterrupt
        on_stop()

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
