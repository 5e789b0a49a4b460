"""Faults from X and from AWS, each delivered through the queue worker the way Lambda would.

For every case: what was retried, what went back to SQS, and the proof that no token was lost and
that no export is partial or written twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox, post_type
from tests.integration.helpers import USER_ID, account_item, make_refresh_due, stored_tokens
from tests.reliability.conftest import FIGURES, Figures, aws_fault, budget, new_worker
from xmetrics import limits
from xmetrics.services.export_account import ExportAccount
from xmetrics.services.tokens import TokenKeeper
from xmetrics.services.window import make_job
from xmetrics.x_api import EXPANSIONS, MEDIA_FIELDS, TWEET_FIELDS, XApi

TWEETS = 250  # over 200 of them its own (reposts are excluded by default): three pages


@pytest.fixture
def many(stack: LocalStack, sandbox: XSandbox) -> Iterator[LocalStack]:
    """A connected account with three pages of posts."""
    sandbox.add_user("pager", user_id="1700000000000000077", tweet_count=TWEETS, days=25)
    sandbox.login_as("pager")
    flows.connect(stack)
    yield stack


PAGER = "1700000000000000077"


@dataclass
class Delivery:
    answer: dict[str, Any]
    message_id: str
    receipt_handle: str


def _hand_over(stack: LocalStack, message: dict[str, Any], timeout: float) -> Delivery:
    answer = stack.invoke("FetchFunction", flows.sqs_event([message]), timeout=timeout)
    if not answer["batchItemFailures"]:
        # Lambda deletes what the function did not report as failed.
        stack.client("sqs").delete_message(
            QueueUrl=stack.resources.queue_url, ReceiptHandle=message["ReceiptHandle"]
        )
    return Delivery(answer, message["MessageId"], message["ReceiptHandle"])


def deliver(stack: LocalStack, user_id: str, snapshot: datetime, *, timeout: float = 300.0) -> Delivery:
    """Send one job to the real queue, receive it and hand it to FetchFunction as Lambda's poller does."""
    sqs = stack.client("sqs")
    body = json.dumps({"user_id": user_id, "snapshot_at": f"{snapshot:%Y-%m-%dT%H:%M:%SZ}"})
    sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)
    (message,) = sqs.receive_message(
        QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
    )["Messages"]
    return _hand_over(stack, message, timeout)


def redeliver(stack: LocalStack, failed: Delivery) -> dict[str, Any]:
    """The failed message again, as SQS hands it back once its visibility timeout has run out
    (the timeout is cut to zero here instead of waiting the queue's 30 minutes)."""
    sqs = stack.client("sqs")
    sqs.change_message_visibility(
        QueueUrl=stack.resources.queue_url, ReceiptHandle=failed.receipt_handle, VisibilityTimeout=0
    )
    (message,) = sqs.receive_message(
        QueueUrl=stack.resources.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
    )["Messages"]
    assert message["MessageId"] == failed.message_id
    assert int(message["Attributes"]["ApproximateReceiveCount"]) == 2
    return _hand_over(stack, message, 300.0).answer


def _snapshot() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _key(user_id: str, snapshot: datetime) -> str:
    return f"x-metrics/tweets/dt={snapshot:%Y-%m-%d}/user_id={user_id}/{snapshot:%Y%m%dT%H%M%SZ}.jsonl"


def served_ids(sandbox: XSandbox, username: str, snapshot: datetime) -> list[str]:
    """The posts X serves the app in the snapshot's window: reposts are excluded by default."""
    job = make_job("-", snapshot)
    from xmetrics.timeutil import parse_utc

    return sorted(
        t["id"]
        for t in sandbox.user(username).tweets
        if job.start_time <= parse_utc(t["created_at"]) < job.end_time and post_type(t) != "repost"
    )


def versions(stack: LocalStack, key: str) -> int:
    listed = stack.client("s3").list_object_versions(Bucket=stack.resources.bucket_name, Prefix=key)
    return len([v for v in listed.get("Versions", []) if v["Key"] == key])


def assert_complete_once(
    stack: LocalStack, sandbox: XSandbox, username: str, user_id: str, at: datetime
) -> None:
    """The export exists, holds every post X has in the window, and was written exactly once."""
    key = _key(user_id, at)
    rows = flows.read_export(stack, key)
    complete = sorted(r["tweet_id"] for r in rows) == served_ids(sandbox, username, at)
    once = versions(stack, key) == 1
    FIGURES.exports_checked += 1
    FIGURES.partial_objects += not complete
    FIGURES.duplicates += not once
    assert complete, "partial or padded export"
    assert once, "export written more than once"
    assert account_item(stack, user_id)["last_export"]["M"]["key"]["S"] == key


def assert_nothing_written(stack: LocalStack, user_id: str, at: datetime, last_export_before: Any) -> None:
    written = versions(stack, _key(user_id, at))
    FIGURES.exports_checked += 1
    FIGURES.partial_objects += written > 0
    assert written == 0
    assert account_item(stack, user_id).get("last_export") == last_export_before


def assert_token_alive(stack: LocalStack, username: str, user_id: str) -> None:
    assert stack.x is not None
    alive = account_item(stack, user_id)["status"]["S"] == "active" and stored_tokens(
        stack, user_id
    ).refresh_token == stack.x.live_refresh_token(username, stack.client_id)
    FIGURES.tokens_checked += 1
    FIGURES.tokens_lost += not alive
    assert alive, "the stored refresh token is not the one X holds live"


# --- X API faults on GET /2/users/:id/tweets ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "count", "params"),
    [
        ("status", 3, {"status": 503}),
        ("status", 2, {"status": 500}),
        ("drop", 2, {}),
        ("truncate", 2, {}),
        ("rate_limit", 1, {"reset_in": 1}),
    ],
)
def test_transient_api_faults_are_retried_and_the_export_is_complete(
    many: LocalStack, sandbox: XSandbox, figures: Figures, kind: str, count: int, params: dict[str, Any]
) -> None:
    # Given: the timeline answers `count` times with the fault
    at = _snapshot()
    sandbox.inject("tweets", kind, count=count, **params)
    # When
    delivery = deliver(many, PAGER, at)
    # Then: retried within the run (or the 429 waited out), one complete object
    figures.injected(f"x tweets {kind} {params.get('status', '')}".rstrip(), count)
    assert delivery.answer == {"batchItemFailures": []}
    assert_complete_once(many, sandbox, "pager", PAGER, at)
    assert_token_alive(many, "pager", PAGER)
    figures.survived(f"x tweets {kind} {params.get('status', '')}".rstrip(), count)


def test_failure_on_a_later_page_writes_nothing_then_the_retry_is_complete(
    many: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: page 1 answers, page 2 keeps failing beyond the retries
    at = _snapshot()
    before = account_item(many, PAGER).get("last_export")
    second_page = _pagination_token(many, sandbox, at)
    sandbox.inject("tweets", "status", count=8, status=503, match={"pagination_token": second_page})
    # When: the worker runs
    failed = deliver(many, PAGER, at)
    # Then: the message goes back to SQS and nothing at all was written
    assert failed.answer == {"batchItemFailures": [{"itemIdentifier": failed.message_id}]}
    assert_nothing_written(many, PAGER, at, before)
    assert "503" in account_item(many, PAGER)["last_error"]["S"]
    figures.injected("x tweets 503 on page 2 beyond retries", 8)
    # When: SQS hands the message back and X has recovered
    sandbox.clear_faults()
    assert redeliver(many, failed) == {"batchItemFailures": []}
    # Then: one complete object
    assert_complete_once(many, sandbox, "pager", PAGER, at)
    figures.survived("x tweets 503 on page 2 beyond retries", 8)


def _pagination_token(stack: LocalStack, sandbox: XSandbox, at: datetime) -> str:
    job = make_job(PAGER, at)
    token = sandbox.issue_tokens("pager", stack.client_id, scopes="tweet.read users.read")["access_token"]
    import requests

    first = requests.get(
        f"{sandbox.api_base_url}/2/users/{PAGER}/tweets",
        params={
            "max_results": "100",
            "start_time": f"{job.start_time:%Y-%m-%dT%H:%M:%SZ}",
            "end_time": f"{job.end_time:%Y-%m-%dT%H:%M:%SZ}",
            "tweet.fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "media.fields": MEDIA_FIELDS,
            "exclude": "retweets",  # the app's default question, so the token is the one it will send
        },
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    return str(first["meta"]["next_token"])


def test_rate_limit_longer_than_the_lambda_has_goes_back_to_sqs(
    many: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: X answers 429 with a reset 15 minutes away; the Lambda has a minute
    at = _snapshot()
    before = account_item(many, PAGER).get("last_export")
    sandbox.inject("tweets", "rate_limit", count=1, reset_in=900)
    # When
    delivery = deliver(many, PAGER, at, timeout=60)
    # Then: reported as a batch item failure, hidden until the reset, nothing written
    assert delivery.answer == {"batchItemFailures": [{"itemIdentifier": delivery.message_id}]}
    sqs = many.client("sqs")
    assert "Messages" not in sqs.receive_message(QueueUrl=many.resources.queue_url, WaitTimeSeconds=0)
    attrs = sqs.get_queue_attributes(QueueUrl=many.resources.queue_url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert_nothing_written(many, PAGER, at, before)
    assert_token_alive(many, "pager", PAGER)
    figures.injected("x tweets 429, reset beyond the Lambda's time")
    figures.survived("x tweets 429, reset beyond the Lambda's time")


def test_redelivered_message_is_not_exported_twice(
    many: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: an export that landed, whose message SQS delivers again (at-least-once)
    at = _snapshot()
    assert deliver(many, PAGER, at).answer == {"batchItemFailures": []}
    calls = sandbox.requests_to("tweets")
    # When
    again = deliver(many, PAGER, at)
    # Then: acknowledged without asking X or writing S3 again
    assert again.answer == {"batchItemFailures": []}
    assert sandbox.requests_to("tweets") == calls
    assert_complete_once(many, sandbox, "pager", PAGER, at)
    figures.injected("sqs duplicate delivery")
    figures.survived("sqs duplicate delivery")


# --- token endpoint faults ------------------------------------------------------------------------


def _refresh_run(stack: LocalStack) -> tuple[str, dict[str, float]]:
    worker = new_worker(stack)
    summary = worker.service.run(make_job(USER_ID, _snapshot()), budget())
    return summary.status, worker.telemetry.metrics


@pytest.mark.parametrize(
    ("kind", "params"),
    [("drop", {}), ("status", {"status": 503}), ("status", {"status": 502})],
)
def test_token_endpoint_failures_before_x_rotates_keep_the_token(
    stack: LocalStack, sandbox: XSandbox, figures: Figures, kind: str, params: dict[str, Any]
) -> None:
    # Given: a due token and a token endpoint that fails once without rotating
    flows.connect(stack)
    make_refresh_due(stack)
    sandbox.inject("token", kind, count=1, **params)
    # When
    status, metrics = _refresh_run(stack)
    # Then: the one retry with the same token rotates it, and the rotation is stored
    label = f"x token {kind} {params.get('status', '')}".rstrip()
    figures.injected(label)
    assert status == "exported" and metrics.get("RefreshSucceeded") == 1
    assert_token_alive(stack, "ada_metrics", USER_ID)
    figures.survived(label)


def test_read_timeout_before_x_rotates_keeps_the_token(
    stack: LocalStack, sandbox: XSandbox, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: the token endpoint stalls longer than our read timeout, then processes the request
    flows.connect(stack)
    make_refresh_due(stack)
    monkeypatch.setattr(limits, "TOKEN_TIMEOUT", (3.05, 0.5))
    sandbox.inject("token", "delay", count=1, seconds=2.0)
    # When
    status, _ = _refresh_run(stack)
    # Then: our retry rotated first; the stalled original, processed late, is the one refused
    figures.injected("x token read timeout before rotating")
    assert status == "exported"
    assert_token_alive(stack, "ada_metrics", USER_ID)
    figures.survived("x token read timeout before rotating")


def test_without_the_retry_a_read_timeout_loses_the_token(
    stack: LocalStack, sandbox: XSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Safeguard check: with the one retry removed, the same stall spends the token for good."""
    flows.connect(stack)
    make_refresh_due(stack)
    monkeypatch.setattr(limits, "TOKEN_TIMEOUT", (3.05, 0.5))
    monkeypatch.setattr(limits, "ROTATION", replace(limits.ROTATION, resends=0))
    sandbox.inject("token", "delay", count=1, seconds=1.0)
    assert _refresh_run(stack)[0] == "failed"
    import time

    time.sleep(1.5)  # the stalled request is processed at X: the stored refresh token is now spent
    assert _refresh_run(stack)[0] == "needs_reconnect"


@pytest.mark.parametrize("kind", ["drop_after_processing", "truncate"])
def test_answer_lost_after_x_rotated_is_reported_at_once(
    stack: LocalStack, sandbox: XSandbox, figures: Figures, kind: str
) -> None:
    """X spent the token and its answer never arrived: no client can recover that token.

    What we owe the user is to say so in this run, not an hour later: one retry proves the token
    dead, the account is marked needs_reconnect, and RefreshFailed feeds the alarm.
    """
    flows.connect(stack)
    make_refresh_due(stack)
    sandbox.inject("token", kind, count=1)
    status, metrics = _refresh_run(stack)
    assert status == "needs_reconnect" and metrics.get("RefreshFailed") == 1
    assert account_item(stack)["status"]["S"] == "needs_reconnect"
    figures.unavoidable.append(f"x token {kind}: X rotated, answer lost -> needs_reconnect in the same run")


# --- AWS faults -----------------------------------------------------------------------------------


def test_s3_errors_within_the_sdk_retries_are_invisible(
    many: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    at = _snapshot()
    with aws_fault("s3", "PutObject", status=500, code="InternalError", count=2) as fault:
        delivery = deliver(many, PAGER, at)
    figures.injected("aws s3 PutObject 500", fault.fired)
    assert fault.fired == 2
    assert delivery.answer == {"batchItemFailures": []}
    assert_complete_once(many, sandbox, "pager", PAGER, at)
    figures.survived("aws s3 PutObject 500", fault.fired)


def test_failing_s3_put_goes_back_to_sqs_and_writes_nothing(
    many: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: S3 refuses the put (a policy mistake, say) for this delivery
    at = _snapshot()
    before = account_item(many, PAGER).get("last_export")
    with aws_fault("s3", "PutObject", status=403, code="AccessDenied", count=1) as fault:
        failed = deliver(many, PAGER, at)
    # Then: a batch item failure, no object, last_export unchanged, the token intact
    figures.injected("aws s3 PutObject 403", fault.fired)
    assert failed.answer == {"batchItemFailures": [{"itemIdentifier": failed.message_id}]}
    assert_nothing_written(many, PAGER, at, before)
    assert_token_alive(many, "pager", PAGER)
    # When: SQS redelivers after the fault is gone
    assert redeliver(many, failed) == {"batchItemFailures": []}
    assert_complete_once(many, sandbox, "pager", PAGER, at)
    figures.survived("aws s3 PutObject 403", fault.fired)


def test_throttled_rotation_write_lands(stack: LocalStack, figures: Figures) -> None:
    # Given: a due token, and DynamoDB throttling the rotation write three times
    flows.connect(stack)
    make_refresh_due(stack)
    with aws_fault(
        "dynamodb", "UpdateItem", status=400, code="ThrottlingException", count=3, when="version = :next"
    ) as fault:
        status, _ = _refresh_run(stack)
    figures.injected("aws dynamodb rotation write throttled (SDK retries)", fault.fired)
    assert fault.fired == 3 and status == "exported"
    assert_token_alive(stack, "ada_metrics", USER_ID)
    figures.survived("aws dynamodb rotation write throttled (SDK retries)", fault.fired)


def test_rotation_write_outlasting_the_sdk_retries_still_lands(
    stack: LocalStack, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: DynamoDB throttles the rotation write more often than the SDK retries (2 attempts here)
    flows.connect(stack)
    make_refresh_due(stack)
    with aws_fault(
        "dynamodb", "UpdateItem", status=400, code="ThrottlingException", count=5, when="version = :next"
    ) as fault:
        worker = new_worker(stack, aws_attempts=2)
        summary = worker.service.run(make_job(USER_ID, _snapshot()), budget())
    # Then: the keeper retried inside its lease and the rotated tokens are stored
    figures.injected("aws dynamodb rotation write throttled beyond SDK retries", fault.fired)
    assert fault.fired == 5 and summary.status == "exported"
    assert worker.telemetry.metrics.get("RotationWriteRetries", 0) >= 1
    assert_token_alive(stack, "ada_metrics", USER_ID)
    figures.survived("aws dynamodb rotation write throttled beyond SDK retries", fault.fired)


def test_without_the_keeper_retry_a_throttled_write_loses_the_token(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Safeguard check: the same throttling, with TokenKeeper's retry removed, loses the token."""
    flows.connect(stack)
    make_refresh_due(stack)

    def once(self: TokenKeeper, account: Any, sealed: Any, fresh: Any, _: Any) -> int:
        return self._write(account, sealed, fresh)

    monkeypatch.setattr(TokenKeeper, "_persist", once)
    with aws_fault(
        "dynamodb", "UpdateItem", status=400, code="ThrottlingException", count=5, when="version = :next"
    ):
        worker = new_worker(stack, aws_attempts=2)
        assert worker.service.run(make_job(USER_ID, _snapshot()), budget()).status == "failed"
    assert stack.x is not None
    assert stored_tokens(stack).refresh_token != stack.x.live_refresh_token("ada_metrics", stack.client_id)


def test_without_all_pages_first_a_failure_would_leave_a_partial_object(
    many: LocalStack, sandbox: XSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Safeguard check: if the timeline handed back the pages it had on failure, the
    later-page case above would find a partial object."""
    at = _snapshot()
    original = XApi._get
    served = {"n": 0}

    def flaky(self: XApi, path: str, *args: Any, **kwargs: Any) -> Any:
        served["n"] += 1
        if served["n"] == 2:
            return {"data": [], "meta": {"result_count": 0}}, original(self, path, *args, **kwargs)[1]
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(XApi, "_get", flaky)
    assert deliver(many, PAGER, at).answer == {"batchItemFailures": []}
    rows = flows.read_export(many, _key(PAGER, at))
    assert len(rows) < len(served_ids(sandbox, "pager", at))


def test_without_redelivery_check_a_duplicate_message_writes_again(
    many: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Safeguard check for the redelivery case."""
    at = _snapshot()
    original = ExportAccount.run
    monkeypatch.setattr(
        ExportAccount, "run", lambda self, job, deadline, *, skip_if_done=False: original(self, job, deadline)
    )
    deliver(many, PAGER, at)
    deliver(many, PAGER, at)
    assert versions(many, _key(PAGER, at)) == 2
