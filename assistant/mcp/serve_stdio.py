"""MCP over stdio with stdin read by a daemon thread: the SDK's own reader waits for stdin in a worker
thread that a cancellation cannot leave, so a server whose client keeps the pipe open could not stop on a
signal; this one stops at once."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server


class StdinLines:
    """The lines of a file descriptor as text, read with `os.read` by a daemon thread into a memory stream (no
    buffered reader whose lock a blocked read would hold at interpreter shutdown)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._send: MemoryObjectSendStream[str]
        self._receive: MemoryObjectReceiveStream[str]
        self._send, self._receive = anyio.create_memory_object_stream[str](16)

    def start(self) -> None:
        """Start reading (call inside the event loop)."""
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._read, args=(token,), name="tiercode-mcp-stdin", daemon=True).start()

    def _read(self, token: Any) -> None:
        pending = b""
        try:
            while chunk := os.read(self._fd, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    anyio.from_thread.run(self._send.send, line.decode("utf-8", "replace") + "\n", token=token)
            if pending.strip():
                anyio.from_thread.run(self._send.send, pending.decode("utf-8", "replace"), token=token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return  # the server stopped first: nothing left to feed

    def __aiter__(self) -> AsyncIterator[str]:
        return self._receive.__aiter__()


async def serve_stdio(server: MCPServer) -> None:
    """Serve one client on this process's stdin and stdout until it closes stdin (or the task is cancelled).
    While serving, fd 0 reads the null device (a child process cannot eat the wire) and stray prints to
    stdout go to stderr (the SDK's claim on fd 1)."""
    wire = os.dup(0)
    _point_at_null(0)
    lines = StdinLines(wire)
    lines.start()
    lowlevel = server._lowlevel_server  # the SDK's run_stdio_async, with our stdin
    try:
        async with stdio_server(stdin=lines) as (read_stream, write_stream):  # type: ignore[arg-type]
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
    finally:
        os.dup2(wire, 0)  # `wire` stays open: the reader thread may still be blocked on it


def _point_at_null(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, fd)
    os.close(null)
