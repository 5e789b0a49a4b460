"""Through the fetch handler against the X sandbox: whether X's reach (its latest 3,200 posts, 800
with exclude=replies) covered each run's window, and the line every account-run leaves under runs/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from functions.fetch import app as fetch_app
from local import flows
from local.clock import SettableClock
from local.stack import LocalStack
from local.x_sandbox import post_type
from tests.integration.helpers import (
    USER_ID,
    account_item,
    export_keys,
    make_refresh_due,
    spend_refresh_token,
    stored_tokens,
)
from xmetrics.timeutil import iso_z

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(HOUR.timestamp())


@pytest.fixture
def sandbox(clock: SettableClock) -> Iterator[Any]:
    from local.x_sandbox import XSandbox

    with XSandbox(clock=clock) as x:
        x.access_token_ttl = 400 * 86400  # the simulated days outlast no token
        yield x


def _connect(stack: LocalStack, sandbox: Any, **timeline: Any) -> None:
    sandbox.add_user("ada_metrics", user_id=USER_ID, **timeline)
    sandbox.login_as("ada_metrics")
    flows.connect(stack)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()


def _run(stack: LocalStack, clock: SettableClock, at: datetime) -> dict[str, Any]:
    clock.at(at)
    (summary,) = stack.invoke("FetchFunction", flows.schedule_event(at))["results"]
    return dict(summary)


def _completeness(stack: LocalStack) -> dict[str, Any]:
    item = account_item(stack)["completeness"]["M"]
    return {k: next(iter(v.values())) for k, v in item.items()}


@pytest.mark.parametrize(
    ("exclude", "excluded", "reason"),
    [
        # X leaves the reposts among its 3,200 out: fewer come back, the account's count tells
        ("reposts", {"repost"}, "the account has 3500 posts, more than X's reach of 3200"),
        ("none", set(), "X returned 3200 posts, its whole reach of 3200"),
    ],
)
def test_a_window_beyond_x_s_reach_says_complete_false(
    stack: LocalStack, sandbox: Any, clock: SettableClock, exclude: str, excluded: set[str], reason: str
) -> None:
    # Given: 3,500 posts in 20 days, all inside the 30-day window; X reaches the latest 3,200
    stack.environment["EXCLUDE_POST_TYPES"] = exclude
    fetch_app._use_cases.cache_clear()
    _connect(stack, sandbox, tweet_count=3500, days=20, video_ratio=0.0, photo_ratio=0.0)
    reached = [t for t in sandbox.user("ada_metrics").tweets[:3200] if post_type(t) not in excluded]
    # When
    summary = _run(stack, clock, HOUR)
    # Then: the export holds what X served, and says it may be cut short, and why
    assert summary["status"] == "exported" and summary["tweets"] == len(reached)
    assert summary["complete"] is False and summary["complete_reason"].startswith(reason)
    lines = flows.read_export(stack, summary["key"])
    oldest = min(line["created_at"] for line in lines)
    assert summary["oldest_reached"] == iso_z(datetime.fromisoformat(oldest))
    assert oldest == reached[-1]["created_at"]
    # and so does the account item, written with the export
    assert _completeness(stack) == {
        "complete": False,
        "reason": summary["complete_reason"],
        "oldest_reached": summary["oldest_reached"],
        "snapshot_at": iso_z(HOUR),
    }


def test_an_account_that_went_quiet_for_days_is_complete(
    stack: LocalStack, sandbox: Any, clock: SettableClock
) -> None:
    # Given: 40 posts over the first 10 days of the window, then 15 days without a post
    clock.at(HOUR - timedelta(days=15))
    _connect(stack, sandbox, tweet_count=40, days=10)
    # When
    summary = _run(stack, clock, HOUR)
    # Then: the gap is silence, not X's reach (every post exported but the reposts)
    own = [t for t in sandbox.user("ada_metrics").tweets if post_type(t) != "repost"]
    assert summary["tweets"] == len(own) < 40
    assert summary["complete"] is True and "40 posts in all" in summary["complete_reason"]
    assert _completeness(stack)["complete"] is True


def test_a_big_account_is_complete_once_a_count_from_before_its_window_exists(
    stack: LocalStack, sandbox: Any, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler's clock follows the simulated days (a snapshot is never older than 30 days).
    monkeypatch.setattr(fetch_app, "time", SimpleNamespace(time=clock))
    # Given: 5,000 posts over 60 days (about 83 a day), the first 29 days' of them posted by the
    # first run, 31 days before the second
    first = HOUR - timedelta(days=31)
    clock.at(HOUR)
    sandbox.add_user("ada_metrics", user_id=USER_ID, tweet_count=5000, days=60, video_ratio=0.0)
    clock.at(first)
    sandbox.login_as("ada_metrics")
    flows.connect(stack)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()
    # When: the first run: under 3,200 posts in all
    early = _run(stack, clock, first)
    assert early["complete"] is True and "posts in all" in early["complete_reason"]
    # When: a run 31 days later, the account now past 3,200 in all
    total = len(sandbox.user("ada_metrics").tweets)
    later = _run(stack, clock, HOUR)
    # Then: the first run's count bounds what was posted since, within the reach
    assert total > 3200 and later["tweets"] < 3200
    assert later["complete"] is True, later
    assert f"since {first:%Y-%m-%d}" in later["complete_reason"]


def test_every_account_run_leaves_a_line_under_runs(
    stack: LocalStack, sandbox: Any, clock: SettableClock
) -> None:
    _connect(stack, sandbox, tweet_count=30, days=10)
    # When: a run, a second run the same day, and one after the account's grant was revoked
    first = _run(stack, clock, HOUR - timedelta(hours=2))
    second = _run(stack, clock, HOUR - timedelta(hours=1))
    make_refresh_due(stack)
    spend_refresh_token(stack, stored_tokens(stack).refresh_token)
    third = _run(stack, clock, HOUR)
    assert [s["status"] for s in (first, second, third)] == ["exported", "exported", "needs_reconnect"]
    # Then: one line per run under runs/, keyed by its snapshot, saying how it ended
    keys = export_keys(stack, "runs")
    assert len(keys) == 3
    lines = [flows.read_export(stack, key)[0] for key in keys]
    assert [(line["snapshot_at"], line["status"]) for line in lines] == [
        (iso_z(HOUR - timedelta(hours=2)), "exported"),
        (iso_z(HOUR - timedelta(hours=1)), "exported"),
        (iso_z(HOUR), "needs_reconnect"),
    ]
    assert lines[0]["tweets"] == first["tweets"] and lines[0]["reads"] == {**first["reads"]}
    assert lines[0]["billed"]["users"] == 0  # the connect read the user that UTC day already
    assert lines[0]["account"] == "exported" and lines[1]["account"] is None
    assert lines[2]["error"] and lines[2]["complete"] is None
    assert all(line["user_id"] == USER_ID and line["schema_version"] == 1 for line in lines)
