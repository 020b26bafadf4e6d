"""Diff-only context: real git, the real index, and what the cloud tier is actually sent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.main import cli
from assistant.context.diff import diff_context, looks_like_diff, parse_diff
from indexer.build import build_index
from indexer.store import IndexStore
from tests.emulators import fixtures
from tests.emulators.server import Reply


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_repo(sample_repo: Path) -> Path:
    _git(sample_repo, "init", "-q")
    _git(sample_repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".")
    _git(sample_repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "start")
    shapes = sample_repo / "pkg" / "shapes.py"
    shapes.write_text(shapes.read_text().replace("return sum(", "return round(sum(").replace(
        "for shape in shapes)", "for shape in shapes), 6)"))
    return sample_repo


def test_hunks_come_with_their_enclosing_function(git_repo: Path, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, git_repo)
    diff = _git(git_repo, "diff", "HEAD")
    assert looks_like_diff(diff)
    (hunk,) = parse_diff(diff)
    assert hunk.path == "pkg/shapes.py" and "+    return round(sum(" in hunk.text

    text = diff_context(diff, store, git_repo)

    assert "```diff" in text and "return round(sum(" in text
    assert "enclosing function total_area (pkg/shapes.py:25)" in text
    assert "Pi times the radius" not in text and "class Shape" not in text  # the rest of the file is not sent


def test_a_deleted_file_has_no_hunks_and_a_new_file_has_one() -> None:
    diff = ("diff --git a/old.py b/old.py\n--- a/old.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-x = 1\n-y = 2\n"
            "diff --git a/new.py b/new.py\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+z = 3\n")
    assert [(h.path, h.start, h.count) for h in parse_diff(diff)] == [("new.py", 1, 1)]


@pytest.mark.usefixtures("loopback_only")
def test_ask_diff_sends_only_the_change(git_repo: Path, cloud_emulators: fixtures.CloudEmulators,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERCODE_TIERS", '["groq"]')
    cloud_emulators.groq.script(Reply("Rounding to 6 places is fine here."))

    result = CliRunner().invoke(cli, ["ask", "--repo", str(git_repo), "--diff", "--yes", "review this change"])

    assert result.exit_code == 0, result.stderr
    (body,) = cloud_emulators.groq.bodies()
    prompt = body["messages"][-1]["content"]
    assert "+    return round(sum(" in prompt and "enclosing function total_area" in prompt


def test_diff_outside_git_is_a_one_line_error(sample_repo: Path) -> None:
    result = CliRunner().invoke(cli, ["ask", "--repo", str(sample_repo), "--diff", "review this change"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "git repository" in result.stderr
