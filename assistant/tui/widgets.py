"""The main screen's widgets: one conversation turn, the badge, the diff, the status footer, the prompt."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.suggester import Suggester
from textual.widgets import Collapsible, Input, Markdown, Static
from textual.widgets.markdown import MarkdownStream

from assistant.accounting.money import usd
from assistant.answer import Answer, cut_off, token_counts
from assistant.changes.edits import FileChange

if TYPE_CHECKING:
    from assistant.changes.apply_changes import Proposal

COMMANDS: dict[str, str] = {
    "/help": "this list",
    "/offline": "toggle offline mode (index and local model only)",
    "/tier": "/tier NAME forces one of the configured tiers (Tab completes the names); /tier auto routes again",
    "/budget": "show limits and spending; /budget daily 2.5 or /budget action pause changes them",
    "/stats": "cost per day, share by tier, cache hit rate, savings",
    "/context": "/context shows what the last question sent; /context QUESTION, what a new one would send",
    "/add": "/add PATH pins a file: sent whole with every question",
    "/drop": "/drop PATH unpins a file; /drop alone unpins all",
    "/map": "the repository map",
    "/find": "/find NAME lists definitions and references",
    "/apply": "write the edits the last answer proposed (asks first)",
    "/undo": "take back the last /apply (in git: its commit, while it is HEAD)",
    "/compact": "summarise the conversation's earlier turns (the cheapest tier that can)",
    "/clear": "clear the conversation",
    "/quit": "leave Tiercode",
}
TIER_STYLES = {"index": "bold black on green", "local": "bold black on cyan", "groq": "bold black on yellow",
               "gemini": "bold white on blue", "sonnet": "bold white on magenta"}


def badge_text(answer: Answer) -> Text:
    """The line under an answer: tier and model, tokens, cost, cache, escalation trail, time."""
    text = Text()
    text.append(f" {answer.tier} ", style=TIER_STYLES.get(answer.tier, "reverse"))
    parts: list[str] = []
    if answer.tier != "index":
        parts.append(answer.model)
        parts.append(token_counts(answer))
    parts.append(usd(answer.cost_usd))
    parts.append("cache hit" if answer.cached else "no cache")
    text.append(" " + " · ".join(parts))
    if cut := cut_off(answer):
        text.append(" · ")
        text.append(cut, style="bold yellow")
    for step in answer.escalations:
        text.append(" · ")
        text.append(f"{step.from_tier}→{step.to_tier}", style="bold yellow")
        text.append(f" ({step.reason})", style="yellow")
    text.append(f" · {answer.duration_ms / 1000:.2f}s", style="dim")
    return text


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#|~!&])")
_LINE_START_MARKUP = re.compile(r"^(\s*\d*)([-+=.)])")


def verbatim_markdown(text: str) -> str:
    """Plain text as Markdown that renders it line for line: markup escaped and every line break a
    hard one (Markdown joins lines otherwise)."""
    lines = [_LINE_START_MARKUP.sub(r"\1\\\2", _MARKDOWN_PUNCTUATION.sub(r"\\\1", line))
             for line in text.splitlines()]
    return "\\\n".join(lines)


def diff_text(changes: Sequence[FileChange]) -> Text:
    """Proposed changes as a colored unified diff."""
    text = Text()
    for change in changes:
        for line in change.diff().splitlines():
            if line.startswith(("+++", "---")):
                style = "bold"
            elif line.startswith("@@"):
                style = "cyan"
            elif line.startswith("+"):
                style = "green"
            elif line.startswith("-"):
                style = "red"
            else:
                style = ""
            text.append(line + "\n", style=style)
    return text


class Turn(Vertical):
    """One question and its streamed answer, badge and proposed edits."""

    def __init__(self, question: str) -> None:
        super().__init__(classes="turn")
        self.question = question
        self.markdown = Markdown(classes="answer")
        self.badge = Static("", classes="badge")
        self._stream: MarkdownStream | None = None

    @classmethod
    def earlier(cls, question: str, answer: str) -> Turn:
        """A turn of a resumed conversation, shown as it was answered (its badge says it is from before)."""
        turn = cls(question)
        turn.markdown = Markdown(answer, classes="answer")
        turn.badge = Static(Text("earlier", style="dim"), classes="badge")
        turn.add_class("done")
        return turn

    def compose(self):  # type: ignore[no-untyped-def]
        """The question, the answer, the badge (empty until the answer is done)."""
        yield Static(Text.assemble(("› ", "bold cyan"), self.question), classes="question")
        yield self.markdown
        yield self.badge

    async def write(self, delta: str) -> None:
        """Append streamed Markdown (what the turn waited for is over)."""
        if self._stream is None:
            self._stream = Markdown.get_stream(self.markdown)
            self.badge.update("")
        await self._stream.write(delta)

    def waiting(self, label: str) -> None:
        """Say what the answer waits for where the badge will be (a model reading its prompt)."""
        self.badge.update(Text(f"{label}…", style="dim"))

    def cancelling(self) -> None:
        """Ctrl+C was pressed: say so where the badge will be, until `finish` says how the turn ended."""
        self.badge.update(Text("cancelling…", style="yellow"))

    async def finish(self, answer: Answer | None = None, note: str = "") -> None:
        """Stop streaming; show the badge, or a note when there is no answer."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if answer is not None:
            if answer.thinking:  # folded above the answer: open it to see how the model got there
                await self.mount(Collapsible(Static(Text(answer.thinking), classes="thinking"), collapsed=True,
                                             title=f"thinking · {answer.usage.thinking_tokens} tokens"),
                                 before=self.markdown)
            if answer.tier == "index":  # plain lines (location, signature), not Markdown
                await self.markdown.update(verbatim_markdown(answer.answer))
            elif answer.escalations or not self.markdown.source.strip():
                await self.markdown.update(answer.answer)  # show the final tier's answer alone
            self.badge.update(badge_text(answer))
        else:
            self.badge.update(Text(note, style="bold red"))
        self.add_class("done")

    def show_changes(self, proposal: Proposal) -> None:
        """Show proposed edits and how to apply them; files the answer's context did not hold are named."""
        self.mount(Static(diff_text(proposal.changes), classes="diff"))
        outside = proposal.outside_context()
        if outside:
            self.mount(Static(f"{', '.join(c.path for c in outside)}: not in the context the answer was given; "
                              "the edit was checked against the file as it is now.", classes="hint outside"))
        self.mount(Static(f"Proposed edits to {proposal.describe()}: /apply to write them, /undo afterwards to "
                          "take them back.", classes="hint"))


@dataclass
class FooterState:
    """What the status footer shows."""

    session_cost: float = 0.0
    today_cost: float = 0.0
    daily_budget: float | None = None
    offline: bool = False
    tier: str = "auto"
    index: str = "index: opening"
    vectors: str = ""
    """Dense vectors: "embedding 12/80" while they are computed, then how many (empty without a model)."""
    work: str = ""


def footer_text(state: FooterState, bar_width: int = 10) -> Text:
    """The footer line: session cost, today's cost against the daily budget, offline, tier, index."""
    text = Text()
    text.append(f" session {usd(state.session_cost)} ", style="bold")
    text.append("│ today ")
    if state.daily_budget:
        used = min(1.0, state.today_cost / state.daily_budget)
        filled = round(used * bar_width)
        style = "red" if used >= 1 else "yellow" if used >= 0.8 else "green"
        text.append("█" * filled, style=style)
        text.append("░" * (bar_width - filled), style="dim")
        text.append(f" {usd(state.today_cost)}/{usd(state.daily_budget)} ")
    else:
        text.append(f"{usd(state.today_cost)} (no daily budget) ")
    text.append("│ ")
    text.append("offline" if state.offline else "online", style="bold red" if state.offline else "green")
    text.append(f" │ tier {state.tier} │ {state.index}")
    if state.vectors:
        text.append(f" · {state.vectors}")
    if state.work:
        text.append(f" │ {state.work}", style="italic")
    return text


class StatusFooter(Static):
    """The bottom line of the main screen."""

    def show(self, state: FooterState) -> None:
        """Render a new state."""
        self.update(footer_text(state))


class SuggestFrom(Suggester):
    """Suggests the first of `lines()` that starts with what was typed; read at each keystroke, so the
    suggestions follow what changes while the app runs (offline keeps only the tiers on this machine)."""

    def __init__(self, lines: Callable[[], Iterable[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._lines = lines

    async def get_suggestion(self, value: str) -> str | None:
        """The completion of `value`, or None."""
        return next((line for line in self._lines() if line.startswith(value)), None)


PASTE_MARKER = re.compile(r"\[pasted \d+ lines\] ?")
"""How a multi-line paste shows in the question box; the pasted text itself goes with the question."""


class PromptInput(Input):
    """The question box: history on up/down, slash-command completion with Tab (or →); a multi-line paste (a
    traceback, a log, a diff) is attached to the question whole and shown as `[pasted N lines]`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "history(-1)", "Previous", show=False),
        Binding("down", "history(1)", "Next", show=False),
        Binding("tab", "complete", "Complete", show=False),
    ]

    def __init__(self, tier_choices: Callable[[], Sequence[str]], **kwargs: object) -> None:
        """`tier_choices`: what `/tier` takes now (the same list its error names)."""

        def lines() -> list[str]:
            return [*COMMANDS, *(f"/tier {name}" for name in tier_choices()), "/budget action pause",
                    "/budget daily "]

        super().__init__(placeholder="Ask about the code, or /help", suggester=SuggestFrom(lines),
                         **kwargs)  # type: ignore[arg-type]
        self.history: list[str] = []
        self._position = 0
        self.attached = ""
        """The text pasted since the last question, sent with it as its attached input."""

    def _on_paste(self, event: events.Paste) -> None:
        """Attach a multi-line paste whole (a one-line box would keep only its first line); one line is typed.
        Lines may end in CR: terminals send a paste's newlines as the Enter key's CR."""
        text = event.text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
        if "\n" not in text:
            return  # Input's own handler inserts it
        event.prevent_default()
        event.stop()
        self.attached = f"{self.attached}\n\n{text}" if self.attached else text
        self.insert_text_at_cursor(f"[pasted {len(text.splitlines())} lines] ")

    def take_question(self) -> tuple[str, str]:
        """The typed question without paste markers, and the pasted text (cleared for the next question). A
        paste with no question typed is the question itself."""
        typed = PASTE_MARKER.sub("", self.value).strip()
        attached, self.attached = self.attached, ""
        return (typed, attached) if typed else (attached, "")

    def remember(self, line: str) -> None:
        """Add a submitted line to the history."""
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self._position = len(self.history)

    def action_history(self, step: int) -> None:
        """Move through earlier lines."""
        if not self.history:
            return
        self._position = max(0, min(len(self.history), self._position + step))
        self.value = self.history[self._position] if self._position < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        """Accept the suggested completion (the same as → at the end of the line)."""
        self.cursor_position = len(self.value)
        self.action_cursor_right()
