"""Every MCP tool call, one at a time, answered and written to the ledger: an index tool is one record
(tier and provider `index`, $0), `ask_cheap` adds a `delivered` record beside the cascade's own calls; each
carries the tool's name and the tokens its result returned to the agent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from assistant.accounting.ledger import DELIVERED, CallRecord, new_id
from assistant.answer import Answer
from assistant.live_index import LiveIndex
from assistant.mcp.live import freshness
from assistant.mcp.tools import RepoTools, ToolFailure, cheap_reply


class ToolCalls:
    """Runs the tools of one server in turn (the index's writer is the watcher; models are not thread-safe)."""

    def __init__(self, tools: RepoTools, live: LiveIndex) -> None:
        self.tools = tools
        self.live = live
        self._lock = threading.Lock()

    def index_tool(self, tool: str, run: Callable[[], str]) -> str:
        """Answer an index tool: the text and the index's freshness; ToolFailure (recorded) for bad input."""
        with self._lock:
            started = time.perf_counter()
            query_id = new_id()
            try:
                text = f"{run()}\n({freshness(self.live)})"
            except ToolFailure as exc:
                self._failed(tool, str(exc), started)
                raise
            self._record(CallRecord(**self._index(query_id, tool), outcome="ok", latency_ms=_since(started),
                                    returned_tokens=self._tokens(text)))
            return text

    def rejected(self, tool: str, error: str) -> None:
        """Record a call the SDK refused before any tool ran (arguments against the schema, an unknown tool)."""
        with self._lock:
            self._failed(tool[:64], error, time.perf_counter())

    def _failed(self, tool: str, error: str, started: float) -> None:
        self._record(CallRecord(**self._index(new_id(), tool), outcome="error", error=error[:300],
                                latency_ms=_since(started), returned_tokens=self._tokens(error)))

    def ask_cheap(self, question: str) -> str:
        """Answer through the cheap cascade (its calls are recorded by the pipeline) and record what the agent got."""
        with self._lock:
            started = time.perf_counter()
            try:
                answer = self.tools.ask_cheap(question)
            except ToolFailure as exc:
                self._deliver(new_id(), "none", "", str(exc), started, error=str(exc)[:300])
                raise
            text = f"{cheap_reply(answer)}\n({freshness(self.live)})"
            self._deliver(answer.query_id, answer.tier, answer.model, text, started, answer=answer)
            return text

    def _deliver(self, query_id: str, tier: str, model: str, text: str, started: float, error: str = "",
                 answer: Answer | None = None) -> None:
        self._record(CallRecord(
            session_id=self.tools.session.session_id, query_id=query_id, tier=tier, provider="mcp", model=model,
            outcome=DELIVERED, kind=answer.kind if answer else "", latency_ms=_since(started), error=error,
            tool="ask_cheap", returned_tokens=self._tokens(text),
        ))

    def _index(self, query_id: str, tool: str) -> dict[str, str]:
        return {"session_id": self.tools.session.session_id, "query_id": query_id, "tier": "index",
                "provider": "index", "model": "index", "kind": "lookup", "route_stage": "index", "tool": tool}

    def _tokens(self, text: str) -> int:
        return self.tools.count_tokens(text)

    def _record(self, record: CallRecord) -> None:
        self.tools.session.ledger.record(record)


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
