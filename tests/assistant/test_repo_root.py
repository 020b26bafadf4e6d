"""Repository root discovery: from any folder inside a git work tree (or under a .tiercode.toml) Tiercode
works on the repository's root, with one index, and paths relative to it (issue 24, item 1)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from assistant import paths
from assistant.cli.common import find_repo_root
from tests.assistant.test_ask_cli import tiercode
from tests.conftest import FIXTURES


def git_repo(root: Path) -> Path:
    """The sample package in a real git work tree (the `git` binary)."""
    shutil.copytree(FIXTURES / "sample_py", root)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_a_nested_folder_of_a_git_work_tree_uses_its_root_and_one_index(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "project")
    nested = repo / "pkg"

    from_nested = tiercode("ask", "--offline", "where is Circle defined?", cwd=nested)
    from_root = tiercode("ask", "--offline", "where is Circle defined?", cwd=repo)

    assert from_nested.returncode == 0, from_nested.stderr
    assert "pkg/shapes.py:14" in from_nested.stdout  # relative to the root, not to pkg/
    assert from_nested.stdout == from_root.stdout
    indexes = [p for p in paths.index_dir(repo).parent.iterdir() if p.is_dir()]
    assert indexes == [paths.index_dir(repo)]
    assert not paths.index_dir(nested).exists()


def test_repo_wins_and_a_plain_folder_is_its_own_root(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "project")
    plain = tmp_path / "plain" / "inner"
    plain.mkdir(parents=True)
    assert find_repo_root(repo / "pkg") == repo.resolve()
    assert find_repo_root(plain) == plain.resolve()
    (tmp_path / "plain" / ".tiercode.toml").write_text("offline = true\n")
    assert find_repo_root(plain) == (tmp_path / "plain").resolve()
    forced = tiercode("ask", "--offline", "--repo", str(repo / "pkg"), "where is Circle defined?", cwd=repo)
    assert "shapes.py:14" in forced.stdout and "pkg/shapes.py" not in forced.stdout


def test_a_linked_worktree_is_its_own_root(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "project")
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "start"], check=True)
    linked = tmp_path / "linked"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(linked)], check=True)
    (linked / "deep").mkdir()
    assert find_repo_root(linked / "deep") == linked.resolve()
