"""`tiercode mcp` over streamable HTTP on 127.0.0.1, and SIGINT/SIGTERM stopping the server cleanly however
it serves (stdio with the client's pipe still open, or HTTP with a client connected)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from tests.indexer.test_cli import HANG_GUARD, Lines
from tests.mcp.conftest import READ_TIMEOUT, TIERCODE, server_env, text_of

STOPS = [signal.SIGINT, signal.SIGTERM]


def _start(repo: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*TIERCODE, "mcp", "--repo", str(repo), *flags], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env())


def _stop(proc: subprocess.Popen[str], how: signal.Signals, stderr: Lines) -> str:
    """Send the signal, wait for the end (a hang guard, not a timing assertion) and return stderr."""
    proc.send_signal(how)
    try:
        proc.wait(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
    return stderr.text()


@pytest.mark.parametrize("how", STOPS, ids=lambda s: s.name)
async def test_http_mode_serves_every_tool_on_loopback_and_stops_on_a_signal(
    langs_repo: Path, how: signal.Signals
) -> None:
    proc = _start(langs_repo, "--http", "0")
    assert proc.stderr is not None
    stderr = Lines(proc.stderr)
    try:
        announced = stderr.wait_for("serving MCP on")
        url = re.search(r"http://127\.0\.0\.1:\d+/mcp", announced)
        assert url, stderr.text()
        async with Client(url.group(0), read_timeout_seconds=READ_TIMEOUT) as client:
            assert len((await client.list_tools()).tools) == 7
            found = await client.call_tool("find_definition", {"name": "Store"})
            outline = await client.call_tool("outline", {"path": "go/server.go"})
            unknown = await client.call_tool("find_definition", {"name": "Nowhere"})
    finally:
        text = _stop(proc, how, stderr)
    assert not found.is_error and "rust/lib.rs:4" in text_of(found)
    assert "func NewServer(addr string) *Server" in text_of(outline)
    assert unknown.is_error and "No definition of Nowhere" in text_of(unknown)
    assert proc.returncode == 0, text
    assert f"stopped ({how.name})" in text and "Traceback" not in text


@pytest.mark.parametrize("how", STOPS, ids=lambda s: s.name)
def test_stdio_mode_stops_on_a_signal_while_the_client_keeps_stdin_open(langs_repo: Path, how: signal.Signals) -> None:
    proc = _start(langs_repo)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stdout, stderr = Lines(proc.stdout), Lines(proc.stderr)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1], "capabilities": {},
        "clientInfo": {"name": "signal-test", "version": "0"}}}
    try:
        proc.stdin.write(json.dumps(initialize) + "\n")
        proc.stdin.flush()
        reply = stdout.wait_for('"id":1')
        assert json.loads(reply)["result"]["serverInfo"]["name"] == "tiercode", stderr.text()
    finally:
        text = _stop(proc, how, stderr)  # stdin is still open: the server must not wait for it
    proc.stdin.close()
    assert proc.returncode == 0, text
    assert f"stopped ({how.name})" in text and "Traceback" not in text


def test_a_taken_port_is_a_one_line_usage_error(langs_repo: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*TIERCODE, "mcp", "--repo", str(langs_repo), "--http", str(port)], capture_output=True,
                              text=True, env=server_env(), timeout=HANG_GUARD)
    assert done.returncode == 2
    assert re.fullmatch(rf"tiercode: error: cannot listen on 127\.0\.0\.1:{port} \(.+\); pick another --http port\n",
                        done.stderr), done.stderr


README = Path(__file__).parents[2] / "README.md"


async def test_the_readmes_client_configurations_start_a_working_server(langs_repo: Path) -> None:
    readme = README.read_text(encoding="utf-8")
    cursor = json.loads(next(b.split("```", 1)[0] for b in readme.split("```json\n")[1:] if "mcpServers" in b))
    entry = cursor["mcpServers"]["tiercode"]
    claude = re.search(r"^claude mcp add --scope project tiercode -- (.+)$", readme, re.M)
    assert claude and entry["command"] == "tiercode"
    commands = [[arg.replace("${workspaceFolder}", str(langs_repo)) for arg in entry["args"]],
                claude.group(1).split()[1:]]  # Claude Code starts it in the project folder
    for args in commands:
        params = StdioServerParameters(command=TIERCODE[0], args=[*TIERCODE[1:], *args], env=server_env(),
                                       cwd=langs_repo)
        async with Client(params, read_timeout_seconds=READ_TIMEOUT) as client:
            found = await client.call_tool("find_definition", {"name": "Color"})
        assert not found.is_error and "typescript/service.ts:9" in text_of(found), args
