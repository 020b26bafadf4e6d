"""Helpers for Pilot tests of the TUI: build the real app on the sample repository, wait for conditions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from assistant.config import load_settings
from assistant.tui.app import TiercodeApp

WAIT_SECONDS = 240.0
"""A guard against hangs, not a timing assertion: the slowest wait is a CPU model answering."""


def make_app(repo: Path, resume: str | None = None, **settings: Any) -> TiercodeApp:
    """The real app with real settings (offline and short answers unless told otherwise), on a saved
    conversation with `resume` ("last" or an id, as `tiercode -c` and `--resume` open it)."""
    settings.setdefault("offline", True)
    settings.setdefault("max_output_tokens", 48)
    return TiercodeApp(repo, load_settings(repo, **settings), resume)


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds; fail with `what` if it never does."""
    import time

    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await pilot.pause(0.05)


async def submit(pilot: Pilot[Any], line: str) -> None:
    """Type a line into the prompt and press Enter."""
    await pilot.click("#prompt")
    await pilot.press(*line)
    await pilot.press("enter")
    await pilot.pause()
