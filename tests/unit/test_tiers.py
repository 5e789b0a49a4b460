"""Read tiers: which windows a run asks X for, decided by the run's scheduled time alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xmetrics.services.tiers import ALL, DEFAULT_SPEC, TierPolicy, tier_of, windows
from xmetrics.services.window import WINDOW, make_job
from xmetrics.timeutil import iso_z

USER = "42"
POLICY = TierPolicy.parse(DEFAULT_SPEC)
YOUNG, DAILY, WEEKLY = (t.name for t in POLICY.tiers)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _due(snapshot: datetime, last: dict[str, str], user: str = USER) -> list[str]:
    return [t.name for t in POLICY.due(make_job(user, snapshot), last)]


def test_the_default_names_its_tiers_by_age() -> None:
    assert (YOUNG, DAILY, WEEKLY) == ("0-48h", "48h-7d", "7d-30d")
    assert POLICY.spec == DEFAULT_SPEC


def test_a_first_run_reads_every_tier_in_one_window_inside_the_30_day_rule() -> None:
    snapshot = _at("2026-11-30T10:00:00")
    due = POLICY.due(make_job(USER, snapshot), {})
    assert [t.name for t in due] == [YOUNG, DAILY, WEEKLY]
    assert windows(snapshot, due) == [(snapshot - WINDOW, snapshot)]


def test_later_runs_of_the_same_utc_day_read_only_the_young_posts() -> None:
    first = _at("2026-11-30T00:00:00")
    last = {name: iso_z(first) for name in (YOUNG, DAILY, WEEKLY)}
    for hour in range(1, 24):
        snapshot = first + timedelta(hours=hour)
        assert _due(snapshot, last) == [YOUNG]
        assert windows(snapshot, POLICY.due(make_job(USER, snapshot), last)) == [
            (snapshot - timedelta(hours=48), snapshot)
        ]


def test_the_daily_tier_comes_back_at_the_first_run_after_utc_midnight() -> None:
    last = {YOUNG: "2026-11-30T23:00:00Z", DAILY: "2026-11-30T23:00:00Z", WEEKLY: "2026-11-30T23:00:00Z"}
    # 23:59:59 is still the same UTC day; midnight is the next one, an hour later or a second
    assert _due(_at("2026-11-30T23:59:59"), last) == [YOUNG]
    assert _due(_at("2026-12-01T00:00:00"), last) == [YOUNG, DAILY]
    snapshot = _at("2026-12-01T00:00:00")
    due = POLICY.due(make_job(USER, snapshot), last)
    assert windows(snapshot, due) == [(snapshot - timedelta(days=7), snapshot)]


def _weekly_reads(start: datetime, days: int) -> list[datetime]:
    last: dict[str, str] = {}
    reads: list[datetime] = []
    for hour in range(24 * days):
        snapshot = start + timedelta(hours=hour)
        due = _due(snapshot, last)
        for name in due:
            last[name] = iso_z(snapshot)
        if WEEKLY in due:
            reads.append(snapshot)
    return reads


def test_the_weekly_tier_is_read_once_every_seven_days() -> None:
    reads = _weekly_reads(_at("2026-11-01T00:00:00"), 28)
    # Then: four weeks, four reads, exactly 7 days apart, each at a UTC midnight (so it merges
    # with the daily tier into one window)
    assert reads == [_at("2026-11-01T00:00:00") + timedelta(days=7 * n) for n in range(4)]


def test_an_account_connected_mid_week_is_not_read_in_full_again_days_later() -> None:
    # Connected at 22:00: its first run reads every tier; the old posts come back on the 7th day,
    # not at the turn of some calendar week
    reads = _weekly_reads(_at("2026-11-04T22:00:00"), 15)
    assert reads == [_at("2026-11-04T22:00:00"), _at("2026-11-11T00:00:00"), _at("2026-11-18T00:00:00")]
    assert all(b - a <= timedelta(days=7) for a, b in zip(reads, reads[1:], strict=False))


def test_a_rerun_of_the_snapshot_that_read_a_tier_asks_x_the_same_question() -> None:
    snapshot = _at("2026-11-30T00:00:00")
    last = {YOUNG: iso_z(snapshot), DAILY: iso_z(snapshot), WEEKLY: "2026-11-29T00:00:00Z"}
    assert _due(snapshot, last) == [YOUNG, DAILY]


def test_a_tier_left_unread_stays_due_until_it_is_read() -> None:
    last = {YOUNG: "2026-11-30T05:00:00Z", DAILY: "2026-11-29T00:00:00Z", WEEKLY: "2026-11-29T00:00:00Z"}
    assert DAILY in _due(_at("2026-11-30T06:00:00"), last)


def test_non_adjacent_due_tiers_are_two_windows_youngest_first() -> None:
    snapshot = _at("2026-11-30T00:00:00")
    due = (POLICY.tiers[0], POLICY.tiers[2])
    assert windows(snapshot, due) == [
        (snapshot - timedelta(hours=48), snapshot),
        (snapshot - WINDOW, snapshot - timedelta(days=7)),
    ]


def test_all_reads_the_whole_window_every_run() -> None:
    policy = TierPolicy.parse("all")
    snapshot = _at("2026-11-30T10:00:00")
    last = {ALL: iso_z(snapshot - timedelta(hours=1))}
    due = policy.due(make_job(USER, snapshot), last)
    assert [t.name for t in due] == [ALL] and windows(snapshot, due) == [(snapshot - WINDOW, snapshot)]


def test_a_backfill_reads_exactly_its_window() -> None:
    snapshot = _at("2026-11-30T10:00:00")
    job = make_job(USER, snapshot, _at("2026-11-10T00:00:00"), _at("2026-11-12T00:00:00"))
    due = POLICY.due(job, {})
    assert [t.name for t in due] == ["backfill"]
    assert windows(snapshot, due) == [(job.start_time, job.end_time)]


def test_each_post_belongs_to_the_tier_of_its_age() -> None:
    snapshot = _at("2026-11-30T10:00:00")
    assert tier_of(POLICY.tiers, snapshot, snapshot - timedelta(hours=47, minutes=59)) == YOUNG
    assert tier_of(POLICY.tiers, snapshot, snapshot - timedelta(hours=48)) == DAILY
    assert tier_of(POLICY.tiers, snapshot, snapshot - timedelta(days=7)) == WEEKLY


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("48h", "not like 48h:run"),
        ("48h:run,24h:1d", "ages must grow"),
        ("48h:run,31d:7d", "30-day window"),
        ("48h:hourly", "period"),
        ("2w:run", "not like 48h or 7d"),
        ("", "not like 48h:run"),
    ],
)
def test_a_malformed_spec_says_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TierPolicy.parse(spec)


def test_a_spec_without_old_tiers_never_reads_older_posts() -> None:
    policy = TierPolicy.parse("48h:run,7d:1d")
    snapshot = _at("2026-11-30T10:00:00")
    due = policy.due(make_job(USER, snapshot), {})
    assert windows(snapshot, due) == [(snapshot - timedelta(days=7), snapshot)]
