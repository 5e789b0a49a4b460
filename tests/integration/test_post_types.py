"""Posts as X serves them, through the fetch handler: every line says what kind of post it is, and
ExcludePostTypes decides whether reposts (and replies) are read at all."""

from __future__ import annotations

from typing import Any

import pytest

from functions.fetch import app as fetch_app
from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox, post_type
from tests.integration.helpers import served_pages
from xmetrics.x_api import EXPANSIONS, MEDIA_FIELDS, TWEET_FIELDS

MIXED = "1700000000000000077"
PRIVATE = ("non_public_metrics", "organic_metrics")


@pytest.fixture
def mixed(stack: LocalStack, sandbox: XSandbox) -> str:
    """A connected account whose timeline holds posts, replies, quotes and reposts."""
    sandbox.add_user(
        "mixed_types",
        user_id=MIXED,
        tweet_count=80,
        days=25,
        reply_ratio=0.3,
        quote_ratio=0.15,
        repost_ratio=0.25,
    )
    sandbox.login_as("mixed_types")
    assert flows.connect(stack)["statusCode"] == 200
    return MIXED


def _export(stack: LocalStack, exclude: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if exclude is not None:
        stack.environment["EXCLUDE_POST_TYPES"] = exclude
    stack.activate()
    fetch_app._use_cases.cache_clear()
    summary = stack.invoke("FetchFunction", {"user_id": MIXED})
    assert summary["status"] == "exported", summary
    return summary, flows.read_export(stack, summary["key"])


def _served(stack: LocalStack, sandbox: XSandbox, exclude: str) -> list[dict[str, Any]]:
    """What X serves the account itself for its 30 days, asked independently of the app."""
    params = {"max_results": "100", "tweet.fields": TWEET_FIELDS, "expansions": EXPANSIONS}
    params["media.fields"] = MEDIA_FIELDS
    if exclude:
        params["exclude"] = exclude
    pages = served_pages(stack, params, MIXED, "mixed_types")
    return [post for page in pages for post in page.get("data", [])]


def test_every_line_says_its_post_type_and_reposts_are_not_read_by_default(
    stack: LocalStack, sandbox: XSandbox, mixed: str
) -> None:
    # When: the default ExcludePostTypes (reposts)
    summary, lines = _export(stack, None)
    # Then: X was asked to leave reposts out, and none was exported
    served = {t["id"]: t for t in _served(stack, sandbox, "retweets")}
    assert {line["tweet_id"] for line in lines} == set(served)
    assert all(line["post_type"] != "repost" for line in lines)
    # and every line's type, references and conversation are what X served
    for line in lines:
        tweet = served[line["tweet_id"]]
        assert line["schema_version"] == 3
        assert line["post_type"] == post_type(tweet)
        assert line["referenced_tweets"] == tweet.get("referenced_tweets", [])
        assert line["in_reply_to_user_id"] == tweet.get("in_reply_to_user_id")
        assert line["conversation_id"] == tweet.get("conversation_id")
        assert line["errors"] == [] and all(family in line for family in PRIVATE)
    assert {line["post_type"] for line in lines} == {"post", "reply", "quote"}
    # and the account's reposts exist: leaving them out was X's exclude, not an empty timeline
    everything = sandbox.user("mixed_types").tweets
    assert any(post_type(t) == "repost" for t in everything)


def test_with_none_reposts_are_exported_with_their_partial_error_and_no_private_metrics(
    stack: LocalStack, sandbox: XSandbox, mixed: str
) -> None:
    summary, lines = _export(stack, "none")
    reposts = [line for line in lines if line["post_type"] == "repost"]
    assert reposts and {line["post_type"] for line in lines} == {"post", "reply", "quote", "repost"}
    for line in reposts:
        assert line["text"].startswith("RT @")
        assert [r["type"] for r in line["referenced_tweets"]] == ["retweeted"]
        assert not any(family in line for family in PRIVATE)
        assert {e.get("type", "").rsplit("/", 1)[-1] for e in line["errors"]} == {"not-authorized-for-field"}
    assert all(line["errors"] == [] for line in lines if line["post_type"] != "repost")


def test_excluding_replies_too_leaves_posts_and_quotes(
    stack: LocalStack, sandbox: XSandbox, mixed: str
) -> None:
    summary, lines = _export(stack, "reposts,replies")
    assert {line["post_type"] for line in lines} == {"post", "quote"}
    served = _served(stack, sandbox, "retweets,replies")
    assert {line["tweet_id"] for line in lines} == {t["id"] for t in served}
