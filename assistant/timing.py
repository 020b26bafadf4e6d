"""Where one question's time went: wall time per stage (start-up, index, route, context, each call, …), and
inside a model call its phases (model load, prompt evaluation, first token, decoding) as its backend timed them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from models.base import GenerationResult


class Timings:
    """Wall-clock seconds per named stage, in the order the stages first ran; a stage run twice adds up."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.details: dict[str, str] = {}
        """What a stage's time was made of (a model call's phases), shown beside it."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as (part of) stage `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def explain(self, name: str, detail: str) -> None:
        """Say what stage `name`'s time was made of (the latest word counts)."""
        if detail:
            self.details[name] = detail

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` towards stage `name`."""
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    def line(self, total_s: float) -> str:
        """`start-up 210 ms · index 35 ms · local call 900 ms (model load 300 ms, …) · … · other 3 ms · total
        1262 ms`; `other` is what no stage covered."""
        parts = [f"{name} {seconds * 1000:.0f} ms" + (f" ({self.details[name]})" if name in self.details else "")
                 for name, seconds in self.stages.items()]
        other = total_s - sum(self.stages.values())
        if other >= 0.0005:
            parts.append(f"other {other * 1000:.0f} ms")
        return " · ".join([*parts, f"total {total_s * 1000:.0f} ms"])


def call_phases(result: GenerationResult) -> str:
    """A call's phases as its backend timed them: `model load 300 ms, prompt 420 ms for 812 tokens, first token
    730 ms, decode 37 tokens at 155 tokens/s` (an in-process model), or the first token and the decoding (a
    streamed one); empty when the backend timed none."""
    timings, parts = result.timings, []
    if timings.load_ms is not None:
        parts.append(f"model load {timings.load_ms:.0f} ms")
    if timings.prompt_ms is not None:
        tokens = f" for {timings.prompt_tokens} tokens" if timings.prompt_tokens is not None else ""
        parts.append(f"prompt {timings.prompt_ms:.0f} ms{tokens}")
    if result.ttft_ms is not None:
        parts.append(f"first token {result.ttft_ms:.0f} ms")
    decoded = result.usage.output_tokens - 1  # after the first
    if timings.decode_ms is not None and timings.decode_ms > 0 and decoded > 0:
        parts.append(f"decode {result.usage.output_tokens} tokens at {decoded / timings.decode_ms * 1000:.1f} tokens/s")
    return ", ".join(parts)
