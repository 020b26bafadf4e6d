"""Commits in a git work tree through the `git` command line: the user's dirty files, Tiercode's edits (marked by
a trailer), and undoing Tiercode's last commit while HEAD is still that commit.

Every command runs in the repository folder Tiercode works in, with paths relative to it, so a repository
opened at a subfolder of a work tree commits the same files it edits. Hooks are skipped (`--no-verify`), as
aider's auto-commits do: a hook that rewrites or rejects files would leave an edit half committed.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

from assistant.changes.edits import EditError

TIERCODE_TRAILER = "Co-authored-by: tiercode <tiercode@localhost>"
"""The last line of every commit Tiercode makes for its edits: how `/undo` and `git log` recognise them."""
_TIMEOUT_S = 60


class GitError(EditError):
    """A git command failed or refused; the message is one line saying what to do."""


def git_work_tree(folder: Path) -> bool:
    """Whether `folder` lies inside a git work tree (False when git is not installed)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=folder, capture_output=True,
                              text=True, timeout=_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


class GitCommits:
    """Git operations on the work tree that holds `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _git(self, *args: str) -> str:
        """Run git; GitError with git's first line of complaint when it fails."""
        try:
            done = subprocess.run(["git", *args], cwd=self.folder, capture_output=True, text=True,
                                  timeout=_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"could not run git ({exc})") from None
        if done.returncode != 0:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
            complaint = (fatal or lines or [""])[0]
            raise GitError(f"git {args[0]} failed: {complaint.strip() or f'exit status {done.returncode}'}")
        return done.stdout

    def dirty(self, paths: Sequence[str]) -> list[str]:
        """The paths with changes git has not committed (staged, unstaged or untracked)."""
        return [path for path in paths if self._git("status", "--porcelain", "-z", "--", path).strip("\0")]

    def changed(self) -> list[str]:
        """The files under the folder that differ from HEAD (staged or not) and the untracked ones git does not
        ignore, relative to the folder; every file git knows when nothing is committed yet. Deleted files are
        left out."""
        untracked = self._git("ls-files", "-z", "--others", "--exclude-standard")
        try:
            tracked = self._git("diff", "--name-only", "-z", "--relative", "HEAD", "--")
        except GitError:  # no commit yet: everything is new
            tracked = self._git("ls-files", "-z", "--cached")
        return sorted({path for path in (tracked + untracked).split("\0") if path and (self.folder / path).is_file()})

    def commit(self, paths: Sequence[str], message: str, tiercode: bool) -> str:
        """Commit exactly these paths as they are in the work tree (other staged changes stay staged); with
        `tiercode` the message ends with the trailer. Returns the new commit's id."""
        if tiercode:
            message = f"{message.rstrip()}\n\n{TIERCODE_TRAILER}\n"
        self._git("add", "-A", "--", *paths)
        try:
            self._git("commit", "--no-verify", "--quiet", "-m", message, "--", *paths)
        except GitError:
            with contextlib.suppress(GitError):  # leave the index as it was (no HEAD yet: nothing to restore)
                self._git("reset", "--quiet", "--", *paths)
            raise
        return self.head()

    def head(self) -> str:
        """HEAD's commit id."""
        return self._git("rev-parse", "HEAD").strip()

    def head_is_tiercode(self) -> bool:
        """Whether HEAD exists and is a commit Tiercode made (its message ends with the trailer)."""
        try:
            body = self._git("log", "-1", "--format=%B", "HEAD")
        except GitError:
            return False
        return TIERCODE_TRAILER in body.splitlines()

    def _made_a_commit(self) -> bool:
        """Whether any commit on the branch is one Tiercode made."""
        try:
            found = self._git("log", "-1", "--format=%h", "--fixed-strings", f"--grep={TIERCODE_TRAILER}", "HEAD")
        except GitError:  # no commit at all yet
            return False
        return bool(found.strip())

    def undo_last(self) -> list[str]:
        """Take back HEAD when it is Tiercode's commit: the branch moves to its parent and the files it changed
        are restored; anything else uncommitted stays. GitError (nothing touched) when HEAD is not Tiercode's,
        was pushed, is the first commit, or a file it changed was edited since."""
        if not self.head_is_tiercode():
            if not self._made_a_commit():
                raise GitError("no commit on this branch is Tiercode's, so there is nothing to undo")
            raise GitError("HEAD is not a Tiercode commit (someone committed after it, or it was undone); "
                           "nothing was changed: use git revert for older commits")
        subject = self._git("log", "-1", "--format=%h %s", "HEAD").strip()
        if self._git("branch", "-r", "--contains", "HEAD").strip():
            raise GitError(f"{subject} is already pushed; use git revert so the published history stays")
        try:
            self._git("rev-parse", "--verify", "--quiet", "HEAD~1")
        except GitError:
            raise GitError(f"{subject} is the repository's first commit; undo it by hand") from None
        changed = [p for p in self._git("diff", "--name-only", "--relative", "-z", "HEAD~1", "HEAD").split("\0") if p]
        edited = self.dirty(changed)
        if edited:
            raise GitError(f"{', '.join(edited)} changed after {subject}; commit or discard that first")
        self._git("reset", "--keep", "--quiet", "HEAD~1")
        return changed
