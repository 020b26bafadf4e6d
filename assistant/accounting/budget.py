"""Budgets: check a call's estimated cost against per-query, session, day and month limits first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from assistant.accounting.ledger import Ledger
from assistant.accounting.money import usd
from assistant.config import BudgetSettings


class BudgetVerdict(StrEnum):
    """What a budget check says about a call: the configured action once a limit would be crossed."""

    OK = "ok"
    WARN = "warn"
    PAUSE = "pause"
    FAIL = "fail"
    DOWNGRADE = "downgrade"

    @property
    def allows(self) -> bool:
        """The call may be made as it is (a warning is only noted)."""
        return self in (BudgetVerdict.OK, BudgetVerdict.WARN)

    @property
    def stops(self) -> bool:
        """The cascade stops here, unless the user confirms (`asks`)."""
        return self in (BudgetVerdict.PAUSE, BudgetVerdict.FAIL)

    @property
    def asks(self) -> bool:
        """The user may let the call go on."""
        return self is BudgetVerdict.PAUSE


@dataclass(frozen=True)
class BudgetCheck:
    """What to do with a call, and which limit it would cross."""

    verdict: BudgetVerdict
    message: str = ""


def _day_start(now: dt.datetime) -> float:
    return now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _month_start(now: dt.datetime) -> float:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class BudgetGuard:
    """Checks estimated costs before calls; reads spend from the ledger."""

    def __init__(self, settings: BudgetSettings, ledger: Ledger, session_id: str) -> None:
        self.settings = settings
        self.ledger = ledger
        self.session_id = session_id

    def check(self, estimate_usd: float, spent_this_query: float = 0.0, now: dt.datetime | None = None) -> BudgetCheck:
        """The verdict for a call estimated at `estimate_usd`; $0 calls always pass."""
        if estimate_usd <= 0:
            return BudgetCheck(BudgetVerdict.OK)
        now = now or dt.datetime.now()
        s = self.settings
        limits = [
            ("per-query", s.per_query, spent_this_query),
            ("session", s.session, self.ledger.spent(0.0, self.session_id) if s.session is not None else 0.0),
            ("daily", s.daily, self.ledger.spent(_day_start(now)) if s.daily is not None else 0.0),
            ("monthly", s.monthly, self.ledger.spent(_month_start(now)) if s.monthly is not None else 0.0),
        ]
        for name, limit, spent in limits:
            if limit is not None and spent + estimate_usd > limit:
                message = (f"the {name} budget of {usd(limit)} would be exceeded "
                           f"(spent {usd(spent)}, this call up to {usd(estimate_usd)})")
                return BudgetCheck(BudgetVerdict(s.action), message)
        return BudgetCheck(BudgetVerdict.OK)

    def spent_today(self, now: dt.datetime | None = None) -> float:
        """Dollars spent since local midnight."""
        return self.ledger.spent(_day_start(now or dt.datetime.now()))
