"""Every line of real exports, made by the fetch handler against the X sandbox, fits the Glue table
template.yaml declares for it: the table and the writer cannot drift apart unnoticed."""

from __future__ import annotations

from local.queries import tables
from tests.glue_schema import problems
from tests.integration.conftest import Exports


def _partition(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("/") if "=" in part)


def test_every_tweet_line_fits_the_tweets_table(exports: Exports) -> None:
    lines = exports.lines("tweets")
    table = tables()["tweets"]
    # Given: exports that hold every shape a line takes
    assert {line["post_type"] for _, line in lines} == {"post", "reply", "quote", "repost"}
    assert any(m["type"] == "video" for _, line in lines for m in line["media"])
    assert any(m["type"] == "photo" for _, line in lines for m in line["media"])
    assert any(line["errors"] for _, line in lines) and any(line["referenced_tweets"] for _, line in lines)
    assert {line["read_tier"] for _, line in lines} >= {"0-48h", "48h-7d", "7d-30d"}
    # Then: every field is declared and every value fits its type
    assert [(key, p) for key, line in lines for p in problems(line, table)] == []
    # and the partition in the key is the line's own account and UTC day
    for key, line in lines:
        assert _partition(key) == {"dt": line["snapshot_at"][:10], "user_id": line["user_id"]}


def test_every_account_line_fits_the_accounts_table(exports: Exports) -> None:
    lines = exports.lines("accounts")
    table = tables()["accounts"]
    assert {line["user_id"] for _, line in lines} == set(exports.usernames)
    assert all("public_metrics" in line for _, line in lines)
    assert [(key, p) for key, line in lines for p in problems(line, table)] == []
    for key, line in lines:
        assert _partition(key) == {"dt": line["snapshot_at"][:10], "user_id": line["user_id"]}
