"""The schema check itself: a line the writer makes passes, and each kind of drift between the
writer and template.yaml's Glue columns is caught (tests/integration/test_glue_schema.py runs it
on real exports)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from local.queries import Array, Primitive, Struct, parse_type, tables
from tests.glue_schema import problems
from xmetrics import records

SNAPSHOT = "2026-11-28T16:00:00Z"
PAGE: dict[str, Any] = {
    "data": [
        {
            "id": "1861000000000000002",
            "text": "replying, with a video",
            "created_at": "2026-11-28T15:00:00.000Z",
            "conversation_id": "1861000000000000001",
            "in_reply_to_user_id": "42",
            "referenced_tweets": [{"type": "replied_to", "id": "1861000000000000001"}],
            "attachments": {"media_keys": ["7_1"]},
            "public_metrics": {
                "retweet_count": 1,
                "reply_count": 2,
                "like_count": 3,
                "quote_count": 0,
                "bookmark_count": 1,
                "impression_count": 250,
            },
            "non_public_metrics": {
                "impression_count": 250,
                "url_link_clicks": 0,
                "user_profile_clicks": 4,
                "engagements": 11,
            },
            "organic_metrics": {
                "impression_count": 200,
                "like_count": 3,
                "reply_count": 2,
                "retweet_count": 1,
                "url_link_clicks": 0,
                "user_profile_clicks": 4,
            },
        }
    ],
    "includes": {
        "media": [
            {
                "media_key": "7_1",
                "type": "video",
                "duration_ms": 12_000,
                "public_metrics": {"view_count": 90},
                "non_public_metrics": {f"playback_{q}_count": 80 - q // 2 for q in (0, 25, 50, 75, 100)},
                "organic_metrics": {
                    "view_count": 70,
                    **{f"playback_{q}_count": 60 - q // 2 for q in (0, 25, 50, 75, 100)},
                },
            }
        ]
    },
    "errors": [
        {
            "title": "Authorization Error",
            "detail": "Sorry, you are not authorized to see the field",
            "type": "https://api.x.com/2/problems/not-authorized-for-field",
            "field": "organic_metrics",
            "parameter": "tweet.fields",
            "resource_type": "tweet",
            "resource_id": "1861000000000000002",
            "value": "1861000000000000002",
        }
    ],
}


@pytest.fixture(scope="module")
def tweets_table() -> Any:
    return tables()["tweets"]


@pytest.fixture
def line() -> dict[str, Any]:
    """A line as the writer makes it, from an X page with every family, a video and an error."""
    (record,) = records.build(
        [PAGE], user_id="17", username="ada", snapshot_at=SNAPSHOT, read_tier=lambda _: "0-48h"
    ).records
    assert record["errors"] and record["media"] and record["referenced_tweets"]
    return copy.deepcopy(record)


def test_glue_types_parse_into_nested_trees() -> None:
    assert parse_type("array<struct<type:string,id:string>>") == Array(
        Struct((("type", Primitive("string")), ("id", Primitive("string"))))
    )
    with pytest.raises(ValueError, match="unknown type"):
        parse_type("struct<a:varchar>")
    with pytest.raises(ValueError, match="expected '>'"):
        parse_type("array<string")


def test_a_line_the_writer_makes_fits_the_table(line: dict[str, Any], tweets_table: Any) -> None:
    assert problems(line, tweets_table) == []


def test_an_account_line_fits_its_table() -> None:
    me = {
        "id": "17",
        "username": "ada",
        "name": "Ada",
        "public_metrics": {
            "followers_count": 10,
            "following_count": 2,
            "post_count": 30,
            "listed_count": 1,
            "like_count": 5,
            "media_count": 3,
        },
    }
    assert problems(records.account(me, snapshot_at=SNAPSHOT), tables()["accounts"]) == []


def _set(line: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set the field at `path` (keys and list indexes) of `line`, adding it if it is not there."""
    target: Any = line
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(("impressions",), "tweets.impressions", id="top-level"),
        pytest.param(
            ("public_metrics", "repost_count"), "tweets.public_metrics.repost_count", id="in a struct"
        ),
        pytest.param(
            ("media", 0, "non_public_metrics", "playback_10_count"),
            "tweets.media[0].non_public_metrics.playback_10_count",
            id="in an array of structs",
        ),
        pytest.param(("errors", 0, "section"), "tweets.errors[0].section", id="in an error"),
    ],
)
def test_a_field_the_table_does_not_declare_is_caught(
    line: dict[str, Any], tweets_table: Any, path: tuple[str | int, ...], expected: str
) -> None:
    _set(line, path, 1)
    assert problems(line, tweets_table) == [f"{expected}: not declared"]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        pytest.param(("tweet_id",), 186, "tweets.tweet_id: 186 does not fit string", id="id as a number"),
        pytest.param(
            ("public_metrics", "like_count"),
            "3",
            "tweets.public_metrics.like_count: '3' does not fit bigint",
            id="count as a string",
        ),
        pytest.param(
            ("public_metrics", "like_count"),
            True,
            "tweets.public_metrics.like_count: True does not fit bigint",
            id="count as a bool",
        ),
        pytest.param(
            ("public_metrics", "like_count"),
            2.5,
            "tweets.public_metrics.like_count: 2.5 does not fit bigint",
            id="count as a float",
        ),
        pytest.param(
            ("schema_version",), 2**31, f"tweets.schema_version: {2**31} does not fit int", id="overflow"
        ),
        pytest.param(
            ("media",), {}, "tweets.media: dict where an array is declared", id="array as an object"
        ),
        pytest.param(
            ("organic_metrics",),
            [],
            "tweets.organic_metrics: list where a struct is declared",
            id="struct as a list",
        ),
        pytest.param(
            ("referenced_tweets", 0, "id"),
            186,
            "tweets.referenced_tweets[0].id: 186 does not fit string",
            id="nested id as a number",
        ),
        pytest.param(
            ("user_id",), 17, "tweets.user_id: 17 does not fit string", id="partition key as a number"
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_caught(
    line: dict[str, Any], tweets_table: Any, path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    _set(line, path, value)
    assert problems(line, tweets_table) == [expected]


def test_null_fits_every_declared_type(line: dict[str, Any], tweets_table: Any) -> None:
    # X sends no conversation_id for some posts, and the writer keeps the key with null.
    line.update(conversation_id=None, public_metrics=None, media=[None])
    assert problems(line, tweets_table) == []
