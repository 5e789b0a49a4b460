"""Replies, quotes and reposts, `exclude` and X's reach, users/me's profile, and counts that grow.

The defaults serve them as X does (a timeline of every type, counts that grow with age); the old
values passed explicitly (type ratios 0, `metrics_grow` off) must still serve exactly what the
sandbox served before they existed, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from local.x_sandbox import POST_TYPES, XSandbox, post_type
from tests.sandbox.helpers import (
    ADA,
    CONFIDENTIAL,
    MEDIA_FIELDS,
    PLAYBACK,
    REDIRECT,
    SECRET,
    FakeClock,
    access,
    all_pages,
    bearer,
    me,
    tweets,
)

TYPED = "1700000000000000009"
TYPE_FIELDS = "referenced_tweets,in_reply_to_user_id,conversation_id,author_id,created_at"
PRIVATE = "non_public_metrics,organic_metrics"
ALL_FIELDS = f"{TYPE_FIELDS},public_metrics,{PRIVATE},attachments"
PROFILE_FIELDS = "public_metrics,created_at,description,verified,profile_image_url"
FIXED_CLOCK = 1_780_000_000.0  # 2026-05-28T20:26:40Z: the snapshot below was taken at this clock
POSTS_ONLY = {"reply_ratio": 0.0, "quote_ratio": 0.0, "repost_ratio": 0.0}


@pytest.fixture
def typed(x: XSandbox) -> XSandbox:
    """The conftest sandbox plus an account whose timeline holds all four kinds of post."""
    x.add_user(
        "mixed_types",
        user_id=TYPED,
        tweet_count=60,
        days=25,
        reply_ratio=0.3,
        quote_ratio=0.15,
        repost_ratio=0.25,
    )
    return x


def _served(x: XSandbox, token: str, user_id: str = TYPED, **params: Any) -> list[dict[str, Any]]:
    return [
        p for page in all_pages(x, token, user_id, max_results=100, **params) for p in page.get("data", [])
    ]


def _new_sandbox(clock: FakeClock, **knobs: Any) -> XSandbox:
    sandbox = XSandbox(clock=clock)
    for name, value in knobs.items():
        setattr(sandbox, name, value)
    sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
    return sandbox


# ---------------------------------------------------------------- the old values give what they gave


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def test_posts_only_generation_is_byte_identical_to_before_post_types() -> None:
    """Digests taken from the generator before replies, quotes and reposts existed (same seed, clock)."""
    # Given: type ratios of 0, the defaults before types existed
    sandbox = XSandbox(clock=lambda: FIXED_CLOCK)
    users = {
        "ada_metrics": sandbox.add_user("ada_metrics", user_id=ADA, **POSTS_ONLY),
        "grace": sandbox.add_user(
            "grace", user_id="1700000000000000002", tweet_count=12, days=40, **POSTS_ONLY
        ),
        "mixed": sandbox.add_user(
            "mixed", tweet_count=60, days=10, photo_ratio=0.3, gif_ratio=0.2, **POSTS_ONLY
        ),
    }
    # When
    digests = {
        name: _digest({"id": user.user_id, "tweets": user.tweets, "media": user.media})
        for name, user in users.items()
    }
    # Then
    assert digests == {
        "ada_metrics": "1734ff157dc6dd30ec506faf8fe983d007d4f203bd362234dc2f2d72829559fa",
        "grace": "cdc09e1bc44def912f220a83c19e05ed7438ad012e4e5a0bacd686ca6f2a78d9",
        "mixed": "4cb2066b1715a7a2e5fcdd1a1356f12a3c292a5f6c28d63effe9b7a4e43ffb60",
    }
    assert all(not user.referenced for user in users.values())


def test_posts_only_answers_with_final_counts_are_byte_identical_to_before_post_types() -> None:
    """The bodies served before (timelines asking for the new fields too, and users/me without fields)."""
    # Given: type ratios of 0 and counts that do not grow, the defaults before either existed
    with XSandbox(clock=lambda: FIXED_CLOCK) as sandbox:
        sandbox.metrics_grow = False
        sandbox.add_user("ada_metrics", user_id=ADA, **POSTS_ONLY)
        sandbox.add_user("grace", user_id="1700000000000000002", tweet_count=12, days=40, **POSTS_ONLY)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        token = access(sandbox)
        params = {
            "tweet.fields": ALL_FIELDS,
            "media.fields": MEDIA_FIELDS,
            "expansions": "attachments.media_keys,author_id",
            "max_results": "100",
        }
        # When
        bodies = [tweets(sandbox, token, user_id, **params).text for user_id in (ADA, "1700000000000000002")]
        bodies.append(me(sandbox, token).text)
    # Then
    assert (
        bodies[-1]
        == '{"data": {"id": "1700000000000000001", "name": "Ada Metrics", "username": "ada_metrics"}}'
    )
    assert hashlib.sha256("\n".join(bodies).encode()).hexdigest() == (
        "93c2def51ce8180342478b33bcffa58e108a230bc6d72bfac1e8188866a01ac9"
    )


def test_plain_posts_are_the_same_whatever_the_type_ratios(clock: FakeClock) -> None:
    # Given: the same account generated without and with replies, quotes and reposts
    plain = XSandbox(clock=clock).add_user("ada_metrics", tweet_count=80, photo_ratio=0.3, **POSTS_ONLY)
    typed = XSandbox(clock=clock).add_user(
        "ada_metrics", tweet_count=80, photo_ratio=0.3, reply_ratio=0.3, quote_ratio=0.2, repost_ratio=0.2
    )
    # When
    before = {t["id"]: t for t in plain.tweets}
    posts = [t for t in typed.tweets if post_type(t) == "post"]
    # Then: every plain post is unchanged, and every post keeps its id and time
    assert posts and all(before[t["id"]] == t for t in posts)
    assert [(t["id"], t["created_at"]) for t in typed.tweets] == [
        (t["id"], t["created_at"]) for t in plain.tweets
    ]
    assert {k: v for k, v in plain.media.items() if k in typed.media} == typed.media


def test_a_default_timeline_holds_every_type_in_the_default_shares(clock: FakeClock) -> None:
    # Given: a big timeline with the default type ratios
    user = XSandbox(clock=clock).add_user("ada_metrics", tweet_count=4000, days=30)
    # When
    kinds = Counter(post_type(t) for t in user.tweets)
    # Then: about 15% replies, 5% quotes, 10% reposts (the draws' spread is about 0.6%)
    shares = {kind: kinds[kind] / 4000 for kind in POST_TYPES}
    assert shares == pytest.approx({"post": 0.70, "reply": 0.15, "quote": 0.05, "repost": 0.10}, abs=0.025)
    referenced = {t["referenced_tweets"][0]["id"] for t in user.tweets if post_type(t) in ("quote", "repost")}
    assert referenced <= set(user.referenced)


def test_typed_timelines_are_deterministic_from_the_seed(clock: FakeClock) -> None:
    # Given
    knobs = {"tweet_count": 50, "reply_ratio": 0.3, "quote_ratio": 0.2, "repost_ratio": 0.2}
    one, two = (
        XSandbox(clock=clock).add_user("mixed", **knobs),
        XSandbox(clock=clock).add_user("mixed", **knobs),
    )
    other_seed = XSandbox(clock=clock, seed=8).add_user("mixed", **knobs)
    # Then
    assert (one.tweets, one.media, one.referenced, one.profile) == (
        two.tweets,
        two.media,
        two.referenced,
        two.profile,
    )
    assert [post_type(t) for t in one.tweets] != [post_type(t) for t in other_seed.tweets]


@pytest.mark.parametrize(
    "ratios",
    [
        {"reply_ratio": -0.1},
        {"repost_ratio": 1.5},
        {"reply_ratio": 0.5, "quote_ratio": 0.3, "repost_ratio": 0.3},
    ],
)
def test_type_ratios_out_of_range_are_refused(x: XSandbox, ratios: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="ratios"):
        x.add_user("bad_ratios", **ratios)


# ---------------------------------------------------------------- each type, as X serves it


def test_the_timeline_holds_all_four_types(typed: XSandbox) -> None:
    # When
    kinds = Counter(post_type(t) for t in typed.user("mixed_types").tweets)
    # Then
    assert set(kinds) == {"post", "reply", "quote", "repost"} and sum(kinds.values()) == 60


def test_plain_posts_have_their_own_conversation_and_no_references(typed: XSandbox) -> None:
    # When
    served = _served(typed, access(typed, "mixed_types"), **{"tweet.fields": ALL_FIELDS})
    # Then
    posts = [p for p in served if post_type(p) == "post"]
    assert posts
    for post in posts:
        assert post["conversation_id"] == post["id"] and post["author_id"] == TYPED
        assert "referenced_tweets" not in post and "in_reply_to_user_id" not in post
        assert {"non_public_metrics", "organic_metrics"} <= set(post)


def test_replies_name_their_parent_author_and_thread(typed: XSandbox) -> None:
    # Given
    user = typed.user("mixed_types")
    own = {t["id"]: t for t in user.tweets}
    # When
    body = tweets(
        typed, access(typed, "mixed_types"), TYPED, max_results=100, **{"tweet.fields": ALL_FIELDS}
    ).json()
    # Then: own posts, with private metrics and no error about them
    replies = [p for p in body["data"] if post_type(p) == "reply"]
    assert replies and not {e["resource_id"] for e in body["errors"]} & {r["id"] for r in replies}
    threads = others = 0
    for reply in replies:
        (parent,) = [ref["id"] for ref in reply["referenced_tweets"] if ref["type"] == "replied_to"]
        assert {"non_public_metrics", "organic_metrics"} <= set(reply) and reply["author_id"] == TYPED
        if reply["in_reply_to_user_id"] == TYPED:  # a self-thread: the parent is an own, older post
            threads += 1
            assert parent in own and int(parent) < int(reply["id"]) and post_type(own[parent]) != "repost"
            assert reply["conversation_id"] == own[parent]["conversation_id"]
        else:  # a reply to another account's post, whose conversation it joins
            others += 1
            original = user.referenced[parent]
            assert reply["in_reply_to_user_id"] == original["author_id"] != TYPED
            assert reply["conversation_id"] == original["conversation_id"] and int(parent) < int(reply["id"])
            assert reply["text"].startswith(f"@{original['username']} ")
    assert threads and others


def test_quotes_are_own_posts_that_reference_the_quoted_one(typed: XSandbox) -> None:
    # When
    served = _served(typed, access(typed, "mixed_types"), **{"tweet.fields": ALL_FIELDS})
    # Then
    quotes = [p for p in served if post_type(p) == "quote"]
    assert quotes
    for quote in quotes:
        assert quote["referenced_tweets"] == [{"type": "quoted", "id": quote["referenced_tweets"][0]["id"]}]
        assert quote["referenced_tweets"][0]["id"] in typed.user("mixed_types").referenced
        assert quote["conversation_id"] == quote["id"] and "in_reply_to_user_id" not in quote
        assert {"non_public_metrics", "organic_metrics"} <= set(quote)


def test_reposts_carry_the_originals_text_and_counts_and_no_private_metrics(typed: XSandbox) -> None:
    # Given: final counts, to compare with the original's as generated (their growth is
    # test_a_reposts_counts_grow_with_the_originals_age's)
    typed.metrics_grow = False
    referenced = typed.user("mixed_types").referenced
    # When: the account's own token asks for private metrics, on recent posts only
    body = tweets(
        typed, access(typed, "mixed_types"), TYPED, max_results=100, **{"tweet.fields": ALL_FIELDS}
    ).json()
    # Then
    reposts = [p for p in body["data"] if post_type(p) == "repost"]
    assert reposts
    for repost in reposts:
        (ref,) = repost["referenced_tweets"]
        original = referenced[ref["id"]]
        assert ref["type"] == "retweeted" and repost["author_id"] == TYPED
        assert repost["text"] == f"RT @{original['username']}: {original['text']}"
        assert repost["public_metrics"] == original["public_metrics"]
        assert "non_public_metrics" not in repost and "organic_metrics" not in repost
        assert "attachments" not in repost
    # and one not-authorized-for-field error per repost and private field, naming the repost
    errors = {(e["resource_id"], e["field"]) for e in body["errors"]}
    assert errors == {(r["id"], f) for r in reposts for f in PRIVATE.split(",")}
    first = body["errors"][0]
    assert first["type"] == "https://api.twitter.com/2/problems/not-authorized-for-field"
    assert (
        first["section"] == "data"
        and first["resource_type"] == "tweet"
        and first["value"] == first["resource_id"]
    )


def test_reposts_read_with_public_fields_only_have_no_errors(typed: XSandbox) -> None:
    # When
    body = tweets(
        typed, access(typed, "mixed_types"), TYPED, max_results=100, **{"tweet.fields": TYPE_FIELDS}
    ).json()
    # Then
    assert "errors" not in body and any(post_type(p) == "repost" for p in body["data"])


def test_v2_167_spelling_serves_referenced_posts_and_repost_count(typed: XSandbox) -> None:
    # Given
    typed.metrics_spelling = "repost"
    # When
    body = tweets(
        typed,
        access(typed, "mixed_types"),
        TYPED,
        max_results=100,
        **{"tweet.fields": "referenced_tweets,public_metrics"},
    ).json()
    # Then
    typed_posts = [p for p in body["data"] if "referenced_posts" in p]
    assert typed_posts and all("referenced_tweets" not in p for p in body["data"])
    assert all("repost_count" in p["public_metrics"] for p in body["data"])


# ---------------------------------------------------------------- exclude and the reach


@pytest.mark.parametrize(
    ("exclude", "removed"),
    [("retweets", {"repost"}), ("replies", {"reply"}), ("retweets,replies", {"repost", "reply"})],
)
def test_exclude_removes_the_right_posts(typed: XSandbox, exclude: str, removed: set[str]) -> None:
    # Given
    timeline = typed.user("mixed_types").tweets
    # When
    served = _served(typed, access(typed, "mixed_types"), exclude=exclude)
    # Then: every other post, newest first, and nothing excluded
    assert [p["id"] for p in served] == [t["id"] for t in timeline if post_type(t) not in removed]


def test_without_exclude_every_type_is_served(typed: XSandbox) -> None:
    served = _served(typed, access(typed, "mixed_types"))
    assert [p["id"] for p in served] == [t["id"] for t in typed.user("mixed_types").tweets]


def test_self_thread_replies_can_survive_exclude_replies_as_reported(typed: XSandbox) -> None:
    # Given: the switch for the reported behaviour (tweepy#2069)
    typed.exclude_replies_keeps_self_replies = True
    # When
    served = _served(typed, access(typed, "mixed_types"), exclude="replies", **{"tweet.fields": TYPE_FIELDS})
    # Then: replies to the account's own posts stay, replies to others go
    replies = [p for p in served if post_type(p) == "reply"]
    assert replies and all(p["in_reply_to_user_id"] == TYPED for p in replies)


@pytest.fixture
def reach(clock: FakeClock) -> Iterator[tuple[XSandbox, str]]:
    """An account with 3,300 posts, a fifth of them reposts and a quarter replies."""
    with _new_sandbox(clock) as sandbox:
        user = sandbox.add_user(
            "prolific",
            tweet_count=3300,
            days=20,
            video_ratio=0,
            photo_ratio=0,
            reply_ratio=0.25,
            repost_ratio=0.2,
        )
        yield sandbox, user.user_id


def test_reach_is_the_newest_3200_posts_of_every_type(reach: tuple[XSandbox, str]) -> None:
    # Given
    sandbox, user_id = reach
    newest = sandbox.user("prolific").tweets[:3200]
    # When
    served = _served(sandbox, access(sandbox, "prolific"), user_id)
    # Then
    assert [p["id"] for p in served] == [t["id"] for t in newest]


def test_excluded_reposts_still_take_places_within_the_3200(reach: tuple[XSandbox, str]) -> None:
    # Given
    sandbox, user_id = reach
    newest = sandbox.user("prolific").tweets[:3200]
    # When
    served = _served(sandbox, access(sandbox, "prolific"), user_id, exclude="retweets")
    # Then: the non-reposts among the newest 3,200, so fewer than 3,200
    assert [p["id"] for p in served] == [t["id"] for t in newest if post_type(t) != "repost"]
    assert len(served) < 3200


def test_exclude_replies_reaches_the_newest_800_posts(reach: tuple[XSandbox, str]) -> None:
    # Given
    sandbox, user_id = reach
    newest = sandbox.user("prolific").tweets[:800]
    # When
    served = _served(sandbox, access(sandbox, "prolific"), user_id, exclude="replies")
    both = _served(sandbox, access(sandbox, "prolific"), user_id, exclude="retweets,replies")
    # Then
    assert [p["id"] for p in served] == [t["id"] for t in newest if post_type(t) != "reply"]
    assert [p["id"] for p in both] == [t["id"] for t in newest if post_type(t) not in ("reply", "repost")]
    assert len(served) < 800


def test_the_other_reading_counts_only_the_posts_that_survive(reach: tuple[XSandbox, str]) -> None:
    # Given: the reach counted after the exclusion
    sandbox, user_id = reach
    sandbox.reach_counts_excluded = False
    kept = [t for t in sandbox.user("prolific").tweets if post_type(t) != "reply"]
    # When
    served = _served(sandbox, access(sandbox, "prolific"), user_id, exclude="replies")
    # Then
    assert [p["id"] for p in served] == [t["id"] for t in kept[:800]]


def test_a_window_past_the_reach_answers_200_with_no_data(reach: tuple[XSandbox, str]) -> None:
    # Given: a window holding only posts older than the newest 800
    sandbox, user_id = reach
    timeline = sandbox.user("prolific").tweets
    start, end = timeline[1500]["created_at"], timeline[900]["created_at"]
    token = access(sandbox, "prolific")
    # When
    answer = tweets(sandbox, token, user_id, exclude="replies", start_time=start, end_time=end)
    # Then: no data and no next_token; without exclude=replies the same window has posts
    assert answer.status_code == 200 and answer.json() == {"meta": {"result_count": 0}}
    assert tweets(sandbox, token, user_id, start_time=start, end_time=end).json()["meta"]["result_count"] > 0


def test_the_reach_counts_from_the_newest_visible_post(clock: FakeClock) -> None:
    # Given: 1,000 posts, the newest 100 not yet posted at the clock
    with _new_sandbox(clock) as sandbox:
        user = sandbox.add_user(
            "later", tweet_count=1000, days=10, video_ratio=0, photo_ratio=0, reply_ratio=0.2
        )
        timeline = user.tweets
        clock.now = _epoch(timeline[99]["created_at"]) - 1
        # When
        served = _served(sandbox, access(sandbox, "later"), user.user_id, exclude="replies")
    # Then: the 800 start at the 101st post
    assert [p["id"] for p in served] == [t["id"] for t in timeline[100:900] if post_type(t) != "reply"]


def _epoch(created_at: str) -> float:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


def test_thinned_pages_count_excluded_posts_against_max_results(typed: XSandbox) -> None:
    # Given: X's description of max_results ("Retweets and replies are included in the count, even if
    # exclude=retweets,replies are supplied"), switched on
    typed.exclude_thins_pages = True
    timeline = typed.user("mixed_types").tweets
    # When
    pages = all_pages(typed, access(typed, "mixed_types"), TYPED, max_results=10, exclude="retweets,replies")
    # Then: ten slots a page, fewer posts in most, the same posts in all
    assert len(pages) == 6 and all(page["meta"]["result_count"] < 10 for page in pages)
    served = [p["id"] for page in pages for p in page.get("data", [])]
    assert served == [t["id"] for t in timeline if post_type(t) in ("post", "quote")]
    assert all("next_token" in page["meta"] for page in pages[:-1])


# ---------------------------------------------------------------- users/me


def test_me_without_user_fields_is_as_before(typed: XSandbox) -> None:
    assert me(typed, access(typed, "mixed_types")).json() == {
        "data": {"id": TYPED, "name": "Mixed Types", "username": "mixed_types"}
    }


def _me_fields(x: XSandbox, username: str = "mixed_types", fields: str = PROFILE_FIELDS) -> dict[str, Any]:
    url = f"{x.api_base_url}/2/users/me"
    answer = requests.get(url, params={"user.fields": fields}, headers=bearer(access(x, username)), timeout=5)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["data"])


def test_me_serves_public_metrics_and_profile_fields(typed: XSandbox) -> None:
    # Given
    user = typed.user("mixed_types")
    media = sum(len(t.get("attachments", {}).get("media_keys", [])) for t in user.tweets)
    # When
    data = _me_fields(typed)
    # Then
    assert set(data) == {"id", "name", "username", *PROFILE_FIELDS.split(",")}
    metrics = data["public_metrics"]
    assert set(metrics) == {
        "followers_count",
        "following_count",
        "tweet_count",
        "listed_count",
        "like_count",
        "media_count",
    }
    assert metrics["tweet_count"] == 60 and metrics["media_count"] == media
    assert all(isinstance(v, int) and v >= 0 for v in metrics.values())
    assert data["created_at"].endswith(".000Z") and data["created_at"] < "2022"
    assert data["profile_image_url"].startswith("https://pbs.twimg.com/profile_images/")
    assert isinstance(data["verified"], bool) and data["description"]


def test_me_answers_only_the_fields_asked(typed: XSandbox) -> None:
    data = _me_fields(typed, fields="created_at,location")
    assert set(data) == {"id", "name", "username", "created_at"}


def test_me_is_deterministic_per_user_and_seed(clock: FakeClock) -> None:
    # Given: two sandboxes alike, and one with another seed
    answers = []
    for seed in (7, 7, 8):
        with XSandbox(clock=clock, seed=seed) as sandbox:
            sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
            sandbox.add_user("ada_metrics", user_id=ADA)
            answers.append(_me_fields(sandbox, "ada_metrics"))
    # Then
    assert answers[0] == answers[1] != answers[2]


def test_followers_move_by_the_day_and_hold_within_the_hour(typed: XSandbox, clock: FakeClock) -> None:
    # Given
    counts = [_me_fields(typed)["public_metrics"]["followers_count"]]
    # When: half an hour later, then one day after another for a week
    clock.advance(1800)
    same_hour = _me_fields(typed)["public_metrics"]["followers_count"]
    for _ in range(7):
        clock.advance(86_400)
        counts.append(_me_fields(typed)["public_metrics"]["followers_count"])
    # Then: the same within the hour; a new count every day, net growth over the week
    assert same_hour == counts[0]
    assert all(a != b for a, b in zip(counts, counts[1:], strict=False))
    assert counts[-1] > counts[0]


def test_tweet_count_is_the_visible_posts(typed: XSandbox, clock: FakeClock) -> None:
    # Given: the clock set back before the ten newest posts
    timeline = typed.user("mixed_types").tweets
    clock.now = _epoch(timeline[9]["created_at"]) - 1
    # When
    metrics = _me_fields(typed)["public_metrics"]
    # Then
    assert metrics["tweet_count"] == 50


def test_v2_167_spelling_serves_post_count(typed: XSandbox) -> None:
    typed.metrics_spelling = "repost"
    metrics = _me_fields(typed, fields="public_metrics")["public_metrics"]
    assert "post_count" in metrics and "tweet_count" not in metrics


def test_author_expansion_carries_the_asked_user_fields(typed: XSandbox) -> None:
    # When
    params = {"expansions": "author_id", "user.fields": "public_metrics,verified"}
    body = tweets(typed, access(typed, "mixed_types"), TYPED, **params).json()
    plain = tweets(typed, access(typed, "mixed_types"), TYPED, expansions="author_id").json()
    # Then
    (author,) = body["includes"]["users"]
    assert set(author) == {"id", "name", "username", "public_metrics", "verified"}
    assert plain["includes"]["users"] == [{"id": TYPED, "name": "Mixed Types", "username": "mixed_types"}]


# ---------------------------------------------------------------- counts that grow with age


def _counts(x: XSandbox) -> dict[str, dict[str, Any]]:
    """Every post and media item of mixed_types as served now (a fresh token: the clock moves far)."""
    token = access(x, "mixed_types")
    params = {
        "tweet.fields": "public_metrics,non_public_metrics,organic_metrics,referenced_tweets",
        "expansions": "attachments.media_keys",
        "media.fields": MEDIA_FIELDS,
    }
    out: dict[str, dict[str, Any]] = {}
    for page in all_pages(x, token, TYPED, max_results=100, **params):
        for post in page["data"]:
            out[post["id"]] = post
        for item in page.get("includes", {}).get("media", []):
            out[item["media_key"]] = item
    return out


def _numbers(item: dict[str, Any]) -> dict[str, int]:
    return {
        f"{family}.{k}": v
        for family, values in item.items()
        if family.endswith("_metrics")
        for k, v in values.items()
    }


def _assert_invariants(served: dict[str, dict[str, Any]]) -> None:
    for item in served.values():
        public, private, organic = (
            item.get(f) for f in ("public_metrics", "non_public_metrics", "organic_metrics")
        )
        if "media_key" in item and item["type"] == "video" and private is not None:
            quartiles = [private[name] for name in PLAYBACK]
            assert quartiles == sorted(quartiles, reverse=True) and quartiles[0] <= public["view_count"]
            assert organic["view_count"] <= public["view_count"]
            assert all(organic[name] <= private[name] for name in PLAYBACK)
        elif private is not None:
            assert private["engagements"] < private["impression_count"] == public["impression_count"]
            assert private["engagements"] >= public["like_count"]
            assert all(organic[k] <= public.get(k, private.get(k, 0)) for k in organic)


def test_counts_grow_by_default_and_switched_off_are_the_final_ones(
    typed: XSandbox, clock: FakeClock
) -> None:
    # Given: the account's own posts of the last day
    user = typed.user("mixed_types")
    young = [
        t for t in user.tweets if _epoch(t["created_at"]) > clock() - 86_400 and post_type(t) != "repost"
    ]
    # When
    grown = _counts(typed)
    typed.metrics_grow = False
    final = _counts(typed)
    # Then: by default they show less than their final counts; switched off, every post the final ones
    assert young and all(grown[t["id"]]["public_metrics"] != t["public_metrics"] for t in young)
    assert all(final[t["id"]]["public_metrics"] == t["public_metrics"] for t in user.tweets)


def test_grown_counts_rise_with_age_and_keep_their_invariants(typed: XSandbox, clock: FakeClock) -> None:
    # Given
    user = typed.user("mixed_types")
    final = {t["id"]: _numbers(t) for t in user.tweets} | {k: _numbers(m) for k, m in user.media.items()}
    # When: read now, after hours, days, and 60 days on
    reads = []
    for step in (0, 3_600, 6 * 3_600, 2 * 86_400, 60 * 86_400):
        clock.advance(step)
        reads.append(_counts(typed))
        _assert_invariants(reads[-1])
    # Then: no count ever falls, and some rise; all stay at or below the final ones
    moved = 0
    for before, after in zip(reads, reads[1:], strict=False):
        for key in before:
            old, new = _numbers(before[key]), _numbers(after[key])
            assert all(new[name] >= old[name] for name in old if name in new), key
            moved += old != {name: new[name] for name in old if name in new}
    assert moved
    for key, item in reads[0].items():
        numbers = _numbers(item)
        assert all(numbers[name] <= final[key][name] for name in numbers)
    # and after 60 days the public counts are the final ones (private ones are past X's 30 days)
    assert all(reads[-1][t["id"]]["public_metrics"] == t["public_metrics"] for t in user.tweets)


def test_grown_counts_step_once_an_hour_from_when_the_user_was_added(
    typed: XSandbox, clock: FakeClock
) -> None:
    # Given: a minute after the account was added
    clock.now = typed.user("mixed_types").added_at + 60
    # When: read then, just before its first hour is up, and just after
    first = _counts(typed)
    clock.advance(3_480)
    second = _counts(typed)
    clock.advance(120)
    third = _counts(typed)
    # Then: the same within the hour, moved past it
    assert first == second != third


def test_grown_counts_hold_across_an_hour_of_the_wall_clock(clock: FakeClock) -> None:
    # Given: an account added ten seconds before a whole hour, as a test's fixture may be
    clock.now = (clock.now // 3600 + 1) * 3600 - 10
    with _new_sandbox(clock) as sandbox:
        sandbox.add_user("mixed_types", user_id=TYPED, tweet_count=60, days=25)
        # When: read just before the hour and just after it
        clock.advance(5)
        before = _counts(sandbox)
        clock.advance(10)
        after = _counts(sandbox)
        clock.advance(3_600)
        an_hour_on = _counts(sandbox)
    # Then: the export and a check a moment later see the same counts; they move an hour on
    assert before == after != an_hour_on


def test_a_reposts_counts_grow_with_the_originals_age(typed: XSandbox, clock: FakeClock) -> None:
    # Given
    user = typed.user("mixed_types")
    reposts = [t for t in user.tweets if post_type(t) == "repost"]
    # When: long after every original was posted
    clock.advance(60 * 86_400)
    served = _counts(typed)
    # Then
    assert all(served[r["id"]]["public_metrics"] == r["public_metrics"] for r in reposts)
