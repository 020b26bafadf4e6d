"""Screens: the yes/no modal (escalation consent, budget pause, /apply) and the stats screen."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Label, Static

from assistant.accounting.money import usd
from assistant.tui.usage import UsageReport, cost_chart, tier_bars


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True (y, Enter on Yes) or False (n, Escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str | Text, title: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.title_text = title

    def compose(self) -> ComposeResult:
        """The question and two buttons."""
        with Vertical(id="confirm-box"):
            yield Label(self.title_text, id="confirm-title")
            with VerticalScroll(id="confirm-scroll"):  # a long diff scrolls; the buttons stay in view
                yield Static(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        """Focus "No": the safe answer is the default."""
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """A button answers."""
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        """A key answers."""
        self.dismiss(value)


class StatsScreen(Screen[None]):
    """Cost per day for the last 30 days, share by tier, cache hit rate and savings."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, report: UsageReport, extra: str = "") -> None:
        super().__init__()
        self.report = report
        self.extra = extra

    def compose(self) -> ComposeResult:
        """The chart, the tier bars and the summary numbers."""
        r = self.report
        with VerticalScroll(id="stats"):
            yield Label("Cost per day, last 30 days", classes="stats-title")
            yield Static(cost_chart(r.days), id="stats-chart")
            yield Label("Answers by tier", classes="stats-title")
            yield Static(tier_bars(r.tiers) if r.tiers else "no answers yet", id="stats-tiers")
            savings = "n/a (no price list)" if r.savings_usd is None else usd(r.savings_usd)
            yield Static(
                f"answers {r.answers} · spent {usd(r.total_cost_usd)} · cache hit rate {r.cache_hit_rate:.0%}"
                f" ({r.cache_hits}) · saved by index, local and cache: {savings}",
                id="stats-summary",
            )
            if self.extra:
                yield Static(self.extra, id="stats-extra")
        yield Footer()
