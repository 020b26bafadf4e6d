"""The message of a commit Tiercode makes for an edit: written by the local model, the cheapest tier that can (its
call is a ledger record under the answer's query, tier `commit-message`), or a plain one when no local model is
available or its line is unusable."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from assistant.accounting.ledger import COMMIT_MESSAGE_TIER
from assistant.changes.edits import FileChange
from assistant.errors import TiercodeError
from models.base import GenerationRequest, Message, ModelError

if TYPE_CHECKING:
    from assistant.pipeline import Pipeline

SUBJECT_CHARS = 72
_DIFF_CHARS = 6000
"""How much of the diff the model reads (a small local window holds it with room for the answer)."""
_SYSTEM = ("You write git commit subject lines. Reply with one line only: what the change does, in the imperative, "
           "at most 60 characters, no quotes. Examples: Add a Square shape; Fix the off-by-one in parse_header; "
           "Rename load to read_config.")


def write_message(pipeline: Pipeline, changes: Sequence[FileChange], question: str = "", query_id: str = "") -> str:
    """A commit message for `changes`: the local model's subject line, else a plain one naming the files; then
    the question asked."""
    subject = _model_subject(pipeline, changes, query_id) or plain_subject(changes)
    return f"{subject}\n\nAsked: {question.strip()}" if question.strip() else subject


def plain_subject(changes: Sequence[FileChange]) -> str:
    """The subject when no model writes one: the files and what happened to them."""
    return _fit("Tiercode: " + ", ".join(f"{change.action} {change.path}" for change in changes))


def _model_subject(pipeline: Pipeline, changes: Sequence[FileChange], query_id: str) -> str:
    """The local model's subject line, its call recorded in the ledger; empty when it is unavailable, fails, or
    answers nothing usable."""
    diff = "".join(change.diff() for change in changes)[:_DIFF_CHARS]
    asked = Message("user", f"Write the commit subject line for this diff.\n\n{diff}")
    request = GenerationRequest((Message("system", _SYSTEM), asked), max_tokens=32, temperature=0.0)
    try:
        backend = pipeline.session.tiers.local("coder")
        result = backend.generate(request)
    except (ModelError, TiercodeError):  # no local model, or a broken one: the edit is still committed
        return ""
    pipeline.record_result(query_id, COMMIT_MESSAGE_TIER, backend, result, route=None)
    return usable_subject(result.text, request)


def usable_subject(text: str, request: GenerationRequest | None = None) -> str:
    """The first line of a model's reply as a subject: quotes, prefixes and fences gone, within 72 characters;
    empty when nothing word-like is left or the line only repeats the request (small models echo it)."""
    asked = "" if request is None else "\n".join(message.content for message in request.messages).lower()
    for line in text.splitlines():
        line = re.sub(r"^(commit message|subject)\s*:\s*", "", line.strip().strip("`\"'*#- "), flags=re.IGNORECASE)
        line = line.strip("`\"' ").rstrip(".")
        if re.search(r"[A-Za-z]{3,}", line):
            return "" if line.lower() in asked else _fit(line)
    return ""


def _fit(line: str) -> str:
    return line if len(line) <= SUBJECT_CHARS else line[: SUBJECT_CHARS - 1].rstrip() + "…"
