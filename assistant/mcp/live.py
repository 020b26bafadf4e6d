"""How fresh the served index is, for each answer's last line (the index's life is assistant/live_index.py's
`LiveIndex`, which `tiercode mcp` starts and closes like every other face)."""

from __future__ import annotations

import datetime as dt
import time

from assistant.live_index import LiveIndex


def freshness(live: LiveIndex, now: float | None = None) -> str:
    """When the index last changed: `index updated 12 s ago, at 2026-12-06 16:55:02 UTC`."""
    now = time.time() if now is None else now
    updated = live.last_updated if live.last_updated is not None else now
    seconds = max(0, round(now - updated))
    ago = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
    clock = dt.datetime.fromtimestamp(updated, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    watching = "" if live.watching else "; not watching for changes"
    return f"index updated {ago} ago, at {clock} UTC{watching}"
