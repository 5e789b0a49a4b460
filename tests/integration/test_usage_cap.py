"""X's usage cap through the fetch handler: one capped answer keeps every run away from X's timeline
for an hour of scheduled time, then one run probes; a plain 429 is still a rate limit."""

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
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, export_keys
from xmetrics.services.export_queued import ExportQueued
from xmetrics.services.results import Summary

SECOND_ID = "1700000000000000002"
THIRD_ID = "1700000000000000003"
ACCOUNTS = [USER_ID, SECOND_ID, THIRD_ID]
# A scheduled time a few hours back, so the runs an hour and two hours later are in the past too.
SNAPSHOT = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
HOUR = timedelta(hours=1)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> SettableClock:
    """The fetch handler's clock: a manual run's snapshot is its `now`."""
    clock = SettableClock(SNAPSHOT.timestamp())
    monkeypatch.setattr(fetch_app, "time", SimpleNamespace(time=clock))
    return clock


@pytest.fixture
def accounts(stack: LocalStack, sandbox: XSandbox) -> list[str]:
    """Three connected accounts: ada (25 posts), bea (150 posts: two pages) and cy (12 posts)."""
    flows.connect(stack)
    sandbox.add_user("bea_metrics", user_id=SECOND_ID, tweet_count=150, days=20)
    sandbox.add_user("cy_metrics", user_id=THIRD_ID, tweet_count=12, days=20)
    for name in ("bea_metrics", "cy_metrics"):
        sandbox.login_as(name)
        flows.connect(stack)
    return ACCOUNTS


@pytest.fixture
def queued_summaries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Summary]]:
    """What each queued job answered (the SQS batch response says only which ones failed)."""
    seen: list[Summary] = []
    original = ExportQueued.run

    def run(self: ExportQueued, *args: Any, **kwargs: Any) -> Summary:
        summary = original(self, *args, **kwargs)
        seen.append(summary)
        return summary

    monkeypatch.setattr(ExportQueued, "run", run)
    yield seen


def inline(stack: LocalStack) -> None:
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()


def scheduled(stack: LocalStack, wall: SettableClock, at: datetime) -> dict[str, Any]:
    wall.at(at)
    answer: dict[str, Any] = stack.invoke("FetchFunction", flows.schedule_event(at))
    return answer


def statuses(answer: dict[str, Any]) -> dict[str, str]:
    return {r["user_id"]: r["status"] for r in answer["results"]}


def timeline_log(sandbox: XSandbox) -> list[int]:
    """The status of every timeline request X saw, in order."""
    return [r.status for r in sandbox.request_log if r.endpoint == "tweets"]


def marker(stack: LocalStack) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        stack.client("dynamodb")
        .get_item(
            TableName=stack.resources.table_name, Key={"pk": {"S": "app#usage-cap"}}, ConsistentRead=True
        )
        .get("Item")
    )
    return item


def marker_until(stack: LocalStack) -> float | None:
    item = marker(stack)
    return float(item["until"]["N"]) if item else None


def queue_depth(stack: LocalStack) -> tuple[int, int]:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def capped_at(stack: LocalStack, sandbox: XSandbox, wall: SettableClock, at: datetime, switch: str) -> None:
    """An inline scheduled run at `at` meets X's cap: every account usage_capped, one timeline call."""
    inline(stack)
    sandbox.usage_capped = switch
    calls = len(timeline_log(sandbox))
    answer = scheduled(stack, wall, at)
    assert set(statuses(answer).values()) == {"usage_capped"}
    assert len(timeline_log(sandbox)) == calls + 1


def test_queued_runs_meet_the_cap_once_and_nothing_goes_toward_the_dlq(
    stack: LocalStack,
    sandbox: XSandbox,
    accounts: list[str],
    wall: SettableClock,
    queued_summaries: list[Summary],
) -> None:
    # Given: a scheduled run fanned out to the queue
    dispatched = scheduled(stack, wall, SNAPSHOT)
    assert dispatched["queued"] == len(accounts)
    # and X's monthly cap is reached before the workers run
    sandbox.usage_capped = "usage_cap"
    tokens = sandbox.requests_to("token")
    # When: the worker drains the queue (one warm container)
    answers = flows.drain_queue(stack)
    # Then: every account answered usage_capped, once each
    assert sorted(s.user_id for s in queued_summaries) == sorted(accounts)
    assert {s.status for s in queued_summaries} == {"usage_capped"}
    assert all("usage cap" in str(s.error) for s in queued_summaries)
    # and no message failed: nothing is retried toward the dead-letter queue, the queue is empty
    assert answers and all(a == {"batchItemFailures": []} for a in answers)
    assert queue_depth(stack) == (0, 0)
    # and X's timeline was asked once: the capped 429 was neither waited out nor retried, and the
    # accounts after it kept away from X
    assert timeline_log(sandbox) == [429]
    assert all(s.retry_after is None for s in queued_summaries)
    assert sandbox.requests_to("token") == tokens
    # and the marker keeps every run away until an hour after the scheduled time
    assert marker_until(stack) == (SNAPSHOT + HOUR).timestamp()
    assert export_keys(stack) == []


def test_a_manual_run_within_the_hour_does_not_call_x(
    stack: LocalStack, sandbox: XSandbox, accounts: list[str], wall: SettableClock
) -> None:
    # Given: the scheduled run at SNAPSHOT met the cap
    capped_at(stack, sandbox, wall, SNAPSHOT, "usage_cap")
    # and the cap is gone at X already
    sandbox.usage_capped = None
    calls = len(sandbox.request_log)
    for minutes in (1, 30, 59):
        # When: someone runs an account by hand within the hour
        wall.at(SNAPSHOT + timedelta(minutes=minutes))
        summary = stack.invoke("FetchFunction", {"user_id": USER_ID})
        # Then: usage_capped, naming when runs may call X again, and no request to X at all
        assert summary["status"] == "usage_capped"
        assert f"{SNAPSHOT + HOUR:%Y-%m-%dT%H:%M:%SZ}" in summary["error"]
        assert len(sandbox.request_log) == calls
    assert export_keys(stack) == []


def test_an_hour_later_one_run_probes_and_the_marker_moves_on_or_is_lifted(
    stack: LocalStack, sandbox: XSandbox, accounts: list[str], wall: SettableClock
) -> None:
    # Given: the run at SNAPSHOT met the cap
    capped_at(stack, sandbox, wall, SNAPSHOT, "usage_cap")
    # When: the next scheduled run, an hour later, with X still capping
    calls = len(timeline_log(sandbox))
    probe = scheduled(stack, wall, SNAPSHOT + HOUR)
    # Then: exactly one timeline call (the probe), capped again; every account says so
    assert timeline_log(sandbox)[calls:] == [429]
    assert set(statuses(probe).values()) == {"usage_capped"}
    # and the marker moved an hour on
    assert marker_until(stack) == (SNAPSHOT + 2 * HOUR).timestamp()
    # and a manual run within that hour still keeps away
    wall.at(SNAPSHOT + HOUR + timedelta(minutes=30))
    before = len(sandbox.request_log)
    assert stack.invoke("FetchFunction", {"user_id": SECOND_ID})["status"] == "usage_capped"
    assert len(sandbox.request_log) == before

    # When: X serves again, and the next scheduled run comes
    sandbox.usage_capped = None
    calls = len(timeline_log(sandbox))
    lifted = scheduled(stack, wall, SNAPSHOT + 2 * HOUR)
    # Then: the probe exported and lifted the marker, so the accounts after it exported as well
    assert statuses(lifted) == dict.fromkeys(accounts, "exported")
    assert marker(stack) is None
    assert timeline_log(sandbox)[calls:] and set(timeline_log(sandbox)[calls:]) == {200}
    # and the next runs export, scheduled or by hand
    following = scheduled(stack, wall, SNAPSHOT + 3 * HOUR)
    assert statuses(following) == dict.fromkeys(accounts, "exported")
    wall.at(SNAPSHOT + 3 * HOUR + timedelta(minutes=5))
    assert stack.invoke("FetchFunction", {"user_id": THIRD_ID})["status"] == "exported"


def test_the_credits_answer_is_a_usage_cap_too(
    stack: LocalStack, sandbox: XSandbox, accounts: list[str], wall: SettableClock
) -> None:
    # Given: the app's prepaid credits are used up
    inline(stack)
    sandbox.usage_capped = "credits"
    # When: a scheduled run
    answer = scheduled(stack, wall, SNAPSHOT)
    # Then: X answered 402 once; every account is usage_capped, no run retried or waited
    assert timeline_log(sandbox) == [402]
    assert statuses(answer) == dict.fromkeys(accounts, "usage_capped")
    assert marker_until(stack) == (SNAPSHOT + HOUR).timestamp()
    # and within the hour no run calls X
    wall.at(SNAPSHOT + timedelta(minutes=20))
    calls = len(sandbox.request_log)
    assert stack.invoke("FetchFunction", {"user_id": USER_ID})["status"] == "usage_capped"
    assert len(sandbox.request_log) == calls


def test_a_plain_rate_limit_is_still_a_rate_limit(
    stack: LocalStack,
    sandbox: XSandbox,
    accounts: list[str],
    wall: SettableClock,
    queued_summaries: list[Summary],
) -> None:
    # Given: a scheduled run fanned out to the queue, and X's rate limit hit for the next request
    # with its window resetting in an hour (longer than the Lambda can wait)
    scheduled(stack, wall, SNAPSHOT)
    sandbox.inject("tweets", "rate_limit", count=1, reset_in=3600)
    # When
    answers = flows.drain_queue(stack)
    # Then: one account was rate limited: failed with the reset time, handed back to SQS (its
    # message deferred, not deleted), and not usage_capped
    limited = [s for s in queued_summaries if s.status != "exported"]
    assert len(queued_summaries) == len(accounts) and len(limited) == 1
    assert limited[0].status == "failed" and "rate limited" in str(limited[0].error)
    assert limited[0].retry_after is not None
    failures = [f for a in answers for f in a["batchItemFailures"]]
    assert len(failures) == 1
    assert queue_depth(stack) == (0, 1)
    # and the other accounts exported, and no usage-cap marker was written
    assert marker(stack) is None
    assert timeline_log(sandbox).count(429) == 1
    assert len([k for k in export_keys(stack) if f"{SNAPSHOT:%Y%m%dT%H%M%SZ}" in k]) == len(accounts) - 1


def test_the_monthly_usage_cap_stops_a_later_run(
    stack: LocalStack, sandbox: XSandbox, accounts: list[str], wall: SettableClock
) -> None:
    # Given: ada's run read her posts
    wall.at(SNAPSHOT)
    first = stack.invoke("FetchFunction", {"user_id": USER_ID})
    assert first["status"] == "exported"
    month = datetime.now(UTC).strftime("%Y-%m")
    read = sandbox.month_posts_billed(month)
    assert read == first["billed"]["posts"] > 0
    # and X's monthly cap sits just above that
    sandbox.usage_cap = read + 1
    # When: bea's run reads her first page (under the cap) and asks for the second (past it)
    wall.at(SNAPSHOT + timedelta(minutes=10))
    second = stack.invoke("FetchFunction", {"user_id": SECOND_ID})
    # Then: usage_capped, with no export, and X's last answer was the cap's 429
    assert second["status"] == "usage_capped" and "usage cap" in second["error"]
    assert timeline_log(sandbox)[-2:] == [200, 429]
    assert [k for k in export_keys(stack) if f"user_id={SECOND_ID}" in k] == []
    # and a later run keeps away from X for the hour
    wall.at(SNAPSHOT + timedelta(minutes=20))
    calls = len(sandbox.request_log)
    assert stack.invoke("FetchFunction", {"user_id": THIRD_ID})["status"] == "usage_capped"
    assert len(sandbox.request_log) == calls
