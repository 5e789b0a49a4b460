"""Read tiers through the fetch handler over simulated scheduled time.

EventBridge schedule events (inline: no queue) at 22:00, 23:00, the UTC midnight, 01:00, the
midnight before the account's weekly tier is due again and that midnight itself. The sandbox's clock
follows each snapshot (posts appear as it reaches them, X bills by the UTC day it shows), and the
sandbox records every timeline request's query: the windows a run asked X for are checked there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local import flows
from local.clock import SettableClock
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import post_type
from tests.integration.helpers import (
    USER_ID,
    RecordingSandbox,
    TimelineAsk,
    account_item,
)
from xmetrics.services.billing import merge
from xmetrics.services.tiers import DEFAULT_SPEC, TierPolicy
from xmetrics.services.window import WINDOW
from xmetrics.timeutil import from_epoch, iso_z, parse_utc
from xmetrics.wiring import aws_session
from xmetrics.x_api import EXPANSIONS, MEDIA_FIELDS, PAGE_SIZE, TWEET_FIELDS

YOUNG, DAILY, WEEKLY = (t.name for t in TierPolicy.parse(DEFAULT_SPEC).tiers)
WEEKLY_TIER = TierPolicy.parse(DEFAULT_SPEC).tiers[2]
TIER_SPAN = {YOUNG: timedelta(hours=48), DAILY: timedelta(days=7), WEEKLY: WINDOW}
LONG_LIVED = 90 * 86_400
POSTS, POSTING_DAYS = 1600, 40  # 40 posts a day, over more than the 30-day window
# What every timeline request asks besides its window and page (x_api's own constants).
QUESTION = {
    "max_results": str(PAGE_SIZE),
    "tweet.fields": TWEET_FIELDS,
    "expansions": EXPANSIONS,
    "media.fields": MEDIA_FIELDS,
}


@dataclass(frozen=True)
class Calendar:
    """22:00 and 23:00 of one day, the next UTC midnight, 01:00, the midnight before the weekly
    tier comes back, that midnight, and an hour after it."""

    first: datetime
    late: datetime
    midnight: datetime
    one_am: datetime
    eve: datetime
    weekly: datetime
    after: datetime


def calendar(now: datetime) -> Calendar:
    """The first run at 22:00 reads every tier; the weekly one comes back at the first run of the
    7th UTC day after it, 6 days and 2 hours later."""
    first = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=12, hours=2)
    midnight = first + timedelta(hours=2)
    weekly = midnight + timedelta(days=6)
    return Calendar(
        first,
        midnight - timedelta(hours=1),
        midnight,
        midnight + timedelta(hours=1),
        weekly - timedelta(days=1),
        weekly,
        weekly + timedelta(hours=1),
    )


DAYS = calendar(datetime.now(UTC))


@pytest.fixture
def clock() -> SettableClock:
    # The account's posts are made up to an hour past the last run; each run sets the clock to its time.
    return SettableClock((DAYS.after + timedelta(hours=1)).timestamp())


@pytest.fixture
def sandbox(clock: SettableClock) -> Iterator[RecordingSandbox]:
    with RecordingSandbox(clock=clock) as x:
        x.access_token_ttl = LONG_LIVED
        x.add_user("ada_metrics", user_id=USER_ID, tweet_count=POSTS, days=POSTING_DAYS)
        clock.at(DAYS.first)
        yield x


@pytest.fixture
def dynamodb_calls() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every DynamoDB API call the handlers make (botocore's before-parameter-build, once per call)."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, json.loads(json.dumps(params, default=str))))

    session = aws_session()
    session.register("before-parameter-build.dynamodb", hook)
    reset_handlers()
    yield calls
    session.unregister("before-parameter-build.dynamodb", hook)
    reset_handlers()


@dataclass
class Run:
    snapshot: datetime
    summary: dict[str, Any]
    asks: list[TimelineAsk]
    billed_by_x: dict[str, int]
    dynamodb: list[tuple[str, dict[str, Any]]]
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def windows(self) -> list[tuple[str, str]]:
        """The distinct windows asked, in the order asked."""
        return list(dict.fromkeys(ask.window for ask in self.asks))

    @property
    def served(self) -> list[str]:
        return [post for ask in self.asks for post in ask.served]


class Runner:
    def __init__(
        self,
        stack: LocalStack,
        sandbox: RecordingSandbox,
        clock: SettableClock,
        calls: list[tuple[str, dict[str, Any]]],
    ) -> None:
        self.stack, self.sandbox, self.clock, self.calls = stack, sandbox, clock, calls

    def run(self, snapshot: datetime) -> Run:
        self.clock.at(snapshot)
        day = f"{snapshot:%Y-%m-%d}"
        billed_before = self.sandbox.billed(day)
        asked_before = len(self.sandbox.asks)
        self.calls.clear()
        answer = self.stack.invoke("FetchFunction", flows.schedule_event(snapshot))
        dynamodb = list(self.calls)
        (summary,) = answer["results"]
        billed_after = self.sandbox.billed(day)
        done = Run(
            snapshot,
            summary,
            self.sandbox.asks[asked_before:],
            {k: billed_after[k] - billed_before[k] for k in billed_after},
            dynamodb,
        )
        assert summary["status"] == "exported", summary
        done.lines = flows.read_export(self.stack, summary["key"])
        return done


@pytest.fixture
def runner(
    stack: LocalStack,
    sandbox: RecordingSandbox,
    clock: SettableClock,
    dynamodb_calls: list[tuple[str, dict[str, Any]]],
) -> Runner:
    # The callback dates its users/me read by the wall clock: X's clock says the same day.
    at = clock()
    clock.at(datetime.now(UTC))
    flows.connect(stack)
    clock.at(from_epoch(at))
    stack.environment["FETCH_QUEUE_URL"] = ""  # the scheduled run works inline
    stack.activate()
    return Runner(stack, sandbox, clock, dynamodb_calls)


def window(snapshot: datetime, *tiers: str) -> tuple[str, str]:
    """The one window the due tiers merge into: they are adjacent, from age 0."""
    return iso_z(snapshot - max(TIER_SPAN[t] for t in tiers)), iso_z(snapshot)


def posts_in(sandbox: RecordingSandbox, start: str, end: str) -> set[str]:
    """The account's posts in [start, end) that X serves the app: reposts are excluded by default."""
    low, high = parse_utc(start), parse_utc(end)
    timeline = sandbox.user("ada_metrics").tweets
    return {
        t["id"] for t in timeline if low <= parse_utc(t["created_at"]) < high and post_type(t) != "repost"
    }


def tier_by_age(snapshot: datetime, created_at: str) -> str:
    age = snapshot - parse_utc(created_at)
    return YOUNG if age < timedelta(hours=48) else DAILY if age < timedelta(days=7) else WEEKLY


def check_asks(run: Run) -> None:
    """Every request asks X the documented question, and the pages of a window chain by next_token."""
    for ask in run.asks:
        assert ask.status == 200 and ask.user_id == USER_ID
        assert {k: ask.query.get(k) for k in QUESTION} == QUESTION
    assert run.summary["pages"] == len(run.asks)
    assert sum("pagination_token" not in ask.query for ask in run.asks) == len(run.windows)


def check_export(run: Run, sandbox: RecordingSandbox, *, tier_of: Any = tier_by_age) -> None:
    """The export holds exactly the posts X holds in the windows asked, which are what X served."""
    expected = set().union(*(posts_in(sandbox, start, end) for start, end in run.windows))
    ids = [line["tweet_id"] for line in run.lines]
    assert len(ids) == len(set(ids)) == run.summary["tweets"]
    assert set(ids) == expected == set(run.served) and len(run.served) == len(expected)
    for line in run.lines:
        assert line["snapshot_at"] == iso_z(run.snapshot)
        assert line["read_tier"] == tier_of(run.snapshot, line["created_at"]), line["created_at"]


def check_one_write(run: Run, stack: LocalStack) -> dict[str, Any]:
    """The bookkeeping (and whether X's reach covered the window) rides on the export's own
    UpdateItem: a scheduled inline run spends a Scan, one BatchGetItem (the account and the
    usage-cap marker) and that one write, nothing else."""
    assert [name for name, _ in run.dynamodb] == ["Scan", "BatchGetItem", "UpdateItem"]
    _, write = run.dynamodb[-1]
    assert write["Key"] == {"pk": {"S": f"account#{USER_ID}"}}
    assert "#le = :le" in write["UpdateExpression"] and "#reads = :reads" in write["UpdateExpression"]
    assert write["ExpressionAttributeNames"] == {
        "#le": "last_export",
        "#reads": "reads",
        "#cm": "completeness",
    }
    item = account_item(stack)
    assert item["completeness"]["M"]["complete"] == {"BOOL": run.summary["complete"]}
    assert item["reads"]["S"] == write["ExpressionAttributeValues"][":reads"]["S"]
    assert item["last_export"]["M"]["key"]["S"] == run.summary["key"]
    reads: dict[str, Any] = json.loads(item["reads"]["S"])
    return reads


def test_tiers_over_simulated_days(runner: Runner, stack: LocalStack, sandbox: RecordingSandbox) -> None:
    expected_book: dict[str, str] = {}
    spans: list[tuple[datetime, datetime]] = []
    book_day = ""
    plan = [
        (DAYS.first, [YOUNG, DAILY, WEEKLY]),  # the first run reads every tier
        (DAYS.late, [YOUNG]),  # later the same UTC day: only the young posts
        (DAYS.midnight, [YOUNG, DAILY]),  # a new UTC day: the daily tier comes back
        (DAYS.one_am, [YOUNG]),
        (DAYS.eve, [YOUNG, DAILY]),  # days later: daily again, weekly still not due
        (DAYS.weekly, [YOUNG, DAILY, WEEKLY]),  # the 7th UTC day since the first run
        (DAYS.after, [YOUNG]),
    ]
    assert not WEEKLY_TIER.comes_back(DAYS.first, DAYS.eve)
    assert WEEKLY_TIER.comes_back(DAYS.first, DAYS.weekly)
    for snapshot, tiers in plan:
        # When: the schedule fires at `snapshot`
        run = runner.run(snapshot)
        # Then: X was asked for the due tiers as one window, ending at the snapshot
        assert run.windows == [window(snapshot, *tiers)], snapshot
        assert run.summary["tiers"] == tiers and "skipped_tiers" not in run.summary
        check_asks(run)
        # and the export holds exactly what X served in that window, each line naming its tier
        check_export(run, sandbox)
        # and what the run says X bills is what X's ledger added for the day (new posts only)
        assert run.summary["billed"] == run.billed_by_x, snapshot
        # and the tiers' bookkeeping is on the account item, written with last_export
        book = check_one_write(run, stack)
        day = f"{snapshot:%Y-%m-%d}"
        read = (parse_utc(window(snapshot, *tiers)[0]), snapshot)
        spans = merge([*spans, read]) if day == book_day else [read]
        book_day = day
        expected_book.update(dict.fromkeys(tiers, iso_z(snapshot)))
        assert book["tiers"] == expected_book and max(book["spans"]) == day
        assert book["spans"][day] == [[iso_z(a), iso_z(b)] for a, b in spans]
        hours = (read[1] - read[0]) / timedelta(hours=1)
        assert book["rate"] == pytest.approx(run.summary["tweets"] / hours, abs=1e-4)
    # and over the runs, later reads of the same day billed only the posts new since the last one
    assert runner.sandbox.billed(f"{DAYS.first:%Y-%m-%d}")["posts"] == len(
        posts_in(sandbox, iso_z(DAYS.first - WINDOW), iso_z(DAYS.late))
    )


def test_a_replay_of_a_snapshot_asks_x_the_same_and_rewrites_its_key(
    runner: Runner, stack: LocalStack, sandbox: RecordingSandbox
) -> None:
    # Given: the runs of the first evening and the midnight
    for snapshot in (DAYS.first, DAYS.late):
        runner.run(snapshot)
    original = runner.run(DAYS.midnight)
    book = account_item(stack)["reads"]["S"]
    # When: the midnight run is replayed (a retried invocation)
    replay = runner.run(DAYS.midnight)
    # Then: X was asked exactly the same requests, page by page
    assert [a.query for a in replay.asks] == [a.query for a in original.asks]
    assert replay.summary["tiers"] == original.summary["tiers"] == [YOUNG, DAILY]
    # and the same key was rewritten with the same lines
    assert replay.summary["key"] == original.summary["key"]
    assert replay.lines == original.lines
    versions = stack.client("s3").list_object_versions(
        Bucket=stack.resources.bucket_name, Prefix=original.summary["key"]
    )["Versions"]
    assert [v["Key"] for v in versions] == [original.summary["key"]] * 2
    # and nothing new was billed, by the run's count or X's ledger: the posts were read today
    assert replay.summary["billed"] == replay.billed_by_x == {"posts": 0, "media": 0, "users": 0}
    # and the bookkeeping is what the original left
    check_one_write(replay, stack)
    assert account_item(stack)["reads"]["S"] == book


def test_a_late_retry_of_the_evening_run_after_midnight_asks_the_same_and_counts_what_x_bills(
    runner: Runner, stack: LocalStack, sandbox: RecordingSandbox
) -> None:
    # Given: the 22:00 and 23:00 runs, then the midnight run (a new UTC day)
    runner.run(DAYS.first)
    original = runner.run(DAYS.late)
    runner.run(DAYS.midnight)
    # When: the 23:00 snapshot runs again after the midnight run (a retried SQS message, or a replay)
    retry = runner.run(DAYS.late)
    # Then: it asked X the same questions and rewrote its own object with the same lines
    assert [a.query for a in retry.asks] == [a.query for a in original.asks]
    assert retry.summary["tiers"] == [YOUNG] and retry.summary["key"] == original.summary["key"]
    assert retry.lines == original.lines
    check_one_write(retry, stack)
    # and X billed nothing for it (every post of its window was read that day already); the run
    # counts what X bills, so the budget and the cost estimate are not charged for it again
    assert retry.billed_by_x["posts"] == 0
    assert retry.summary["billed"] == retry.billed_by_x


def test_refresh_tiers_all_reads_the_whole_window_every_run(
    runner: Runner, stack: LocalStack, sandbox: RecordingSandbox
) -> None:
    stack.environment["REFRESH_TIERS"] = "all"
    stack.activate()
    for snapshot in (DAYS.first, DAYS.late, DAYS.midnight):
        run = runner.run(snapshot)
        assert run.windows == [(iso_z(snapshot - WINDOW), iso_z(snapshot))]
        assert run.summary["tiers"] == ["all"]
        check_asks(run)
        check_export(run, sandbox, tier_of=lambda *_: "all")
        assert run.summary["billed"] == run.billed_by_x
        book = check_one_write(run, stack)
        assert book["tiers"] == {"all": iso_z(snapshot)}
