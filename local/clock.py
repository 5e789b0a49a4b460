"""A clock the caller sets: the X sandbox's (and, where a run simulates days, the app's) time, moved
to each run's scheduled time so posts appear as it passes them and X bills by the day it shows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace


class SettableClock:
    def __init__(self, now: float | datetime) -> None:
        self.now = now.timestamp() if isinstance(now, datetime) else now

    def __call__(self) -> float:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment.timestamp()


@contextmanager
def fetch_function_clock(clock: Callable[[], float]) -> Iterator[None]:
    """FetchFunction's wall clock follows `clock` while a simulation of days runs through it: its
    events' validity, token expiry and the account snapshot's lateness all move with the runs."""
    from functions.fetch import app

    saved = app.time
    app.time = SimpleNamespace(time=clock)  # type: ignore[assignment]
    try:
        yield
    finally:
        app.time = saved
