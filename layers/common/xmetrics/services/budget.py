"""DailyReadBudget: billable post reads per UTC day for the whole app, across concurrent workers.

One atomic counter per UTC day, and one write to it per account-run: before calling X, a run adds
what it may read (its reservation) and learns the day's total with the same write. It gets the
part of its reservation that was still free, reads at most that many billable posts (its pages
are sized to what is left of its share), and hands the unused rest back in its process's next
reservation. So the counter never says less than what was read, and concurrent workers cannot
together read past the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xmetrics.services.ports import BudgetCounter
from xmetrics.x_api import MIN_PAGE_SIZE


@dataclass(frozen=True)
class Share:
    """What a run may read of the day's budget: `granted` billable posts (None: no budget)."""

    day: str
    granted: int | None
    asked: int = 0

    @property
    def exhausted(self) -> bool:
        # Less than X's smallest page cannot be read without overrunning it.
        return self.granted is not None and self.granted < MIN_PAGE_SIZE


@dataclass
class ReadBudget:
    counter: BudgetCounter
    daily_limit: int  # 0: no budget
    # Reserved but not read, per UTC day: handed back with this process's next reservation.
    _unused: dict[str, int] = field(default_factory=dict)

    def reserve(self, day: str, wanted: int) -> Share:
        if self.daily_limit <= 0:
            return Share(day, None)
        wanted = max(1, wanted)
        giving_back = self._unused.pop(day, 0)
        self._unused = {}  # another day's leftovers no longer matter to anyone
        # If the add fails, it may still have landed (an answer lost, then retried): the leftovers
        # are not handed back again, so the counter errs high, never low.
        total = self.counter.add_reads(day, wanted - giving_back)
        before = total - wanted
        granted = max(0, min(wanted, self.daily_limit - before))
        self._unused[day] = wanted - granted
        return Share(day, granted, wanted)

    def settle(self, share: Share, used: int) -> None:
        """The run read `used` billable posts of its share: the rest goes back next time. A run
        that failed after calling X settles its whole share: X may have billed pages whose answers
        never arrived."""
        if share.granted is None:
            return
        unused = max(0, share.granted - used)
        if unused:
            self._unused[share.day] = self._unused.get(share.day, 0) + unused
