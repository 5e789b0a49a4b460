"""What X bills for reads (per resource, once a UTC day) and the answers it gives when it stops serving.

X's pricing (README, docs.x.com pay-per-use): reads are charged per resource returned, and a resource
returned again within the same UTC day is not charged again ("a soft guarantee"). The sandbox keeps
one ledger, as for one developer account: X's docs do not say whether deduplication spans the apps of
an account, nor whether a resource served with other fields counts as "the same"; here it is the same
id, whichever app asked and whatever fields it carried.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from local.x_sandbox.oauth import OAuth
from local.x_sandbox.wire import _json, _Reply

KINDS = ("posts", "media", "users")
USAGE_SWITCHES = frozenset({"usage_cap", "credits"})
# X sends an account id in its credits problem; the sandbox has no developer account, so one is made up.
DEVELOPER_ACCOUNT_ID = 1700000000000000000
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


@dataclass
class _Day:
    billed: dict[str, set[str]] = field(default_factory=lambda: {kind: set() for kind in KINDS})
    returned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


def _utc_day(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


class Usage(OAuth):
    """The billing ledger and the usage cap. State is set by XSandbox.__init__, behind its one lock."""

    problem_base: str
    usage_cap: int | None  # billable post reads per calendar month (UTC); None: no cap
    usage_capped: str | None  # "usage_cap" / "credits": answer so now, whatever the counts
    _ledger: dict[str, _Day]  # by UTC day "YYYY-MM-DD"

    # ------------------------------------------------------------ what was returned, and billed

    def billed(self, day: str | None = None) -> dict[str, int]:
        """Billable resources of one UTC day ("YYYY-MM-DD"), or of every day with None."""
        with self._lock:
            days = self._days(day)
            return {kind: sum(len(d.billed[kind]) for d in days) for kind in KINDS}

    def returned(self, day: str | None = None) -> dict[str, int]:
        """Every resource returned, duplicates included."""
        with self._lock:
            days = self._days(day)
            return {kind: sum(d.returned[kind] for d in days) for kind in KINDS}

    def billed_by_day(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                day: {kind: len(ids) for kind, ids in entry.billed.items()}
                for day, entry in sorted(self._ledger.items())
            }

    def month_posts_billed(self, month: str) -> int:
        """Posts billed in a calendar month ("YYYY-MM", UTC): what X's monthly cap counts."""
        if not _MONTH_RE.match(month):
            raise ValueError(f"a month is YYYY-MM: {month!r}")
        with self._lock:
            return self._month_posts(month)

    def _days(self, day: str | None) -> list[_Day]:
        if day is None:
            return list(self._ledger.values())
        if not _DAY_RE.match(day):
            raise ValueError(f"a day is YYYY-MM-DD: {day!r}")
        return [self._ledger[day]] if day in self._ledger else []

    def _month_posts(self, month: str) -> int:
        return sum(len(d.billed["posts"]) for day, d in self._ledger.items() if day.startswith(month + "-"))

    def _bill(self, posts: Sequence[str] = (), media: Sequence[str] = (), users: Sequence[str] = ()) -> None:
        """Count resources as served now: once a UTC day for billing, every time as returned."""
        served = {"posts": posts, "media": media, "users": users}
        with self._lock:
            entry = self._ledger.setdefault(_utc_day(self._clock()), _Day())
            for kind, ids in served.items():
                entry.returned[kind] += len(ids)
                entry.billed[kind].update(ids)

    # ------------------------------------------------------------ the cap

    def _usage_refusal(self, headers: dict[str, str]) -> _Reply | None:
        """The cap's answer when the switch is on or the month's billed posts reached the cap, else None.

        Checked once, before the request is served: a request made under the cap is served in full even
        when its page takes the count past the cap. X does not document what it does mid-page.
        """
        with self._lock:
            switch, cap = self.usage_capped, self.usage_cap
            month = _utc_day(self._clock())[:7]
            reached = cap is not None and self._month_posts(month) >= cap
        if switch == "credits":
            return self._credits_depleted(headers)
        if switch == "usage_cap" or reached:
            body = {
                "title": "UsageCapExceeded",
                "period": "Monthly",
                "scope": "Product",
                "detail": "Usage cap exceeded: Monthly product cap",
                "type": self.problem_base + "usage-capped",
            }
            # As reported (README, February 2026): 429 while x-rate-limit-remaining still shows plenty.
            return _json(429, body, headers, problem=True)
        return None

    def _credits_depleted(self, headers: dict[str, str]) -> _Reply:
        """X's answer once the prepaid balance is at or below zero. Not in X's docs or OpenAPI specs.

        Body as public reports quote it for reads (2026; code that handles it, e.g. tests around
        xurl's output): account_id, title CreditsDepleted, the detail below and type .../problems/credits.
        A report on POST /2/tweets shows `content-type: application/json; charset=utf-8` (not
        problem+json) and a length that fits the same body without account_id. Whether X sends rate-limit
        headers with it is not documented; the sandbox sends the window's, as with the usage cap.
        """
        account = DEVELOPER_ACCOUNT_ID
        body = {
            "account_id": account,
            "title": "CreditsDepleted",
            "detail": f"Your enrolled account [{account}] does not have any credits to fulfill this request.",
            "type": self.problem_base + "credits",
        }
        return _json(402, body, headers)
