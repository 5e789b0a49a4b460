"""How long this invocation has left: Lambda kills a function at its timeout, mid-line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """Seconds left before the invocation is killed (the wall clock's business, never the run's
    scheduled time)."""

    remaining: Callable[[], float]

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        end = clock() + seconds
        return cls(lambda: end - clock())

    @classmethod
    def of_context(cls, context: object) -> Deadline:
        """From a LambdaContext's get_remaining_time_in_millis()."""
        remaining_ms = context.get_remaining_time_in_millis  # type: ignore[attr-defined]
        return cls(lambda: remaining_ms() / 1000.0)

    def allows(self, seconds: float) -> bool:
        return self.remaining() > seconds
