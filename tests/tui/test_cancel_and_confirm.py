"""Pilot tests: Ctrl+C cancels a generation and keeps the app; confirmations block the worker, not the UI."""

from __future__ import annotations

import threading
from pathlib import Path

from textual.message import Message

from assistant.tui.messages import AnswerText
from assistant.tui.screens import ConfirmScreen
from assistant.tui.widgets import Turn
from tests.tui.helpers import WAIT_SECONDS, make_app, submit, wait_for


async def test_ctrl_c_cancels_the_answer_records_partial_usage_and_keeps_the_app(
    sample_repo: Path, installed_model: Path,
) -> None:
    streamed = threading.Event()

    def hook(message: Message) -> None:
        if isinstance(message, AnswerText):
            streamed.set()

    app = make_app(sample_repo, max_output_tokens=2000)
    # The quick-start model may finish a list in well under a second; hold the stream after its first
    # piece until the user's Ctrl+C has landed, so the cancel always arrives mid-answer.
    show_text = app.reporter.text

    def text_then_wait_for_ctrl_c(delta: str) -> None:
        show_text(delta)
        app.reporter.text = show_text  # type: ignore[method-assign]
        app.reporter.cancel.wait(WAIT_SECONDS)

    app.reporter.text = text_then_wait_for_ctrl_c  # type: ignore[method-assign]
    async with app.run_test(message_hook=hook) as pilot:
        await submit(pilot, "List 200 different fruit names, numbered.")  # long enough to interrupt
        await wait_for(pilot, streamed.is_set, "the first streamed text")
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: list(app.query(Turn))[-1].has_class("done"), "the cancelled turn")
        assert app.is_running
        assert "cancelled" in str(list(app.query(Turn))[-1].badge.render())
        (record,) = [r for r in app.session.ledger.records() if r.tier == "local"]
        assert record.outcome == "cancelled" and 0 < record.output_tokens < 2000
        await submit(pilot, "where is Circle defined?")  # the app still answers
        await wait_for(pilot, lambda: len(app.query(Turn)) == 2 and list(app.query(Turn))[-1].has_class("done"),
                       "the next answer")
        assert "pkg/shapes.py:14" in list(app.query(Turn))[-1].markdown.source


async def test_ctrl_c_before_the_prompt_is_evaluated_stops_the_local_model_there(
    sample_repo: Path, installed_model: Path,
) -> None:
    app = make_app(sample_repo)
    question = "Explain how the shapes module computes areas."
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        model = app.session.tiers.get("local")._model  # type: ignore[attr-defined]
        with model.lock:  # the answer waits for the model, as behind another generation
            await submit(pilot, question)
            await pilot.press("ctrl+c")
            await pilot.pause()
            assert str(list(app.query(Turn))[-1].badge.render()) == "cancelling…"  # until the worker stops
        await wait_for(pilot, lambda: list(app.query(Turn))[-1].has_class("done"), "the cancelled turn")
        turn = list(app.query(Turn))[-1]
        assert str(turn.badge.render()) == "cancelled: the partial usage is recorded"  # one message, in its place
        assert not any("cancel" in str(w.render()) for w in app.query(".notice"))
        await submit(pilot, question)  # the same question again, left to finish
        await wait_for(pilot, lambda: len(app.query(Turn)) == 2 and list(app.query(Turn))[-1].has_class("done"),
                       "the next answer")
    stopped, answered = [r for r in app.session.ledger.records() if r.tier == "local"]
    assert stopped.outcome == "cancelled" and answered.outcome != "cancelled"
    assert stopped.input_tokens < answered.input_tokens  # the prompt was not evaluated to its end
    assert stopped.output_tokens == 0 < answered.output_tokens


async def test_ctrl_c_with_nothing_running_does_not_quit(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running and app.return_code is None


async def test_a_budget_pause_question_waits_for_the_user_without_freezing(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    answers: list[bool] = []
    question = "the daily budget of $0.00 would be exceeded (spent $0.0000, this call up to $0.0100). Continue?"
    async with app.run_test() as pilot:
        for key, expected in (("y", True), ("n", False)):
            worker = threading.Thread(target=lambda: answers.append(app.reporter.confirm(question)))
            worker.start()
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            assert app.screen.question == question  # type: ignore[attr-defined]
            assert worker.is_alive()  # the worker waits; the UI keeps running (this test is driving it)
            await pilot.press(key)
            await wait_for(pilot, lambda w=worker: not w.is_alive(), "the worker to resume")
            assert answers[-1] is expected


async def test_ctrl_c_during_a_confirmation_declines_it(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    result: list[bool] = []
    async with app.run_test() as pilot:
        app.answering = True  # as while a question is being answered
        worker = threading.Thread(target=lambda: result.append(app.reporter.confirm("Ask sonnet for $0.20?")))
        worker.start()
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: not worker.is_alive(), "the worker to resume")
        assert result == [False]
        assert not isinstance(app.screen, ConfirmScreen)  # the question is gone too
        app.answering = False
