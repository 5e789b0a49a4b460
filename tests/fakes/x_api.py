"""X's timeline as a model: a fixed set of posts, served whole, with an access-token check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xmetrics.errors import UnauthorizedError, XApiError
from xmetrics.x_api import Timeline


@dataclass
class FakeTimelines:
    valid_token: Callable[[str], bool] = lambda token: True
    posts: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    # Each call pops the next fault (an exception to raise, or None).
    faults: list[XApiError | None] = field(default_factory=list)

    def timeline(
        self,
        access_token: str,
        user_id: str,
        *,
        start_time: datetime,
        end_time: datetime,
        wait_budget: Callable[[], float],
    ) -> Timeline:
        self.calls += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            raise fault
        if not self.valid_token(access_token):
            raise UnauthorizedError(401, "Unauthorized", "invalid access token")
        return Timeline(pages=[{"data": list(self.posts), "meta": {"result_count": len(self.posts)}}])
