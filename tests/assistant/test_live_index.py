"""The index's one owner: opens it, keeps it live (watched files, edits Tiercode made) and closes it."""

from __future__ import annotations

import time
from pathlib import Path

from assistant.config import load_settings
from assistant.live_index import LiveIndex
from assistant.session import Session

HANG_GUARD = 120.0
"""Seconds before a wait gives up: a guard against a hang, not a timing assertion."""


def _wait_for(condition: object) -> bool:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_the_live_index_follows_files_and_edits_until_closed(sample_repo: Path) -> None:
    changes: list[str] = []
    session = Session(sample_repo, load_settings(sample_repo))
    live = LiveIndex(session, on_change=changes.extend)
    try:
        opened = live.status()
        assert (opened.files, opened.watching, opened.vectors) == (3, False, None)
        assert opened.last_updated is not None
        assert live.start_watching(embed=False) and live.status().watching
        (sample_repo / "pkg" / "extra.py").write_text("def added() -> int:\n    return 1\n")
        assert _wait_for(lambda: "pkg/extra.py" in changes), "the watcher never reported the new file"
        watched = live.status()
        assert watched.files == 4 and watched.last_updated is not None and watched.last_updated >= opened.last_updated
        (sample_repo / "pkg" / "extra.py").write_text("def renamed() -> int:\n    return 2\n")
        live.update(["pkg/extra.py"])  # an edit Tiercode made is in the index when `update` returns
        assert [s.path for s in session.store().definitions("renamed")] == ["pkg/extra.py"]
    finally:
        live.close()
        assert not live.status().watching
        session.close()
