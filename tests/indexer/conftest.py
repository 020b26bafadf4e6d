"""Fixtures for modules that describe a small repository as `FILES` (path -> text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.store import IndexStore


@pytest.fixture
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The test module's `FILES` written into a folder."""
    root = tmp_path / "repo"
    for path, text in request.module.FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.fixture
def indexed(repo: Path, tmp_path: Path) -> IndexStore:
    """The index of `repo`."""
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, repo)
    return store
