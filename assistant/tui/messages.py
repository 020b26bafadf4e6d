"""Messages the workers post to the app; each is small and carries only values."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from textual.message import Message

if TYPE_CHECKING:
    from assistant.answer import Answer


@dataclass
class ConfirmReply:
    """Where the UI puts the user's yes/no for a worker blocked in `Reporter.confirm`."""

    answered: threading.Event = field(default_factory=threading.Event)
    value: bool = False

    def give(self, value: bool) -> None:
        """Record the answer and wake the waiting worker."""
        self.value = value
        self.answered.set()


class AnswerText(Message):
    """A piece of the answer as it streams."""

    def __init__(self, delta: str) -> None:
        super().__init__()
        self.delta = delta


class AnswerWaiting(Message):
    """The answer waits for a model that shows no progress yet (reading its prompt)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label


class Notice(Message):
    """A one-line notice from the pipeline or a command."""

    def __init__(self, text: str, severity: Literal["information", "warning", "error"] = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity


class WorkProgress(Message):
    """Progress of long work (indexing, model load, embedding)."""

    def __init__(self, label: str, done: int, total: int) -> None:
        super().__init__()
        self.label = label
        self.done = done
        self.total = total


class ConfirmRequest(Message):
    """A worker asks the user yes/no and waits on `reply`."""

    def __init__(self, question: str, reply: ConfirmReply) -> None:
        super().__init__()
        self.question = question
        self.reply = reply


class AnswerReady(Message):
    """A question was answered."""

    def __init__(self, answer: Answer) -> None:
        super().__init__()
        self.answer = answer


class AnswerStopped(Message):
    """A question ended without an answer: cancelled, stopped by a budget, or failed."""

    def __init__(self, reason: str, kind: Literal["cancelled", "budget", "error"]) -> None:
        super().__init__()
        self.reason = reason
        self.kind = kind


class IndexReady(Message):
    """The index is built (or updated) and holds these counts."""

    def __init__(self, counts: dict[str, int], changed: int = 0, announce: bool = True) -> None:
        super().__init__()
        self.counts = counts
        self.changed = changed
        self.announce = announce
        """Say so in the conversation (edits from /apply), or only update the footer (file watching)."""
