"""Verify the edits an answer proposes: they must apply to the files as they are, the files they produce
must still parse, and, when the user configured a test command, the repository's tests must pass with
them applied.

The tests run in a scratch copy of the repository, so a bad patch never touches the user's files.
Dependency folders (.venv, node_modules, at any depth) are linked into the copy rather than copied, and
a patch may not write into them; caches, version control and special files are left out. The command
runs in its own process group (a timeout or Ctrl+C stops all of it) without the provider API keys in
its environment: it runs code a model wrote before anyone has reviewed it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from assistant.changes.edits import EditError, FileChange, parse_edits, plan_changes
from indexer.languages import language_for
from indexer.parse import parse_source
from indexer.scan import VENDORED_DIRS

LINKED_DIRS = frozenset({"node_modules", ".venv", "venv", "site-packages"})
"""Installed dependencies: the copy links to them so the test command finds them."""

_SECRET_SUFFIXES = ("_API_KEY",)
"""Environment variables the test command does not get (ANTHROPIC_API_KEY, GEMINI_API_KEY, ...)."""

_POLL_S = 0.2


@dataclass(frozen=True)
class PatchCheck:
    """What checking one answer's edits found."""

    reason: str = ""
    """Empty when the edits pass; otherwise why the answer should escalate."""
    note: str = ""
    """Something the user should know either way (e.g. the tests fail even without the patch)."""


def check_patch(
    answer: str,
    repo: Path,
    test_command: str | None = None,
    timeout_s: float = 300.0,
    on_testing: Callable[[], None] | None = None,
    cancel: threading.Event | None = None,
) -> PatchCheck:
    """Check the edits proposed in `answer` against `repo`; an answer without edits passes. `on_testing` is
    called before the test command starts (it can take a while); `cancel` stops it."""
    edits = parse_edits(answer)
    if not edits:
        return PatchCheck()
    try:
        changes = plan_changes(edits, repo)
    except EditError as exc:
        return PatchCheck(f"a proposed edit does not apply ({exc})")
    for change in changes:
        parts = PurePosixPath(change.path).parts
        if any(part in VENDORED_DIRS for part in parts[:-1]):
            return PatchCheck(f"a proposed edit changes {change.path}, inside a dependency or build folder")
        if _newly_broken(change):
            return PatchCheck(f"the patched {change.path} does not parse")
    if not changes or not test_command:
        return PatchCheck()
    if on_testing is not None:
        on_testing()
    try:
        patched, baseline = run_tests(repo, changes, test_command, timeout_s, cancel)
    except (OSError, shutil.Error) as exc:
        return PatchCheck(note=f"could not run `{test_command}` on a copy of the repository ({exc})")
    if patched.passed:
        return PatchCheck(note=f"the patch passes `{test_command}`")
    if baseline is None:
        return PatchCheck(note=f"`{test_command}` was cancelled; the patch is untested")
    if not baseline.passed:
        return PatchCheck(note=f"`{test_command}` fails with or without the patch ({baseline.summary})")
    return PatchCheck(f"the proposed patch fails `{test_command}` ({patched.summary})")


def _newly_broken(change: FileChange) -> bool:
    """True when the patch turns a file that parsed (or did not exist) into one that does not."""
    spec = language_for(change.path)
    if spec is None or change.after is None or not parse_source(spec.name, change.after.encode()).has_errors:
        return False
    return change.before is None or not parse_source(spec.name, change.before.encode()).has_errors


@dataclass(frozen=True)
class CommandRun:
    """The outcome of one run of the test command."""

    passed: bool
    summary: str
    """Exit status and the last line of output, or why it did not finish."""


def run_tests(
    repo: Path, changes: list[FileChange], test_command: str, timeout_s: float,
    cancel: threading.Event | None = None,
) -> tuple[CommandRun, CommandRun | None]:
    """Run `test_command` in a scratch copy of `repo` with `changes` written into it; when that fails and
    was not cancelled, put the files back as they are in `repo` and run it again, so that a failure the
    patch did not cause is not blamed on it. Returns (with the patch, without it or None)."""
    needed = _tree_bytes(repo)
    with tempfile.TemporaryDirectory(prefix="tiercode-patch-") as scratch:
        free = shutil.disk_usage(scratch).free
        if needed * 2 > free:  # the copy, and room for what the tests write
            raise OSError(f"copying the repository needs about {needed >> 20} MiB; {free >> 20} MiB are free")
        copy = Path(scratch) / repo.name
        _copy_tree(repo, copy)
        _write(copy, [(change.path, change.after) for change in changes])
        patched = _run(test_command, copy, timeout_s, cancel)
        if patched.passed or (cancel is not None and cancel.is_set()):
            return patched, None
        _write(copy, [(change.path, change.before) for change in changes])
        return patched, _run(test_command, copy, timeout_s, cancel)


def _write(copy: Path, files: list[tuple[str, str | None]]) -> None:
    """Give files in the scratch copy these contents (None: the file does not exist)."""
    for path, contents in files:
        target = copy / path
        if not target.resolve().is_relative_to(copy.resolve()):
            raise OSError(f"{path} leads out of the scratch copy")
        if contents is None:
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(contents, encoding="utf-8")


def _run(command: str, cwd: Path, timeout_s: float, cancel: threading.Event | None) -> CommandRun:
    """Run `command` in its own process group; kill the whole group on timeout or cancel."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(_SECRET_SUFFIXES)}
    roots = [str(cwd / "src"), str(cwd)] if (cwd / "src").is_dir() else [str(cwd)]
    env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH")])])
    process = subprocess.Popen(command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read() if process.stdout else b""),
                              daemon=True)
    reader.start()
    waited = 0.0
    stopped = ""
    while process.poll() is None:
        if waited >= timeout_s:
            stopped = f"timed out after {timeout_s:g} s"
        elif cancel is not None and cancel.is_set():
            stopped = "cancelled"
        if stopped:
            _kill_group(process)
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(min(_POLL_S, timeout_s - waited))
        waited += _POLL_S
    reader.join(5)
    if stopped:
        return CommandRun(False, stopped)
    if process.returncode == 0:
        return CommandRun(True, "exit 0")
    lines = [line.strip() for line in b"".join(output).decode("utf-8", "replace").splitlines() if line.strip()]
    return CommandRun(False, f"exit {process.returncode}: {lines[-1][:200] if lines else 'no output'}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _tree_bytes(repo: Path) -> int:
    """Bytes of the regular files `_copy_tree` would copy."""
    total = 0
    for folder, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in VENDORED_DIRS]
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def _copy_tree(repo: Path, copy: Path) -> None:
    """Copy the working tree: regular files and links as they are, dependency folders linked, caches,
    version control and special files (sockets, pipes) left out. Unreadable files are left out too."""
    for folder, dirs, files in os.walk(repo):
        here = Path(folder)
        target = copy / here.relative_to(repo)
        target.mkdir(exist_ok=True)
        links = [name for name in dirs if (here / name).is_symlink()]
        for name in dirs:
            if name in LINKED_DIRS and name not in links:
                os.symlink(here / name, target / name, target_is_directory=True)
        dirs[:] = [name for name in dirs if name not in VENDORED_DIRS and name not in links]
        for name in [*files, *links]:
            source = here / name
            try:
                if source.is_symlink():
                    os.symlink(os.readlink(source), target / name)
                elif stat.S_ISREG(source.stat().st_mode):
                    shutil.copy2(source, target / name)
            except OSError:
                continue
