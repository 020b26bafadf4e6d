"""Verify the edits an answer proposes: they must apply to the files as they are, and, when the user
configured a test command, the repository's tests must pass with them applied.

The tests run in a scratch copy of the repository, so a bad patch never touches the user's files.
Dependency folders (.venv, node_modules) are linked into the copy rather than copied; caches and
version-control folders are left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.edits import EditError, FileChange, parse_edits, plan_changes
from indexer.scan import VENDORED_DIRS

LINKED_DIRS = frozenset({"node_modules", ".venv", "venv", "site-packages"})
"""Installed dependencies: the copy links to them so the test command finds them."""


@dataclass(frozen=True)
class PatchCheck:
    """What checking one answer's edits found."""

    reason: str = ""
    """Empty when the edits apply (and pass the tests); otherwise why the answer should escalate."""
    note: str = ""
    """Something the user should know either way (e.g. the tests fail even without the patch)."""


def check_patch(
    answer: str,
    repo: Path,
    test_command: str | None = None,
    timeout_s: float = 300.0,
    on_testing: Callable[[], None] | None = None,
) -> PatchCheck:
    """Check the edits proposed in `answer` against `repo`; an answer without edits passes. `on_testing` is
    called before the test command starts (it can take a while)."""
    edits = parse_edits(answer)
    if not edits:
        return PatchCheck()
    try:
        changes = plan_changes(edits, repo)
    except EditError as exc:
        return PatchCheck(f"a proposed edit does not apply ({exc})")
    if not changes or not test_command:
        return PatchCheck()
    if on_testing is not None:
        on_testing()
    patched = run_tests(repo, changes, test_command, timeout_s)
    if patched.passed:
        return PatchCheck(note=f"the patch passes `{test_command}`")
    baseline = run_tests(repo, [], test_command, timeout_s)
    if not baseline.passed:
        return PatchCheck(note=f"`{test_command}` fails with or without the patch ({baseline.summary})")
    return PatchCheck(f"the proposed patch fails `{test_command}` ({patched.summary})")


@dataclass(frozen=True)
class CommandRun:
    """The outcome of one run of the test command."""

    passed: bool
    summary: str
    """Exit status and the last line of output, or why it did not finish."""


def run_tests(repo: Path, changes: list[FileChange], test_command: str, timeout_s: float) -> CommandRun:
    """Run `test_command` in a scratch copy of `repo` with `changes` written into it."""
    with tempfile.TemporaryDirectory(prefix="tiercode-patch-") as scratch:
        copy = Path(scratch) / repo.name
        _copy_repo(repo, copy)
        for change in changes:
            target = copy / change.path
            if change.after is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(change.after, encoding="utf-8")
        try:
            done = subprocess.run(test_command, shell=True, cwd=copy, capture_output=True, text=True,
                                  errors="replace", timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return CommandRun(False, f"timed out after {timeout_s:g} s")
    if done.returncode == 0:
        return CommandRun(True, "exit 0")
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    last = lines[-1][:200] if lines else "no output"
    return CommandRun(False, f"exit {done.returncode}: {last}")


def _copy_repo(repo: Path, copy: Path) -> None:
    """Copy the working tree without caches and version control; link dependency folders."""

    def skipped(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name in VENDORED_DIRS}

    shutil.copytree(repo, copy, symlinks=True, ignore=skipped)
    for linked in LINKED_DIRS:
        if (repo / linked).is_dir():
            os.symlink(repo / linked, copy / linked, target_is_directory=True)
