"""One account's runs with read tiers, X's bill, the daily read budget and the usage cap, on fakes:
what each run asks X, what it exports, what it counts, and which DynamoDB operations it spends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.crypto import FakeCipher
from tests.fakes.exporter import FakeExporter
from tests.fakes.oauth import FakeTokenEndpoint
from tests.fakes.store import FakeStore
from tests.fakes.telemetry import Recorder
from tests.fakes.x_api import FakeTimelines
from xmetrics.crypto import PlainTokens
from xmetrics.errors import StoreUnavailableError, UsageCappedError
from xmetrics.services.billing import Bookkeeping
from xmetrics.services.budget import ReadBudget
from xmetrics.services.export_account import ExportAccount
from xmetrics.services.results import Summary
from xmetrics.services.tiers import DEFAULT_SPEC, TierPolicy
from xmetrics.services.tokens import TokenKeeper
from xmetrics.services.window import make_job
from xmetrics.timeutil import iso_z

USER = "42"
START = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
CAPPED = UsageCappedError(429, "UsageCapExceeded", "Usage cap exceeded: Monthly product cap")


def _posts(every: timedelta, days: int, until: datetime) -> list[dict[str, Any]]:
    """One post every `every` for `days` days before `until`, newest first, one in four a video."""
    posts, moment, n = [], until - timedelta(minutes=30), 0
    while moment > until - timedelta(days=days):
        n += 1
        post: dict[str, Any] = {"id": str(10_000 - n), "created_at": iso_z(moment), "text": f"post {n}"}
        if n % 4 == 0:
            post["attachments"] = {"media_keys": [f"7_{n}"]}
        posts.append(post)
        moment -= every
    return posts


class World:
    def __init__(self, *, budget: int = 0, spec: str = DEFAULT_SPEC) -> None:
        self.clock = FakeClock(START.timestamp())
        self.store = FakeStore()
        self.cipher = FakeCipher()
        self.timelines = FakeTimelines(posts=_posts(timedelta(hours=6), 40, START + timedelta(days=3)))
        self.exporter = FakeExporter()
        self.telemetry = Recorder()
        keeper = TokenKeeper(
            self.store,
            self.cipher,
            FakeTokenEndpoint(clock=self.clock),
            self.telemetry,
            clock=self.clock,
            sleep=self.clock.sleep,
        )
        self.budget = ReadBudget(self.store, budget)
        self.export = ExportAccount(
            self.store,
            keeper,
            self.timelines,
            self.exporter,
            self.telemetry,
            tiers=TierPolicy.parse(spec),
            budget=self.budget,
            clock=self.clock,
        )
        sealed = self.cipher.seal(USER, self.cipher.key(USER), PlainTokens("a0", "r0"))
        self.store.connect(USER, sealed, access_expires_at=self.clock() + 10**7)

    def run(self, snapshot: datetime) -> Summary:
        # The wall clock is at least the scheduled time (a test may set it later: a late run).
        self.clock.now = max(self.clock.now, snapshot.timestamp())
        # Posts appear when they are made: X never serves one from the future.
        visible = [p for p in self.all_posts if p["created_at"] <= iso_z(snapshot)]
        self.timelines.posts = visible
        self.store.calls.clear()
        return self.export.run(make_job(USER, snapshot), self.clock.deadline(300))

    @property
    def all_posts(self) -> list[dict[str, Any]]:
        if not hasattr(self, "_all"):
            self._all = list(self.timelines.posts)
        return self._all

    def exported(self, summary: Summary) -> list[dict[str, Any]]:
        assert summary.key is not None
        return self.exporter.objects[summary.key]


def _age_hours(snapshot: datetime, row: dict[str, Any]) -> float:
    created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
    return (snapshot - created) / timedelta(hours=1)


def test_hourly_runs_read_young_posts_every_run_and_older_ones_by_their_tier() -> None:
    world = World()
    seen_daily: dict[str, set[str]] = {}
    for hour in range(48):
        snapshot = START + timedelta(hours=hour)
        summary = world.run(snapshot)
        rows = world.exported(summary)
        assert summary.status == "exported"
        # every post younger than 48 h is in every export, each line naming the tier that read it
        young = {p["id"] for p in world.timelines.posts if _age_hours(snapshot, p) < 48}
        assert young <= {r["tweet_id"] for r in rows}
        assert all(r["read_tier"] == "0-48h" for r in rows if _age_hours(snapshot, r) < 48)
        assert all(r["read_tier"] == "48h-7d" for r in rows if 48 <= _age_hours(snapshot, r) < 168)
        for row in rows:
            if 48 <= _age_hours(snapshot, row) < 168:
                seen_daily.setdefault(f"{snapshot:%Y-%m-%d}", set()).add(row["tweet_id"])
        # the first run of each UTC day reads the 2-7 day posts; the other runs only the young ones
        if snapshot.hour == 0:
            assert "48h-7d" in summary.tiers
        else:
            assert summary.tiers == ["0-48h"]
        # no extra DynamoDB operation: the bookkeeping rides on the export's own write
        assert world.store.calls == ["get_account_and_cap", "record_export"]
    # every post aged 2-7 days on a day was read that day
    for day, ids in seen_daily.items():
        noon = datetime.fromisoformat(f"{day}T00:00:00+00:00")
        expected = {p["id"] for p in world.timelines.posts if 48 <= _age_hours(noon, p) < 168}
        assert expected <= ids


def test_x_bills_a_post_once_a_utc_day_and_the_run_counts_it_so() -> None:
    world = World()
    first = world.run(START)
    # the first run reads the whole window: every post is new for the day
    window_posts = [p for p in world.timelines.posts if _age_hours(START, p) < 30 * 24 - 1]
    assert first.billed["posts"] == first.reads["posts"] == len(window_posts)
    assert first.billed["media"] == first.reads["media"] == 0  # the fake serves no includes
    # and the day's account snapshot is one user read ($0.010)
    assert first.billed["users"] == 1 and first.account == "exported"
    assert first.cost_usd == pytest.approx(len(window_posts) * 0.001 + 0.010)
    # an hour later, the young posts were already read today: only the new one is billed
    second = world.run(START + timedelta(hours=1))
    assert second.reads["posts"] == 8 and second.billed["posts"] == 0
    third = world.run(START + timedelta(hours=6, minutes=30))
    assert third.billed["posts"] == 1  # the post made at 05:30
    # after UTC midnight every post read is billed again
    next_day = world.run(START + timedelta(days=1))
    assert next_day.billed["posts"] == next_day.reads["posts"] > 0
    assert world.telemetry.metrics["XPostsBilled"] == sum(
        s.billed["posts"] for s in (first, second, third, next_day)
    )
    assert world.telemetry.metrics["XPostsRead"] == sum(
        s.reads["posts"] for s in (first, second, third, next_day)
    )


def test_a_late_run_of_yesterday_is_not_billed_again_for_what_yesterday_read() -> None:
    world = World()
    world.run(START + timedelta(hours=23))
    world.run(START + timedelta(days=1))
    # an SQS retry of the 23:00 run arrives after the midnight run
    late = world.run(START + timedelta(hours=23))
    assert late.reads["posts"] > 0 and late.billed["posts"] == 0


def test_all_reads_the_whole_window_every_run() -> None:
    world = World(spec="all")
    for hour in range(3):
        summary = world.run(START + timedelta(hours=hour))
        assert summary.tiers == ["all"]
        assert world.timelines.windows[-1][0] == iso_z(
            START + timedelta(hours=hour) - timedelta(days=30, hours=-1)
        )


def test_a_failed_export_leaves_the_tiers_due_for_the_next_run() -> None:
    world = World()
    world.run(START)
    world.exporter.put = _broken  # type: ignore[method-assign]
    failed = world.run(START + timedelta(days=1))
    assert failed.status == "failed"
    world.exporter.put = FakeExporter.put.__get__(world.exporter)  # type: ignore[method-assign]
    retried = world.run(START + timedelta(days=1, hours=1))
    assert "48h-7d" in retried.tiers


def _broken(*args: object, **kwargs: object) -> None:
    from xmetrics.errors import ExportWriteError

    raise ExportWriteError("PutObject", "InternalError")


def test_a_budget_costs_one_dynamodb_operation_a_run() -> None:
    world = World(budget=10_000)
    world.run(START)
    assert world.store.calls == ["get_account_and_cap", "add_reads", "record_export"]


def test_past_the_budget_an_account_is_budget_exhausted_and_x_is_not_called() -> None:
    world = World(budget=50)
    world.store.budget[f"{START:%Y-%m-%d}"] = 50
    calls = world.timelines.calls
    summary = world.run(START)
    assert summary.status == "budget_exhausted" and "DailyReadBudget" in str(summary.error)
    assert world.timelines.calls == calls
    assert world.telemetry.metrics["BudgetExhausted"] == 1
    # and a budget_exhausted run changes no bookkeeping: every tier is still due tomorrow
    assert world.store.accounts[USER].reads is None


def test_near_the_budget_the_old_tiers_wait_and_the_young_posts_flow() -> None:
    world = World(budget=30)
    summary = world.run(START)
    assert summary.status == "exported"
    assert summary.tiers[0] == "0-48h" and "7d-30d" in summary.skipped_tiers
    # the young posts all made it; the day's billed reads stay within the budget plus one page
    young = {p["id"] for p in world.timelines.posts if _age_hours(START, p) < 48}
    assert young <= {r["tweet_id"] for r in world.exported(summary)}
    assert summary.billed["posts"] <= 30
    # the skipped tier is still due: its bookkeeping was not written
    assert "7d-30d" not in Bookkeeping.loads(world.store.accounts[USER].reads).tiers


def test_a_share_cut_short_reads_the_newest_posts_and_stops() -> None:
    world = World(budget=10)
    world._all = _posts(timedelta(hours=1), 40, START)  # 48 young posts: more than the share
    world.timelines.page_size = 5
    summary = world.run(START)
    rows = world.exported(summary)
    assert summary.billed["posts"] <= 10
    newest = sorted(world.timelines.posts, key=lambda p: p["created_at"], reverse=True)[: len(rows)]
    assert {r["tweet_id"] for r in rows} == {p["id"] for p in newest}
    # the young tier was cut short, so it is not marked read
    assert "0-48h" in summary.skipped_tiers


def test_unused_reservations_go_back_to_the_budget() -> None:
    world = World(budget=100_000)
    for hour in range(5):
        world.run(START + timedelta(hours=hour))
    counted = world.store.budget[f"{START:%Y-%m-%d}"]
    billed = world.telemetry.metrics["XPostsBilled"]
    # the counter holds what was billed plus at most the last run's unused reservation
    assert billed <= counted <= billed + 2 * 8 + 100 + 1


def test_a_usage_cap_answer_stops_the_account_and_every_run_for_an_hour() -> None:
    world = World()
    world.timelines.faults = [CAPPED]
    summary = world.run(START)
    assert summary.status == "usage_capped" and "usage cap" in str(summary.error)
    assert world.timelines.calls == 1  # no wait, no retry
    assert world.telemetry.metrics["UsageCapped"] == 1
    # within the hour no run calls X
    for minutes in (1, 30, 59):
        later = world.run(START + timedelta(minutes=minutes))
        assert later.status == "usage_capped" and world.timelines.calls == 1
        assert world.store.calls == ["get_account_and_cap"]


def test_after_the_hour_one_run_probes_and_a_good_answer_lifts_the_cap() -> None:
    world = World()
    world.timelines.faults = [CAPPED]
    world.run(START)
    probe = world.run(START + timedelta(hours=1))
    assert probe.status == "exported" and world.timelines.calls == 2
    assert world.store.usage_cap is None
    assert world.run(START + timedelta(hours=1, minutes=5)).status == "exported"


def test_a_probe_that_meets_the_cap_again_closes_the_next_hour() -> None:
    world = World()
    world.timelines.faults = [CAPPED, CAPPED]
    world.run(START)
    assert world.run(START + timedelta(hours=1)).status == "usage_capped"
    assert world.timelines.calls == 2
    assert world.run(START + timedelta(hours=1, minutes=30)).status == "usage_capped"
    assert world.timelines.calls == 2


def test_only_one_run_probes_when_the_hour_is_over() -> None:
    world = World()
    world.timelines.faults = [CAPPED]
    world.run(START)
    assert world.store.usage_cap is not None
    seen = world.store.usage_cap
    # Another run claims the probe between our read of the marker and our claim.
    assert world.store.claim_usage_probe(
        seen_until=seen.until, until=seen.until + 3600, probe_until=world.clock() + 300
    )
    original = world.store.get_account_and_cap

    def stale(user_id: str) -> Any:
        account, _ = original(user_id)
        return account, seen

    world.store.get_account_and_cap = stale  # type: ignore[method-assign]
    waiting = world.run(START + timedelta(hours=1))
    # Then: no call to X, and the job is handed back, not dropped as usage_capped
    assert world.timelines.calls == 1
    # (the claim we lost is not in the marker we read, so it waits out a whole probe lease)
    assert waiting.status == "failed" and waiting.retry_after == world.clock() + 300 + 5
    assert "another run is checking" in str(waiting.error)


def _probe_in_flight(world: World) -> datetime:
    """X capped the run at START; a run of the next hour claimed the probe and is asking X now."""
    world.timelines.faults = [CAPPED]
    world.run(START)
    assert world.store.usage_cap is not None
    hour = START + timedelta(hours=1)
    world.clock.now = hour.timestamp()
    cap = world.store.usage_cap
    assert world.store.claim_usage_probe(
        seen_until=cap.until, until=(hour + timedelta(hours=1)).timestamp(), probe_until=world.clock() + 300
    )
    return hour


def test_runs_that_meet_a_probe_in_flight_wait_for_its_answer_instead_of_losing_the_hour() -> None:
    world = World()
    hour = _probe_in_flight(world)
    waiting = world.run(hour)
    assert waiting.status == "failed" and world.timelines.calls == 1
    # it comes back once the probe's lease is over: one probe costs a job at most two receives
    assert waiting.retry_after == world.clock() + 300 + 5
    # The probe got X's answer (the cap is lifted): the handed-back job exports when it comes back
    world.store.clear_usage_cap(until=(hour + timedelta(hours=1)).timestamp())
    assert world.run(hour).status == "exported"


def test_a_probe_that_died_keeps_the_others_off_x_until_its_hour_is_over_not_waiting_for_ever() -> None:
    world = World()
    hour = _probe_in_flight(world)
    world.clock.sleep(301)  # the probing run was killed; its lease ran out
    closed = world.run(hour + timedelta(minutes=10))
    assert closed.status == "usage_capped" and world.timelines.calls == 1


def test_a_read_that_fails_after_asking_x_keeps_its_share_and_says_what_x_returned() -> None:
    from xmetrics.errors import XServerError

    world = World(budget=100_000)
    world.timelines.faults = [XServerError(503, "Service Unavailable")]
    failed = world.run(START)
    assert failed.status == "failed"
    day = f"{START:%Y-%m-%d}"
    held = world.store.budget[day]
    assert held > 0  # X may have billed what never arrived: the share is not handed back
    # and the next run reads normally; the metrics count only what X returned
    world.timelines.faults = []
    after = world.run(START + timedelta(hours=1))
    assert after.status == "exported"
    assert world.telemetry.metrics["XPostsBilled"] == after.billed["posts"]


def test_the_account_is_read_once_a_utc_day_and_its_failure_never_blocks_the_posts() -> None:
    world = World()
    first = world.run(START)
    assert first.account == "exported" and first.account_key is not None
    (line,) = world.exporter.objects[first.account_key]
    assert line["public_metrics"] == world.timelines.me["public_metrics"]  # type: ignore[index]
    assert line["user_id"] == "42" and line["snapshot_at"] == iso_z(START)
    assert "/accounts/dt=2026-11-29/user_id=42/" in first.account_key
    # later runs of the same UTC day read no users/me
    assert world.run(START + timedelta(hours=1)).account is None
    assert world.timelines.account_calls == 1
    # the next day's first run, with users/me failing: the posts are exported all the same
    world.timelines.me = None
    failed = world.run(START + timedelta(days=1))
    assert failed.status == "exported" and failed.tweets > 0
    assert str(failed.account).startswith("failed: ") and failed.account_key is None
    # and the run after it tries again
    world.timelines.me = {"id": "42", "username": "renamed", "name": "U"}
    again = world.run(START + timedelta(days=1, hours=1))
    assert again.account == "exported"
    (line,) = world.exporter.objects[str(again.account_key)]
    assert "public_metrics" not in line  # absent is absent, not 0
    # and a username changed at X renames the account here
    assert world.store.accounts[USER].username == "renamed"


def test_a_run_long_after_its_time_or_short_of_time_takes_no_account_snapshot() -> None:
    world = World()
    # A replay or a redriven message, 7 hours after its scheduled time: X would answer with today's
    # counts, so the day gets no line from it
    world.clock.now = (START + timedelta(hours=7)).timestamp()
    late = world.run(START)
    assert late.status == "exported" and late.account is None and world.timelines.account_calls == 0
    # and a run with less time left than users/me and its line need, after the reserve, waits
    world.clock.now = (START + timedelta(hours=1)).timestamp()
    short = world.export.run(make_job(USER, START + timedelta(hours=1)), world.clock.deadline(40))
    assert short.status == "exported" and str(short.account).startswith("waiting: ")
    assert world.timelines.account_calls == 0
    # and the day's next run, on time and with time, takes it
    world.clock.now = (START + timedelta(hours=2)).timestamp()
    assert world.run(START + timedelta(hours=2)).account == "exported"


def test_a_lost_account_line_is_taken_again_and_x_bills_the_user_once_that_day() -> None:
    world = World()
    world.clock.now = START.timestamp()
    world.exporter.failing = {"accounts"}
    first = world.run(START)
    assert str(first.account).startswith("failed: S3 PutObject") and first.billed["users"] == 1
    world.exporter.failing = set()
    second = world.run(START + timedelta(hours=1))
    # the second read that UTC day is not billed again
    assert second.account == "exported" and second.reads["users"] == 1 and second.billed["users"] == 0
    assert world.telemetry.metrics["XUsersBilled"] == 1 and world.timelines.account_calls == 2


def test_users_me_for_another_account_is_refused() -> None:
    world = World()
    world.timelines.me = {"id": "43", "username": "someone_else", "public_metrics": {"tweet_count": 1}}
    summary = world.run(START)
    assert summary.status == "exported"
    assert summary.account == "failed: X answered users/me for another account"
    assert not world.exporter.dataset("accounts") and world.store.accounts[USER].username != "someone_else"


def test_a_run_that_failed_after_reading_says_what_it_read() -> None:
    world = World()

    def refuse(operation: str) -> None:
        if operation == "record_export":
            raise StoreUnavailableError("UpdateItem", "ProvisionedThroughputExceededException")

    world.store.hook = refuse
    summary = world.run(START)
    assert summary.status == "failed" and summary.reads["posts"] > 0 and summary.cost_usd > 0
    (line,) = next(iter(world.exporter.dataset("runs").values()))
    assert line["status"] == "failed" and line["reads"] == summary.reads
    assert line["cost_usd"] == summary.cost_usd


def test_under_a_budget_each_run_still_reads_its_whole_young_tier() -> None:
    # Given: a busy account (4 posts an hour) under a budget, read in full by the day's first runs
    # (the very first reserves one page; the next, knowing the rate, reads the rest)
    world = World(budget=100_000)
    world.timelines.posts = _posts(timedelta(minutes=15), 5, START + timedelta(days=1))
    world.run(START + timedelta(hours=2))
    whole = world.run(START + timedelta(hours=3))
    assert whole.status == "exported" and whole.skipped_tiers == []
    # When: the next hourly run, whose share covers the hour's new posts, not the 48 h tier
    at = START + timedelta(hours=4)
    again = world.run(at)
    # Then: every post of the last 48 h is read again (free: X read them today), and only the
    # hour's new ones are billed
    young = {p["id"] for p in world.all_posts if at - timedelta(hours=48) <= _created(p) < at}
    assert {row["tweet_id"] for row in world.exported(again)} == young and len(young) > 100
    new = [p for p in world.all_posts if START + timedelta(hours=3) <= _created(p) < at]
    assert again.billed["posts"] == len(new) and again.reads["posts"] == len(young)
    # asked newest first: the billable hour, then the part read today already, in full pages
    assert world.timelines.windows[-2:] == [
        (iso_z(START + timedelta(hours=3)), iso_z(at)),
        (iso_z(at - timedelta(hours=48)), iso_z(START + timedelta(hours=3))),
    ]
    assert again.tiers == ["0-48h"] and again.skipped_tiers == []


def _created(post: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(post["created_at"].replace("Z", "+00:00"))


def test_a_run_retried_past_midnight_takes_no_account_snapshot() -> None:
    # Given: the evening's runs, the day's account line lost
    world = World()
    evening = START + timedelta(hours=22)
    world.exporter.failing = {"accounts"}
    world.run(evening)
    world.exporter.failing = set()
    calls = world.timelines.account_calls
    # When: the 23:00 run is retried at 00:30, X's clock on the next UTC day
    world.clock.now = (evening + timedelta(hours=2, minutes=30)).timestamp()
    retry = world.run(evening + timedelta(hours=1))
    # Then: the day's account line is not taken with the next day's counts
    assert retry.status == "exported" and retry.account is None
    assert world.timelines.account_calls == calls


def test_a_burst_that_cuts_the_young_part_short_keeps_older_billable_parts_waiting() -> None:
    # Given: an account read once today (its newest 100 posts, the first reservation), then a burst
    # of 300 posts in the next hour, and a budget that leaves the next run 140
    world = World(budget=240)
    steady = _posts(timedelta(minutes=15), 5, START + timedelta(hours=2))
    burst = [
        {**post, "id": f"burst{i}", "created_at": iso_z(START + timedelta(hours=2, seconds=10 * i + 5))}
        for i, post in enumerate(steady[:300])
    ]
    world.timelines.posts = steady + burst
    world.run(START + timedelta(hours=2))
    asked = len(world.timelines.windows)
    # When: the next run's young, billable part fills a page and stops with 40 of its share left
    again = world.run(START + timedelta(hours=3))
    # Then: the part read today already is still asked (free), the older billable part waits
    # (its 40 would go to old posts while the burst's newest are unread), the share is not spent on it
    assert [w for w in world.timelines.windows[asked:]] == [
        (iso_z(START + timedelta(hours=2)), iso_z(START + timedelta(hours=3))),
        (world.timelines.windows[asked + 1][0], iso_z(START + timedelta(hours=2))),
    ]
    assert again.billed["posts"] == 100 and "0-48h" in again.skipped_tiers
