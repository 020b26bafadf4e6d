"""Writing an answer's edits and taking them back: in a git work tree (with `auto_commits`) each apply is a commit
of its own, after the user's uncommitted changes in the same files (`dirty_files`); elsewhere Tiercode's undo
journal keeps what was replaced. The TUI's /apply and /undo and `ask --apply` all go through `ChangeWriter`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.changes.commit_message import write_message
from assistant.changes.edits import EditError, EditJournal, FileChange, no_edit_reason, parse_edits, plan_changes
from assistant.changes.git_commits import GitCommits, GitError, git_work_tree
from assistant.changes.patch_check import check_patch
from assistant.errors import TiercodeError, UsageError

if TYPE_CHECKING:
    from assistant.answer import Answer
    from assistant.pipeline import Pipeline


class EditRefused(TiercodeError):
    """`ask --apply` wrote nothing: the answer proposes no edit, or its edit fails the patch checks."""

    exit_code = 1


@dataclass(frozen=True)
class Proposal:
    """The edits an answer proposes, planned against the files as they are, with what the answer was sent."""

    changes: list[FileChange]
    question: str = ""
    query_id: str = ""
    in_context: frozenset[str] | None = None
    """The files the answer's context held (None: not known)."""

    def outside_context(self) -> list[FileChange]:
        """The changes to files the answer was not shown: the model edited them unseen."""
        known = self.in_context
        return [] if known is None else [change for change in self.changes if change.path not in known]

    def describe(self) -> str:
        """`a.py (modify), b.py (create, not in the context)`."""
        outside = {change.path for change in self.outside_context()}
        return ", ".join(f"{c.path} ({c.action}{', not in the context' if c.path in outside else ''})"
                         for c in self.changes)


def plan_proposal(text: str, repo: Path, question: str = "", answer: Answer | None = None) -> Proposal:
    """The edits `text` proposes, planned against the files in `repo` as they are (no changes when it proposes
    none); with the `answer` it came in, which files its context held. EditError when an edit does not apply."""
    changes = plan_changes(parse_edits(text), repo)
    if answer is None:
        return Proposal(changes, question)
    return Proposal(changes, question, answer.query_id, frozenset(source.path for source in answer.sources))


@dataclass(frozen=True)
class Applied:
    """What one apply did."""

    paths: list[str]
    commit: str = ""
    """Tiercode's commit (short id), empty when the journal keeps the undo."""
    dirty_commit: str = ""
    """The commit of the user's own uncommitted changes made first, if any."""

    def describe(self) -> str:
        """One line for the user."""
        files = ", ".join(self.paths)
        if not self.commit:
            return f"applied: {files} (/undo restores)"
        first = f"; your uncommitted changes to them were committed first as {self.dirty_commit}" \
            if self.dirty_commit else ""
        return f"applied and committed as {self.commit}: {files}{first} (/undo or git revert takes it back)"


class ChangeWriter:
    """Applies planned changes and undoes the last apply, by git commits or by the journal."""

    def __init__(self, pipeline: Pipeline) -> None:
        session = pipeline.session
        self.pipeline = pipeline
        self.journal = EditJournal(session.repo)
        self.git = GitCommits(session.repo) if session.settings.auto_commits and git_work_tree(session.repo) \
            else None
        self.dirty_files = session.settings.dirty_files

    def apply(self, proposal: Proposal) -> Applied:
        """Write the proposal's changes (and commit them in git); EditError, with nothing written, when a file
        changed since the proposal, holds uncommitted changes under `dirty_files = "stop"`, or git refuses."""
        changes = proposal.changes
        if self.git is None:
            return Applied(self.journal.apply(changes))
        paths = [change.path for change in changes]
        dirty = self.git.dirty(paths)
        if dirty and self.dirty_files == "stop":
            raise GitError(f"{', '.join(dirty)} has uncommitted changes; commit or discard them, or set "
                           'dirty_files = "commit" to have Tiercode commit them first as yours')
        self.journal.check_unchanged(changes)
        message = write_message(self.pipeline, changes, proposal.question, proposal.query_id)
        dirty_commit = self.git.commit(dirty, "Commit your changes before Tiercode edits these files",
                                       tiercode=False)[:12] if dirty else ""
        self.journal.apply(changes)
        try:
            commit = self.git.commit(paths, message, tiercode=True)
        except GitError:
            self.journal.undo()
            raise
        return Applied(paths, commit[:12], dirty_commit)

    def undo(self) -> list[str]:
        """Take back the last apply: Tiercode's commit while it is HEAD, or the journal's last batch."""
        return self.journal.undo() if self.git is None else self.git.undo_last()


def apply_answer(pipeline: Pipeline, answer: Answer, question: str) -> str:
    """`ask --apply`: write the answer's edits when they pass the patch checks; the line saying what was done.
    EditRefused (exit 1) or UsageError (exit 2: git or the work tree's state) when nothing was written."""
    settings = pipeline.session.settings
    if not parse_edits(answer.answer):
        raise EditRefused(f"--apply: {no_edit_reason(answer.answer)}; nothing was changed")
    verdict = check_patch(answer.answer, pipeline.session.repo, settings.test_command, settings.test_timeout_s)
    if verdict.reason:
        raise EditRefused(f"--apply: {verdict.reason}; nothing was changed")
    try:
        proposal = plan_proposal(answer.answer, pipeline.session.repo, question, answer)
        return ChangeWriter(pipeline).apply(proposal).describe()
    except GitError as exc:
        raise UsageError(f"--apply: {exc}; nothing was changed") from None
    except EditError as exc:
        raise EditRefused(f"--apply: {exc}; nothing was changed") from None
