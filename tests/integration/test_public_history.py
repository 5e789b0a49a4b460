"""PublicHistoryDays through the fetch handler against the X sandbox: posts past the 30-day window
are read once a week, with public fields only, into lines of their own tier."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local import flows
from local.clock import SettableClock
from local.stack import LocalStack
from local.x_sandbox import post_type
from tests.integration.helpers import USER_ID, RecordingSandbox
from xmetrics.services.window import WINDOW
from xmetrics.timeutil import iso_z, parse_utc
from xmetrics.x_api import PUBLIC_MEDIA_FIELDS, PUBLIC_TWEET_FIELDS, TWEET_FIELDS

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=8)
DAYS = 45


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(HOUR.timestamp())


@pytest.fixture
def sandbox(clock: SettableClock) -> Iterator[RecordingSandbox]:
    with RecordingSandbox(clock=clock) as x:
        x.access_token_ttl = 400 * 86400
        # 120 posts over 60 days: some inside the window, some 30-45 days old, some older still
        x.add_user("ada_metrics", user_id=USER_ID, tweet_count=120, days=60)
        yield x


@pytest.fixture
def connected(stack: LocalStack, sandbox: RecordingSandbox) -> LocalStack:
    flows.connect(stack)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.environment["PUBLIC_HISTORY_DAYS"] = str(DAYS)
    stack.activate()
    return stack


def _run(stack: LocalStack, clock: SettableClock, at: datetime) -> dict[str, Any]:
    clock.at(at)
    (summary,) = stack.invoke("FetchFunction", flows.schedule_event(at))["results"]
    assert summary["status"] == "exported", summary
    return dict(summary)


def test_old_posts_are_read_weekly_with_public_fields_only(
    connected: LocalStack, sandbox: RecordingSandbox, clock: SettableClock
) -> None:
    asked = len(sandbox.asks)
    # When: the first run
    summary = _run(connected, clock, HOUR)
    # Then: the window for private metrics with every field, and the public history with public
    # fields only, as a window of its own
    asks = sandbox.asks[asked:]
    private = [a for a in asks if a.query["tweet.fields"] == TWEET_FIELDS]
    public = [a for a in asks if a.query["tweet.fields"] == PUBLIC_TWEET_FIELDS]
    assert len(private) + len(public) == len(asks) and private and public
    assert all(a.query["media.fields"] == PUBLIC_MEDIA_FIELDS for a in public)
    assert public[0].window == (iso_z(HOUR - timedelta(days=DAYS)), iso_z(HOUR - WINDOW))
    assert "public_history" in summary["tiers"]
    # and the export holds exactly the posts X has in [snapshot - 45 d, snapshot), each old one as
    # public_history with its public counts only and no error
    lines = flows.read_export(connected, summary["key"])
    posts = sandbox.user("ada_metrics").tweets
    # (reposts are left out: ExcludePostTypes=reposts)
    window = [t for t in posts if HOUR - timedelta(days=DAYS) <= parse_utc(t["created_at"]) < HOUR]
    wanted = {t["id"] for t in window if post_type(t) != "repost"}
    assert {line["tweet_id"] for line in lines} == wanted
    old = [line for line in lines if parse_utc(line["created_at"]) < HOUR - WINDOW]
    assert old and all(line["read_tier"] == "public_history" for line in old)
    assert all("public_metrics" in line and line["errors"] == [] for line in old)
    assert not any("non_public_metrics" in line or "organic_metrics" in line for line in old)
    assert all(
        "non_public_metrics" not in m and "organic_metrics" not in m for line in old for m in line["media"]
    )
    young = [line for line in lines if line["read_tier"] != "public_history"]
    assert young and all("organic_metrics" in line for line in young)
    # and X bills them like any read
    assert summary["billed"]["posts"] == len(lines)
    # When: a run the next day
    asked = len(sandbox.asks)
    next_day = _run(connected, clock, HOUR + timedelta(days=1))
    # Then: the public history is not due again within the week
    assert "public_history" not in next_day["tiers"]
    assert all(a.query["tweet.fields"] == TWEET_FIELDS for a in sandbox.asks[asked:])
    # When: the run 7 days after the first
    week = _run(connected, clock, HOUR + timedelta(days=7))
    assert "public_history" in week["tiers"]


def test_public_history_days_must_reach_past_the_window(connected: LocalStack) -> None:
    connected.environment["PUBLIC_HISTORY_DAYS"] = "20"
    connected.activate()
    answer = connected.invoke("FetchFunction", flows.schedule_event(HOUR))
    assert answer["status"] == "failed" and "PUBLIC_HISTORY_DAYS" in answer["error"]
