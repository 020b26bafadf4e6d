"""Slash commands: parse the line, call the services, show the result in the conversation."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text

from assistant import offline
from assistant.accounting.money import usd
from assistant.changes.edits import EditError, no_edit_reason
from assistant.context.builder import build_context
from assistant.context.compaction import KEEP_TURNS
from assistant.context.instructions import load_instructions
from assistant.errors import UsageError
from assistant.tui.screens import ConfirmScreen, StatsScreen
from assistant.tui.usage import usage_report
from assistant.tui.widgets import COMMANDS, diff_text
from models.base import ModelError, approx_tokens

if TYPE_CHECKING:
    from textual.containers import VerticalScroll
    from textual.screen import Screen

    from assistant.accounting.budget import BudgetGuard
    from assistant.changes.apply_changes import ChangeWriter, Proposal
    from assistant.context.conversation import Conversation
    from assistant.pipeline import Pipeline
    from assistant.session import Session
    from indexer.store import IndexStore

_MAP_TOKENS = 1500


class CommandHost(Protocol):
    """What the slash commands need from the app that runs them (the app passes itself)."""

    session: Session
    pipeline: Pipeline
    budget: BudgetGuard
    writer: ChangeWriter
    index_ready: threading.Event
    forced_tier: str | None
    proposal: Proposal | None
    answering: bool

    @property
    def conversation(self) -> VerticalScroll:
        """The scrolling conversation pane."""
        ...

    @property
    def dialogue(self) -> Conversation:
        """The turns the next question carries."""
        ...

    def start_new_conversation(self) -> None:
        """Start a new saved conversation (/clear)."""

    def save_conversation(self) -> None:
        """Keep the conversation as it is now."""

    def say(self, text: str, severity: str = "information") -> None:
        """A one-line notice in the conversation."""

    def show(self, markdown: str) -> None:
        """A Markdown block in the conversation."""

    def refresh_footer(self) -> None:
        """Redraw the footer."""

    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None] | None = None) -> Any:
        """Open a screen (a modal's answer goes to `callback`)."""

    def exit(self) -> None:
        """Leave the app."""

    def apply_proposal(self, proposal: Proposal) -> None:
        """Write (in git: commit) the proposed edits."""

    def reindex(self, paths: list[str]) -> None:
        """Update the index for files an edit changed."""


class CommandHandler:
    """Runs `/name args` lines for the app."""

    def __init__(self, app: CommandHost) -> None:
        self.app = app

    async def run(self, line: str) -> None:
        """Dispatch one command line."""
        name, _, argument = line.partition(" ")
        handler = getattr(self, f"cmd_{name[1:]}", None) if name in COMMANDS else None
        if handler is None:
            self.app.say(f"unknown command {name}; /help lists the commands", "warning")
            return
        await handler(argument.strip())

    def _store(self) -> IndexStore | None:
        if not self.app.index_ready.is_set():
            self.app.say("the index is still being built; try again in a moment", "warning")
            return None
        return self.app.session.store()

    async def cmd_help(self, _: str) -> None:
        """List the commands."""
        rows = "\n".join(f"- `{name}` {text}" for name, text in COMMANDS.items())
        self.app.show(f"{rows}\n\nCtrl+C cancels an answer; ↑/↓ walk the history; Tab completes a command.")

    async def cmd_offline(self, _: str) -> None:
        """Toggle offline mode."""
        settings = self.app.session.settings
        settings.offline = not settings.offline
        if settings.offline:
            offline.install()
        elif offline.active():  # the guard `tiercode --offline` installed at start
            offline.uninstall()
        self.app.say("offline: only the index and local models answer" if settings.offline
                     else "online: the cascade may use cloud tiers")
        self.app.refresh_footer()

    def tier_choices(self) -> list[str]:
        """What `/tier` takes: auto, then the configured tiers (offline: the ones on this machine)."""
        return ["auto", *self.app.session.tiers.order()]

    async def cmd_tier(self, argument: str) -> None:
        """Force a tier, or route automatically again."""
        choices = self.tier_choices()
        if argument in ("", "auto"):
            self.app.forced_tier = None
            self.app.say("tier: automatic routing")
        elif argument in choices:
            self.app.forced_tier = argument
            self.app.say(f"tier: every question goes to {argument} until /tier auto")
        else:
            self.app.say(f"unknown tier '{argument}'; use one of {', '.join(choices)}", "warning")
        self.app.refresh_footer()

    async def cmd_budget(self, argument: str) -> None:
        """Show limits and spending, or change one limit for this session."""
        budget = self.app.session.settings.budget
        if argument:
            key, _, value = argument.partition(" ")
            try:
                if key == "action" and value in ("warn", "pause", "fail", "downgrade"):
                    budget.action = value  # type: ignore[assignment]
                elif key in ("per_query", "session", "daily", "monthly"):
                    setattr(budget, key, None if value in ("", "none") else max(0.0, float(value)))
                else:
                    raise ValueError
            except ValueError:
                self.app.say("usage: /budget daily|monthly|session|per_query USD|none, or /budget action "
                             "warn|pause|fail|downgrade", "warning")
                return
            self.app.say(f"budget {key} set to {value or 'none'} for this session")
        ledger, now = self.app.session.ledger, dt.datetime.now()
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        def limit(value: float | None) -> str:
            return "none" if value is None else usd(value)

        self.app.show(
            "| limit | value | spent |\n|---|---|---|\n"
            f"| per query | {limit(budget.per_query)} | |\n"
            f"| session | {limit(budget.session)} | {usd(ledger.spent(0.0, self.app.session.session_id))} |\n"
            f"| daily | {limit(budget.daily)} | {usd(self.app.budget.spent_today())} |\n"
            f"| monthly | {limit(budget.monthly)} | {usd(ledger.spent(month))} |\n\n"
            f"When a limit would be crossed: **{budget.action}**. "
            f"Cloud calls above {usd(self.app.session.settings.confirm_above_usd)} ask first."
        )
        self.app.refresh_footer()

    async def cmd_stats(self, _: str) -> None:
        """Open the stats screen."""
        today = dt.date.today()
        since = dt.datetime.combine(today - dt.timedelta(days=29), dt.time()).timestamp()
        records = list(self.app.session.ledger.records(since))
        report = usage_report(records, today)
        extra = ""
        try:
            from assistant.accounting.stats import stats_from_records
        except ImportError:
            pass
        else:
            stats = stats_from_records(records, since=since)
            report = replace(report, savings_usd=stats.totals.savings_usd)
            extra = stats.to_text()
        await self.app.push_screen(StatsScreen(report, extra))

    def _instructions_note(self) -> str:
        """Which project instructions file goes in the system prompt, and its size."""
        settings = self.app.session.settings
        found = load_instructions(self.app.session.repo, settings.instructions_files, settings.instructions_tokens,
                                  approx_tokens)
        return f"project instructions: {found.describe()}" if found else "no project instructions file"

    async def cmd_context(self, argument: str) -> None:
        """Show what the last question sent, or the context the index would send with a new one."""
        if not argument:
            turns = self.app.dialogue.turns
            if not turns:
                self.app.say("usage: /context QUESTION, or /context after a question to see what it sent", "warning")
                return
            last = turns[-1]
            self.app.show(f"**Sent with** “{last.question}”: about {approx_tokens(last.prompt)} tokens, after "
                          f"{len(turns) - 1} earlier turn(s) of this conversation; {self._instructions_note()};"
                          f" pinned: {', '.join(self.app.pipeline.pinned.paths) or 'none'}"
                          f"\n\n````text\n{last.prompt}\n````")
            return
        store = self._store()
        if store is None:
            return
        context = build_context(argument, store, self.app.session.repo, self.app.session.settings.context.local,
                                approx_tokens, pinned=self.app.pipeline.pinned.texts())
        sources = "\n".join(f"- `{s.path}:{s.line}` {s.symbol}" for s in context.sources) or "- (nothing found)"
        self.app.show(f"**Context for** “{argument}”: about {context.tokens} tokens, "
                      f"{context.trimmed} piece(s) left out\n\n{sources}")

    async def cmd_add(self, argument: str) -> None:
        """Pin a file: it is sent whole with every question, counted against each tier's budget."""
        if not argument:
            self.app.say("usage: /add PATH pins a file into every question's context", "warning")
            return
        try:
            path = self.app.pipeline.pinned.add(argument)
        except UsageError as exc:
            self.app.say(str(exc), "warning")
            return
        self.app.say(f"pinned {path}; pinned now: {', '.join(self.app.pipeline.pinned.paths)}")

    async def cmd_drop(self, argument: str) -> None:
        """Unpin a file (`/drop` alone unpins all)."""
        pinned = self.app.pipeline.pinned
        if not argument:
            dropped, pinned.paths = list(pinned.paths), []
            self.app.say(f"unpinned {', '.join(dropped) or 'nothing: no file was pinned'}")
            return
        try:
            self.app.say(f"unpinned {pinned.drop(argument)}")
        except UsageError as exc:
            self.app.say(str(exc), "warning")

    async def cmd_map(self, argument: str) -> None:
        """Show the ranked repository map."""
        store = self._store()
        if store is None:
            return
        try:
            from indexer.repomap import render_map  # type: ignore[import-not-found]
        except ImportError:
            self.app.say("the repository map is not available in this version yet", "warning")
            return
        text = render_map(store, _MAP_TOKENS, approx_tokens, query=argument or None)
        self.app.show(f"```\n{text}\n```")

    async def cmd_find(self, argument: str) -> None:
        """List a name's definitions and references."""
        if not argument:
            self.app.say("usage: /find NAME", "warning")
            return
        store = self._store()
        if store is None:
            return
        found = store.definitions(argument)
        lines = [f"- `{s.path}:{s.line}` {s.kind} **{s.qualified_name}**" for s in found]
        refs = store.usages(argument)
        lines += [f"- `{u.path}:{u.line}` used in {u.enclosing or 'module level'}" for u in refs[:30]]
        self.app.show("\n".join(lines) if lines else f"no definition or reference of `{argument}` in the index")

    async def cmd_apply(self, _: str) -> None:
        """Ask, showing again the diff of files the answer's context did not hold, then write the edits."""
        proposal = self.app.proposal
        if proposal is None:
            turns = self.app.dialogue.turns
            why = no_edit_reason(turns[-1].answer) if turns else "no answer yet; ask for a change first"
            self.app.say(f"nothing to apply: {why}", "warning")
            return
        if self.app.answering:
            self.app.say("an answer is still coming; wait for it or press Ctrl+C, then /apply", "warning")
            return
        question = Text(f"Write these changes to {proposal.describe()}?")
        outside = proposal.outside_context()
        if outside:
            question.append(f"\n\n{', '.join(c.path for c in outside)}: not in the context the answer was given "
                            "(the model did not see it); the diff against the file as it is now:\n\n", style="bold")
            question.append_text(diff_text(outside))
        self.app.push_screen(ConfirmScreen(question, "Apply edits"),
                             callback=lambda yes: self._apply_confirmed(proposal, yes))

    def _apply_confirmed(self, proposal: Proposal, yes: bool | None) -> None:
        if not yes:
            self.app.say("edits not applied")
            return
        self.app.answering = True  # the commit message may use the local model: no question meanwhile
        self.app.apply_proposal(proposal)

    async def cmd_undo(self, _: str) -> None:
        """Take back the last /apply: Tiercode's commit while it is HEAD, else restore the journal's files."""
        try:
            paths = self.app.writer.undo()
        except EditError as exc:
            self.app.say(f"cannot undo: {exc}", "warning")
            return
        self.app.reindex(paths)
        self.app.say(f"restored: {', '.join(paths)}")

    async def cmd_compact(self, _: str) -> None:
        """Summarise the conversation's earlier turns now, with the cheapest tier that can (in the background)."""
        if self.app.answering:
            self.app.say("an answer is still coming; wait for it or press Ctrl+C, then /compact", "warning")
            return
        if len(self.app.dialogue.turns) <= KEEP_TURNS:
            self.app.say("nothing to summarise yet: the conversation has no earlier turns")
            return
        self.app.answering = True  # no question while the turns are being folded
        self.app.say("summarising the earlier turns…")
        self.app.run_worker(self._compact, thread=True, group="compact", exclusive=True)

    def _compact(self) -> None:
        """The summary call, off the event loop; says what it did."""
        try:
            done = self.app.pipeline.compact(self.app.dialogue)
            self.app.save_conversation()
            said = (f"{done.turns} earlier turn(s) summarised by {done.tier}" if done
                    else "no tier could summarise the conversation", "information" if done else "warning")
        except ModelError as exc:
            said = (f"could not summarise the earlier turns: {exc}", "warning")
        finally:
            self.app.answering = False
        self.app.call_from_thread(self.app.say, *said)

    async def cmd_clear(self, _: str) -> None:
        """Clear the conversation: the screen, and what the next question carries from earlier turns."""
        if self.app.answering:
            self.app.say("an answer is still coming; wait for it or press Ctrl+C, then /clear", "warning")
            return
        self.app.start_new_conversation()
        await self.app.conversation.remove_children()

    async def cmd_quit(self, _: str) -> None:
        """Leave."""
        self.app.exit()

