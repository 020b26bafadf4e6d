"""Git-native edits on real repositories made with the `git` binary in temporary folders: an apply is a commit
with Tiercode's trailer and a message (the local model's, recorded in the ledger, or a plain one), /undo takes
back only Tiercode's own HEAD, the user's uncommitted changes are committed first as theirs or stop the apply,
`auto_commits = false` keeps the journal, and `ask --apply` writes only edits that pass the patch checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.accounting.ledger import COMMIT_MESSAGE_TIER
from assistant.changes.apply_changes import ChangeWriter, Proposal, plan_proposal
from assistant.changes.commit_message import usable_subject
from assistant.changes.git_commits import TIERCODE_TRAILER, GitCommits, GitError
from assistant.config import load_settings
from assistant.pipeline import Pipeline
from assistant.session import Session
from models.base import GenerationRequest, Message
from tests.assistant.test_ask_cli import tiercode
from tests.conftest import git
from tests.emulators import fixtures
from tests.emulators.server import Reply
from tests.tui.test_edits_flow import PROPOSAL

ADD_SQUARE = PROPOSAL + """
pkg/square_test.py
```python
<<<<<<< SEARCH
=======
SIDE = 2
>>>>>>> REPLACE
```
"""
STALE_EDIT = """pkg/shapes.py
```python
<<<<<<< SEARCH
def total_volume(shapes: list[Shape]) -> float:
=======
def total_volume(shapes: list[Shape], depth: float) -> float:
>>>>>>> REPLACE
```
"""


@pytest.fixture
def open_pipeline(git_repo: Path) -> Iterator[Any]:
    """Pipelines on the git repository (offline), with settings overrides; their sessions are closed afterwards."""
    sessions: list[Session] = []

    def make(**overrides: Any) -> Pipeline:
        session = Session(git_repo, load_settings(git_repo, offline=True, **overrides))
        sessions.append(session)
        return Pipeline(session)

    yield make
    for session in sessions:
        session.close()


def proposal(repo: Path, text: str = ADD_SQUARE) -> Proposal:
    return plan_proposal(text, repo, "add a Square shape")


def test_apply_commits_the_edit_with_the_trailer_and_a_plain_message_without_a_model(
    git_repo: Path, open_pipeline: Any,
) -> None:
    pipeline = open_pipeline()
    applied = ChangeWriter(pipeline).apply(proposal(git_repo))
    assert applied.commit and not applied.dirty_commit
    message = git(git_repo, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "Tiercode: modify pkg/shapes.py, create pkg/square_test.py"
    assert "Asked: add a Square shape" in message
    assert message.strip().splitlines()[-1] == TIERCODE_TRAILER
    assert git(git_repo, "log", "-1", "--format=%an <%ae>").strip() == "Dev User <dev@example.com>"
    assert sorted(git(git_repo, "show", "--name-only", "--format=", "HEAD").split()) == \
        ["pkg/shapes.py", "pkg/square_test.py"]
    assert git(git_repo, "status", "--porcelain") == ""
    assert git(git_repo, "rev-parse", "HEAD~1") == git(git_repo, "rev-parse", "main~1")
    assert not [r for r in pipeline.session.ledger.records() if r.tier == COMMIT_MESSAGE_TIER]


def test_the_local_model_writes_the_message_and_the_ledger_records_its_call(
    git_repo: Path, open_pipeline: Any, installed_model: Path,
) -> None:
    pipeline = open_pipeline()
    ChangeWriter(pipeline).apply(proposal(git_repo))
    records = [r for r in pipeline.session.ledger.records() if r.tier == COMMIT_MESSAGE_TIER]
    assert len(records) == 1 and records[0].provider == "local" and records[0].output_tokens > 0
    assert records[0].cost_usd == 0.0
    subject = git(git_repo, "log", "-1", "--format=%s").strip()
    assert subject and len(subject) <= 72
    assert git(git_repo, "log", "-1", "--format=%B").strip().splitlines()[-1] == TIERCODE_TRAILER


def test_undo_reverts_tiercodes_commit_and_then_refuses(git_repo: Path, open_pipeline: Any) -> None:
    original = (git_repo / "pkg/shapes.py").read_text()
    initial = git(git_repo, "rev-parse", "HEAD")
    writer = ChangeWriter(open_pipeline())
    writer.apply(proposal(git_repo))
    assert sorted(writer.undo()) == ["pkg/shapes.py", "pkg/square_test.py"]
    assert (git_repo / "pkg/shapes.py").read_text() == original
    assert not (git_repo / "pkg/square_test.py").exists()
    assert git(git_repo, "rev-parse", "HEAD") == initial
    assert git(git_repo, "status", "--porcelain") == ""
    with pytest.raises(GitError, match=r"^no commit on this branch is Tiercode's, so there is nothing to undo$"):
        writer.undo()


def test_undo_after_a_user_commit_refuses_and_changes_nothing(git_repo: Path, open_pipeline: Any) -> None:
    writer = ChangeWriter(open_pipeline())
    writer.apply(proposal(git_repo))
    (git_repo / "pkg/report.py").write_text("# the user's own work\n")
    git(git_repo, "commit", "-q", "-am", "user work")
    head = git(git_repo, "rev-parse", "HEAD")
    with pytest.raises(GitError, match="HEAD is not a Tiercode commit"):
        writer.undo()
    assert git(git_repo, "rev-parse", "HEAD") == head
    assert "class Square" in (git_repo / "pkg/shapes.py").read_text()
    assert git(git_repo, "status", "--porcelain") == ""


def test_undo_refuses_when_a_file_of_the_commit_was_edited_since(git_repo: Path, open_pipeline: Any) -> None:
    writer = ChangeWriter(open_pipeline())
    writer.apply(proposal(git_repo))
    shapes = git_repo / "pkg/shapes.py"
    shapes.write_text(shapes.read_text() + "# more\n")
    with pytest.raises(GitError, match=r"pkg/shapes.py changed after .*commit or discard"):
        writer.undo()
    assert shapes.read_text().endswith("# more\n")


def test_dirty_files_are_committed_first_as_the_users_own(git_repo: Path, open_pipeline: Any) -> None:
    shapes = git_repo / "pkg/shapes.py"
    shapes.write_text(shapes.read_text() + "# the user's unsaved thought\n")
    report = git_repo / "pkg/report.py"
    report.write_text(report.read_text() + "# staged, unrelated\n")
    git(git_repo, "add", "pkg/report.py")
    writer = ChangeWriter(open_pipeline())
    applied = writer.apply(proposal(git_repo))
    assert applied.dirty_commit
    assert TIERCODE_TRAILER not in git(git_repo, "log", "-1", "--format=%B", "HEAD~1")
    assert git(git_repo, "show", "--name-only", "--format=", "HEAD~1").split() == ["pkg/shapes.py"]
    assert "# the user's unsaved thought" in git(git_repo, "show", "HEAD~1:pkg/shapes.py")
    assert git(git_repo, "diff", "--cached", "--name-only").split() == ["pkg/report.py"]  # still staged, uncommitted
    writer.undo()
    text = shapes.read_text()
    assert "# the user's unsaved thought" in text and "class Square" not in text
    assert git(git_repo, "rev-parse", "HEAD").startswith(applied.dirty_commit)  # the user's commit stays


def test_dirty_files_stop_the_apply_when_so_configured(git_repo: Path, open_pipeline: Any) -> None:
    shapes = git_repo / "pkg/shapes.py"
    dirty = shapes.read_text() + "# the user's unsaved thought\n"
    shapes.write_text(dirty)
    head = git(git_repo, "rev-parse", "HEAD")
    writer = ChangeWriter(open_pipeline(dirty_files="stop"))
    with pytest.raises(GitError, match=r"pkg/shapes.py has uncommitted changes.*dirty_files = \"commit\""):
        writer.apply(proposal(git_repo))
    assert shapes.read_text() == dirty
    assert not (git_repo / "pkg/square_test.py").exists()
    assert git(git_repo, "rev-parse", "HEAD") == head


def test_auto_commits_false_keeps_the_journal(git_repo: Path, open_pipeline: Any) -> None:
    original = (git_repo / "pkg/shapes.py").read_text()
    head = git(git_repo, "rev-parse", "HEAD")
    writer = ChangeWriter(open_pipeline(auto_commits=False))
    assert writer.apply(proposal(git_repo)).commit == ""
    assert git(git_repo, "rev-parse", "HEAD") == head
    assert "pkg/shapes.py" in git(git_repo, "status", "--porcelain")
    writer.undo()
    assert (git_repo / "pkg/shapes.py").read_text() == original


@pytest.mark.usefixtures("loopback_only")
def test_ask_apply_writes_only_an_edit_that_passes_the_patch_checks(
    git_repo: Path, cloud_emulators: fixtures.CloudEmulators,
) -> None:
    env = dict(os.environ, TIERCODE_TIERS='["sonnet"]')
    files = {path: path.read_bytes() for path in (git_repo / "pkg").iterdir()}
    head = git(git_repo, "rev-parse", "HEAD")
    cloud_emulators.anthropic.script(Reply(STALE_EDIT))
    done = tiercode("ask", "--yes", "--apply", "change total_volume to take a depth", "--repo", str(git_repo),
                    env=env)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("tiercode: error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]]
    assert "--apply: a proposed edit does not apply" in errors[0] and "nothing was changed" in errors[0]
    assert "Traceback" not in done.stderr
    assert {path: path.read_bytes() for path in (git_repo / "pkg").iterdir()} == files
    assert git(git_repo, "rev-parse", "HEAD") == head and git(git_repo, "status", "--porcelain") == ""

    cloud_emulators.anthropic.script(Reply("Rename it:\n\n```python\ndef add_item(self, item):\n    ...\n```\n"))
    done = tiercode("ask", "--yes", "--apply", "rename push to add_item", "--repo", str(git_repo), env=env)
    assert done.returncode == 1, done.stderr  # code, but nothing that says where it goes: said so
    assert done.stderr.strip().splitlines()[-1] == (
        "tiercode: error: --apply: the answer shows code but no edit that says where it goes (a unified diff or"
        " a SEARCH/REPLACE block); ask again for the change as a diff; nothing was changed")
    assert git(git_repo, "rev-parse", "HEAD") == head and git(git_repo, "status", "--porcelain") == ""

    cloud_emulators.anthropic.script(Reply(ADD_SQUARE))
    done = tiercode("ask", "--yes", "--apply", "add a Square shape", "--repo", str(git_repo), env=env)
    assert done.returncode == 0, done.stderr
    assert "tiercode: applied and committed as" in done.stderr
    assert git(git_repo, "log", "-1", "--format=%B").strip().splitlines()[-1] == TIERCODE_TRAILER
    assert "Asked: add a Square shape" in git(git_repo, "log", "-1", "--format=%B")


def test_a_models_line_that_repeats_the_request_is_not_a_subject() -> None:
    request = GenerationRequest((Message("user", "Write the commit subject line for this diff.\n\n+x = 1"),))
    assert usable_subject("Write the commit subject line for this diff\n", request) == ""
    assert usable_subject('```\n"Add a Square shape."\n```', request) == "Add a Square shape"
    assert len(usable_subject("Add " + "very " * 30 + "long things")) == 72


def test_changed_lists_modified_staged_and_untracked_files_never_deleted_or_ignored(git_repo: Path) -> None:
    (git_repo / "pkg" / "shapes.py").write_text("# edited\n", encoding="utf-8")
    (git_repo / "pkg" / "staged.py").write_text("X = 1\n", encoding="utf-8")
    git(git_repo, "add", "pkg/staged.py")
    (git_repo / "new.py").write_text("Y = 2\n", encoding="utf-8")
    (git_repo / ".gitignore").write_text("build/\n", encoding="utf-8")
    (git_repo / "build").mkdir()
    (git_repo / "build" / "out.py").write_text("Z = 3\n", encoding="utf-8")
    (git_repo / "pkg" / "report.py").unlink()
    assert GitCommits(git_repo).changed() == [".gitignore", "new.py", "pkg/shapes.py", "pkg/staged.py"]
    assert GitCommits(git_repo / "pkg").changed() == ["shapes.py", "staged.py"]  # relative to the folder


def test_changed_before_the_first_commit_is_every_file(sample_repo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(sample_repo, "init", "-q")
    git(sample_repo, "add", "pkg/shapes.py")
    assert GitCommits(sample_repo).changed() == ["pkg/__init__.py", "pkg/report.py", "pkg/shapes.py"]
