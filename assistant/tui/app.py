"""The Tiercode app: lays out the main screen, runs the pipeline in workers, routes their messages."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Header, Input, Markdown, ProgressBar, Static

from assistant.accounting.budget import BudgetGuard
from assistant.changes.apply_changes import ChangeWriter, Proposal, plan_proposal
from assistant.changes.edits import EditError
from assistant.config import Settings
from assistant.context.conversation import Conversation
from assistant.errors import BudgetStop, TiercodeError, UsageError
from assistant.live_index import LiveIndex
from assistant.pipeline import Pipeline
from assistant.session import Session
from assistant.signals import stop_on_signals
from assistant.tui.bridge import TuiReporter
from assistant.tui.commands import CommandHandler
from assistant.tui.messages import (
    AnswerReady,
    AnswerStopped,
    AnswerText,
    AnswerWaiting,
    ConfirmRequest,
    IndexReady,
    Notice,
    WorkProgress,
)
from assistant.tui.screens import ConfirmScreen
from assistant.tui.widgets import FooterState, PromptInput, StatusFooter, Turn
from models.base import Cancelled, ModelError

if TYPE_CHECKING:
    from assistant.answer import Answer
    from assistant.context.saved_conversations import SavedConversation

_SHUTDOWN_WAIT_SECONDS = 30.0


class RunningCount:
    """Counts threads inside a `with` block; `wait_for_none` waits until none is."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __enter__(self) -> RunningCount:
        with self._changed:
            self._count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait_for_none(self, timeout: float) -> bool:
        """Wait until no thread is inside; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)


class TiercodeApp(App[None]):
    """A conversation about one repository, with costs always in view."""

    CSS_PATH = "app.tcss"
    TITLE = "Tiercode"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "cancel", "Cancel answer", priority=True),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, repo: Path, settings: Settings, resume: str | None = None) -> None:
        super().__init__()
        self.reporter = TuiReporter(self)
        self.session = Session(repo, settings, self.reporter)
        self.kept, self._resumed = self._conversation_to_open(resume)
        """The conversation on screen as it is saved (`tiercode -c` and `--resume` reopen it)."""
        self.pipeline = Pipeline(self.session)
        self.index = LiveIndex(self.session, on_change=self._index_changed, on_progress=self._embedding_progress,
                               on_notice=lambda notice: self.post_message(Notice(notice, "warning")))
        """The index's life: opened by the first worker, kept live while the app runs, closed on leaving."""
        self.budget = BudgetGuard(settings.budget, self.session.ledger, self.session.session_id)
        self.writer = ChangeWriter(self.pipeline)
        """Writes /apply's edits: a commit each in a git work tree (auto_commits), else the undo journal."""
        self.commands = CommandHandler(self)
        self.forced_tier: str | None = None
        self.proposal: Proposal | None = None
        """The edits the last answer proposed, until /apply writes them."""
        self.footer_state = FooterState(daily_budget=settings.budget.daily, offline=settings.offline)
        self.index_ready = threading.Event()
        self.answering = False
        """A question's turn is open (from Enter until its answer or stop message is shown)."""
        self.workers_running = RunningCount()
        """Ask workers still running (shutdown waits for them before closing the databases)."""
        self._turn: Turn | None = None
        self.sub_title = str(self.session.repo)

    @property
    def dialogue(self) -> Conversation:
        """Earlier questions and answers: the next question carries them; /clear starts a new conversation."""
        return self.kept.conversation

    def _conversation_to_open(self, resume: str | None) -> tuple[SavedConversation, str]:
        """The saved conversation `resume` names ("last", or an id's first characters) and a notice saying so,
        or a new one; an id that matches none is a usage error before the screen opens."""
        store = self.session.conversations()
        repo = self.session.repo
        if resume is None:
            return store.start(repo, "tui"), ""
        found = store.latest(repo, "tui") if resume == "last" else store.find(repo, resume)
        if found is None and resume != "last":
            self.session.close()
            raise UsageError(f"no saved conversation {resume!r} in this repository (or more than one starts so);"
                             " `tiercode sessions` lists them")
        if found is None:
            return store.start(repo, "tui"), "no earlier conversation in this repository: this one starts afresh"
        when = dt.datetime.fromtimestamp(found.updated).strftime("%Y-%m-%d %H:%M")
        return found, f"resumed the conversation of {when} ({len(found.conversation.turns)} turns); /clear starts anew"

    def start_new_conversation(self) -> None:
        """/clear: the next question starts a new saved conversation (the last stays in `tiercode sessions`)."""
        self.kept = self.session.conversations().start(self.session.repo, "tui")

    def save_conversation(self) -> None:
        """Keep the conversation as it is now (after each answer and each summary)."""
        self.session.conversations().save(self.kept)

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, conversation, progress, prompt, status footer."""
        yield Header(show_clock=False)
        yield VerticalScroll(id="conversation")
        yield ProgressBar(id="work", show_eta=False)
        yield PromptInput(self.commands.tier_choices, id="prompt")
        yield StatusFooter(id="status")

    @property
    def conversation(self) -> VerticalScroll:
        """The scrolling conversation pane."""
        return self.query_one("#conversation", VerticalScroll)

    def on_mount(self) -> None:
        """Start indexing in the background and show the footer."""
        self.conversation.anchor()
        self.say(f"Tiercode in {self.session.repo.name}. Ask about the code; /help lists commands.")
        if self._resumed:
            self.say(self._resumed)
        for earlier in self.dialogue.turns:
            self.conversation.mount(Turn.earlier(earlier.question, earlier.answer))
        self.query_one(ProgressBar).display = False
        self.refresh_footer()
        self.build_index()
        self.query_one(PromptInput).focus()

    def say(self, text: str, severity: str = "information") -> None:
        """A one-line notice in the conversation."""
        style = {"warning": "yellow", "error": "bold red"}.get(severity, "dim")
        self.conversation.mount(Static(Text(text, style=style), classes=f"notice {severity}"))

    def show(self, markdown: str) -> None:
        """A Markdown block in the conversation (command output)."""
        self.conversation.mount(Markdown(markdown, classes="output"))

    def refresh_footer(self) -> None:
        """Read spending from the ledger and redraw the footer."""
        state = self.footer_state
        state.session_cost = self.session.ledger.spent(0.0, self.session.session_id)
        state.today_cost = self.budget.spent_today()
        state.daily_budget = self.session.settings.budget.daily
        state.offline = self.session.settings.offline
        state.tier = self.forced_tier or "auto"
        if self.answering:
            state.work = "answering… Ctrl+C cancels"
        elif state.work.startswith("answering"):
            state.work = ""
        self.query_one(StatusFooter).show(state)

    # -- index -----------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="index")
    def build_index(self) -> None:
        """Open and update the index without blocking the interface, then keep it live (edits made outside
        Tiercode too); embeddings follow in the background when a model made for embeddings is installed,
        and symbol lookups and answers never wait for them (answers search what is there so far)."""
        try:
            counts = self.index.open().counts()
        except TiercodeError as exc:
            self.post_message(Notice(str(exc), "error"))
            return
        self.index_ready.set()
        if not self.reporter.closing.is_set():
            self.index.start_watching()
        self.post_message(IndexReady(counts))

    def _index_changed(self, paths: list[str]) -> None:
        """The watcher applied a batch (its thread): the footer follows."""
        self.post_message(IndexReady(self.index.open().counts(), len(paths), announce=False))

    def _embedding_progress(self, done: int, total: int) -> None:
        self.post_message(WorkProgress("embedding", done, total))

    def reindex(self, paths: list[str]) -> None:
        """Update the index for files an edit (or its undo) changed."""
        self.update_index_files(paths)

    @work(thread=True, group="reindex")
    def update_index_files(self, paths: list[str]) -> None:
        """Re-index single files at once, in the background."""
        changed = self.index.update(paths)
        self.post_message(IndexReady(self.index.open().counts(), changed))

    def on_index_ready(self, message: IndexReady) -> None:
        """Show the index's size in the footer."""
        counts = message.counts
        live = " · live" if self.index.watching else ""
        self.footer_state.index = f"index {counts['files']} files · {counts['symbols']} symbols{live}"
        self.query_one(ProgressBar).display = False
        if message.changed and message.announce:
            self.say(f"index updated ({message.changed} file(s))")
        self.refresh_footer()

    def on_work_progress(self, message: WorkProgress) -> None:
        """Long work shows a progress bar and a footer note."""
        bar = self.query_one(ProgressBar)
        bar.display = message.done < message.total
        bar.update(total=max(1, message.total), progress=message.done)
        if message.label == "embedding":  # background work: the footer says it, no bar
            bar.display = False
            vectors = self.index.vector_count()
            if vectors is not None and message.done >= message.total:
                self.footer_state.vectors = f"{vectors} vectors"
            else:
                self.footer_state.vectors = f"embedding {message.done}/{message.total}"
            self.refresh_footer()
            return
        if message.label == "indexing":
            self.footer_state.index = f"indexing {message.done}/{message.total}"
        else:
            self.footer_state.work = f"{message.label} {message.done}/{message.total}"
        self.query_one(StatusFooter).show(self.footer_state)  # no ledger reads per progress step

    # -- questions -------------------------------------------------------------------------------

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: a slash command runs, anything else is a question."""
        prompt = self.query_one(PromptInput)
        line = event.value.strip()
        question, attached = prompt.take_question()
        prompt.clear()
        prompt.remember(line)
        if not line:
            return
        if line.startswith("/"):
            await self.commands.run(line)
        else:
            await self.ask(question, attached)

    async def ask(self, question: str, attached: str = "") -> None:
        """Start answering a question in a worker; `attached` is pasted text that goes with it."""
        if self.answering:
            self.say("still answering the last question; Ctrl+C cancels it", "warning")
            return
        self.answering = True
        self.reporter.cancel = threading.Event()
        shown = f"{question}\n[pasted {len(attached.splitlines())} lines]" if attached else question
        self._turn = Turn(shown)
        await self.conversation.mount(self._turn)
        self.refresh_footer()
        self.answer_question(question, attached, self.forced_tier, self.reporter.cancel)

    @work(thread=True, exclusive=True, group="ask")
    def answer_question(self, question: str, attached: str, tier: str | None, cancel: threading.Event) -> None:
        """Run the pipeline; its reporter streams through messages."""
        with self.workers_running:
            self.post_message(self._answer(question, attached, tier, cancel))

    def _answer(
        self, question: str, attached: str, tier: str | None, cancel: threading.Event,
    ) -> AnswerReady | AnswerStopped:
        try:
            self.index.open()
            return AnswerReady(self.pipeline.ask(question, attached, tier=tier, cancel=cancel,
                                                 conversation=self.dialogue))
        except Cancelled:
            return AnswerStopped("the partial usage is recorded", "cancelled")
        except BudgetStop as exc:
            return AnswerStopped(str(exc), "budget")
        except (TiercodeError, ModelError) as exc:
            return AnswerStopped(str(exc), "error")
        except Exception as exc:  # a bug must not take the interface down
            return AnswerStopped(f"unexpected error: {exc!r}", "error")

    async def on_answer_text(self, message: AnswerText) -> None:
        """Stream a piece of the answer into the current turn."""
        if self._turn is not None:
            await self._turn.write(message.delta)

    def on_answer_waiting(self, message: AnswerWaiting) -> None:
        """Say what the current turn waits for until its answer streams."""
        if self._turn is not None:
            self._turn.waiting(message.label)

    async def on_answer_ready(self, message: AnswerReady) -> None:
        """Show the badge and any proposed edits."""
        turn, self._turn = self._turn, None
        self.answering = False
        if turn is None:
            return
        await turn.finish(message.answer)
        self.save_conversation()
        for note in message.answer.notes:
            self.say(f"note: {note}")
        self.propose_edits(turn, message.answer.answer, message.answer)
        self.refresh_footer()

    async def on_answer_stopped(self, message: AnswerStopped) -> None:
        """A cancelled or failed question ends its turn with the reason."""
        turn, self._turn = self._turn, None
        self.answering = False
        if turn is not None:
            await turn.finish(note=f"{message.kind}: {message.reason}")
        self.refresh_footer()

    def propose_edits(self, turn: Turn, text: str, answer: Answer | None = None) -> None:
        """Parse edits from an answer and show them as a diff, naming files its context did not hold."""
        try:
            proposal = plan_proposal(text, self.session.repo, turn.question, answer)
        except EditError as exc:
            self.say(f"the proposed edit cannot be applied: {exc}", "warning")
            return
        if proposal.changes:
            self.proposal = proposal
            turn.show_changes(proposal)

    @work(thread=True, group="apply")
    def apply_proposal(self, proposal: Proposal) -> None:
        """Write (in git: commit) the edits off the interface's thread: the commit message is a model call."""
        with self.workers_running:
            try:
                applied = self.writer.apply(proposal)
            except Exception as exc:  # EditError, or a bug: either way the prompt must come back
                reason = str(exc) if isinstance(exc, EditError) else f"unexpected error: {exc!r}"
                self.call_from_thread(self.applied, None, f"edits not applied: {reason}")
            else:
                self.call_from_thread(self.applied, applied.paths, applied.describe())

    def applied(self, paths: list[str] | None, note: str) -> None:
        """After an apply (`paths` None when it failed): say what happened, update the index, free the prompt."""
        self.answering = False
        if paths is None:
            self.say(note, "error")
            return
        self.proposal = None
        self.say(note)
        self.reindex(paths)

    def on_notice(self, message: Notice) -> None:
        """A notice from a worker goes into the conversation."""
        self.say(message.text, message.severity)

    def on_confirm_request(self, message: ConfirmRequest) -> None:
        """A worker waits for yes/no: ask in a modal and hand the answer back."""
        self.push_screen(ConfirmScreen(message.question, "Tiercode asks"),
                         callback=lambda value: message.reply.give(bool(value)))

    def action_cancel(self) -> None:
        """Ctrl+C: stop the running answer (declining an open question); the app keeps running."""
        if isinstance(self.screen, ConfirmScreen):
            self.screen.dismiss(False)
        if not self.answering:
            self.notify("Nothing to cancel. /quit or Ctrl+Q leaves Tiercode.")
            return
        self.reporter.cancel.set()
        if self._turn is not None:
            self._turn.cancelling()

    def on_unmount(self) -> None:
        """Leaving: decline pending questions, cancel the answer, stop keeping the index live."""
        self.reporter.closing.set()
        self.reporter.cancel.set()
        self.index.close()

    def shutdown_workers(self) -> None:
        """Stop a running answer and wait for the worker to let go of the databases."""
        self.on_unmount()
        self.workers_running.wait_for_none(_SHUTDOWN_WAIT_SECONDS)


    def exit_on_signal(self) -> None:
        """SIGINT or SIGTERM: leave as /quit does. Called from the signal handler, so the exit is scheduled on
        the app's event loop; before the loop runs (or after) the signal interrupts as Ctrl-C would."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise KeyboardInterrupt from None
        loop.call_soon_threadsafe(self.exit)


def run_tui(repo: Path, settings: Settings, resume: str | None = None) -> None:
    """Open the terminal UI on `repo` (bare `tiercode`), on a saved conversation with `resume` ("last" or an id);
    SIGINT and SIGTERM close it cleanly."""
    app = TiercodeApp(repo, settings, resume)
    try:
        with stop_on_signals(app.exit_on_signal):
            app.run()
    except KeyboardInterrupt:
        pass
    finally:
        app.shutdown_workers()
        app.session.close()
