"""What X bills for a run: the resources it returned, and which of them are new for the UTC day.

X bills each resource it returns, but a resource read again within the same UTC day is not billed
again. The app reads an account's posts only through time windows of its timeline, so what was
read today is a few spans of `created_at` (one per merged window), kept on the account item in
the same write as `last_export`: a post inside a span read earlier today is not billed again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from xmetrics.timeutil import iso_z, parse_utc

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class Prices:
    """US dollars per billed resource. X's pay-per-use prices, docs.x.com pricing page, as of
    2026-04-20 ("owned reads": the authorizing user's own posts, GET /2/users/{id}/tweets among
    them, at $0.001). Whether media and users that arrive as expansions of owned reads are billed
    as owned reads is not documented: they are priced at X's media and user read prices, an upper
    bound. The XPrices template parameter (X_PRICES) replaces any of them."""

    post: float = 0.001
    media: float = 0.005
    user: float = 0.010
    as_of: str = "2026-04-20"

    @classmethod
    def parse(cls, text: str) -> Prices:
        """`post=0.001,media=0.005,user=0.010`; names left out keep X's price. ValueError if bad."""
        values: dict[str, float] = {}
        for entry in (part.strip() for part in text.split(",") if part.strip()):
            name, sep, number = entry.partition("=")
            if not sep or name.strip() not in ("post", "media", "user"):
                raise ValueError(f"price {entry!r} is not like post=0.001 (post, media or user)")
            price = float(number)
            if not math.isfinite(price) or not 0 <= price < 1:
                raise ValueError(f"price {entry!r} must be between 0 and 1 dollar")
            values[name.strip()] = price
        return cls(**values, as_of="configured" if values else cls.as_of)


PRICES = Prices()


@dataclass
class Reads:
    """Resources X returned to one run, by kind, and how many of them X bills."""

    posts: int = 0
    media: int = 0
    users: int = 0
    billed_posts: int = 0
    billed_media: int = 0
    billed_users: int = 0

    def cost(self, prices: Prices) -> float:
        return round(
            self.billed_posts * prices.post
            + self.billed_media * prices.media
            + self.billed_users * prices.user,
            6,
        )

    def __bool__(self) -> bool:
        """Whether X returned anything at all."""
        return bool(self.posts or self.media or self.users)

    def returned(self) -> dict[str, int]:
        return {"posts": self.posts, "media": self.media, "users": self.users}

    def billed(self) -> dict[str, int]:
        return {"posts": self.billed_posts, "media": self.billed_media, "users": self.billed_users}


def covered(spans: Sequence[Span], moment: datetime) -> bool:
    return any(start <= moment < end for start, end in spans)


def merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


def count_page(page: dict[str, Any], read_today: Sequence[Span], reads: Reads) -> int:
    """Add one page's resources to `reads`; return how many of its posts X bills."""
    billed_media: set[str] = set()
    new_posts = 0
    for tweet in page.get("data") or ():
        reads.posts += 1
        created = created_at(tweet)
        if created is None or not covered(read_today, created):
            new_posts += 1
            billed_media.update(str(k) for k in (tweet.get("attachments") or {}).get("media_keys") or ())
    includes = page.get("includes") or {}
    media = [m for m in includes.get("media") or () if isinstance(m, dict)]
    reads.media += len(media)
    reads.billed_media += sum(1 for m in media if str(m.get("media_key")) in billed_media)
    users = includes.get("users") or ()
    reads.users += len(users)
    reads.billed_users += len(users)
    reads.billed_posts += new_posts
    return new_posts


def created_at(tweet: dict[str, Any]) -> datetime | None:
    """A post's creation time; None when X sent none or an unreadable one (then it counts as
    billed, since nothing says it was read before, and as the youngest tier's)."""
    try:
        return parse_utc(str(tweet["created_at"]))
    except (KeyError, ValueError):
        return None


# Read spans are kept for the latest UTC days: a late run of yesterday (an SQS retry, a replay)
# must not count yesterday's already-read posts as billed again.
_DAYS_KEPT = 2
# The account snapshots' post counts are kept a day longer than the 30-day window: a window's
# completeness is judged from the count on a day before it starts.
_ACCOUNT_DAYS_KEPT = 32


@dataclass
class Bookkeeping:
    """The account's read history, on its item: when each tier was last read in full (snapshot
    times), the spans of `created_at` read on each of its latest UTC days, its posting rate
    (posts per hour, from its latest read of a day or more) that sizes its budget reservations,
    and the days its account snapshot was taken, with the post count X said that day."""

    tiers: dict[str, str] = field(default_factory=dict)
    spans: dict[str, list[Span]] = field(default_factory=dict)  # UTC day -> spans read that day
    rate: float | None = None
    # UTC day -> the account's tweet_count that day (None: X sent none); one users/me read a day.
    accounts: dict[str, int | None] = field(default_factory=dict)
    # The UTC day users/me last answered, even when its line was then lost: X bills it once a day.
    user_read: str = ""

    @classmethod
    def loads(cls, text: str | None) -> Bookkeeping:
        """Unreadable bookkeeping is empty bookkeeping: every tier is read (and billed) again."""
        if not text:
            return cls()
        try:
            raw = json.loads(text)
            rate = raw.get("rate")
            return cls(
                tiers={str(k): str(v) for k, v in dict(raw.get("tiers") or {}).items()},
                spans={
                    str(day): [(parse_utc(a), parse_utc(b)) for a, b in spans]
                    for day, spans in dict(raw.get("spans") or {}).items()
                },
                rate=float(rate) if isinstance(rate, int | float) else None,
                accounts={
                    str(day): int(count) if isinstance(count, int) else None
                    for day, count in dict(raw.get("accounts") or {}).items()
                },
                user_read=str(raw.get("user_read") or ""),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dumps(self) -> str:
        body: dict[str, Any] = {
            "tiers": self.tiers,
            "spans": {day: [[iso_z(a), iso_z(b)] for a, b in spans] for day, spans in self.spans.items()},
        }
        if self.rate is not None:
            body["rate"] = round(self.rate, 4)
        if self.accounts:
            body["accounts"] = self.accounts
        if self.user_read:
            body["user_read"] = self.user_read
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    def read_today(self, snapshot: datetime) -> list[Span]:
        """What was read on the snapshot's UTC day: X does not bill it again that day."""
        return self.spans.get(utc_day(snapshot), [])

    def after(
        self,
        snapshot: datetime,
        read: Sequence[Span],
        completed: Iterable[str],
        rate: float | None,
    ) -> Bookkeeping:
        """The bookkeeping once a run has read `read` and completed the tiers `completed`."""
        day = utc_day(snapshot)
        spans = _latest({**self.spans, day: merge([*self.read_today(snapshot), *read])}, _DAYS_KEPT)
        tiers = dict(self.tiers)
        for name in completed:
            tiers[name] = iso_z(snapshot)
        return Bookkeeping(
            tiers=tiers,
            spans=spans,
            rate=self.rate if rate is None else rate,
            accounts=self.accounts,
            user_read=self.user_read,
        )

    def with_account(self, snapshot: datetime, tweet_count: int | None) -> Bookkeeping:
        """The day's account snapshot was taken: no other run reads users/me for that day."""
        accounts = {**self.accounts, utc_day(snapshot): tweet_count}
        return replace(self, accounts=_latest(accounts, _ACCOUNT_DAYS_KEPT))

    def with_user_read(self, day: str) -> Bookkeeping:
        return replace(self, user_read=day)


T = TypeVar("T")


def _latest(by_day: dict[str, T], days: int) -> dict[str, T]:
    """The entries of the `days` latest UTC days, oldest first."""
    return {day: by_day[day] for day in sorted(by_day)[-days:]}


def utc_day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def hours(spans: Iterable[Span]) -> float:
    return sum((end - start) / timedelta(hours=1) for start, end in spans)


def uncovered(window: Span, read_today: Sequence[Span]) -> list[Span]:
    """The parts of `window` not yet read today."""
    parts = [window]
    for start, end in merge(read_today):
        parts = [
            piece for a, b in parts for piece in ((a, min(b, start)), (max(a, end), b)) if piece[0] < piece[1]
        ]
    return parts
