"""Proposed edits: parsing diffs and SEARCH/REPLACE blocks, applying inside the root only, undo."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from assistant.changes.edits import EditError, EditJournal, parse_edits, plan_changes, resolve_inside
from indexer.build import build_index, update_file
from indexer.store import IndexStore

DIFF_ANSWER = """Rename the helper:

```diff
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -24,3 +24,3 @@
-def total_area(shapes: list[Shape]) -> float:
+def sum_of_areas(shapes: list[Shape]) -> float:
     \"\"\"Sum of the areas of `shapes`.\"\"\"
     return sum(shape.area() for shape in shapes)
```
"""

BLOCK_ANSWER = """pkg/report.py
```python
<<<<<<< SEARCH
    print(make_report([1.0, 2.0]))
=======
    print(make_report([1.0, 2.0, 3.0]))
>>>>>>> REPLACE
```

pkg/new_module.py
```python
<<<<<<< SEARCH
=======
VALUE = 42
>>>>>>> REPLACE
```
"""


def test_parses_a_fenced_unified_diff_with_wrong_line_numbers(sample_repo: Path) -> None:
    edits = parse_edits(DIFF_ANSWER)
    assert [(e.path, e.kind) for e in edits] == [("pkg/shapes.py", "diff")]
    (change,) = plan_changes(edits, sample_repo)
    assert change.action == "modify"
    assert change.after is not None and "def sum_of_areas(shapes" in change.after
    assert "def total_area" not in change.after
    assert change.before == (sample_repo / "pkg/shapes.py").read_text()
    assert "-def total_area" in change.diff() and "+def sum_of_areas" in change.diff()


def test_parses_search_replace_blocks_and_an_empty_search_creates_a_file(sample_repo: Path) -> None:
    edits = parse_edits(BLOCK_ANSWER)
    assert [(e.path, e.kind) for e in edits] == [("pkg/report.py", "replace"), ("pkg/new_module.py", "replace")]
    changes = {c.path: c for c in plan_changes(edits, sample_repo)}
    assert changes["pkg/report.py"].after is not None
    assert "make_report([1.0, 2.0, 3.0])" in changes["pkg/report.py"].after
    assert changes["pkg/new_module.py"].action == "create"
    assert changes["pkg/new_module.py"].after == "VALUE = 42\n"


def test_text_without_edits_yields_none() -> None:
    assert parse_edits("Circle is defined in pkg/shapes.py:14.\n\n```python\nCircle(2.0)\n```") == []


def test_apply_then_undo_restores_every_file_and_removes_created_ones(sample_repo: Path) -> None:
    report = sample_repo / "pkg/report.py"
    original = report.read_text()
    seen: list[list[str]] = []
    journal = EditJournal(sample_repo, on_change=seen.append)
    changes = plan_changes(parse_edits(BLOCK_ANSWER + "\n" + DIFF_ANSWER), sample_repo)
    journal.apply(changes)
    assert "make_report([1.0, 2.0, 3.0])" in report.read_text()
    assert (sample_repo / "pkg/new_module.py").read_text() == "VALUE = 42\n"
    assert "def sum_of_areas" in (sample_repo / "pkg/shapes.py").read_text()
    assert seen == [["pkg/report.py", "pkg/new_module.py", "pkg/shapes.py"]]
    journal.undo()
    assert report.read_text() == original
    assert not (sample_repo / "pkg/new_module.py").exists()
    assert "def total_area" in (sample_repo / "pkg/shapes.py").read_text()
    assert len(seen) == 2 and not journal.can_undo
    assert not list(sample_repo.rglob(".tiercode-*"))  # no temporary files left behind


def test_undo_removes_folders_the_edit_created(sample_repo: Path) -> None:
    answer = "new/deep/mod.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE\n"
    journal = EditJournal(sample_repo)
    journal.apply(plan_changes(parse_edits(answer), sample_repo))
    assert (sample_repo / "new/deep/mod.py").read_text() == "X = 1\n"
    journal.undo()
    assert not (sample_repo / "new").exists()


def test_a_diff_that_deletes_a_file_is_undone_by_recreating_it(sample_repo: Path) -> None:
    original = (sample_repo / "pkg/report.py").read_text()
    body = "".join(f"-{line}\n" for line in original.splitlines())
    answer = f"--- a/pkg/report.py\n+++ /dev/null\n@@ -1,{len(original.splitlines())} +0,0 @@\n{body}"
    journal = EditJournal(sample_repo)
    (change,) = plan_changes(parse_edits(answer), sample_repo)
    assert change.action == "delete"
    journal.apply([change])
    assert not (sample_repo / "pkg/report.py").exists()
    journal.undo()
    assert (sample_repo / "pkg/report.py").read_text() == original


@pytest.mark.parametrize("path", ["../outside.py", "/etc/passwd", "pkg/../../outside.py", ".git/config", ""])
def test_paths_outside_the_root_are_refused(sample_repo: Path, path: str) -> None:
    with pytest.raises(EditError, match=r"refusing|only paths"):
        resolve_inside(sample_repo, path)


def test_a_symlink_leading_outside_the_root_is_refused(sample_repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (sample_repo / "escape").symlink_to(outside)
    answer = "escape/evil.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE\n"
    with pytest.raises(EditError, match="symbolic link"):
        plan_changes(parse_edits(answer), sample_repo)
    assert not (outside / "evil.py").exists()


def test_a_search_that_does_not_match_changes_nothing(sample_repo: Path) -> None:
    before = {p: p.read_text() for p in sample_repo.rglob("*.py")}
    answer = ("pkg/report.py\n<<<<<<< SEARCH\nno such line\n=======\nX\n>>>>>>> REPLACE\n"
              "pkg/shapes.py\n<<<<<<< SEARCH\nimport math\n=======\nimport cmath\n>>>>>>> REPLACE\n")
    with pytest.raises(EditError, match="does not match"):
        plan_changes(parse_edits(answer), sample_repo)
    assert {p: p.read_text() for p in sample_repo.rglob("*.py")} == before


def test_apply_refuses_a_file_that_changed_after_planning(sample_repo: Path) -> None:
    changes = plan_changes(parse_edits(BLOCK_ANSWER), sample_repo)
    (sample_repo / "pkg/report.py").write_text("# edited meanwhile\n")
    with pytest.raises(EditError, match="changed since"):
        EditJournal(sample_repo).apply(changes)
    assert not (sample_repo / "pkg/new_module.py").exists()


def test_a_failed_write_rolls_back_the_files_already_written(sample_repo: Path) -> None:
    big = "X = 1\n" * 2000
    answer = BLOCK_ANSWER + f"\npkg/big.py\n<<<<<<< SEARCH\n=======\n{big}>>>>>>> REPLACE\n"
    changes = plan_changes(parse_edits(answer), sample_repo)
    original = (sample_repo / "pkg/report.py").read_text()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the third file cannot be written (EFBIG)
    try:
        with pytest.raises(EditError, match=r"cannot write 'pkg/big\.py'"):
            EditJournal(sample_repo).apply(changes)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert (sample_repo / "pkg/report.py").read_text() == original
    assert not (sample_repo / "pkg/new_module.py").exists()
    assert not (sample_repo / "pkg/big.py").exists()
    assert not [p.name for p in (sample_repo / "pkg").iterdir() if p.name.startswith(".tiercode-")]


def test_undo_refuses_when_the_file_was_edited_after_apply(sample_repo: Path) -> None:
    journal = EditJournal(sample_repo)
    journal.apply(plan_changes(parse_edits(DIFF_ANSWER), sample_repo))
    (sample_repo / "pkg/shapes.py").write_text("# mine now\n")
    with pytest.raises(EditError, match="edited after"):
        journal.undo()
    assert (sample_repo / "pkg/shapes.py").read_text() == "# mine now\n"


def test_crlf_files_keep_their_line_endings(sample_repo: Path) -> None:
    target = sample_repo / "pkg/report.py"
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n"))
    journal = EditJournal(sample_repo)
    journal.apply(plan_changes(parse_edits(BLOCK_ANSWER), sample_repo))
    data = target.read_bytes()
    assert b"make_report([1.0, 2.0, 3.0])" in data
    assert data.count(b"\n") == data.count(b"\r\n")


def test_the_change_callback_keeps_the_index_current(sample_repo: Path, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index.sqlite")
    build_index(store, sample_repo)
    journal = EditJournal(sample_repo, on_change=lambda paths: [update_file(store, sample_repo, p) for p in paths])
    journal.apply(plan_changes(parse_edits(DIFF_ANSWER), sample_repo))
    assert store.definitions("sum_of_areas") and not store.definitions("total_area")
    journal.undo()
    assert store.definitions("total_area") and not store.definitions("sum_of_areas")
    store.close()
