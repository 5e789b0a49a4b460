"""users/:id/tweets must answer like X (reach, paging, the 30-day rule), or export tests prove nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local.x_sandbox import XSandbox, post_type
from tests.sandbox.helpers import (
    CONFIDENTIAL,
    GRACE,
    MEDIA_FIELDS,
    PLAYBACK,
    REDIRECT,
    SECRET,
    TWEET_FIELDS,
    FakeClock,
    access,
    all_pages,
    tweets,
)

PRIVATE = ("non_public_metrics", "organic_metrics")


def _reposts(x: XSandbox, username: str) -> set[str]:
    return {t["id"] for t in x.user(username).tweets if post_type(t) == "repost"}


def test_own_recent_posts_carry_private_metrics_and_only_reposts_get_errors(x: XSandbox) -> None:
    # Given: ada's timeline, reposts of other accounts' posts among her own
    reposts = _reposts(x, "ada_metrics")
    # When
    body = tweets(x, access(x), max_results=100, **{"tweet.fields": TWEET_FIELDS}).json()
    # Then: her own posts carry private metrics; each repost's private fields are refused
    own = [p for p in body["data"] if p["id"] not in reposts]
    assert len(body["data"]) == 25 and reposts and own
    errors = {(e["resource_id"], e["field"]) for e in body["errors"]}
    assert errors == {(r, f) for r in reposts for f in PRIVATE}
    for post in own:
        public, private, organic = post["public_metrics"], post["non_public_metrics"], post["organic_metrics"]
        assert set(public) == {
            "retweet_count",
            "reply_count",
            "like_count",
            "quote_count",
            "bookmark_count",
            "impression_count",
        }
        assert private["impression_count"] >= private["engagements"] >= public["like_count"]
        assert organic["impression_count"] <= public["impression_count"]


def test_posts_older_than_30_days_lose_private_metrics_with_an_error_each(
    x: XSandbox, clock: FakeClock
) -> None:
    # Given: grace's own token; some of her posts are older than 30 days
    token = access(x, "grace")
    cutoff = datetime.fromtimestamp(clock(), UTC) - timedelta(days=30)
    reposts = _reposts(x, "grace")
    # When
    body = tweets(x, token, GRACE, **{"tweet.fields": TWEET_FIELDS}).json()
    # Then: no private metrics on the old ones (nor on reposts, never the account's own)
    old = [p for p in body["data"] if datetime.fromisoformat(p["created_at"]) < cutoff]
    recent = [p for p in body["data"] if p not in old and p["id"] not in reposts]
    assert old and recent
    assert all(
        "non_public_metrics" not in p and "organic_metrics" not in p and "public_metrics" in p for p in old
    )
    assert all("non_public_metrics" in p and "organic_metrics" in p for p in recent)
    refused = {p["id"] for p in body["data"] if p in old or p["id"] in reposts}
    errors = {(e["resource_id"], e["field"]) for e in body["errors"]}
    assert errors == {(post_id, f) for post_id in refused for f in PRIVATE}
    first = body["errors"][0]
    assert first["type"] == "https://api.twitter.com/2/problems/not-authorized-for-field"
    assert first["title"] == "Field Authorization Error" and first["resource_type"] == "tweet"
    assert first["detail"] == (
        f"Sorry, you are not authorized to access '{first['field']}' on the Tweet with ids {first['value']}."
    )


def test_another_users_posts_come_with_public_metrics_only(x: XSandbox) -> None:
    # When: ada reads grace's timeline
    body = tweets(x, access(x), GRACE, **{"tweet.fields": TWEET_FIELDS}).json()
    # Then
    assert all(set(p) >= {"public_metrics"} and "organic_metrics" not in p for p in body["data"])
    assert len(body["errors"]) == 2 * len(body["data"])


def test_pagination_returns_every_post_once_newest_first(x: XSandbox) -> None:
    # When: 25 posts read 10 at a time
    pages = all_pages(x, access(x), max_results=10)
    # Then: three pages, in order, no duplicates, the last without next_token
    ids = [p["id"] for page in pages for p in page["data"]]
    assert [page["meta"]["result_count"] for page in pages] == [10, 10, 5]
    assert "next_token" not in pages[-1]["meta"]
    assert ids == [t["id"] for t in x.user("ada_metrics").tweets]
    assert ids == sorted(ids, key=int, reverse=True) and len(set(ids)) == 25
    assert pages[0]["meta"]["newest_id"] == ids[0] and pages[-1]["meta"]["oldest_id"] == ids[-1]


def test_default_page_has_ten_posts_and_the_default_fields(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x)).json()
    # Then
    assert len(body["data"]) == 10
    assert set(body["data"][0]) == {"id", "text", "edit_history_tweet_ids"}


def test_the_timeline_reaches_only_the_latest_3200_posts(clock: FakeClock) -> None:
    # Given: a user with 3,300 posts
    with XSandbox(clock=clock) as sandbox:
        user = sandbox.add_user("prolific", tweet_count=3300, days=20, video_ratio=0, photo_ratio=0)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        # When
        pages = all_pages(sandbox, access(sandbox, "prolific"), user.user_id, max_results=100)
    # Then
    assert sum(page["meta"]["result_count"] for page in pages) == 3200


@pytest.mark.parametrize("value", ["4", "101", "ten"])
def test_max_results_out_of_range_is_refused(x: XSandbox, value: str) -> None:
    # When
    answer = tweets(x, access(x), max_results=value)
    # Then: X's invalid-request problem naming the parameter
    body = answer.json()
    assert answer.status_code == 400
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["errors"][0]["parameters"] == {"max_results": [value]}


@pytest.mark.parametrize(
    "params",
    [
        {"colour": "blue"},
        {"tweet.fields": "public_metrics,favourite_count"},
        {"media.fields": "view_count"},
        {"expansions": "everything"},
        {"pagination_token": "not-a-token"},
        {"start_time": "yesterday"},
        {"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"},
    ],
)
def test_invalid_query_parameters_are_refused(x: XSandbox, params: dict[str, str]) -> None:
    # When
    answer = tweets(x, access(x), **params)
    # Then
    assert answer.status_code == 400 and answer.json()["title"] == "Invalid Request"


def test_time_window_includes_start_and_excludes_end(x: XSandbox) -> None:
    # Given: the created_at of the 3rd and 8th newest posts
    posts = x.user("ada_metrics").tweets
    start, end = posts[7]["created_at"], posts[2]["created_at"]
    # When
    body = tweets(x, access(x), start_time=start, end_time=end).json()
    # Then
    assert [p["id"] for p in body["data"]] == [p["id"] for p in posts[3:8]]


def test_empty_window_has_result_count_zero_and_no_data(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x), start_time="2020-01-01T00:00:00Z", end_time="2020-01-02T00:00:00Z").json()
    # Then
    assert body == {"meta": {"result_count": 0}}


def test_unknown_user_gives_a_not_found_error(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x), "42").json()
    # Then
    assert "data" not in body and body["errors"][0]["title"] == "Not Found Error"


def test_media_expansion_includes_video_metrics(x: XSandbox) -> None:
    # When
    params = {
        "tweet.fields": TWEET_FIELDS,
        "expansions": "attachments.media_keys",
        "media.fields": MEDIA_FIELDS,
    }
    body = tweets(x, access(x), max_results=100, **params).json()
    # Then: every attached key is in includes.media; videos carry plausible metrics
    keys = [k for p in body["data"] for k in p.get("attachments", {}).get("media_keys", [])]
    media = {m["media_key"]: m for m in body["includes"]["media"]}
    assert keys and set(keys) == set(media)
    videos = [m for m in media.values() if m["type"] == "video"]
    assert videos and {m["type"] for m in media.values()} <= {"video", "photo", "animated_gif"}
    for video in videos:
        quartiles = [video["non_public_metrics"][name] for name in PLAYBACK]
        assert quartiles == sorted(quartiles, reverse=True) and video["duration_ms"] > 0
        assert video["organic_metrics"]["view_count"] <= video["public_metrics"]["view_count"]


def test_other_users_video_metrics_are_refused_per_media(x: XSandbox) -> None:
    # When: ada asks for grace's media metrics
    params = {"expansions": "attachments.media_keys", "media.fields": MEDIA_FIELDS}
    body = tweets(x, access(x), GRACE, max_results=100, **params).json()
    # Then
    videos = [m for m in body["includes"]["media"] if m["type"] == "video"]
    assert videos and all("non_public_metrics" not in v and "public_metrics" in v for v in videos)
    media_errors = [e for e in body["errors"] if e["resource_type"] == "media"]
    assert {e["resource_id"] for e in media_errors} == {v["media_key"] for v in videos}


def test_repost_spelling_serves_repost_count(x: XSandbox) -> None:
    # Given
    x.metrics_spelling = "repost"
    # When: asked with v2.167's parameter name
    body = tweets(x, access(x), **{"post.fields": "public_metrics,organic_metrics"}).json()
    # Then
    post = body["data"][0]
    assert "repost_count" in post["public_metrics"] and "retweet_count" not in post["public_metrics"]
    assert "repost_count" in post["organic_metrics"]


def test_users_are_deterministic_and_ids_grow_with_time(clock: FakeClock) -> None:
    # Given: two sandboxes with the same seed and clock
    with XSandbox(clock=clock) as one, XSandbox(clock=clock) as two:
        # When
        first, second = one.add_user("ada_metrics"), two.add_user("ada_metrics")
    # Then
    assert first.user_id == second.user_id and first.tweets == second.tweets and first.media == second.media
    ids = [int(t["id"]) for t in first.tweets]
    times = [t["created_at"] for t in first.tweets]
    assert ids == sorted(ids, reverse=True) and times == sorted(times, reverse=True)
