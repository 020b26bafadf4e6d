"""Where one question's time went: wall time per stage (start-up, index, route, context, each call, …)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timings:
    """Wall-clock seconds per named stage, in the order the stages first ran; a stage run twice adds up."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as (part of) stage `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` towards stage `name`."""
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    def line(self, total_s: float) -> str:
        """`start-up 210 ms · index 35 ms · … · other 3 ms · total 362 ms`; `other` is what no stage covered."""
        parts = [f"{name} {seconds * 1000:.0f} ms" for name, seconds in self.stages.items()]
        other = total_s - sum(self.stages.values())
        if other >= 0.0005:
            parts.append(f"other {other * 1000:.0f} ms")
        return " · ".join([*parts, f"total {total_s * 1000:.0f} ms"])
