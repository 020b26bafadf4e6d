"""Pilot tests in a real git repository: /apply commits with Tiercode's trailer after a confirmation that shows the
diff of a file the answer's context did not hold, named as such; /undo takes the commit back."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from assistant.answer import Answer, Source
from assistant.changes.git_commits import TIERCODE_TRAILER
from assistant.tui.screens import ConfirmScreen
from assistant.tui.widgets import Turn
from tests.assistant.test_git_commits import ADD_SQUARE
from tests.conftest import git
from tests.tui.helpers import make_app, submit, wait_for


async def test_apply_names_a_file_not_in_the_context_shows_its_diff_commits_and_undoes(git_repo: Path) -> None:
    shapes = git_repo / "pkg/shapes.py"
    original = shapes.read_text()
    initial = git(git_repo, "rev-parse", "HEAD")
    app = make_app(git_repo)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        turn = Turn("add a Square shape")
        await app.conversation.mount(turn)
        answer = Answer(ADD_SQUARE, "local", "m", "edit", "simple", sources=(Source("pkg/report.py", 1, "x"),))
        app.propose_edits(turn, answer.answer, answer)
        await pilot.pause()
        hints = [str(s.render()) for s in turn.query(".hint").results(Static)]
        assert any(h.startswith("pkg/shapes.py, pkg/square_test.py: not in the context") for h in hints)

        await submit(pilot, "/apply")
        assert isinstance(app.screen, ConfirmScreen)
        shown = str(app.screen.query_one("#confirm-question", Static).render())
        assert "pkg/shapes.py (modify, not in the context)" in shown
        assert "+class Square(Shape):" in shown  # the diff, before anything is written
        assert shapes.read_text() == original
        await pilot.press("y")
        await wait_for(pilot, lambda: TIERCODE_TRAILER in git(git_repo, "log", "-1", "--format=%B"), "the commit")
        await wait_for(pilot, lambda: not app.answering, "the apply to finish")
        assert "class Square(Shape):" in shapes.read_text()

        await submit(pilot, "/undo")
        assert shapes.read_text() == original
        assert git(git_repo, "rev-parse", "HEAD") == initial
        await submit(pilot, "/undo")
        notices = [str(s.render()) for s in app.query(".notice").results(Static)]
        nothing = "cannot undo: no commit on this branch is Tiercode's, so there is nothing to undo"
        assert any(nothing in n for n in notices)
