"""Scope of a scan (ignore rules, junk, symlinks) and a build that nothing can crash."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from indexer.build import PARSER_VERSION, build_index, update_file
from indexer.scan import ScanOptions, check_file, scan
from indexer.store import IndexStore

LANGS = Path(__file__).parents[1] / "fixtures" / "langs"


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root, "keep.py", "def keep():\n    pass\n")
    write(root, ".gitignore", "*.gen.py\n/secret/\n!important.gen.py\n")
    write(root, "a.gen.py", "def generated(): pass\n")
    write(root, "important.gen.py", "def important(): pass\n")
    write(root, "secret/hidden.py", "def hidden(): pass\n")
    write(root, "pkg/.gitignore", "local_*.py\n")
    write(root, "pkg/local_tmp.py", "def tmp(): pass\n")
    write(root, "pkg/mod.py", "def mod(): pass\n")
    write(root, "other/local_ok.py", "def ok(): pass\n")  # the nested rule does not reach here
    write(root, ".tiercodeignore", "drafts/\n")
    write(root, "drafts/draft.py", "def draft(): pass\n")
    for folder in ("node_modules/lib", ".venv/lib", "build", "dist", "target", ".git"):
        write(root, f"{folder}/vendored.js", "function vendored() {}\n")
    write(root, "notes.txt", "not code\n")
    return root


def test_ignore_rules_nested_gitignore_tiercodeignore_and_vendored(repo: Path) -> None:
    found = [c.path for c in scan(repo).files]
    assert found == ["important.gen.py", "keep.py", "other/local_ok.py", "pkg/mod.py"]


def test_check_file_agrees_with_scan(repo: Path) -> None:
    assert check_file(repo, "pkg/local_tmp.py") is None
    assert check_file(repo, "secret/hidden.py") is None
    assert check_file(repo, "node_modules/lib/vendored.js") is None
    assert check_file(repo, "drafts/draft.py") is None
    candidate = check_file(repo, "pkg/mod.py")
    assert not isinstance(candidate, str) and candidate is not None and candidate.language == "python"


def test_oversized_binary_and_symlinks_are_skipped_and_listed(repo: Path, tmp_path: Path) -> None:
    write(repo, "big.py", "x = 1\n" * 100)
    write(repo, "blob.c", b"int x;\0\0\0binary")
    outside = write(tmp_path, "outside/out.py", "def outside(): pass\n")
    os.symlink(outside, repo / "link_out.py")
    os.symlink(outside.parent, repo / "outdir")
    os.symlink(repo, repo / "pkg" / "loop")  # a loop back to the root
    store = IndexStore(tmp_path / "index.sqlite")
    report = build_index(store, repo, ScanOptions(max_file_bytes=500))
    skipped = store.skipped()
    assert skipped["big.py"].startswith("too large")
    assert skipped["blob.c"] == "binary"
    assert skipped["link_out.py"] == "symlink (not followed)"
    assert skipped["outdir"] == "symlink (not followed)"
    assert skipped["pkg/loop"] == "symlink (not followed)"
    assert report.skipped == skipped
    assert store.counts()["skipped"] == len(skipped) == 5
    assert not store.definitions("outside")
    assert set(store.paths()) == {"important.gen.py", "keep.py", "other/local_ok.py", "pkg/mod.py"}


def test_bad_utf8_and_syntax_errors_still_yield_definitions(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "bad_utf8.py", b"def caf\xe9():\n    pass\n\ndef fine():\n    '''ok \xff'''\n")
    broken = "def good():\n    return 1\n\ndef broken(:\n    pass\n\nclass After:\n    def m(self): pass\n"
    write(root, "broken.py", broken)
    write(root, "broken.ts", "export function ok(): number { return 1 }\nclass {{{ \nfunction later() {}\n")
    write(root, "empty.go", "")
    store = IndexStore(tmp_path / "index.sqlite")
    report = build_index(store, root)
    assert report.parsed == 4 and not report.skipped
    assert [s.name for s in store.definitions("fine")] == ["fine"]
    assert store.definitions("fine")[0].doc == "ok \ufffd"
    assert {s.name for s in store.outline("broken.py")} >= {"good", "After", "m"}
    assert store.definitions("ok")
    assert store.paths() == ["bad_utf8.py", "broken.py", "broken.ts", "empty.go"]


def test_rebuild_skips_unchanged_and_forgets_deleted(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(LANGS, root)
    store = IndexStore(tmp_path / "index.sqlite")
    first = build_index(store, root)
    assert first.parsed == 10 and first.removed == 0
    assert store.get_meta("parser_version") == PARSER_VERSION
    (root / "go/server.go").unlink()
    os.utime(root / "c/util.c", ns=(1, 1))  # new mtime, same content: hashed, not parsed
    second = build_index(store, root)
    assert (second.parsed, second.unchanged, second.removed) == (0, 9, 1)
    assert not store.definitions("NewServer")
    assert store.file_states()["c/util.c"].mtime_ns == 1


def test_a_new_parser_version_parses_everything_again(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(LANGS / "python", root)
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, root)
    store.set_meta("parser_version", "0")
    assert build_index(store, root).parsed == 1
    assert store.get_meta("parser_version") == PARSER_VERSION


def test_parallel_build_matches_serial(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for i in range(80):
        write(root, f"m{i}.py", f"class C{i}:\n    def run(self):\n        return helper{i}()\n")
    serial = IndexStore(tmp_path / "serial.sqlite")
    parallel = IndexStore(tmp_path / "parallel.sqlite")
    build_index(serial, root, workers=1)
    report = build_index(parallel, root, workers=2)
    assert report.parsed == 80
    assert serial.counts() == parallel.counts()
    assert [s.qualified_name for s in parallel.definitions("run")][:2] == ["C0.run", "C1.run"]


def test_files_whose_mtime_changed_but_not_their_content_are_touched_in_batches_with_progress(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    for i in range(300):
        write(root, f"m{i}.py", f"def f{i}():\n    return {i}\n")
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, root, workers=2)
    for i in range(300):
        os.utime(root / f"m{i}.py", ns=(i + 1, i + 1))
    progress: list[tuple[int, int]] = []

    report = build_index(store, root, workers=2, on_progress=lambda done, total: progress.append((done, total)))

    assert (report.parsed, report.unchanged) == (0, 300)
    assert progress == [(0, 300), (128, 300), (256, 300), (300, 300)]
    assert {state.mtime_ns for state in store.file_states().values()} == set(range(1, 301))


def test_the_generation_moves_when_rows_change_and_only_then(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    path = write(root, "m.py", "def one(): pass\n")
    write(root, "n.py", "def two(): pass\n")
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, root)
    first = store.generation()
    assert first > 0 and store.file_hashes(["m.py", "gone.py"]).keys() == {"m.py"}
    os.utime(path, ns=(1, 1))
    build_index(store, root)  # a new mtime, the same content: nothing to regenerate
    assert store.generation() == first
    path.write_text("def three(): pass\n")
    assert update_file(store, root, "m.py") and store.generation() > first
    edited = store.generation()
    path.unlink()
    assert update_file(store, root, "m.py") and store.generation() > edited
    last = store.generation()
    rebuilt = store.discard("a test", lambda notice: None)
    build_index(rebuilt, root)
    assert rebuilt.generation() not in range(first, last + 1)  # a new index counts from a new number
    rebuilt.close()


def test_update_file_tracks_edits_skips_and_deletes(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    path = write(root, "m.py", "def one(): pass\n")
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, root)
    path.write_text("def two(): pass\n")
    assert update_file(store, root, "m.py")
    assert not store.definitions("one") and store.definitions("two")
    assert not update_file(store, root, "m.py")  # same content again: nothing to do
    path.write_bytes(b"\0binary now")
    assert update_file(store, root, "m.py")
    assert store.skipped() == {"m.py": "binary"} and not store.definitions("two")
    path.unlink()
    assert not update_file(store, root, "m.py")
    assert store.paths() == [] and store.skipped() == {}  # a skipped file deleted is no longer listed
