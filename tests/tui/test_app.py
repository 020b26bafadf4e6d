"""Pilot tests of the main screen on the real pipeline: asking, streaming, badges, commands, cancel."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import Markdown

from assistant import offline
from assistant.answer import Answer, Escalation
from assistant.offline import OfflineViolation
from assistant.tui.messages import AnswerText
from assistant.tui.widgets import PromptInput, StatusFooter, Turn
from models.base import Usage
from tests.assistant.test_tier_config import user_config
from tests.tui.helpers import make_app, submit, wait_for


def last_turn(app: object) -> Turn:
    return list(app.query(Turn))[-1]  # type: ignore[attr-defined]


async def test_an_index_question_is_answered_with_a_badge(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        await submit(pilot, "where is Circle defined?")
        await wait_for(pilot, lambda: last_turn(app).has_class("done"), "the answer")
        turn = last_turn(app)
        assert "pkg/shapes.py:14" in turn.markdown.source
        badge = str(turn.badge.render())
        assert badge.startswith(" index ") and "$0.00 " in badge


def shown_lines(turn: Turn) -> list[str]:
    """The answer's lines as drawn on screen (spaces collapsed), not its Markdown source."""
    rows = (block.render_line(y).text for block in turn.markdown.children for y in range(block.size.height))
    return [" ".join(row.split()) for row in rows if row.strip()]


@pytest.mark.parametrize(("question", "lines"), [
    ("where is Circle defined?",
     ["Circle is defined at pkg/shapes.py:14:", "pkg/shapes.py:14 class Circle(Shape) — A circle with a radius."]),
    ("grep for return",
     ["'return' (any case) occurs 3 times in 2 files:",
      'pkg/report.py:9 in make_report: return f"{len(circles)} circles, total area {total_area(circles):.2f}"',
      "pkg/shapes.py:22 in Circle.area: return math.pi * self.radius**2",
      "pkg/shapes.py:27 in total_area: return sum(shape.area() for shape in shapes)"]),
])
async def test_an_index_answer_keeps_its_lines_on_screen(sample_repo: Path, question: str, lines: list[str]) -> None:
    app = make_app(sample_repo)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        await submit(pilot, question)
        await wait_for(pilot, lambda: last_turn(app).has_class("done"), "the answer")
        assert shown_lines(last_turn(app)) == lines


async def test_a_free_question_streams_from_the_local_model(sample_repo: Path, installed_model: Path) -> None:
    deltas: list[str] = []

    def hook(message: Message) -> None:
        if isinstance(message, AnswerText):
            deltas.append(message.delta)

    app = make_app(sample_repo)
    async with app.run_test(message_hook=hook) as pilot:
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        turn = last_turn(app)
        assert len(deltas) > 1  # streamed in pieces, not at the end
        assert turn.markdown.source.strip() == "".join(deltas).strip()
        badge = str(turn.badge.render())
        assert " local " in badge and "smollm2" in badge and "tokens" in badge
        records = list(app.session.ledger.records())
        assert [(r.tier, r.outcome) for r in records] == [("local", "ok")]


async def test_an_answer_cut_at_the_token_limit_says_so_in_its_badge(sample_repo: Path, installed_model: Path) -> None:
    app = make_app(sample_repo, max_output_tokens=16)
    async with app.run_test() as pilot:
        await submit(pilot, "List twenty Python built-in functions, numbered.")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        badge = str(last_turn(app).badge.render())
        assert " local " in badge and "→16 tokens" in badge and "cut off at the token limit" in badge


async def test_the_badge_shows_the_escalation_trail_with_reasons(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    answer = Answer("Use `Circle(2).area()`.", "groq", "llama-3.3-70b-versatile", "explain", "medium",
                    escalations=(Escalation("local", "groq", "low confidence (0.21)"),),
                    usage=Usage(1200, 80), cost_usd=0.0007, duration_ms=2345)
    async with app.run_test() as pilot:
        turn = Turn("how do I get a circle's area?")
        await app.conversation.mount(turn)
        await turn.write("a weak local answer that was escalated")
        await turn.finish(answer)
        await pilot.pause()
        badge = str(turn.badge.render())
        assert " groq " in badge and "llama-3.3-70b-versatile" in badge
        assert "1200→80 tokens" in badge and "$0.0007" in badge and "2.35s" in badge
        assert "local→groq (low confidence (0.21))" in badge
        assert turn.markdown.source == answer.answer  # the final tier's answer replaces the weak one


async def test_slash_commands_complete_with_tab_and_history_recalls_them(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.click("#prompt")
        await pilot.press("/", "h", "e")
        await wait_for(pilot, lambda: bool(prompt._suggestion), "a suggestion")
        await pilot.press("tab")
        assert prompt.value == "/help"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.query(Markdown).filter(".output")), "the help")
        help_text = app.query(Markdown).filter(".output").last().source
        assert "/apply" in help_text and "/undo" in help_text and "/stats" in help_text
        await pilot.press("/", "t", "i")
        await wait_for(pilot, lambda: bool(prompt._suggestion), "a suggestion")
        await pilot.press("tab")
        assert prompt.value == "/tier"
        prompt.value = ""
        await pilot.press("up")
        assert prompt.value == "/help"


async def test_tier_completes_the_configured_tiers_the_same_names_an_unknown_tier_lists(sample_repo: Path) -> None:
    user_config('tiers = ["local", "team"]\n[tier.team]\nprovider = "openai-compatible"\n'
                'base_url = "http://127.0.0.1:8080/v1"\nmodel = "smol"\nfree = true\n')
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        prompt = app.query_one(PromptInput)
        await pilot.click("#prompt")
        await pilot.press(*"/tier te")
        await wait_for(pilot, lambda: bool(prompt._suggestion), "a suggestion")
        await pilot.press("tab")
        assert prompt.value == "/tier team"  # a declared tier
        prompt.value = ""
        await pilot.press(*"/tier ")
        await wait_for(pilot, lambda: prompt._suggestion == "/tier auto", "the first choice")
        await pilot.press("g")
        await pilot.pause()
        await pilot.press("tab")
        assert prompt.value == "/tier g"  # groq is built in but not configured: nothing to complete
        prompt.value = ""
        await submit(pilot, "/tier nosuch")
        notice = str(app.query(".notice").last().render())
        assert notice == "unknown tier 'nosuch'; use one of auto, local, team"


async def test_offline_toggle_and_budget_show_in_the_footer(sample_repo: Path) -> None:
    app = make_app(sample_repo, offline=True)
    async with app.run_test() as pilot:
        footer = app.query_one(StatusFooter)
        assert "offline" in str(footer.render())
        await submit(pilot, "/offline")
        assert "online" in str(footer.render())
        await submit(pilot, "/budget daily 2")
        text = str(footer.render())
        assert "$0.00/$2.00" in text and "░" in text
        await submit(pilot, "/tier local")
        assert "tier local" in str(footer.render())


async def test_context_alone_shows_what_the_last_question_sent(sample_repo: Path, installed_model: Path) -> None:
    app = make_app(sample_repo, max_output_tokens=16)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        await submit(pilot, "/context")
        notices = [str(n.render()) for n in app.query(".notice").results()]  # type: ignore[attr-defined]
        assert any("usage: /context QUESTION" in n for n in notices)
        await submit(pilot, "explain what make_report returns")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        await submit(pilot, "/context")
        await wait_for(pilot, lambda: bool(outputs(app)), "the /context output")
        shown = outputs(app)[-1]
        assert shown.startswith("**Sent with** “explain what make_report returns”")
        assert "def make_report" in shown  # the definition the prompt carried


async def test_the_offline_toggle_closes_and_opens_the_network(sample_repo: Path) -> None:
    app = make_app(sample_repo, offline=False)
    try:
        async with app.run_test() as pilot:
            await submit(pilot, "/offline")
            assert offline.active()
            with pytest.raises(OfflineViolation):
                socket.create_connection(("192.0.2.1", 443), timeout=1)
            await submit(pilot, "/offline")
            assert not offline.active()
    finally:
        while offline.active():
            offline.uninstall()


def outputs(app: object) -> list[str]:
    return [m.source for m in app.query(Markdown).filter(".output")]  # type: ignore[attr-defined]


async def test_find_context_and_map_commands_read_the_index(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        await submit(pilot, "/find total_area")
        await wait_for(pilot, lambda: len(outputs(app)) == 1, "the /find output")
        assert "pkg/shapes.py:25" in outputs(app)[0] and "pkg/report.py:9" in outputs(app)[0]
        await submit(pilot, "/context how does make_report use Circle")
        await wait_for(pilot, lambda: len(outputs(app)) == 2, "the /context output")
        assert "pkg/report.py:6" in outputs(app)[1] and "make_report" in outputs(app)[1]
        await submit(pilot, "/map")
        await wait_for(pilot, lambda: len(outputs(app)) == 3, "the /map output")
        assert "Circle" in outputs(app)[2]
        await submit(pilot, "/nonsense")
        notices = [str(s.render()) for s in app.query(".notice").results()]  # type: ignore[attr-defined]
        assert any("unknown command /nonsense" in n for n in notices)
        await submit(pilot, "/clear")
        assert not outputs(app)


async def test_the_footer_follows_files_changed_outside_tiercode(sample_repo: Path) -> None:
    app = make_app(sample_repo)
    async with app.run_test() as pilot:
        footer = app.query_one(StatusFooter)
        await wait_for(pilot, lambda: "3 files" in str(footer.render()), "the first index")
        assert "live" in str(footer.render())
        (sample_repo / "pkg" / "extra.py").write_text("def added() -> int:\n    return 1\n")
        await wait_for(pilot, lambda: "4 files" in str(footer.render()), "the watcher to index the new file")


async def test_embeddings_follow_in_the_background_and_the_footer_counts_them(
    sample_repo: Path, quickstart_gguf: Path
) -> None:
    from indexer.embed import VectorIndex

    # Named explicitly, the quick-start model serves as the embedder (under "auto" only a real one would).
    app = make_app(sample_repo, local={"embedder": str(quickstart_gguf)})
    async with app.run_test() as pilot:
        footer = app.query_one(StatusFooter)
        await wait_for(pilot, lambda: re.search(r"\b[1-9]\d* vectors", str(footer.render())) is not None,
                       "the vectors")
        store = app.session.store()
        chunks = store.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        assert chunks > 0 and f"{chunks} vectors" in str(footer.render())
        assert VectorIndex.for_store(store, app.session.code_embedder().dim).size == chunks  # type: ignore[union-attr]
        (sample_repo / "pkg" / "extra.py").write_text("def added() -> int:\n    return 1\n")
        await wait_for(pilot, lambda: f"{chunks + 1} vectors" in str(footer.render()), "the new file's vector")


@pytest.mark.parametrize("newline", ["\n", "\r"], ids=["lf", "cr"])  # most terminals paste a newline as CR
async def test_a_pasted_traceback_goes_with_the_question_and_chooses_its_code(
    tmp_path: Path, installed_model: Path, newline: str
) -> None:
    from textual import events

    from tests.assistant.test_everyday_error import inventory_repo, real_traceback

    repo = inventory_repo(tmp_path / "repo")
    report = real_traceback(repo)
    app = make_app(repo, max_output_tokens=16)
    async with app.run_test() as pilot:
        await wait_for(pilot, app.index_ready.is_set, "the index")
        prompt = app.query_one(PromptInput)
        await pilot.click("#prompt")
        prompt.post_message(events.Paste(report.replace("\n", newline)))
        await pilot.pause()
        assert prompt.value.startswith(f"[pasted {len(report.strip().splitlines())} lines]")
        await pilot.press(*"why does this crash?")
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.query(Turn)) and last_turn(app).has_class("done"), "the answer")
        sent = app.dialogue.turns[-1]
        assert sent.question == "why does this crash?"
        assert "KeyError: 'nuts'" in sent.prompt  # the whole paste, not its first line
        assert "return sum(self.movements[item])" in sent.prompt  # the innermost frame's function
        assert prompt.attached == ""


async def test_a_turn_says_what_its_answer_waits_for_until_the_answer_streams() -> None:
    from textual.app import App, ComposeResult

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield Turn("why does this crash?")

    async with Host().run_test() as pilot:
        turn = pilot.app.query_one(Turn)
        turn.waiting("local · smollm2: reading 1,604 tokens")  # what the bridge's AnswerWaiting leads to
        await pilot.pause()
        assert str(turn.badge.render()) == "local · smollm2: reading 1,604 tokens…"
        await turn.write("It fails because")
        await pilot.pause()
        assert str(turn.badge.render()) == ""
