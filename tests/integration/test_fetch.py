"""Refresh-and-fetch through the fetch handler: exports, rotation, needs_reconnect, fan-out."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from functions.fetch import app as fetch_app
from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox, post_type
from tests.integration.helpers import (
    USER_ID,
    account_item,
    export_keys,
    make_refresh_due,
    served_pages,
    spend_refresh_token,
    stored_tokens,
)
from xmetrics.timeutil import parse_utc
from xmetrics.x_api import EXPANSIONS, MEDIA_FIELDS, TWEET_FIELDS


def _recent_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def test_export_matches_what_x_served_line_by_line(stack: LocalStack) -> None:
    # Given: a connected account
    flows.connect(stack)
    snapshot = _recent_hour()
    # When: the scheduled run works inline (no queue)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()
    result = stack.invoke("FetchFunction", flows.schedule_event(snapshot))
    # Then: one exported account, at the documented key
    (summary,) = result["results"]
    assert summary["status"] == "exported"
    key = summary["key"]
    assert key == f"x-metrics/tweets/dt={snapshot:%Y-%m-%d}/user_id={USER_ID}/{snapshot:%Y%m%dT%H%M%SZ}.jsonl"
    lines = flows.read_export(stack, key)
    # and every line is what X served for the same window, media joined
    start = snapshot - timedelta(days=30) + timedelta(hours=1)
    pages = served_pages(
        stack,
        {
            "max_results": "100",
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": snapshot.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tweet.fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "media.fields": MEDIA_FIELDS,
            "exclude": "retweets",
        },
    )
    served = [t for p in pages for t in p.get("data", [])]
    media = {m["media_key"]: m for p in pages for m in p.get("includes", {}).get("media", [])}
    assert len(lines) == len(served) == summary["tweets"] > 0
    for line, tweet in zip(lines, served, strict=True):
        assert line["schema_version"] == 3 and line["snapshot_at"] == snapshot.strftime("%Y-%m-%dT%H:%M:%SZ")
        # a first run reads every tier in one window; each line names the tier of its post's age
        age = snapshot - datetime.fromisoformat(tweet["created_at"].replace("Z", "+00:00"))
        tier = "0-48h" if age < timedelta(hours=48) else "48h-7d" if age < timedelta(days=7) else "7d-30d"
        assert line["read_tier"] == tier
        assert line["user_id"] == USER_ID and line["username"] == "ada_metrics"
        assert line["tweet_id"] == tweet["id"] and line["text"] == tweet["text"]
        assert line["created_at"] == tweet["created_at"]
        # the post's type and what it references, as X served them (reposts were excluded)
        assert line["post_type"] == post_type(tweet) != "repost"
        assert line["referenced_tweets"] == tweet.get("referenced_tweets", [])
        assert line["conversation_id"] == tweet["conversation_id"]
        assert line["in_reply_to_user_id"] == tweet.get("in_reply_to_user_id")
        for family in ("public_metrics", "non_public_metrics", "organic_metrics"):
            assert line.get(family) == tweet.get(family)
        keys = tweet.get("attachments", {}).get("media_keys", [])
        assert [m["media_key"] for m in line["media"]] == keys
        for item in line["media"]:
            assert item == {k: v for k, v in media[item["media_key"]].items() if k != "url"}
        assert line["errors"] == []
    # and the account remembers its last export
    last = account_item(stack)["last_export"]["M"]
    assert last["key"]["S"] == key and last["count"]["N"] == str(len(lines))
    # and at least one video carries its quartiles
    assert any(
        m.get("non_public_metrics", {}).get("playback_25_count") is not None
        for line in lines
        for m in line["media"]
    )


def test_manual_invoke_returns_a_summary(stack: LocalStack, sandbox: XSandbox) -> None:
    flows.connect(stack)
    summary = stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))
    assert summary["status"] == "exported" and summary["refreshed"] is False
    assert summary["tweets"] == len(flows.read_export(stack, summary["key"]))
    # the connect's, and the day's account snapshot: posts are never read through users/me
    assert sandbox.requests_to("me") == 2 and summary["account"] == "exported"


def test_refresh_when_due_writes_rotated_tokens_with_version_plus_one(
    stack: LocalStack, sandbox: XSandbox
) -> None:
    # Given: a connected account whose access token expires within the margin
    flows.connect(stack)
    before = stored_tokens(stack)
    make_refresh_due(stack)
    # When
    summary = stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))
    # Then: refreshed once, the export succeeded
    assert summary["status"] == "exported" and summary["refreshed"] is True
    assert sandbox.refresh_count == 1
    # and the stored tokens are X's new ones, under version 2, with no lease left behind
    after = stored_tokens(stack)
    item = account_item(stack)
    assert item["version"]["N"] == "2"
    assert "lease_owner" not in item and "lease_until" not in item
    assert after.refresh_token != before.refresh_token
    assert after.refresh_token == sandbox.live_refresh_token("ada_metrics", stack.client_id)


def test_spent_refresh_token_marks_needs_reconnect_and_stops_calling_x(
    stack: LocalStack, sandbox: XSandbox
) -> None:
    # Given: the stored refresh token was spent elsewhere, and a refresh is due
    flows.connect(stack)
    spend_refresh_token(stack, stored_tokens(stack).refresh_token)
    make_refresh_due(stack)
    # When
    first = stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))
    # Then: the account is flagged, not crashed
    assert first["status"] == "needs_reconnect"
    item = account_item(stack)
    assert item["status"]["S"] == "needs_reconnect" and "reconnect" in item["last_error"]["S"]
    # and the next run makes no call to X for it
    calls = len(sandbox.request_log)
    second = stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))
    assert second["status"] == "needs_reconnect"
    assert len(sandbox.request_log) == calls


def test_reconnect_after_needs_reconnect_makes_the_account_active(stack: LocalStack) -> None:
    flows.connect(stack)
    spend_refresh_token(stack, stored_tokens(stack).refresh_token)
    make_refresh_due(stack)
    assert stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))["status"] == "needs_reconnect"
    flows.connect(stack)
    assert account_item(stack)["status"]["S"] == "active"
    assert stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))["status"] == "exported"


def test_three_pages_of_tweets_make_one_object_with_all_tweets(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: an account with 250 recent posts, over 200 of them its own (3 pages of 100; reposts are
    # excluded by default)
    user = sandbox.add_user("prolific", user_id="1700000000000000002", tweet_count=250, days=20)
    own = {t["id"] for t in user.tweets if post_type(t) != "repost"}
    assert 200 < len(own) < 250
    sandbox.login_as("prolific")
    flows.connect(stack)
    # When
    summary = stack.invoke("FetchFunction", {"user_id": "1700000000000000002"})
    # Then
    assert summary["status"] == "exported" and summary["pages"] == 3 and summary["tweets"] == len(own)
    lines = flows.read_export(stack, summary["key"])
    assert {line["tweet_id"] for line in lines} == own and len(lines) == len(own)
    assert [k for k in export_keys(stack) if "1700000000000000002" in k] == [summary["key"]]


def test_rerun_of_the_same_scheduled_time_overwrites(stack: LocalStack) -> None:
    flows.connect(stack)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()
    event = flows.schedule_event(_recent_hour())
    first = stack.invoke("FetchFunction", event)
    second = stack.invoke("FetchFunction", event)
    assert first["results"][0]["key"] == second["results"][0]["key"]
    assert export_keys(stack) == [first["results"][0]["key"]]
    versions = stack.client("s3").list_object_versions(Bucket=stack.resources.bucket_name)["Versions"]
    by_dataset = Counter(v["Key"].split("/")[1] for v in versions)
    # the bucket keeps what the rerun replaced; the run's line was rewritten with it, and the
    # day's account snapshot was taken once
    assert by_dataset == {"tweets": 2, "runs": 2, "accounts": 1}


def test_scheduled_run_fans_out_to_the_queue_and_the_worker_exports(stack: LocalStack) -> None:
    # Given: two connected accounts
    flows.connect(stack)
    assert stack.x is not None
    stack.x.add_user("second", user_id="1700000000000000003", tweet_count=5)
    stack.x.login_as("second")
    flows.connect(stack)
    snapshot = _recent_hour()
    # When: the schedule fires with the queue configured
    dispatched = stack.invoke("FetchFunction", flows.schedule_event(snapshot))
    # Then: one message per account
    assert dispatched == {
        "snapshot_at": snapshot.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": "dispatched",
        "accounts": 2,
        "queued": 2,
    }
    sqs = stack.client("sqs")
    received = sqs.receive_message(
        QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    bodies = sorted(json.loads(m["Body"])["user_id"] for m in received)
    assert bodies == [USER_ID, "1700000000000000003"]
    # When: the worker gets them as an SQS event
    event = flows.sqs_event(received)
    answer = stack.invoke("FetchFunction", event)
    # Then: no failures, both exported under the snapshot
    assert answer == {"batchItemFailures": []}
    assert len([k for k in export_keys(stack) if f"{snapshot:%Y%m%dT%H%M%SZ}" in k]) == 2


def test_unknown_account_is_a_status_not_an_exception(stack: LocalStack) -> None:
    summary = stack.invoke("FetchFunction", {"user_id": "42"})
    assert summary["status"] == "not_found"


def test_invalid_event_gets_a_validation_message(stack: LocalStack) -> None:
    answer = stack.invoke("FetchFunction", {"hello": "world"})
    assert answer["status"] == "invalid_event" and "unrecognised event" in answer["error"]


def test_disconnect_revokes_at_x_and_deletes_the_account(stack: LocalStack, sandbox: XSandbox) -> None:
    flows.connect(stack)
    answer = stack.invoke("FetchFunction", flows.load_event("disconnect.json"))
    assert answer == {"user_id": USER_ID, "status": "disconnected", "revoked": True}
    assert sandbox.live_refresh_token("ada_metrics", stack.client_id) is None
    assert stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Items"] == []


def test_sqs_event_file_exports_the_account_under_its_snapshot(stack: LocalStack) -> None:
    # Given: a connected account and events/sqs-fetch.json, as `sam local invoke -e` would send it
    flows.connect(stack)
    event = flows.load_event("sqs-fetch.json")
    snapshot = _recent_hour()
    body = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**body, "snapshot_at": f"{snapshot:%Y-%m-%dT%H:%M:%SZ}"})
    # When
    answer = stack.invoke("FetchFunction", event)
    # Then: no failed item, and the object is named by the message's snapshot
    assert answer == {"batchItemFailures": []}
    assert export_keys(stack) == [
        f"x-metrics/tweets/dt={snapshot:%Y-%m-%d}/user_id={USER_ID}/{snapshot:%Y%m%dT%H%M%SZ}.jsonl"
    ]


def test_backfill_event_exports_only_tweets_inside_its_window(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a connected account and a manual event with start_time/end_time
    flows.connect(stack)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    start = end - timedelta(days=5)
    event = {**flows.load_event("fetch-backfill.json"), "start_time": f"{start:%Y-%m-%dT%H:%M:%SZ}"}
    event["end_time"] = f"{end:%Y-%m-%dT%H:%M:%SZ}"
    # When
    summary = stack.invoke("FetchFunction", event)
    # Then: exactly the tweets X holds in that window
    expected = [
        t["id"] for t in sandbox.user("ada_metrics").tweets if start <= parse_utc(t["created_at"]) < end
    ]
    assert summary["status"] == "exported" and summary["tweets"] == len(expected) > 0
    rows = flows.read_export(stack, summary["key"])
    assert sorted(r["tweet_id"] for r in rows) == sorted(expected)


def test_a_backfill_in_the_same_second_as_a_full_run_never_replaces_its_snapshot(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a full run and a backfill started in the same second
    flows.connect(stack)
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr(fetch_app, "time", SimpleNamespace(time=now.timestamp))
    full = stack.invoke("FetchFunction", {"user_id": USER_ID})
    start, end = now - timedelta(days=3), now - timedelta(days=1)
    backfill = stack.invoke(
        "FetchFunction",
        {
            "user_id": USER_ID,
            "start_time": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "end_time": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        },
    )
    # Then: two objects; the full snapshot keeps every line, and was written once
    assert full["status"] == backfill["status"] == "exported"
    assert full["key"] != backfill["key"] and ".backfill-" in backfill["key"]
    assert len(flows.read_export(stack, full["key"])) == full["tweets"] > backfill["tweets"]
    versions = stack.client("s3").list_object_versions(Bucket=stack.resources.bucket_name, Prefix=full["key"])
    assert [v["Key"] for v in versions.get("Versions", [])] == [full["key"]]


def test_rotated_client_secret_is_picked_up_without_losing_the_token(
    stack: LocalStack, sandbox: XSandbox
) -> None:
    # Given: a connected account whose token is due, and a warm FetchFunction
    flows.connect(stack)
    assert stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))["status"] == "exported"
    make_refresh_due(stack)
    # When: the team regenerates the secret at X, but has not updated Secrets Manager yet
    sandbox.register_client(stack.client_id, "new-secret", [])
    refused = stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))
    # Then: that run fails without spending the refresh token
    assert refused["status"] == "failed"
    assert stored_tokens(stack).refresh_token == sandbox.live_refresh_token("ada_metrics", stack.client_id)
    # When: the new secret is stored; the same warm function runs again
    stack.client("secretsmanager").put_secret_value(
        SecretId=stack.resources.secret_arn,
        SecretString=json.dumps({"client_id": stack.client_id, "client_secret": "new-secret"}),
    )
    summary = stack.invoke("FetchFunction", flows.load_event("fetch-one.json"))
    # Then: it reads the new secret, refreshes and exports
    assert summary["status"] == "exported" and summary["refreshed"] is True
