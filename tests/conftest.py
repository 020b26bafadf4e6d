"""Shared fixtures: every test gets its own XDG folders; the quickstart model is fetched once."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from models.catalog import QUICKSTART_MODEL
from models.manager import ModelManager

FIXTURES = Path(__file__).parent / "fixtures"
_REAL_HOME = Path.home()
_REAL_DATA = Path(os.environ.get("XDG_DATA_HOME") or _REAL_HOME / ".local/share")
_REAL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or _REAL_HOME / ".cache")
_SCRUBBED = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GROQ_API_KEY", "ANTHROPIC_BASE_URL",
             "GROQ_BASE_URL", "GOOGLE_GEMINI_BASE_URL")


@pytest.fixture(autouse=True)
def isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config, data and cache at a temporary folder; remove keys and Tiercode settings."""
    for name in ("CONFIG", "DATA", "CACHE"):
        folder = tmp_path / "xdg" / name.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(f"XDG_{name}_HOME", str(folder))
    for name in list(os.environ):
        if name.startswith("TIERCODE_") or name in _SCRUBBED:
            monkeypatch.delenv(name)
    return tmp_path / "xdg"


@pytest.fixture(scope="session")
def quickstart_gguf() -> Path:
    """The quickstart GGUF: from TIERCODE_TEST_GGUF, the user's installed models, or pulled once."""
    if os.environ.get("TIERCODE_TEST_GGUF"):
        return Path(os.environ["TIERCODE_TEST_GGUF"])
    for root in (_REAL_DATA / "tiercode" / "models", _REAL_CACHE / "tiercode-tests" / "models"):
        found = ModelManager(root).path(QUICKSTART_MODEL)
        if found:
            return found
    return ModelManager(_REAL_CACHE / "tiercode-tests" / "models").pull(QUICKSTART_MODEL)


@pytest.fixture
def installed_model(quickstart_gguf: Path, isolated_xdg: Path) -> Path:
    """The quickstart model installed in this test's data folder (as a symlink, no copy)."""
    target = isolated_xdg / "data" / "tiercode" / "models" / QUICKSTART_MODEL / quickstart_gguf.name
    target.parent.mkdir(parents=True)
    target.symlink_to(quickstart_gguf)
    return target


@pytest.fixture
def sample_repo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the small Python fixture repository with known symbols."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "sample_py", repo)
    yield repo


def git(repo: Path, *args: str) -> str:
    """Run the real git binary in `repo`; its stdout."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git_repo(sample_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample repository as a git work tree with one commit by "Dev User" (no global git config read)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(sample_repo, "init", "-q", "-b", "main")
    git(sample_repo, "config", "user.name", "Dev User")
    git(sample_repo, "config", "user.email", "dev@example.com")
    git(sample_repo, "add", "-A")
    git(sample_repo, "commit", "-q", "-m", "initial")
    return sample_repo
