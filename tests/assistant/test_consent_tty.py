"""Consent with piped input: `git diff | tiercode ask "review this"` asks on the controlling terminal
(/dev/tty, a real pseudo-terminal here), as git and ssh do; with no terminal at all it declines, naming --yes."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.emulators import fixtures

PIPED = "def area(r):\n    return 3.14 * r * r\n"
GUARD_SECONDS = 240.0
"""A guard against hangs (a process that never answers), not a timing assertion."""
pytestmark = [pytest.mark.usefixtures("loopback_only"), pytest.mark.timeout(2 * GUARD_SECONDS)]


def start(repo: Path, terminal: str | None) -> subprocess.Popen[bytes]:
    """`ask "review this"` with stdin a pipe, in a session of its own whose controlling terminal is
    `terminal` (a pty's slave side), or that has none."""

    def attach() -> None:
        if terminal is not None:  # make the pty this new session's controlling terminal
            fd = os.open(terminal, os.O_RDWR)
            fcntl.ioctl(fd, termios.TIOCSCTTY, 0)
            os.close(fd)

    env = dict(os.environ, TIERCODE_TIERS='["groq"]', TIERCODE_CONFIRM_ABOVE_USD="0")
    command = [sys.executable, "-c", "from assistant.cli.main import main; main()", "ask", "review this", "--repo",
               str(repo)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, start_new_session=True, preexec_fn=attach)
    assert process.stdin is not None
    process.stdin.write(PIPED.encode())
    process.stdin.close()
    process.stdin = None  # written and closed: the pipe's end is all the program reads
    return process


def read_until(master: int, marker: bytes, process: subprocess.Popen[bytes]) -> bytes:
    """What the program wrote on its terminal, up to `marker`."""
    seen = b""
    while marker not in seen:  # until it comes: the module's pytest-timeout is the hang guard
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode} before asking: {process.communicate()[1].decode()}")
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            seen += os.read(master, 1024)
    return seen


@pytest.mark.parametrize(("reply", "code", "requests"), [(b"y\n", 0, 1), (b"n\n", 3, 0)])
def test_piped_input_is_confirmed_on_the_controlling_terminal(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators, reply: bytes, code: int, requests: int
) -> None:
    master, slave = os.openpty()
    try:
        process = start(sample_repo, os.ttyname(slave))
        prompt = read_until(master, b"[y/N]: ", process)
        os.write(master, reply)
        out, err = process.communicate(timeout=GUARD_SECONDS)
    finally:
        os.close(master)
        os.close(slave)
    assert b"Ask groq (" in prompt and b"for up to $" in prompt
    assert process.returncode == code, err.decode()
    assert len(cloud_emulators.groq.bodies()) == requests
    if requests:
        assert PIPED.splitlines()[1].strip() in str(cloud_emulators.groq.bodies()[0])  # the piped code was sent
        assert out.strip()
    else:
        assert "groq call declined" in err.decode() and "pass --yes" in err.decode()


def test_with_no_terminal_at_all_the_prompt_declines_naming_yes(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    process = start(sample_repo, None)
    _, err = process.communicate(timeout=GUARD_SECONDS)
    assert process.returncode == 3
    assert "declined without a terminal to ask on" in err.decode() and "pass --yes" in err.decode()
    assert "Traceback" not in err.decode()
    assert cloud_emulators.groq.bodies() == []
