"""`tiercode -c` and `tiercode --resume ID`: the last (or a named) TUI conversation reopens with its turns on
screen, and the next question carries them. The real app under Pilot, the Groq SDK against the loopback emulator
(the requests it received are the evidence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.errors import UsageError
from assistant.tui.widgets import Turn
from tests.emulators import fixtures
from tests.emulators.server import Reply
from tests.tui.helpers import make_app, submit, wait_for

cloud_emulators = fixtures.cloud_emulators
loopback_only = fixtures.loopback_only
pytestmark = pytest.mark.usefixtures("loopback_only")

FIRST = "explain what make_report returns"
SECOND = "explain how make_report formats the area"
GOOD = "`make_report` joins the circle count and `total_area` into one line (pkg/report.py:6)."


def _done(app: Any, count: int) -> bool:
    turns = list(app.query(Turn))
    return len(turns) >= count and turns[-1].has_class("done")


async def _ask_once(repo: Path, question: str, resume: str | None = None) -> str:
    """Open the app (on `resume`), ask one question, wait for the answer; the saved conversation's id."""
    app = make_app(repo, resume, offline=False, tiers=["groq"])
    async with app.run_test() as pilot:
        earlier = len(app.dialogue.turns)
        await submit(pilot, question)
        await wait_for(pilot, lambda: _done(app, earlier + 1), "the answer")
    app.session.close()
    return app.kept.id


def _user_messages(body: Any) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


async def test_continue_reopens_the_last_conversation_on_screen_and_carries_it(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.default = Reply(GOOD)
    await _ask_once(sample_repo, FIRST)

    app = make_app(sample_repo, "last", offline=False, tiers=["groq"])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: bool(app.query(Turn)), "the earlier turn on screen")
        earlier = app.query(Turn).first()
        assert earlier.question == FIRST and GOOD in earlier.markdown.source
        assert "earlier" in str(earlier.badge.render())
        await submit(pilot, SECOND)
        await wait_for(pilot, lambda: _done(app, 2), "the follow-up's answer")
    app.session.close()

    first, second = cloud_emulators.groq.bodies()
    assert _user_messages(second)[0] == _user_messages(first)[0]  # carried as it was sent
    assert len(_user_messages(second)) == 2


async def test_resume_by_id_and_clear_starts_a_new_conversation(
    sample_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    cloud_emulators.groq.default = Reply(GOOD)
    kept = await _ask_once(sample_repo, FIRST)
    await _ask_once(sample_repo, "explain what Circle.area returns")  # a second, later conversation

    app = make_app(sample_repo, kept[:8], offline=False, tiers=["groq"])
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: bool(app.query(Turn)), "the earlier turn on screen")
        assert [t.question for t in app.query(Turn)] == [FIRST]
        await submit(pilot, "/clear")
        await wait_for(pilot, lambda: not app.query(Turn), "the cleared screen")
        await submit(pilot, SECOND)
        await wait_for(pilot, lambda: _done(app, 1), "the answer")
        assert app.kept.id != kept
    listed = app.session.conversations().listing(app.session.repo)
    app.session.close()
    assert [(row.title, row.turns) for row in listed] == [
        (SECOND, 1), ("explain what Circle.area returns", 1), (FIRST, 1)]
    assert len(_user_messages(cloud_emulators.groq.bodies()[-1])) == 1  # /clear: nothing carried


def test_resume_of_an_unknown_id_is_a_usage_error(sample_repo: Path) -> None:
    with pytest.raises(UsageError, match="tiercode sessions"):
        make_app(sample_repo, "0123abcd")
