"""SIGINT and SIGTERM close the TUI as /quit does, with the index's watcher stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from assistant.signals import stop_on_signals
from tests.tui.helpers import make_app, wait_for


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_closes_the_app_and_stops_watching(sample_repo: Path, signal_number: int) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.index.watching, "the index to be live")
        with stop_on_signals(app.exit_on_signal):  # what run_tui installs around app.run()
            os.kill(os.getpid(), signal_number)
            await wait_for(pilot, lambda: app.return_code is not None, "the app to exit")
    assert app.return_code == 0
    assert not app.index.watching
