"""The MCP server on the official SDK: the tools with their JSON schemas and descriptions for an agent,
served over stdio or streamable HTTP on loopback until SIGINT or SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Callable
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from assistant import __version__
from assistant.errors import UsageError
from assistant.mcp.calls import ToolCalls
from assistant.mcp.serve_stdio import serve_stdio
from assistant.mcp.tools import ToolFailure
from assistant.session import QuietReporter

INSTRUCTIONS = (
    "Tiercode's code index of this repository (Python, JavaScript, TypeScript, Go, Rust, Java, C, C++), kept "
    "live while files change. Prefer these tools to reading whole files: find_definition / find_references / "
    "outline give exact path:line answers for a few hundred tokens; grep is grep -rn over the indexed files; "
    "search finds the code a description or error message is about; repo_map is a ranked overview. All of "
    "them cost $0. ask_cheap answers a question with the free local model (or the index and caches)."
)
_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_LOCAL_MODEL = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)

Name = Annotated[str, Field(min_length=1, description="A symbol: `parse_header`, `Class.method` or `module.name`.")]
Path = Annotated[str, Field(min_length=1, description="A file path relative to the repository root, or its "
                                                      "unique end (`shapes.py`).")]


class _RecordedToolError(ToolError):
    """A tool's own failure, already in the ledger."""


class _LedgerServer(MCPServer):
    """The SDK's server whose refused calls (arguments against the schema, unknown tools) are ledger records too."""

    def __init__(self, calls: ToolCalls) -> None:
        super().__init__("tiercode", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
        self.calls = calls

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        """The SDK's call; a refusal it makes before the tool runs is recorded, then returned as it was."""
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc, _RecordedToolError) and not isinstance(exc.__cause__, _RecordedToolError):
                await anyio.to_thread.run_sync(self.calls.rejected, name, str(exc))
            raise


def build_server(calls: ToolCalls) -> MCPServer:
    """The MCP server whose tools answer through `calls` (each call recorded in the ledger)."""
    server = _LedgerServer(calls)
    for tool in _index_tools(calls):
        server.add_tool(tool, annotations=_READ_ONLY, structured_output=False)
    server.add_tool(_ask_tool(calls), annotations=_LOCAL_MODEL, structured_output=False)
    return server


def _reported(run: Callable[[], str]) -> str:
    """`run`'s text; a ToolFailure becomes the SDK's ToolError: an MCP error result the agent reads."""
    try:
        return run()
    except ToolFailure as exc:
        raise _RecordedToolError(str(exc)) from None


def _index_tools(calls: ToolCalls) -> list[Callable[..., str]]:
    """The six index tools: their signatures are their JSON schemas, their docstrings their descriptions."""
    tools = calls.tools

    def answer(tool: str, run: Callable[[], str]) -> str:
        return _reported(lambda: calls.index_tool(tool, run))

    def find_definition(name: Name) -> str:
        """Where a function, class, method, type or constant is defined: path:line, kind and signature of
        each definition (with its docstring's first line); close names when there is none. Exact and $0:
        use it instead of grepping and opening files."""
        return answer("find_definition", lambda: tools.find_definition(name))

    def find_references(
        name: Name,
        path: Annotated[str | None, Field(description="Only the references in this file.")] = None,
    ) -> str:
        """Where a symbol is called or used: path:line and the enclosing definition of each use (the first
        50, and how many in all). For callers, usages and the impact of a change."""
        return answer("find_references", lambda: tools.find_references(name, path))

    def outline(path: Path) -> str:
        """The definitions of one file, nested, each with its line and signature: a file's shape in a few
        lines instead of reading it whole."""
        return answer("outline", lambda: tools.outline(path))

    def grep(
        text: Annotated[str, Field(min_length=1, description="Literal text (not a regex); case-insensitive "
                                                             "unless it has a capital letter.")],
        limit: Annotated[int, Field(ge=1, le=500, description="How many lines to list.")] = 50,
    ) -> str:
        """Lines of the repository's indexed files that contain the text, each with path:line and its
        enclosing definition, and how many there are in all (like `grep -rn`, without vendored files)."""
        return answer("grep", lambda: tools.grep(text, limit))

    def search(
        query: Annotated[str, Field(min_length=1, description="A description, question, error message or "
                                                              "traceback.")],
        k: Annotated[int, Field(ge=1, le=100, description="How many definitions to list.")] = 10,
    ) -> str:
        """The definitions a text is about, best first (names, traceback frames, BM25 and, once the repository
        is embedded, embeddings): for 'where is the code that ...' when no name is known."""
        return answer("search", lambda: tools.search(query, k))

    def repo_map(
        tokens: Annotated[int, Field(ge=16, le=32768, description="Most tokens the map may take.")] = 1024,
        query: Annotated[str | None, Field(description="Rank towards the names in this text.")] = None,
    ) -> str:
        """A ranked map of the repository: files and the signatures of their most referenced definitions,
        as many as fit the token budget. An overview before exploring."""
        return answer("repo_map", lambda: tools.repo_map(tokens, query))

    return [find_definition, find_references, outline, grep, search, repo_map]


def _ask_tool(calls: ToolCalls) -> Callable[..., str]:
    def ask_cheap(
        question: Annotated[str, Field(min_length=1, description="A question about this repository's code.")],
    ) -> str:
        """Answer a question about the repository with what costs nothing: the index, Tiercode's answer caches
        and the free local model (a paid tier only if the server was started allowing one, within a per-call
        budget). Ends with who answered and the cost. For simple explanations; not for edits."""
        return _reported(lambda: calls.ask_cheap(question))

    return ask_cheap


def run(server: MCPServer, http_port: int | None, announce: Callable[[str], None]) -> str:
    """Serve until the client leaves (stdio), or until SIGINT or SIGTERM: the name of the signal that stopped
    it, or '' when the client closed stdin. A taken --http port is a usage error."""
    stopped_by: list[str] = []
    listener = None if http_port is None else _listen(http_port)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            if listener is None:
                group.start_soon(_on_signal, group.cancel_scope.cancel, stopped_by)
                await serve_stdio(server)
            else:
                web = _web_server(server)
                group.start_soon(_on_signal, lambda: setattr(web, "should_exit", True), stopped_by)
                announce(f"serving MCP on http://127.0.0.1:{listener.getsockname()[1]}/mcp")
                await web.serve(sockets=[listener])
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        if listener is not None:
            listener.close()
    return stopped_by[0] if stopped_by else ""


def interrupt_on_sigterm() -> None:
    """Until the server serves, SIGTERM interrupts start-up (the index scan) as Ctrl-C does: the command's
    clean-up runs and it exits with a one-line notice."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


async def _on_signal(stop: Callable[[], None], stopped_by: list[str]) -> None:
    """Wait for SIGINT or SIGTERM, then stop the server (handlers installed here, for every transport)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for number in signals:
            stopped_by.append(signal.Signals(number).name)
            stop()
            return


def _listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:port (0: any free port)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", port))
    except OSError as exc:
        listener.close()
        raise UsageError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --http port") from None
    return listener


def _web_server(server: MCPServer) -> Any:
    """uvicorn serving the SDK's streamable HTTP app at /mcp; its own signal capture is off (ours stops it,
    gracefully: open streams get 2 s)."""
    import uvicorn

    config = uvicorn.Config(server.streamable_http_app(host="127.0.0.1"), log_level="warning",
                            timeout_graceful_shutdown=2)
    web = uvicorn.Server(config)
    web.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    return web


class StderrReporter(QuietReporter):
    """The session's notices on stderr (stdout is the MCP wire); nothing streams, every confirmation is declined
    (no one to ask: a budget that would ask stops instead)."""

    def __init__(self, notify: Callable[[str], None]) -> None:
        self.notify = notify

    def status(self, message: str) -> None:
        """A one-line notice on stderr."""
        self.notify(message)
