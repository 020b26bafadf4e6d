"""The watcher with real file events: create, modify, delete, rename, atomic save, folders, ignores."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.store import IndexStore
from indexer.watch import IndexWatcher


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll until `check()` holds (real file events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("def alpha():\n    return 1\n")
    return root


@pytest.fixture
def store(tmp_path: Path, repo: Path) -> Iterator[IndexStore]:
    index = IndexStore(tmp_path / "index.sqlite")
    build_index(index, repo)
    yield index
    index.close()


@pytest.fixture
def changes() -> list[list[str]]:
    return []


@pytest.fixture
def watcher(store: IndexStore, repo: Path, changes: list[list[str]]) -> Iterator[IndexWatcher]:
    with IndexWatcher(store, repo, on_change=changes.append) as w:
        yield w
    assert not w.errors


def names(store: IndexStore) -> set[str]:
    return {s.name for kind in ("function", "class", "method") for s in store.symbols_of_kind(kind)}


def test_create_modify_delete(watcher: IndexWatcher, store: IndexStore, repo: Path, changes: list) -> None:
    new = repo / "pkg" / "b.py"
    new.write_text("class Beta:\n    pass\n")
    assert eventually(lambda: "Beta" in names(store))
    new.write_text("class Gamma:\n    pass\n")
    assert eventually(lambda: "Gamma" in names(store) and "Beta" not in names(store))
    new.unlink()
    assert eventually(lambda: "pkg/b.py" not in store.paths())
    assert not store.definitions("Gamma")
    assert any("pkg/b.py" in batch for batch in changes)


def test_rename_moves_symbols(watcher: IndexWatcher, store: IndexStore, repo: Path) -> None:
    (repo / "pkg" / "a.py").rename(repo / "pkg" / "renamed.py")
    assert eventually(lambda: store.paths() == ["pkg/renamed.py"])
    assert [s.path for s in store.definitions("alpha")] == ["pkg/renamed.py"]


def test_atomic_save_write_temp_then_rename(watcher: IndexWatcher, store: IndexStore, repo: Path) -> None:
    target = repo / "pkg" / "a.py"
    temp = repo / "pkg" / ".a.py.tmp~"
    temp.write_text("def alpha_v2():\n    return 2\n")
    os.replace(temp, target)
    assert eventually(lambda: bool(store.definitions("alpha_v2")))
    assert watcher.wait_idle()
    assert not store.definitions("alpha")
    assert store.paths() == ["pkg/a.py"]


def test_folder_created_moved_and_deleted(watcher: IndexWatcher, store: IndexStore, repo: Path) -> None:
    staging = repo.parent / "staging"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "c.go").write_text("package sub\n\nfunc Charlie() {}\n")
    os.rename(staging, repo / "moved_in")  # a whole tree appears at once
    assert eventually(lambda: "moved_in/sub/c.go" in store.paths())
    os.rename(repo / "moved_in", repo / "renamed_dir")
    assert eventually(lambda: "renamed_dir/sub/c.go" in store.paths() and "moved_in/sub/c.go" not in store.paths())
    (repo / "renamed_dir" / "sub" / "c.go").unlink()
    (repo / "renamed_dir" / "sub").rmdir()
    assert eventually(lambda: not store.definitions("Charlie"))


def test_ignored_and_vendored_files_stay_out(watcher: IndexWatcher, store: IndexStore, repo: Path) -> None:
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / "dep.js").write_text("function dep() {}\n")
    (repo / ".gitignore").write_text("pkg/a.py\n")  # a rule change re-scans: a.py leaves the index
    assert eventually(lambda: store.paths() == [])
    (repo / "pkg" / "seen.py").write_text("def seen(): pass\n")
    assert eventually(lambda: store.paths() == ["pkg/seen.py"])
    assert not store.definitions("dep")


def test_bursts_are_debounced_into_the_last_content(store: IndexStore, repo: Path) -> None:
    batches: list[list[str]] = []
    with IndexWatcher(store, repo, on_change=batches.append, debounce=0.3) as watcher:
        target = repo / "pkg" / "a.py"
        for i in range(20):
            target.write_text(f"def version_{i}():\n    pass\n")
        assert eventually(lambda: bool(store.definitions("version_19")))
        assert watcher.wait_idle()
    assert not store.definitions("version_0")
    assert len([b for b in batches if "pkg/a.py" in b]) < 20


def test_stop_applies_pending_events(store: IndexStore, repo: Path) -> None:
    watcher = IndexWatcher(store, repo, debounce=0.2).start()
    (repo / "pkg" / "late.py").write_text("def late(): pass\n")
    assert eventually(lambda: watcher.wait_idle(0) is False or bool(store.definitions("late")), timeout=2)
    watcher.stop()
    assert store.definitions("late")


def test_stop_without_finishing_leaves_a_busy_batch_and_drops_what_is_pending(store: IndexStore, repo: Path) -> None:
    busy, release = threading.Event(), threading.Event()

    def slow_consumer(changed: list[str]) -> None:  # a batch that is still running when Ctrl-C comes
        busy.set()
        release.wait(120)

    watcher = IndexWatcher(store, repo, on_change=slow_consumer).start()
    (repo / "pkg" / "first.py").write_text("def first(): pass\n")
    assert busy.wait(120), "the first batch never ran"
    second = repo / "pkg" / "second.py"
    second.write_text("def second(): pass\n")
    watcher.notify(str(second), is_directory=False)  # pending for certain, whenever watchdog reports it
    watcher.stop(finish=False)  # returns with the batch still running: it waits for no pending work
    release.set()
    assert eventually(lambda: not any(t.name == "tiercode-index-watch" for t in threading.enumerate()), 120)
    assert store.definitions("first") and not store.definitions("second")
