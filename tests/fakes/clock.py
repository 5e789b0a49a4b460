"""A clock that only moves when told: sleeps and slow calls advance it, nothing waits for real."""

from __future__ import annotations

from dataclasses import dataclass

from xmetrics.deadline import Deadline


@dataclass
class FakeClock:
    now: float = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def deadline(self, seconds: float) -> Deadline:
        """A Lambda invocation killed `seconds` from now on this clock."""
        return Deadline.after(seconds, clock=self)
