"""Each named query of template.yaml, run on DuckDB over real exports (local/queries.py), gives the
numbers the export's own lines give when worked out in Python."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from local.queries import connect, database_name, named_queries, run, tables
from tests.integration.conftest import VIDEO_USER_ID, Exports
from tests.integration.helpers import USER_ID

ACCOUNTS = (USER_ID, VIDEO_USER_ID)
PLAYBACK = tuple(f"playback_{q}" for q in (0, 25, 50, 75, 100))


@pytest.fixture(scope="module")
def con(exports: Exports) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(exports.root)
    yield connection
    connection.close()


def _since(days: int) -> str:
    """The queries' windows: from the UTC day `days` before today (DuckDB runs in UTC, as Athena)."""
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def _newest(lines: list[dict[str, Any]], key: str = "tweet_id") -> dict[str, dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line[key] not in newest or line["snapshot_at"] > newest[line[key]]["snapshot_at"]:
            newest[line[key]] = line
    return newest


def _tweets(exports: Exports, user_id: str, days: int) -> list[dict[str, Any]]:
    return [line for line in exports.records("tweets", user_id) if line["snapshot_at"][:10] >= _since(days)]


def _engagements(line: dict[str, Any]) -> int | None:
    return (line.get("non_public_metrics") or {}).get("engagements")


def test_the_views_are_the_glue_tables_under_both_names(
    exports: Exports, con: duckdb.DuckDBPyConnection
) -> None:
    schema = database_name()
    for name, table in tables().items():
        described = con.execute(f"DESCRIBE {schema}.{name}").fetchall()
        assert [row[0] for row in described] == [c for c, _ in table.columns] + ["dt", "user_id"]
        lines = exports.lines(table.dataset)
        assert lines
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone() == (len(lines),)


def test_every_named_query_takes_the_account_and_reads_only_its_partitions(
    con: duckdb.DuckDBPyConnection,
) -> None:
    queries = named_queries()
    assert set(queries) == {
        "latest_metrics_per_post",
        "daily_impressions",
        "top_posts_7d",
        "video_retention_funnel",
        "follower_growth",
        "run_history",
    }
    for name in queries:
        with pytest.raises(TypeError, match="missing \\['user_id'\\]"):
            run(con, name)
        assert run(con, name, user_id="1") in ([], [{"videos": 0, "views": None, **dict.fromkeys(PLAYBACK)}])


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_latest_metrics_per_post_is_each_posts_newest_snapshot(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    lines = _tweets(exports, user_id, 31)
    newest = _newest(lines)
    # Given: posts seen more than once, with counts that moved between snapshots
    moved = {
        line["tweet_id"]
        for line in lines
        if line["public_metrics"]["impression_count"]
        != newest[line["tweet_id"]]["public_metrics"]["impression_count"]
    }
    assert moved
    # When
    rows = run(con, "latest_metrics_per_post", user_id=user_id)
    # Then: one row per post, the newest snapshot's counts, newest post first
    by_id = sorted(newest.values(), key=lambda line: line["tweet_id"])
    order = sorted(by_id, key=lambda line: line["created_at"], reverse=True)
    assert [r["tweet_id"] for r in rows] == [line["tweet_id"] for line in order]
    for row in rows:
        line = newest[row["tweet_id"]]
        assert row["snapshot_at"] == line["snapshot_at"]
        assert row["impressions"] == line["public_metrics"]["impression_count"]
        assert row["likes"] == line["public_metrics"]["like_count"]
        assert row["engagements"] == _engagements(line)
    assert {r["tweet_id"] for r in rows} == set(newest)


def _daily_gains(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each post gained per UTC day, the query's rule worked out in Python."""
    watched_from = min(line["snapshot_at"] for line in lines)
    by_post: dict[str, dict[str, dict[str, Any]]] = {}
    for line in lines:
        days = by_post.setdefault(line["tweet_id"], {})
        day = line["snapshot_at"][:10]
        if day not in days or line["snapshot_at"] > days[day]["snapshot_at"]:
            days[day] = line
    out: dict[str, dict[str, Any]] = {}
    for days in by_post.values():
        before: dict[str, Any] | None = None
        for day in sorted(days):
            line = days[day]
            totals = out.setdefault(day, {"posts_seen": 0, "impressions": [], "engagements": []})
            totals["posts_seen"] += 1
            now = (line["public_metrics"]["impression_count"], _engagements(line))
            if before is None:
                born = line["created_at"][:19] >= watched_from[:19]
                base: tuple[Any, Any] = (0, 0) if born else (None, None)
            else:
                base = (before["public_metrics"]["impression_count"], _engagements(before))
            for name, value, start in zip(("impressions", "engagements"), now, base, strict=True):
                if value is not None and start is not None:
                    totals[name].append(value - start)
            before = line
    return {
        day: {
            "dt": day,
            "posts_seen": t["posts_seen"],
            "impressions": sum(t["impressions"]) if t["impressions"] else None,
            "engagements": sum(t["engagements"]) if t["engagements"] else None,
        }
        for day, t in sorted(out.items())
    }


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_daily_impressions_are_what_the_posts_gained_each_day(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    lines = _tweets(exports, user_id, 31)
    expected = _daily_gains(lines)
    # Given: several days, and posts born while watched (counted whole on their first day)
    watched_from = min(line["snapshot_at"] for line in lines)
    assert len(expected) >= 4 and any(line["created_at"] > watched_from for line in lines)
    # When
    rows = run(con, "daily_impressions", user_id=user_id)
    # Then
    assert rows == list(expected.values())
    assert all(r["impressions"] is not None and r["impressions"] > 0 for r in rows[1:])


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_top_posts_are_the_weeks_best_engagement_rates(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    since = _since(6)
    newest = _newest([line for line in _tweets(exports, user_id, 6) if line["created_at"] >= since])
    rated = [
        (engagements / line["public_metrics"]["impression_count"], line)
        for line in newest.values()
        if (engagements := _engagements(line)) is not None and line["public_metrics"]["impression_count"] > 0
    ]
    rated.sort(key=lambda r: (-r[0], -r[1]["public_metrics"]["impression_count"], r[1]["tweet_id"]))
    # Given: more rated posts than the top 10 hold; the account with reposts has posts without a rate
    assert len(rated) > 10
    assert (len(rated) < len(newest)) == (user_id == USER_ID)
    # When
    rows = run(con, "top_posts_7d", user_id=user_id)
    # Then
    assert [r["tweet_id"] for r in rows] == [line["tweet_id"] for _, line in rated[:10]]
    assert [r["engagement_rate"] for r in rows] == pytest.approx([rate for rate, _ in rated[:10]])
    assert all(r["created_at"] >= since for r in rows)


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_the_retention_funnel_sums_the_videos_quartiles(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    videos = [
        media
        for line in _newest(_tweets(exports, user_id, 31)).values()
        for media in line["media"]
        if media["type"] == "video"
    ]
    assert videos
    # When
    (row,) = run(con, "video_retention_funnel", user_id=user_id)
    # Then: the funnel is the sums of the newest snapshot's quartile counts
    assert row["videos"] == len(videos)
    assert row["views"] == sum(m["public_metrics"]["view_count"] for m in videos)
    for stage in PLAYBACK:
        assert row[stage] == sum(m["non_public_metrics"][f"{stage}_count"] for m in videos), stage
    funnel = [row[stage] for stage in PLAYBACK]
    assert funnel == sorted(funnel, reverse=True) and funnel[0] > funnel[-1]


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_follower_growth_is_the_accounts_lines_day_by_day(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    lines = sorted(exports.records("accounts", user_id), key=lambda line: line["snapshot_at"])
    followers = [line["public_metrics"]["followers_count"] for line in lines]
    # Given: one line a UTC day, over four days, and followers that moved
    assert len({line["snapshot_at"][:10] for line in lines}) == len(lines) >= 4
    assert len(set(followers)) > 1
    # When
    rows = run(con, "follower_growth", user_id=user_id)
    # Then
    assert [r["snapshot_at"] for r in rows] == [line["snapshot_at"] for line in lines]
    assert [r["followers"] for r in rows] == followers
    assert [r["followers_change"] for r in rows] == [None] + [
        b - a for a, b in zip(followers, followers[1:], strict=False)
    ]
    assert [r["username"] for r in rows] == [exports.usernames[user_id]] * len(lines)


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_run_history_lists_the_accounts_runs_newest_first(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    lines = sorted(exports.records("runs", user_id), key=lambda line: line["snapshot_at"], reverse=True)
    assert len(lines) == sum(r["user_id"] == user_id for r in exports.runs) > 4
    rows = run(con, "run_history", user_id=user_id)
    assert [
        (r["snapshot_at"], r["status"], r["tweets"], r["tiers"], r["posts_read"], r["posts_billed"])
        for r in rows
    ] == [
        (
            line["snapshot_at"],
            line["status"],
            line["tweets"],
            line["tiers"],
            line["reads"]["posts"],
            line["billed"]["posts"],
        )
        for line in lines
    ]
    assert [r["cost_usd"] for r in rows] == pytest.approx([line["cost_usd"] for line in lines])
