"""Each named query of template.yaml, run on DuckDB over real exports (local/queries.py), gives the
numbers the export's own lines give when worked out in Python. A few cases the simulated days never
make (an outage, public_history lines, X leaving out quartiles) are export lines made by the writer
itself (xmetrics.records) from X-shaped posts, in the bucket's layout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from local.queries import connect, database_name, export_prefix, named_queries, run, tables
from tests.glue_schema import problems
from tests.integration.conftest import VIDEO_USER_ID, Exports
from tests.integration.helpers import USER_ID
from xmetrics import records

ACCOUNTS = (USER_ID, VIDEO_USER_ID)
PLAYBACK = tuple(f"playback_{q}" for q in (0, 25, 50, 75, 100))
# A post first seen later than this after it was posted was not watched from birth (daily_impressions).
BORN_WATCHED_WITHIN = timedelta(hours=48)
# top_posts_7d ranks only posts with at least this many impressions.
TOP_POSTS_MIN_IMPRESSIONS = 100


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


def _own(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The account's own posts: a repost's counts are another account's (no post_type: a post)."""
    return [line for line in lines if (line.get("post_type") or "post") != "repost"]


def _engagements(line: dict[str, Any]) -> int | None:
    return (line.get("non_public_metrics") or {}).get("engagements")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)


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
    every = _tweets(exports, user_id, 31)
    lines = _own(every)
    newest = _newest(lines)
    # Given: posts seen more than once, with counts that moved between snapshots; the account with
    # reposts has lines of reposts too
    assert (len(lines) < len(every)) == (user_id == USER_ID)
    moved = {
        line["tweet_id"]
        for line in lines
        if line["public_metrics"]["impression_count"]
        != newest[line["tweet_id"]]["public_metrics"]["impression_count"]
    }
    assert moved
    # When
    rows = run(con, "latest_metrics_per_post", user_id=user_id)
    # Then: one row per own post, the newest snapshot's counts, newest post first
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
    assert all(r["post_type"] != "repost" for r in rows)


def _daily_gains(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each own post gained per UTC day, the query's rule worked out in Python."""
    lines = _own(lines)
    watched_from = min(line["snapshot_at"] for line in lines)
    first_seen: dict[str, str] = {}
    by_post: dict[str, dict[str, dict[str, Any]]] = {}
    for line in lines:
        first_seen[line["tweet_id"]] = min(
            first_seen.get(line["tweet_id"], line["snapshot_at"]), line["snapshot_at"]
        )
        days = by_post.setdefault(line["tweet_id"], {})
        day = line["snapshot_at"][:10]
        if day not in days or line["snapshot_at"] > days[day]["snapshot_at"]:
            days[day] = line
    out: dict[str, dict[str, Any]] = {}
    for tweet_id, days in by_post.items():
        before: dict[str, Any] | None = None
        for day in sorted(days):
            line = days[day]
            totals = out.setdefault(day, {"posts_seen": 0, "impressions": [], "engagements": []})
            totals["posts_seen"] += 1
            now = (line["public_metrics"]["impression_count"], _engagements(line))
            if before is None:
                # Watched from birth: born after the window's first snapshot, first seen within 48 h.
                born = (
                    line["created_at"][:19] >= watched_from[:19]
                    and _time(first_seen[tweet_id]) <= _time(line["created_at"]) + BORN_WATCHED_WITHIN
                )
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
    # Given: several days, and posts born while watched (counted whole on their first day); the
    # account with reposts has lines of reposts too (counts of other accounts' posts)
    watched_from = min(line["snapshot_at"] for line in lines)
    assert len(expected) >= 4 and any(line["created_at"] > watched_from for line in lines)
    assert any(line["post_type"] == "repost" for line in lines) == (user_id == USER_ID)
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

    def impressions(line: dict[str, Any]) -> int:
        return int(line["non_public_metrics"]["impression_count"])

    rated = [
        (engagements / impressions(line), line)
        for line in newest.values()
        if (engagements := _engagements(line)) is not None and impressions(line) >= TOP_POSTS_MIN_IMPRESSIONS
    ]
    rated.sort(key=lambda r: (-r[0], -impressions(r[1]), r[1]["tweet_id"]))
    # Given: more rated posts than the top 10 hold; the account with reposts has posts without a rate
    assert len(rated) > 10
    assert any(line["post_type"] == "repost" for line in newest.values()) == (user_id == USER_ID)
    # When
    rows = run(con, "top_posts_7d", user_id=user_id)
    # Then
    assert [r["tweet_id"] for r in rows] == [line["tweet_id"] for _, line in rated[:10]]
    assert [r["engagement_rate"] for r in rows] == pytest.approx([rate for rate, _ in rated[:10]])
    assert all(r["created_at"] >= since and r["impressions"] >= TOP_POSTS_MIN_IMPRESSIONS for r in rows)


@pytest.mark.parametrize("user_id", ACCOUNTS)
def test_the_retention_funnel_sums_the_videos_quartiles(
    exports: Exports, con: duckdb.DuckDBPyConnection, user_id: str
) -> None:
    since = _since(31)
    private = [
        line
        for line in _tweets(exports, user_id, 31)
        if line["created_at"] >= since and line.get("read_tier") != "public_history"
    ]
    videos = [
        media
        for line in _newest(private).values()
        for media in line["media"]
        if media["type"] == "video"
        and all((media.get("non_public_metrics") or {}).get(f"{q}_count") is not None for q in PLAYBACK)
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


# --- cases the simulated days never make: lines made by the writer, in the bucket's layout -------

SYNTHETIC_USER_ID = "42"


def _midnight() -> datetime:
    """Today's UTC midnight: the queries' windows count days back from DuckDB's current_date (UTC)."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _post(
    tweet_id: str,
    created: datetime,
    *,
    public: dict[str, int] | None = None,
    private: dict[str, int] | None = None,
    references: str | None = None,
    media_keys: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A post as X's timeline serves it (only the fields these cases need)."""
    post: dict[str, Any] = {
        "id": tweet_id,
        "text": f"post {tweet_id}",
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    if references:
        post["referenced_tweets"] = [{"type": references, "id": "1800000000000000000"}]
    if public is not None:
        post["public_metrics"] = public
    if private is not None:
        post["non_public_metrics"] = private
    if media_keys:
        post["attachments"] = {"media_keys": list(media_keys)}
    return post


def _video(key: str, views: int, playback: tuple[int, ...] | None) -> dict[str, Any]:
    """A video as X's includes.media serves it: playback counts 0-100 in order, as many as given."""
    item: dict[str, Any] = {"media_key": key, "type": "video", "public_metrics": {"view_count": views}}
    if playback is not None:
        item["non_public_metrics"] = {f"{q}_count": n for q, n in zip(PLAYBACK, playback, strict=False)}
    return item


def _export(
    root: Path,
    at: datetime,
    posts: list[dict[str, Any]],
    *,
    media: tuple[dict[str, Any], ...] = (),
    read_tier: str = "0-48h",
    schema_2: bool = False,
) -> None:
    """One run's tweets object, written by the writer (`schema_2`: as before post_type existed)."""
    batch = records.build(
        [{"data": posts, "includes": {"media": list(media)}}],
        user_id=SYNTHETIC_USER_ID,
        username="synthetic",
        snapshot_at=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        read_tier=lambda _post: read_tier,
    )
    lines = batch.records
    if schema_2:
        for line in lines:
            line["schema_version"] = 2
            for key in ("post_type", "referenced_tweets", "in_reply_to_user_id", "conversation_id"):
                del line[key]
    assert [problems(line, tables()["tweets"]) for line in lines] == [[] for _ in lines]
    folder = root / export_prefix() / "tweets" / f"dt={at:%Y-%m-%d}" / f"user_id={SYNTHETIC_USER_ID}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{at:%Y%m%dT%H%M%SZ}.jsonl").write_bytes(b"".join(records.to_jsonl(lines)))


def _run_on(root: Path, name: str) -> list[dict[str, Any]]:
    connection = connect(root)
    try:
        return run(connection, name, user_id=SYNTHETIC_USER_ID)
    finally:
        connection.close()


def test_reposts_count_neither_in_the_latest_metrics_nor_in_the_daily_impressions(tmp_path: Path) -> None:
    # Given: an own post, a repost of another account's post seen by a million, and a post of a
    # line older than post_type (schema 2), read on two days
    first = _midnight() - timedelta(days=2) + timedelta(hours=6)
    for at, grown in ((first, 0), (first + timedelta(days=1), 1)):
        posts = [
            _post(
                "1",
                first - timedelta(hours=3),
                public={"impression_count": 100 + 50 * grown},
                private={"impression_count": 100 + 50 * grown, "engagements": 5 + 3 * grown},
            ),
            _post(
                "2",
                first - timedelta(hours=2),
                public={"impression_count": 1_000_000 + 500_000 * grown},
                references="retweeted",
            ),
        ]
        _export(tmp_path, at, posts)
        old = _post(
            "3",
            first - timedelta(days=4),
            public={"impression_count": 40 + 30 * grown},
            private={"impression_count": 40 + 30 * grown, "engagements": 2 + grown},
        )
        _export(tmp_path, at - timedelta(hours=1), [old], schema_2=True)
    # When
    latest = _run_on(tmp_path, "latest_metrics_per_post")
    daily = _run_on(tmp_path, "daily_impressions")
    # Then: only the account's own posts, the old line taken as a post
    assert [(r["tweet_id"], r["post_type"], r["impressions"]) for r in latest] == [
        ("1", "post", 150),
        ("3", None, 70),
    ]
    assert daily == [
        {"dt": f"{first:%Y-%m-%d}", "posts_seen": 2, "impressions": None, "engagements": None},
        {"dt": f"{first + timedelta(days=1):%Y-%m-%d}", "posts_seen": 2, "impressions": 80, "engagements": 4},
    ]


def test_a_post_first_seen_days_after_it_was_posted_starts_as_a_baseline(tmp_path: Path) -> None:
    # Given: a day watched, then an outage (or needs_reconnect) of a week. After it, a post born
    # during the outage is first seen 6 days old, with 9,000 lifetime impressions; one born 20 hours
    # before the first run after it was still watched from birth (the 0-48h tier reads it)
    start = _midnight() - timedelta(days=10)
    back = start + timedelta(days=8)

    def counts(impressions: int, engagements: int) -> dict[str, Any]:
        return {
            "public": {"impression_count": impressions},
            "private": {"impression_count": impressions, "engagements": engagements},
        }

    _export(tmp_path, start, [_post("1", start - timedelta(hours=5), **counts(100, 3))])
    _export(
        tmp_path,
        back,
        [
            _post("1", start - timedelta(hours=5), **counts(160, 5)),
            _post("2", start + timedelta(days=2), **counts(9_000, 400)),
            _post("3", back - timedelta(hours=20), **counts(300, 12)),
        ],
    )
    _export(
        tmp_path,
        back + timedelta(days=1),
        [
            _post("1", start - timedelta(hours=5), **counts(170, 5)),
            _post("2", start + timedelta(days=2), **counts(9_100, 410)),
            _post("3", back - timedelta(hours=20), **counts(350, 14)),
        ],
    )
    # When
    rows = _run_on(tmp_path, "daily_impressions")
    # Then: post 2's first day is its baseline; post 3 counts whole; post 1 brings the outage's gain
    assert rows == [
        {"dt": f"{start:%Y-%m-%d}", "posts_seen": 1, "impressions": None, "engagements": None},
        {"dt": f"{back:%Y-%m-%d}", "posts_seen": 3, "impressions": 60 + 300, "engagements": 2 + 12},
        {
            "dt": f"{back + timedelta(days=1):%Y-%m-%d}",
            "posts_seen": 3,
            "impressions": 10 + 100 + 50,
            "engagements": 0 + 10 + 2,
        },
    ]


def test_the_retention_funnel_sums_one_set_of_videos(tmp_path: Path) -> None:
    today = _midnight()
    yesterday = today - timedelta(days=1)
    full = (100, 80, 60, 40, 20)
    # Given: a video of two days ago with its five quartiles; one of 200 days ago read by the
    # public_history tier (no private counts); one X answered without the 75 and 100 % quartiles;
    # one posted 35 days ago, last read with private counts 10 days ago; and one just past 30 days,
    # read yesterday by public_history and three days ago with its quartiles
    _export(
        tmp_path,
        today - timedelta(days=10),
        [_post("4", today - timedelta(days=35), media_keys=("7_4",))],
        media=(_video("7_4", 400, (50, 40, 30, 20, 10)),),
        read_tier="7d-30d",
    )
    _export(
        tmp_path,
        today - timedelta(days=3),
        [_post("5", today - timedelta(days=30, hours=3), media_keys=("7_5",))],
        media=(_video("7_5", 700, (70, 60, 50, 40, 30)),),
        read_tier="7d-30d",
    )
    _export(
        tmp_path,
        yesterday,
        [
            _post("1", today - timedelta(days=2), media_keys=("7_1",)),
            _post("3", today - timedelta(days=3), media_keys=("7_3",)),
        ],
        media=(_video("7_1", 1_000, full), _video("7_3", 300, (50, 10, 5))),
        read_tier="48h-7d",
    )
    _export(
        tmp_path,
        yesterday + timedelta(hours=1),
        [
            _post("2", today - timedelta(days=200), media_keys=("7_2",)),
            _post("5", today - timedelta(days=30, hours=3), media_keys=("7_5",)),
        ],
        media=(_video("7_2", 500, None), _video("7_5", 750, None)),
        read_tier="public_history",
    )
    # When
    (row,) = _run_on(tmp_path, "video_retention_funnel")
    # Then: videos 1 and 5 (its newest snapshot with private counts), every column over those two
    assert row == {
        "videos": 2,
        "views": 1_000 + 700,
        **{stage: a + b for stage, a, b in zip(PLAYBACK, full, (70, 60, 50, 40, 30), strict=True)},
    }


def test_top_posts_rank_private_engagements_over_private_impressions_from_100(tmp_path: Path) -> None:
    # Given: a post seen once and engaged once; public impressions that lag the private ones; posts
    # at 99 and at 100 impressions; a repost (another account's counts, no private ones)
    created = _midnight() - timedelta(days=2)

    def counts(public: int, private: int, engagements: int) -> dict[str, Any]:
        return {
            "public": {"impression_count": public},
            "private": {"impression_count": private, "engagements": engagements},
        }

    _export(
        tmp_path,
        created + timedelta(hours=20),
        [
            _post("1", created, **counts(1, 1, 1)),
            _post("2", created, **counts(200, 400, 40)),
            _post("3", created, **counts(300, 300, 45)),
            _post("4", created, **counts(99, 99, 30)),
            _post("5", created, **counts(100, 100, 5)),
            _post("6", created, public={"impression_count": 5_000}, references="retweeted"),
        ],
    )
    # When
    rows = _run_on(tmp_path, "top_posts_7d")
    # Then
    assert [(r["tweet_id"], r["impressions"], r["engagements"]) for r in rows] == [
        ("3", 300, 45),
        ("2", 400, 40),
        ("5", 100, 5),
    ]
    assert [r["engagement_rate"] for r in rows] == pytest.approx([0.15, 0.10, 0.05])
