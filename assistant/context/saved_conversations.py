"""Conversations kept per repository, so work resumes: `tiercode -c` reopens the last TUI conversation and
`tiercode ask --continue` follows up on the last one-shot question. A SQLite file in the data folder that owns
its connection; it holds the turns as the models saw them (questions, prompts, answers, context block hashes)
and never settings or keys."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assistant.accounting.ledger import new_id
from assistant.context.conversation import Conversation, Turn
from indexer.sqlitedb import Database, DatabaseCorrupt, set_aside_file

Face = Literal["tui", "ask"]
"""Where a conversation was held: the terminal UI or one-shot `ask` questions."""

_SCHEMA_V1 = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    face TEXT NOT NULL,
    title TEXT NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    turns INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX conversations_latest ON conversations(repo, face, updated);
"""
_TITLE_CHARS = 72
KEEP_PER_REPOSITORY = 200
"""Conversations kept per repository: saving one more forgets the least recently used (a script's thousands of
`ask`s do not grow the file without bound)."""
FILE_NAME = "conversations.sqlite"


@dataclass
class SavedConversation:
    """One conversation and where it belongs."""

    id: str
    repo: str
    face: Face
    conversation: Conversation
    started: float = 0.0
    updated: float = 0.0

    @property
    def title(self) -> str:
        """Its first question (after any summary of earlier turns), cut to one short line."""
        questions = [t.question for t in self.conversation.turns if not t.question.startswith("(")]
        first = " ".join((questions[0] if questions else "").split())
        return first if len(first) <= _TITLE_CHARS else first[: _TITLE_CHARS - 1] + "…"


@dataclass(frozen=True)
class ConversationSummary:
    """A saved conversation as `tiercode sessions` lists it."""

    id: str
    face: str
    title: str
    started: float
    updated: float
    turns: int


class ConversationStore(Database):
    """Saved conversations of every repository (`conversations.sqlite` in the data folder)."""

    migrations = (_SCHEMA_V1,)

    def __init__(self, path: Path, keep: int = KEEP_PER_REPOSITORY) -> None:
        super().__init__(path)
        self.keep = keep

    def start(self, repo: Path, face: Face) -> SavedConversation:
        """A new, empty conversation about `repo` (saved with its first turn)."""
        now = time.time()
        return SavedConversation(new_id(), str(repo), face, Conversation(), now, now)

    def save(self, saved: SavedConversation) -> None:
        """Write the conversation's turns as they are now (a compaction rewrites earlier ones); an empty one is
        not kept."""
        if not saved.conversation.turns:
            return
        saved.updated = time.time()
        body = json.dumps([_turn_json(t) for t in saved.conversation.turns])
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO conversations (id, repo, face, title, started, updated, turns, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET title = excluded.title,"
                " updated = excluded.updated, turns = excluded.turns, body = excluded.body",
                (saved.id, saved.repo, saved.face, saved.title, saved.started, saved.updated,
                 len(saved.conversation.turns), body))
            tx.execute(
                "DELETE FROM conversations WHERE repo = ? AND id NOT IN (SELECT id FROM conversations"
                " WHERE repo = ? ORDER BY updated DESC, rowid DESC LIMIT ?)", (saved.repo, saved.repo, self.keep))

    def latest(self, repo: Path, face: Face) -> SavedConversation | None:
        """The repository's conversation of this face that was added to last."""
        row = self.conn.execute(
            "SELECT * FROM conversations WHERE repo = ? AND face = ? ORDER BY updated DESC, rowid DESC LIMIT 1",
            (str(repo), face)).fetchone()
        return None if row is None else _saved(row)

    def find(self, repo: Path, id_prefix: str) -> SavedConversation | None:
        """The repository's conversation whose id starts with `id_prefix` (as `tiercode sessions` shows it);
        None when no conversation, or more than one, matches."""
        rows = self.conn.execute(
            "SELECT * FROM conversations WHERE repo = ? AND id LIKE ? ESCAPE '\\' LIMIT 2",
            (str(repo), _like_prefix(id_prefix))).fetchall()
        return _saved(rows[0]) if len(rows) == 1 else None

    def listing(self, repo: Path, limit: int = 20) -> list[ConversationSummary]:
        """The repository's conversations, the most recent first."""
        rows = self.conn.execute(
            "SELECT id, face, title, started, updated, turns FROM conversations WHERE repo = ?"
            " ORDER BY updated DESC, rowid DESC LIMIT ?", (str(repo), limit)).fetchall()
        return [ConversationSummary(**dict(row)) for row in rows]


def open_conversations(data_dir: Path, notify: Callable[[str], None]) -> ConversationStore:
    """The saved conversations; a file that cannot be opened is set aside (`notify` says where) and a new one
    started: losing the history of earlier conversations never stops a question."""
    path = data_dir / FILE_NAME
    try:
        return ConversationStore(path)
    except DatabaseCorrupt as exc:
        aside = set_aside_file(path)
        notify(f"the saved conversations at {path} could not be used ({exc.reason}); set them aside as "
               f"{aside.name} and started anew")
        return ConversationStore(path)


def _turn_json(turn: Turn) -> dict[str, object]:
    return {"question": turn.question, "prompt": turn.prompt, "answer": turn.answer, "blocks": sorted(turn.blocks)}


def _saved(row: object) -> SavedConversation:
    values = dict(row)  # type: ignore[call-overload]
    turns = [Turn(t["question"], t["prompt"], t["answer"], frozenset(t["blocks"])) for t in json.loads(values["body"])]
    return SavedConversation(values["id"], values["repo"], values["face"], Conversation(turns), values["started"],
                             values["updated"])


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"
