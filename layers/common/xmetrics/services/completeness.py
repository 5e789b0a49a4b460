"""Whether a run saw its whole window: X reaches only an account's latest 3,200 posts (800 with
exclude=replies), counted from its newest post, not from the window, and says nothing when it
stops. A quiet stretch and the end of X's reach look the same in the pages, so the judgment
rests on counts: the account's own post count (users/me, once a UTC day) today and on a day
before the window started.

X's docs do not say whether posts that `exclude` leaves out count toward the reach; they say the
reach is "still 3,200" with exclude=retweets, so every post counts here (the safe side). Posts the
run cannot see (reposts or replies left out, posted after the day's count) are covered by a margin
of 2 % of the reach; old posts deleted since the earlier count are not (README).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from xmetrics.timeutil import iso_z

# The share of the reach kept as a margin for posts the run cannot see: 1/50, 64 of 3,200.
MARGIN_DIVISOR = 50


@dataclass(frozen=True)
class Completeness:
    complete: bool
    reason: str
    oldest_reached: str | None  # created_at of the oldest post X returned to the run

    def as_item(self) -> dict[str, object]:
        return {"complete": self.complete, "reason": self.reason, "oldest_reached": self.oldest_reached}


def judge(
    *,
    start: datetime,
    today: str,
    counts: Mapping[str, int | None],
    reach: int,
    returned: int,
    returned_today: int,
    oldest: datetime | None,
) -> Completeness:
    """`start` is the oldest window start the run read; `counts` the account's post count by UTC
    day; `returned` the posts X returned to the run, `returned_today` those created on `today`
    (posted after the day's count may have been taken)."""
    oldest_iso = iso_z(oldest) if oldest else None
    room = reach - reach // MARGIN_DIVISOR

    def verdict(complete: bool, reason: str) -> Completeness:
        return Completeness(complete, reason, oldest_iso)

    if returned >= reach:
        return verdict(
            False, f"X returned {returned} posts, its whole reach of {reach}: older posts are out of reach"
        )
    total = counts.get(today)
    if total is None:
        return verdict(
            False,
            "the account's post count is not known today (its users/me read failed or X sent none), "
            f"so whether X's reach of {reach} covers the window is not known",
        )
    if total + returned_today <= room:
        return verdict(True, f"the account has {total} posts in all, within X's reach of {reach}")
    before = [day for day, count in counts.items() if day < f"{start:%Y-%m-%d}" and count is not None]
    if not before:
        return verdict(
            False,
            f"the account has {total} posts, more than X's reach of {reach}, and this app has no "
            f"count of them from before {start:%Y-%m-%d} to show the window is within it",
        )
    day = max(before)
    since = total - (counts[day] or 0) + returned_today
    if since <= room:
        return verdict(True, f"at most {since} posts since {day}, within X's reach of {reach}")
    return verdict(
        False,
        f"about {since} posts since {day}, more than X's reach of {reach}: "
        "the window's oldest posts may be out of reach",
    )
