"""Read tiers: which posts a run re-reads, by their age at the run's scheduled time.

A post's numbers move fast in its first two days and hardly at all after a week, and X bills every
post it returns. So each tier (an age range) is read on its own period, and the due tiers are asked
of X as timeline windows (`start_time`/`end_time`): adjacent tiers merge into one window, so a run
makes no more calls than one full-window read. Every decision comes from the run's scheduled time
(`FetchJob.snapshot`), never the wall clock: a replay or a simulated week asks X exactly the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from xmetrics.services.window import WINDOW, FetchJob
from xmetrics.timeutil import parse_utc

DEFAULT_SPEC = "48h:run,7d:1d,30d:7d"
ALL = "all"
BACKFILL = "backfill"
PUBLIC_HISTORY = "public_history"
# PublicHistoryDays: posts past the 30-day window, read with public fields once a week.
PUBLIC_HISTORY_EVERY = timedelta(days=7)
PUBLIC_HISTORY_MAX_DAYS = 3650
_DAY = timedelta(days=1)
_AGE_RE = re.compile(r"([1-9][0-9]{0,3})([hd])")
_PERIOD_RE = re.compile(r"run|([1-9][0-9]?)d")


@dataclass(frozen=True)
class Tier:
    """Posts aged [youngest, oldest) at the snapshot, read once per `every` (None: every run);
    a `public` tier asks X for public fields only (its posts are past the 30-day window)."""

    name: str
    youngest: timedelta
    oldest: timedelta
    every: timedelta | None
    public: bool = False

    def window(self, snapshot: datetime) -> tuple[datetime, datetime]:
        return snapshot - self.oldest, snapshot - self.youngest

    def comes_back(self, last: datetime, moment: datetime) -> bool:
        """Whether a tier last read at `last` is due again at `moment`: once `every` whole UTC days
        have begun since. So a daily tier comes back at the first run after midnight UTC (X bills a
        post once per UTC day), and a weekly one at the first run of the 7th day after its last
        read: an account connected mid-week is not read in full again days later."""
        assert self.every is not None
        return (moment.date() - last.date()) >= self.every


def _age(text: str) -> timedelta:
    match = _AGE_RE.fullmatch(text)
    if not match:
        raise ValueError(f"age {text!r} is not like 48h or 7d")
    number, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=number) if unit == "h" else timedelta(days=number)


def _period(text: str) -> timedelta | None:
    match = _PERIOD_RE.fullmatch(text)
    if not match:
        raise ValueError(f"period {text!r} is not 'run' or whole days like 1d or 7d")
    return None if text == "run" else timedelta(days=int(match.group(1)))


@dataclass(frozen=True)
class TierPolicy:
    tiers: tuple[Tier, ...]  # youngest first, contiguous from age 0

    @classmethod
    def parse(cls, spec: str) -> TierPolicy:
        """`48h:run,7d:1d,30d:7d`: each entry is the oldest age of a tier and how often it is
        read (`run` = every run, `Nd` = once per N days); `all` = the whole window every run.
        Posts older than the last age are not read at all. Raises ValueError naming the entry."""
        spec = spec.strip().lower()
        if spec == ALL:
            return cls((Tier(ALL, timedelta(0), WINDOW, None),))
        tiers: list[Tier] = []
        youngest, label = timedelta(0), "0"
        for entry in (part.strip() for part in spec.split(",")):
            age_text, sep, period_text = entry.partition(":")
            if not sep:
                raise ValueError(f"tier {entry!r} is not like 48h:run or 7d:1d")
            age, every = _age(age_text), _period(period_text)
            if age <= youngest:
                raise ValueError(f"tier ages must grow: {age_text} after {label}")
            if age > timedelta(days=30):
                raise ValueError(f"tier age {age_text} is past X's 30-day window for private metrics")
            # The 30-day rule holds for every window: the last hour is the run's margin.
            tiers.append(Tier(f"{label}-{age_text}", youngest, min(age, WINDOW), every))
            youngest, label = age, age_text
        if not tiers:
            raise ValueError("no tiers")
        return cls(tuple(tiers))

    def with_public_history(self, days: int) -> TierPolicy:
        """PublicHistoryDays: also read posts from the 30-day window's end back to `days` old,
        with public fields only, once a week (0: not at all)."""
        if days == 0:
            return self
        if not WINDOW.days < days <= PUBLIC_HISTORY_MAX_DAYS:
            raise ValueError(
                f"public history reaches past 30 days, up to {PUBLIC_HISTORY_MAX_DAYS}: got {days}"
            )
        history = Tier(PUBLIC_HISTORY, WINDOW, timedelta(days=days), PUBLIC_HISTORY_EVERY, public=True)
        return TierPolicy((*self.tiers, history))

    @property
    def spec(self) -> str:
        private = [t for t in self.tiers if not t.public]
        if len(private) == 1 and private[0].name == ALL:
            return ALL
        return ",".join(f"{t.name.split('-')[1]}:{_period_text(t.every)}" for t in private)

    def due(self, job: FetchJob, last_read: Mapping[str, str]) -> tuple[Tier, ...]:
        """The tiers this run reads: every-run tiers, and the others not yet read in this period.

        A rerun of the snapshot that read a tier reads it again, so a retried run asks X the same
        question and rewrites the same object."""
        if job.backfill:
            return (Tier(BACKFILL, job.snapshot - job.end_time, job.snapshot - job.start_time, None),)
        due = []
        for tier in self.tiers:
            last = _moment(last_read.get(tier.name))
            if (
                tier.every is None
                or last is None
                or last == job.snapshot
                or tier.comes_back(last, job.snapshot)
            ):
                due.append(tier)
        return tuple(due)


def _period_text(every: timedelta | None) -> str:
    return "run" if every is None else f"{every // _DAY}d"


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_utc(value)
    except ValueError:
        return None  # unreadable bookkeeping: read the tier again rather than never


def windows(snapshot: datetime, tiers: Sequence[Tier]) -> list[tuple[datetime, datetime]]:
    """The due tiers as timeline windows, youngest first, adjacent ones merged into one (never a
    public tier with a private one: they ask X for different fields)."""
    merged: list[tuple[datetime, datetime]] = []
    public: list[bool] = []
    for tier in sorted(tiers, key=lambda t: t.youngest):
        start, end = tier.window(snapshot)
        if merged and merged[-1][0] == end and public[-1] == tier.public:
            merged[-1] = (start, merged[-1][1])
        else:
            merged.append((start, end))
            public.append(tier.public)
    return merged


def tier_of(tiers: Sequence[Tier], snapshot: datetime, created_at: datetime) -> str:
    """The tier whose age range holds a post (the oldest read tier for one on the boundary)."""
    age = snapshot - created_at
    for tier in tiers:
        if tier.youngest <= age < tier.oldest:
            return tier.name
    return tiers[-1].name if age >= tiers[-1].oldest else tiers[0].name
