"""Work resumes: every `ask` is kept per repository, `ask --continue` carries the last one's turns (context
already sent and unchanged is not sent again), `tiercode sessions` lists them, and nothing saved holds a key.

The installed entry point in subprocesses, the Groq SDK against the loopback emulator (the requests it
received are the evidence), and the real SQLite file in the test's data folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assistant.context.saved_conversations import FILE_NAME
from tests.assistant.test_ask_cli import assert_one_line_error, tiercode
from tests.assistant.test_conversation import DEFINITION, FIRST, GOOD, SECOND
from tests.emulators import fixtures
from tests.emulators.server import Reply

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def groq_repo(sample_repo: Path, cloud_emulators: fixtures.CloudEmulators) -> Path:
    """The sample repository with the Groq tier only (the emulator answers every question well)."""
    cloud_emulators.groq.default = Reply(GOOD)
    (sample_repo / ".tiercode.toml").write_text('tiers = ["groq"]\n')
    return sample_repo


def _ask(repo: Path, *args: str) -> Any:
    done = tiercode("ask", "--json", *args, "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _user_messages(body: Any) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def test_ask_continue_carries_the_last_question_and_leaves_out_its_unchanged_context(
    groq_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    _ask(groq_repo, FIRST)
    _ask(groq_repo, "--continue", SECOND)

    first, second = cloud_emulators.groq.bodies()
    assert len(_user_messages(first)) == 1
    earlier, follow_up = _user_messages(second)
    assert earlier == _user_messages(first)[0]  # the earlier question exactly as it was sent
    assert {"role": "assistant", "content": GOOD} in second["messages"]
    assert DEFINITION in earlier and DEFINITION not in follow_up
    assert "Sent earlier in this conversation and unchanged: pkg/report.py" in follow_up


def test_ask_without_continue_starts_afresh(groq_repo: Path, cloud_emulators: fixtures.CloudEmulators) -> None:
    _ask(groq_repo, FIRST)
    _ask(groq_repo, SECOND)

    assert len(_user_messages(cloud_emulators.groq.bodies()[1])) == 1


def test_continue_with_nothing_to_continue_says_so_and_answers(groq_repo: Path) -> None:
    done = tiercode("ask", "--continue", FIRST, "--repo", str(groq_repo))
    assert done.returncode == 0, done.stderr
    assert "no earlier `ask` in this repository to continue" in done.stderr
    assert GOOD in done.stdout


def test_conversations_are_kept_per_repository(groq_repo: Path, tmp_path: Path,
                                               cloud_emulators: fixtures.CloudEmulators) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "tool.py").write_text("def make_report():\n    return 'other'\n")
    (other / ".tiercode.toml").write_text('tiers = ["groq"]\n')
    _ask(groq_repo, FIRST)
    _ask(other, "explain what make_report does here")
    _ask(groq_repo, "--continue", SECOND)

    last = _user_messages(cloud_emulators.groq.bodies()[2])
    assert len(last) == 2 and FIRST in last[0]  # the sample repository's turn, not the other's


def test_sessions_lists_this_repositorys_conversations_newest_first(groq_repo: Path) -> None:
    _ask(groq_repo, FIRST)
    _ask(groq_repo, "--continue", SECOND)
    _ask(groq_repo, "where is Circle defined?")  # answered by the index: a conversation too

    listed = tiercode("sessions", "--json", "--repo", str(groq_repo))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["face"], r["turns"], r["title"]) for r in rows] == [
        ("ask", 1, "where is Circle defined?"), ("ask", 2, FIRST)]
    table = tiercode("sessions", "--repo", str(groq_repo))
    assert rows[1]["id"][:8] in table.stdout and FIRST in table.stdout


def test_sessions_in_a_repository_without_any(sample_repo: Path) -> None:
    done = tiercode("sessions", "--repo", str(sample_repo))
    assert done.returncode == 0, done.stderr
    assert "no saved conversations" in done.stdout


def test_saved_conversations_hold_no_key(groq_repo: Path) -> None:
    _ask(groq_repo, FIRST)
    saved = Path(os.environ["XDG_DATA_HOME"]) / "tiercode" / FILE_NAME
    with sqlite3.connect(saved) as conn:
        text = "\n".join(str(value) for row in conn.execute("SELECT * FROM conversations") for value in row)
    assert GOOD in text and FIRST in text
    for key in fixtures.KEYS.values():
        assert key not in text
        assert key.encode() not in saved.read_bytes()


def test_a_damaged_conversations_file_is_set_aside_and_the_question_answered(groq_repo: Path) -> None:
    saved = Path(os.environ["XDG_DATA_HOME"]) / "tiercode" / FILE_NAME
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(b"this is not a database" * 100)
    done = tiercode("ask", "--continue", FIRST, "--repo", str(groq_repo))
    assert done.returncode == 0, done.stderr
    assert "set them aside as conversations.sqlite.damaged" in done.stderr
    assert saved.with_name(FILE_NAME + ".damaged").exists()


def test_continue_and_resume_belong_to_the_terminal_ui(sample_repo: Path) -> None:
    done = tiercode("-c", "stats", "--repo", str(sample_repo))
    assert_one_line_error(done, 2, "tiercode ask -c")


def test_only_the_latest_conversations_of_a_repository_are_kept(tmp_path: Path) -> None:
    from assistant.context.conversation import Turn
    from assistant.context.saved_conversations import ConversationStore

    store = ConversationStore(tmp_path / FILE_NAME, keep=3)
    repo, other = tmp_path / "repo", tmp_path / "other"
    kept_elsewhere = store.start(other, "ask")
    kept_elsewhere.conversation.add(Turn("elsewhere", "elsewhere", "answer", frozenset()))
    store.save(kept_elsewhere)
    for n in range(5):
        saved = store.start(repo, "ask")
        saved.conversation.add(Turn(f"question {n}", f"question {n}", "answer", frozenset()))
        store.save(saved)
    assert [row.title for row in store.listing(repo)] == ["question 4", "question 3", "question 2"]
    assert [row.title for row in store.listing(other)] == ["elsewhere"]  # another repository's are its own
    store.close()


def test_a_follow_up_about_what_the_last_question_named_is_answered_by_the_index(
    groq_repo: Path, cloud_emulators: fixtures.CloudEmulators
) -> None:
    first = _ask(groq_repo, "where is Circle defined?")
    follow_up = _ask(groq_repo, "--continue", "and who calls it?")  # the README's example

    assert first["tier"] == follow_up["tier"] == "index"
    assert ("pkg/report.py", "make_report") in [(s["path"], s["symbol"]) for s in follow_up["sources"]]
    assert "Circle is referenced" in follow_up["answer"]
    assert cloud_emulators.groq.bodies() == []  # no model was asked
