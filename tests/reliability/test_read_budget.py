"""The DailyReadBudget under concurrent workers: DynamoDB Local's atomic counter, X's bill as ground truth.

Every worker here is its own Lambda container (its own boto3 session, HTTP pool and ReadBudget, as
`new_worker` builds them), and the workers of one wave start together from a barrier. What X billed
is read from the sandbox's ledger, never from the app's own report.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local import flows
from local.clock import SettableClock
from local.stack import LocalStack
from local.x_sandbox import XSandbox, post_type
from tests.integration.helpers import RecordingSandbox, account_item
from tests.reliability.conftest import Figures, budget, new_worker, seed_account
from xmetrics.services.results import Summary
from xmetrics.services.tiers import WINDOW
from xmetrics.services.window import make_job
from xmetrics.timeutil import iso_z, parse_utc
from xmetrics.x_api import PAGE_SIZE

FIRST_ID = 1_900_000_000_000_000_000
# Varied posting: 30 to 520 posts spread over 40 days (so every account posts across the whole window).
POST_COUNTS = (30, 60, 100, 150, 220, 300, 400, 520)
POSTING_DAYS = 40
YOUNG, DAILY, WEEKLY = "0-48h", "48h-7d", "7d-30d"
TIERS = (YOUNG, DAILY, WEEKLY)
# The day under test: a UTC midnight well inside the last 30 days, as a real run's would be.
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=12)
LONG_LIVED = 90 * 86_400  # access tokens outlive the simulated days, so no run rotates one


@pytest.fixture
def clock() -> SettableClock:
    # The posts are made up to two days after DAY; each run sets the clock to its scheduled time.
    return SettableClock((DAY + timedelta(days=2)).timestamp())


@pytest.fixture
def sandbox(clock: SettableClock) -> Iterator[RecordingSandbox]:
    with RecordingSandbox(clock=clock) as x:
        x.access_token_ttl = LONG_LIVED
        yield x


def seed(stack: LocalStack, sandbox: XSandbox, counts: tuple[int, ...] = POST_COUNTS) -> list[str]:
    ids = [str(FIRST_ID + i) for i in range(len(counts))]
    for i, (user_id, count) in enumerate(zip(ids, counts, strict=True)):
        sandbox.add_user(f"reader{i}", user_id=user_id, tweet_count=count, days=POSTING_DAYS)
        seed_account(stack, f"reader{i}", user_id, expires_in=LONG_LIVED)
    return ids


def set_budget(stack: LocalStack, daily: int) -> None:
    stack.environment["DAILY_READ_BUDGET"] = str(daily)
    stack.activate()


def wave(stack: LocalStack, ids: list[str], snapshot: datetime) -> dict[str, Summary]:
    """Every account at once, one new Lambda container each, released together."""
    workers = [new_worker(stack) for _ in ids]
    start = threading.Barrier(len(ids))
    summaries: dict[str, Summary] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(user_id: str, index: int) -> None:
        try:
            start.wait(timeout=30)
            summary = workers[index].service.run(make_job(user_id, snapshot), budget())
            with lock:
                summaries[user_id] = summary
        except BaseException as exc:  # noqa: BLE001 - reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(u, i)) for i, u in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(summaries) == len(ids), errors
    return summaries


def timeline_calls(sandbox: XSandbox, user_id: str, snapshot: datetime) -> int:
    """The sandbox's own request log: requests for that user's timeline made at that scheduled time."""
    path = f"/2/users/{user_id}/tweets"
    return sum(1 for r in sandbox.request_log if r.path == path and r.at == snapshot.timestamp())


def counter(stack: LocalStack, day: datetime) -> int:
    item = stack.client("dynamodb").get_item(
        TableName=stack.resources.table_name, Key={"pk": {"S": f"budget#{day:%Y-%m-%d}"}}, ConsistentRead=True
    )
    return int(item["Item"]["posts"]["N"]) if "Item" in item else 0


def bookkeeping(stack: LocalStack, user_id: str) -> dict[str, Any]:
    item = account_item(stack, user_id)
    return json.loads(item["reads"]["S"]) if "reads" in item else {}


def in_window(sandbox: XSandbox, username: str, start: datetime, end: datetime) -> set[str]:
    """The posts X serves the app in [start, end): reposts are excluded by default."""
    timeline = sandbox.user(username).tweets
    return {
        t["id"] for t in timeline if start <= parse_utc(t["created_at"]) < end and post_type(t) != "repost"
    }


def test_concurrent_workers_spend_the_budget_once_and_the_next_day_reads_again(
    stack: LocalStack, sandbox: RecordingSandbox, clock: SettableClock, figures: Figures
) -> None:
    # Given: eight connected accounts whose posting rates the app learnt from a read a week earlier
    ids = seed(stack, sandbox)
    warm_up = DAY - timedelta(days=7, hours=12)
    clock.at(warm_up)
    set_budget(stack, 0)
    assert {s.status for s in wave(stack, ids, warm_up).values()} == {"exported"}
    # and a daily budget well below what they would read today (about 1,200 posts, reposts being
    # excluded): the first run of the day is due to read every tier (a new UTC day, and a new weekly
    # period for each of them)
    limit = 400
    unbudgeted = sum(len(in_window(sandbox, f"reader{i}", DAY - WINDOW, DAY)) for i in range(len(ids)))
    assert unbudgeted > 2 * (limit + PAGE_SIZE)
    set_budget(stack, limit)

    # When: all eight run at once at 00:00
    clock.at(DAY)
    summaries = wave(stack, ids, DAY)

    # Then: each either exported or was told the budget is used up; both happened
    statuses = {u: s.status for u, s in summaries.items()}
    assert set(statuses.values()) == {"exported", "budget_exhausted"}, statuses
    exported = [u for u in ids if statuses[u] == "exported"]
    exhausted = [u for u in ids if statuses[u] == "budget_exhausted"]
    # and an account past the budget never asked X for its timeline, and no bookkeeping moved
    for user_id in exhausted:
        assert timeline_calls(sandbox, user_id, DAY) == 0
        assert "DailyReadBudget" in str(summaries[user_id].error)
        assert bookkeeping(stack, user_id)["tiers"] == dict.fromkeys(TIERS, iso_z(warm_up))
    # and what X billed today (its own ledger) is what the runs counted, within the budget: each
    # container reserves once, so the atomic counter hands out disjoint parts of the budget (their
    # sum is at most the budget), and a run's pages are sized to what is left of its share, so no
    # run reads past it
    billed = sandbox.billed(f"{DAY:%Y-%m-%d}")["posts"]
    assert billed == sum(summaries[u].billed["posts"] for u in exported)
    assert 0 < billed <= limit
    # and the day's counter in DynamoDB never says less than what X billed
    assert counter(stack, DAY) >= billed
    for user_id in exported:
        summary = summaries[user_id]
        asks = sandbox.asks_of(user_id, at=DAY)
        served = [post for ask in asks for post in ask.served]
        # every line exported is a post X served this run, each once
        lines = flows.read_export(stack, str(summary.key))
        assert sorted(r["tweet_id"] for r in lines) == sorted(served) and len(set(served)) == len(served)
        assert summary.billed["posts"] == len(served)  # nothing of it was read before today
        # the young posts come first: the tiers read are the youngest of the due ones, and the
        # older ones it left for another day are reported as skipped and stay due
        assert summary.tiers == list(TIERS[: len(summary.tiers)]) and summary.tiers[0] == YOUNG
        left = [t for t in TIERS if t not in summary.tiers]
        assert set(left) <= set(summary.skipped_tiers)
        book = bookkeeping(stack, user_id)["tiers"]
        assert all(book[t] == iso_z(warm_up) for t in summary.skipped_tiers)
        assert all(book[t] == iso_z(DAY) for t in summary.tiers if t not in summary.skipped_tiers)
        # a run cut short read the newest posts of its window and stopped
        if summary.skipped_tiers:
            ((start, end),) = {ask.window for ask in asks}
            assert end == iso_z(DAY)
            window_posts = in_window(sandbox, f"reader{int(user_id) - FIRST_ID}", parse_utc(start), DAY)
            newest = sorted(window_posts, key=int, reverse=True)[: len(served)]
            assert set(served) == set(newest)

    # When: a second wave the same day, an hour later, from new containers (what the first wave's
    # containers reserved and did not read went with them)
    second = DAY + timedelta(hours=1)
    clock.at(second)
    again = wave(stack, ids, second)
    # Then: the day's bill still stays within the budget, and an account told the budget is used
    # up did not call X
    assert {s.status for s in again.values()} <= {"exported", "budget_exhausted"}
    assert all(timeline_calls(sandbox, u, second) == 0 for u, s in again.items() if s.status != "exported")
    billed = sandbox.billed(f"{DAY:%Y-%m-%d}")["posts"]
    assert billed <= limit and counter(stack, DAY) >= billed

    # When: the next UTC day's first run
    tomorrow = DAY + timedelta(days=1)
    clock.at(tomorrow)
    next_day = wave(stack, ids, tomorrow)
    # Then: accounts read again, under a new day's counter and within its budget
    read_again = [u for u, s in next_day.items() if s.status == "exported"]
    assert read_again
    billed_tomorrow = sandbox.billed(f"{tomorrow:%Y-%m-%d}")["posts"]
    assert 0 < billed_tomorrow <= limit + PAGE_SIZE - 1
    assert billed_tomorrow == sum(next_day[u].billed["posts"] for u in read_again)
    assert counter(stack, tomorrow) >= billed_tomorrow
    assert all(timeline_calls(sandbox, u, tomorrow) == 0 for u in ids if u not in read_again)
    figures.outcomes.append(
        f"read budget: {len(ids)} accounts at once, budget {limit} (unbudgeted {unbudgeted}) -> "
        f"{len(exported)} exported, {len(exhausted)} budget_exhausted, X billed {billed}; "
        f"second wave 0 calls; next day {len(read_again)} exported, billed {billed_tomorrow}"
    )


def test_first_runs_share_the_budget_a_page_each_and_read_their_newest_posts_first(
    stack: LocalStack, sandbox: RecordingSandbox, clock: SettableClock
) -> None:
    # Given: eight first runs (no posting rate known yet, so each reserves one page: 100 posts and
    # a margin of 10) and a budget of 400
    ids = seed(stack, sandbox)
    snapshot = DAY + timedelta(hours=10)
    clock.at(snapshot)
    limit = 400
    set_budget(stack, limit)
    # When: all at once
    summaries = wave(stack, ids, snapshot)
    # Then: the atomic counter handed out three whole shares and one part (110 + 110 + 110 + 70):
    # four accounts exported, and the others were told the budget is used up without calling X
    exported = [u for u, s in summaries.items() if s.status == "exported"]
    assert len(exported) == 4, {u: s.status for u, s in summaries.items()}
    assert all(s.status == "budget_exhausted" for u, s in summaries.items() if u not in exported)
    assert all(timeline_calls(sandbox, u, snapshot) == 0 for u in ids if u not in exported)
    billed = sandbox.billed(f"{snapshot:%Y-%m-%d}")["posts"]
    assert billed == sum(summaries[u].billed["posts"] for u in exported) <= limit
    assert counter(stack, snapshot) >= billed
    for user_id in exported:
        summary = summaries[user_id]
        username = f"reader{int(user_id) - FIRST_ID}"
        lines = flows.read_export(stack, str(summary.key))
        served = [post for ask in sandbox.asks_of(user_id) for post in ask.served]
        assert sorted(r["tweet_id"] for r in lines) == sorted(served)
        # its share went to its newest posts: what it read is the newest of its whole window
        window = in_window(sandbox, username, snapshot - WINDOW, snapshot)
        newest = sorted(window, key=int, reverse=True)[: len(lines)]
        assert {r["tweet_id"] for r in lines} == set(newest)
        # a tier it did not read in full stays due, and it now knows its posting rate
        book = bookkeeping(stack, user_id)
        assert set(book["tiers"]) == {t for t in TIERS if t not in summary.skipped_tiers}
        if len(lines) < len(window):
            assert summary.skipped_tiers
        assert book["rate"] > 0
    assert all(bookkeeping(stack, u) == {} for u in ids if u not in exported)


def test_a_heavy_poster_never_reads_past_its_share_and_the_counter_covers_what_x_billed(
    stack: LocalStack, sandbox: RecordingSandbox, clock: SettableClock
) -> None:
    # Given: a heavy poster (100 posts a day) on its first run, and a budget far above its reads:
    # its first share (one page) is smaller than its window
    (user_id,) = seed(stack, sandbox, counts=(4000,))
    snapshot = DAY + timedelta(hours=10)
    clock.at(snapshot)
    set_budget(stack, 100_000)
    # When
    summary = new_worker(stack).service.run(make_job(user_id, snapshot), budget())
    # Then: it exported what X served, and X billed every post of every page it served
    assert summary.status == "exported"
    billed = sandbox.billed(f"{snapshot:%Y-%m-%d}")["posts"]
    assert billed == summary.billed["posts"] == summary.tweets
    # and it stopped at its share, and the day's counter says at least what X billed
    assert billed <= 110 and summary.skipped_tiers
    assert counter(stack, snapshot) >= billed, (
        f"budget#{snapshot:%Y-%m-%d} says {counter(stack, snapshot)} posts, X billed {billed}"
    )
