"""Fixtures of the MCP server tests: a copy of the multi-language fixture repository and the official MCP
client of the same SDK, starting `tiercode mcp` as a subprocess over stdio."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from tests.conftest import FIXTURES
from tests.emulators import fixtures

cloud_emulators = fixtures.cloud_emulators

TIERCODE = [sys.executable, "-c", "from assistant.cli.main import main; main()"]
"""The command line of `tiercode`, from this checkout."""
READ_TIMEOUT = 300.0
"""Seconds the client waits for one answer: a guard against a hang, not a timing assertion."""


@pytest.fixture
def langs_repo(tmp_path: Path) -> Path:
    """A copy of the fixture repository with a file in each language the index parses."""
    repo = tmp_path / "langs"
    shutil.copytree(FIXTURES / "langs", repo)
    return repo


def server_env() -> dict[str, str]:
    """This process's environment (the test's XDG folders, emulator URLs and keys) for the server."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


ServerClient = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def mcp_client() -> ServerClient:
    """`async with mcp_client(repo, *flags) as client`: the official client, connected over stdio to
    `tiercode mcp --repo REPO FLAGS` started as a subprocess."""

    @asynccontextmanager
    async def connect(repo: Path, *flags: str) -> AsyncIterator[Client]:
        params = StdioServerParameters(command=TIERCODE[0], args=[*TIERCODE[1:], "mcp", "--repo", str(repo), *flags],
                                       env=server_env())
        async with Client(params, read_timeout_seconds=READ_TIMEOUT) as client:
            yield client

    return connect


def text_of(result: CallToolResult) -> str:
    """The text of a tool result (its content blocks joined)."""
    return "\n".join(getattr(block, "text", "") for block in result.content)


def run_tiercode(*args: str) -> subprocess.CompletedProcess[str]:
    """`tiercode ARGS` to its end, output captured."""
    return subprocess.run([*TIERCODE, *args], capture_output=True, text=True, env=server_env(), timeout=READ_TIMEOUT)
