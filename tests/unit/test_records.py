import pytest

from xmetrics import records


def _TIER(tweet: dict[str, object]) -> str:
    return "0-48h"


def _page(tweets: list[dict], media: list[dict] | None = None, errors: list[dict] | None = None) -> dict:
    page: dict = {"data": tweets, "meta": {"result_count": len(tweets)}}
    if media:
        page["includes"] = {"media": media}
    if errors:
        page["errors"] = errors
    return page


VIDEO = {
    "media_key": "7_1",
    "type": "video",
    "duration_ms": 12000,
    "public_metrics": {"view_count": 50},
    "non_public_metrics": {
        "playback_0_count": 40,
        "playback_25_count": 30,
        "playback_50_count": 20,
        "playback_75_count": 10,
        "playback_100_count": 5,
    },
    "organic_metrics": {
        "view_count": 45,
        "playback_0_count": 40,
        "playback_25_count": 30,
        "playback_50_count": 20,
        "playback_75_count": 10,
        "playback_100_count": 5,
    },
}


def test_media_metrics_are_joined_onto_their_tweet() -> None:
    # Given: a tweet with a video, the video's metrics in includes.media
    tweet = {
        "id": "1",
        "text": "hi",
        "created_at": "2026-11-20T10:00:00.000Z",
        "attachments": {"media_keys": ["7_1"]},
        "public_metrics": {"like_count": 3},
    }
    # When
    batch = records.build(
        [_page([tweet], [VIDEO])],
        user_id="9",
        username="ann",
        snapshot_at="2026-11-28T16:00:00Z",
        read_tier=lambda t: "48h-7d" if t["created_at"] < "2026-11-26T16" else "0-48h",
    )
    # Then: one record, schema fields present, the video joined with its quartiles
    (record,) = batch.records
    assert record["schema_version"] == 3 and record["tweet_id"] == "1" and record["username"] == "ann"
    assert record["read_tier"] == "48h-7d"
    assert record["media"] == [VIDEO]
    assert record["errors"] == []


def test_fields_x_did_not_send_stay_absent() -> None:
    batch = records.build(
        [_page([{"id": "1", "text": "t"}])], user_id="9", username="a", snapshot_at="s", read_tier=_TIER
    )
    (record,) = batch.records
    assert (
        "non_public_metrics" not in record
        and "organic_metrics" not in record
        and "public_metrics" not in record
    )
    assert record["media"] == [] and record["errors"] == []


def test_repost_count_is_written_as_retweet_count() -> None:
    tweet = {
        "id": "1",
        "text": "t",
        "public_metrics": {"repost_count": 4, "like_count": 1},
        "organic_metrics": {"repost_count": 2},
    }
    (record,) = records.build(
        [_page([tweet])], user_id="9", username="a", snapshot_at="s", read_tier=_TIER
    ).records
    assert record["public_metrics"] == {"retweet_count": 4, "like_count": 1}
    assert record["organic_metrics"] == {"retweet_count": 2}


def test_error_naming_a_tweet_goes_on_that_tweet_and_others_on_the_run() -> None:
    # Given: one error about tweet 2, one about a user
    errors = [
        {
            "resource_type": "tweet",
            "resource_id": "2",
            "value": "2",
            "field": "non_public_metrics",
            "title": "Field Authorization Error",
            "detail": "not authorized",
        },
        {"resource_type": "user", "resource_id": "77", "title": "Not Found Error", "detail": "gone"},
    ]
    page = _page([{"id": "1", "text": "a"}, {"id": "2", "text": "b"}], errors=errors)
    # When
    batch = records.build([page], user_id="9", username="a", snapshot_at="s", read_tier=_TIER)
    # Then
    first, second = batch.records
    assert first["errors"] == []
    assert second["errors"][0]["field"] == "non_public_metrics"
    assert [e["resource_id"] for e in batch.run_errors] == ["77"]


def test_a_tweet_repeated_across_pages_is_written_once() -> None:
    pages = [_page([{"id": "2", "text": "b"}, {"id": "1", "text": "a"}]), _page([{"id": "1", "text": "a"}])]
    batch = records.build(pages, user_id="9", username="a", snapshot_at="s", read_tier=_TIER)
    assert [r["tweet_id"] for r in batch.records] == ["2", "1"]


def test_jsonl_is_one_object_per_line() -> None:
    lines = list(records.to_jsonl([{"a": 1}, {"b": "ü"}]))
    assert lines == [b'{"a":1}\n', '{"b":"ü"}\n'.encode()]


@pytest.mark.parametrize(
    ("references", "expected"),
    [
        ([], "post"),
        ([{"type": "replied_to", "id": "9"}], "reply"),
        ([{"type": "quoted", "id": "9"}], "quote"),
        ([{"type": "retweeted", "id": "9"}], "repost"),
        ([{"type": "replied_to", "id": "8"}, {"type": "quoted", "id": "9"}], "reply"),
    ],
)
def test_each_line_says_what_kind_of_post_it_is(references: list[dict[str, str]], expected: str) -> None:
    tweet = {"id": "1", "text": "t", "conversation_id": "1"}
    if references:
        tweet["referenced_tweets"] = references  # type: ignore[assignment]
    (record,) = records.build(
        [_page([tweet])], user_id="9", username="a", snapshot_at="s", read_tier=_TIER
    ).records
    assert record["post_type"] == expected and record["referenced_tweets"] == references
    assert record["conversation_id"] == "1" and record["in_reply_to_user_id"] is None


def test_x_s_newer_spelling_of_the_references_is_read_too() -> None:
    tweet = {"id": "1", "text": "t", "referenced_posts": [{"type": "quoted", "id": "9"}]}
    (record,) = records.build(
        [_page([tweet])], user_id="9", username="a", snapshot_at="s", read_tier=_TIER
    ).records
    assert record["post_type"] == "quote" and record["referenced_tweets"] == [{"type": "quoted", "id": "9"}]
