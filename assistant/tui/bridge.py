"""The pipeline's Reporter for the TUI: callbacks from a worker thread become posted messages."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from assistant.tui.messages import AnswerText, AnswerWaiting, ConfirmReply, ConfirmRequest, Notice, WorkProgress

if TYPE_CHECKING:
    from textual.app import App

_POLL_SECONDS = 0.1


class TuiReporter:
    """Implements `assistant.session.Reporter` by posting messages to the app (thread-safe).

    `confirm` blocks the calling worker thread until the user answers the modal, the current
    question is cancelled (Ctrl+C), or the app closes; the last two count as "no".
    """

    def __init__(self, app: App[None]) -> None:
        self.app = app
        self.cancel: threading.Event = threading.Event()
        """The running question's cancel flag; the app replaces it for each question."""
        self.closing = threading.Event()
        """Set when the app shuts down, so no worker waits for an answer that will not come."""

    def text(self, delta: str) -> None:
        """Post a streamed piece of the answer."""
        if delta:
            self.app.post_message(AnswerText(delta))

    def status(self, message: str) -> None:
        """Post a one-line notice."""
        self.app.post_message(Notice(message))

    def progress(self, label: str, done: int, total: int) -> None:
        """Post progress of long work."""
        self.app.post_message(WorkProgress(label, done, total))

    def waiting(self, label: str) -> None:
        """Post what the answer is waiting for (shown where the turn's badge will be)."""
        self.app.post_message(AnswerWaiting(label))

    def confirm(self, question: str) -> bool:
        """Ask in a modal and wait for the answer without blocking the UI thread."""
        if threading.current_thread() is threading.main_thread():
            raise RuntimeError("TuiReporter.confirm must be called from a worker thread")
        reply = ConfirmReply()
        self.app.post_message(ConfirmRequest(question, reply))
        cancel = self.cancel
        while not reply.answered.wait(_POLL_SECONDS):
            if cancel.is_set() or self.closing.is_set():
                return False
        return reply.value
