"""The window a run asks X for, from the run's scheduled time: the same snapshot always asks the
same question, and X keeps non-public metrics for 30 days only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from xmetrics.errors import ValidationError
from xmetrics.timeutil import iso_z

# X keeps private metrics for 30 days; the hour of margin keeps the oldest post inside the
# window even when the run starts a little late.
WINDOW = timedelta(days=30) - timedelta(hours=1)
# EventBridge fires on time give or take a few seconds; a snapshot further ahead than this is
# not a run of ours, and would name an object (and a last_export) in the future.
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class FetchJob:
    user_id: str
    snapshot: datetime
    start_time: datetime
    end_time: datetime
    backfill: bool = False

    @property
    def window(self) -> tuple[datetime, datetime] | None:
        """A backfill's own window (its export key says so); None for a full run."""
        return (self.start_time, self.end_time) if self.backfill else None


def check_snapshot(name: str, moment: datetime, now: datetime) -> None:
    """A run's snapshot time must be near enough to `now` to be a real run of the last 30 days:
    one in 2099 would name an object (and a last_export) in the future; one in 2001 can never
    be fetched and would only walk its message to the dead-letter queue."""
    if moment > now + MAX_CLOCK_SKEW:
        raise ValidationError(
            f"{name} is in the future: the latest accepted is {iso_z(now + MAX_CLOCK_SKEW)}"
        )
    if moment < now - WINDOW:
        raise ValidationError(
            f"{name} is older than the 30-day window: the earliest is {iso_z(now - WINDOW)}"
        )


def make_job(
    user_id: str, snapshot: datetime, start: datetime | None = None, end: datetime | None = None
) -> FetchJob:
    """The window a run asks X for: the same snapshot always asks the same question.

    An explicit start or end outside the window is refused, not clamped: a backfill that quietly
    asked X a narrower question would export less than its caller believes it asked for.
    """
    earliest = snapshot - WINDOW
    if start is not None and start < earliest:
        raise ValidationError(
            f"start_time is outside the 30-day window X keeps metrics for: the earliest is {iso_z(earliest)}"
        )
    if end is not None and end > snapshot:
        raise ValidationError(f"end_time is in the future: the latest is {iso_z(snapshot)}")
    start_time = earliest if start is None else start
    end_time = snapshot if end is None else end
    if start_time >= end_time:
        raise ValidationError(f"start_time ({iso_z(start_time)}) must be before end_time ({iso_z(end_time)})")
    return FetchJob(user_id, snapshot, start_time, end_time, backfill=start is not None or end is not None)
