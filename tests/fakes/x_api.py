"""X's timeline as a model: a fixed set of posts, served by time window (newest first, in pages),
with an access-token check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xmetrics.errors import UnauthorizedError, XApiError
from xmetrics.timeutil import iso_z, parse_utc
from xmetrics.x_api import Timeline


@dataclass
class FakeTimelines:
    valid_token: Callable[[str], bool] = lambda token: True
    posts: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    page_size: int = 100
    # Each call pops the next fault (an exception to raise, or None).
    faults: list[XApiError | None] = field(default_factory=list)
    # The windows asked for, as ISO strings (start, end).
    windows: list[tuple[str, str]] = field(default_factory=list)
    private: list[bool] = field(default_factory=list)  # whether each window asked for private fields

    # users/me: the account as X serves it; None answers like an X that fails.
    me: dict[str, Any] | None = field(
        default_factory=lambda: {
            "id": "42",
            "username": "u",
            "name": "U",
            "public_metrics": {
                "followers_count": 10,
                "following_count": 2,
                "tweet_count": 5,
                "listed_count": 0,
            },
        }
    )
    account_calls: int = 0

    def account(self, access_token: str) -> dict[str, Any]:
        self.account_calls += 1
        if self.me is None:
            raise XApiError(503, "Service Unavailable", "users/me is down")
        return dict(self.me)

    def timeline(
        self,
        access_token: str,
        user_id: str,
        *,
        start_time: datetime,
        end_time: datetime,
        wait_budget: Callable[[], float],
        enough: Callable[[dict[str, Any]], bool] | None = None,
        page_size: int = 100,
        private: bool = True,
    ) -> Timeline:
        self.calls += 1
        size = min(page_size, self.page_size)
        self.windows.append((iso_z(start_time), iso_z(end_time)))
        self.private.append(private)
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            raise fault
        if not self.valid_token(access_token):
            raise UnauthorizedError(401, "Unauthorized", "invalid access token")
        inside = [p for p in self.posts if _inside(p, start_time, end_time)]
        inside.sort(key=lambda p: str(p.get("created_at", "")), reverse=True)
        timeline = Timeline()
        for first in range(0, max(len(inside), 1), size):
            chunk = inside[first : first + size]
            more = first + size < len(inside)
            page: dict[str, Any] = {"data": chunk, "meta": {"result_count": len(chunk)}}
            if more:
                page["meta"]["next_token"] = str(first + size)
            timeline.pages.append(page)
            stop = enough is not None and enough(page)
            if more and stop:
                timeline.stopped_early = True
                break
        return timeline


def _inside(post: dict[str, Any], start: datetime, end: datetime) -> bool:
    if "created_at" not in post:
        return True
    created = parse_utc(str(post["created_at"]))
    return start <= created < end
