"""The TUI shows a money limit as it was set: in the footer and in the /budget view."""

from __future__ import annotations

from pathlib import Path

from assistant.tui.widgets import StatusFooter
from tests.tui.helpers import make_app, submit


async def test_a_limit_below_a_cent_shows_as_set_in_the_footer_and_the_budget_view(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        await submit(pilot, "/budget daily 0.015")
        assert "$0.00/$0.015" in str(app.query_one(StatusFooter).render())
        await submit(pilot, "/budget per_query 0.001")
        view = app.conversation.query(".output").last()
        assert "| per query | $0.001 | |" in view.source and "| daily | $0.015 | $0.00 |" in view.source
