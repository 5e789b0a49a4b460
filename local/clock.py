"""A clock the caller sets: the X sandbox's (and, where a run simulates days, the app's) time, moved
to each run's scheduled time so posts appear as it passes them and X bills by the day it shows."""

from __future__ import annotations

from datetime import datetime


class SettableClock:
    def __init__(self, now: float | datetime) -> None:
        self.now = now.timestamp() if isinstance(now, datetime) else now

    def __call__(self) -> float:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment.timestamp()
