"""The TUI's /add and /drop pin whole files into every question's context; /context lists them."""

from __future__ import annotations

from pathlib import Path

from assistant.tui.widgets import Turn
from tests.tui.helpers import make_app, submit, wait_for
from tests.tui.test_app import last_turn, outputs


def notices(app: object) -> list[str]:
    return [str(n.render()) for n in app.query(".notice").results()]  # type: ignore[attr-defined]


async def test_add_pins_a_file_into_the_next_questions_and_drop_unpins_it(
    sample_repo: Path, installed_model: Path
) -> None:
    app = make_app(sample_repo, max_output_tokens=16)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        await submit(pilot, "/add pkg/nope.py")
        assert any("pkg/nope.py is not a file" in n for n in notices(app))
        await submit(pilot, "/add pkg/report.py")
        assert any("pinned pkg/report.py" in n for n in notices(app))
        await submit(pilot, "explain what Circle.area computes")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        assert "### pkg/report.py (pinned)" in app.dialogue.turns[-1].prompt
        assert "def main() -> None:" in app.dialogue.turns[-1].prompt  # the whole file, not a definition
        await submit(pilot, "/context")
        await wait_for(pilot, lambda: bool(outputs(app)), "the /context output")
        assert "pinned: pkg/report.py" in outputs(app)[-1]
        await submit(pilot, "/drop pkg/report.py")
        assert any("unpinned pkg/report.py" in n for n in notices(app))
        assert app.pipeline.pinned.paths == []


async def test_compact_folds_the_earlier_turns_with_the_local_model(sample_repo: Path, installed_model: Path) -> None:
    from assistant.context.conversation import SUMMARY_QUESTION

    app = make_app(sample_repo, max_output_tokens=16)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        await submit(pilot, "/compact")
        assert any("nothing to summarise yet" in n for n in notices(app))
        for question in ("explain what Circle.area computes", "explain what total_area returns"):
            await submit(pilot, question)
            await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        await submit(pilot, "/compact")
        await wait_for(pilot, lambda: any("summarised by local" in n or "could not" in n for n in notices(app)),
                       "the summary")
        assert any("1 earlier turn(s) summarised by local" in n for n in notices(app))
        assert app.dialogue.turns[0].question == SUMMARY_QUESTION and len(app.dialogue.turns) == 2
        assert "compaction" in [r.tier for r in app.session.ledger.records()]
