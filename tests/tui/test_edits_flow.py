"""Pilot tests: proposed edits show as a diff; /apply writes after confirmation; /undo restores; the index follows."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from assistant.tui.screens import ConfirmScreen
from assistant.tui.widgets import Turn
from tests.tui.helpers import make_app, submit, wait_for

PROPOSAL = """Add a square:

pkg/shapes.py
```python
<<<<<<< SEARCH
def total_area(shapes: list[Shape]) -> float:
=======
class Square(Shape):
    \"\"\"A square with a side.\"\"\"


def total_area(shapes: list[Shape]) -> float:
>>>>>>> REPLACE
```
"""


async def test_apply_after_confirmation_then_undo(sample_repo: Path) -> None:
    shapes = sample_repo / "pkg/shapes.py"
    original = shapes.read_text()
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        store = app.session.store()
        turn = Turn("add a Square shape")
        await app.conversation.mount(turn)
        app.propose_edits(turn, PROPOSAL)
        await pilot.pause()
        diff = str(turn.query_one(".diff", Static).render())
        assert "+class Square(Shape):" in diff and "pkg/shapes.py" in diff

        await submit(pilot, "/apply")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # declining writes nothing
        assert shapes.read_text() == original

        await submit(pilot, "/apply")
        await pilot.press("y")
        await wait_for(pilot, lambda: "class Square(Shape):" in shapes.read_text(), "the edit on disk")
        await wait_for(pilot, lambda: bool(store.definitions("Square")), "the index to learn Square")

        await submit(pilot, "/undo")
        assert shapes.read_text() == original
        await wait_for(pilot, lambda: not store.definitions("Square"), "the index to forget Square")
        await submit(pilot, "/undo")
        notices = [str(s.render()) for s in app.query(".notice").results(Static)]
        assert any("nothing to undo" in n for n in notices)


async def test_an_edit_outside_the_repository_is_refused_and_not_offered(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        turn = Turn("write outside")
        await app.conversation.mount(turn)
        app.propose_edits(turn, "../evil.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE\n")
        await pilot.pause()
        assert not turn.query(".diff")
        notices = [str(s.render()) for s in app.query(".notice").results(Static)]
        assert any("refusing to edit '../evil.py'" in n for n in notices)
        await submit(pilot, "/apply")
        assert not isinstance(app.screen, ConfirmScreen)
    assert not (sample_repo.parent / "evil.py").exists()


async def test_files_an_edit_changed_are_judged_by_the_configured_size_limit(sample_repo: Path) -> None:
    (sample_repo / "pkg" / "long.py").write_text("def long_one():\n    return 1\n" * 10)
    app = make_app(sample_repo, max_file_bytes=200)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        store = app.session.store()
        assert store.skipped()["pkg/long.py"].startswith("too large")
        app.reindex(["pkg/long.py", "pkg/report.py"])
        await app.workers.wait_for_complete()
        assert store.skipped()["pkg/long.py"].startswith("too large")  # not the default 1 MiB limit
        assert not store.definitions("long_one")
