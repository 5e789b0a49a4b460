"""queue.py: SQS failures and refused messages fail the scheduled run as QueueSendError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from tests.unit.aws_stubs import assert_clean, client, failing, network_down
from xmetrics.errors import QueueSendError
from xmetrics.queue import JobQueue

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/leak-marker"
USER = "1700000000000000001"
SNAPSHOT = "2026-11-28T16:00:00Z"

Call = Callable[[JobQueue], Any]

OPERATIONS = [
    pytest.param(
        lambda q: q.send_jobs([USER], SNAPSHOT), "send_message_batch", "SendMessageBatch", id="send_jobs"
    ),
    pytest.param(
        lambda q: q.defer("receipt-leak-marker", 30.0),
        "change_message_visibility",
        "ChangeMessageVisibility",
        id="defer",
    ),
]

FAILURES = [
    pytest.param("ThrottlingException", 400, id="throttled"),
    pytest.param("InternalError", 500, id="5xx"),
    pytest.param("AccessDeniedException", 400, id="access-denied"),
    pytest.param("QueueDoesNotExist", 400, id="queue-gone"),
]


@pytest.fixture
def sqs() -> Any:
    return client("sqs")


@pytest.mark.parametrize(("code", "status"), FAILURES)
@pytest.mark.parametrize(("call", "method", "operation"), OPERATIONS)
def test_an_sqs_failure_becomes_queue_send_error(
    sqs: Any, call: Call, method: str, operation: str, code: str, status: int
) -> None:
    # Given: SQS answers the call with an error
    with failing(sqs, method, code, status):
        # When: the queue makes the call
        with pytest.raises(QueueSendError) as raised:
            call(JobQueue(lambda: sqs, QUEUE_URL))
    # Then: the project's error, naming service, operation and code only
    assert str(raised.value) == f"SQS {operation} failed: {code}"
    assert isinstance(raised.value.__cause__, ClientError)
    assert_clean(str(raised.value), USER, QUEUE_URL)


@pytest.mark.parametrize(("call", "method", "operation"), OPERATIONS)
def test_an_unreachable_sqs_becomes_queue_send_error(
    sqs: Any, call: Call, method: str, operation: str
) -> None:
    # Given: the endpoint cannot be reached
    network_down(sqs)
    # When / Then: the call fails as the project's error
    with pytest.raises(QueueSendError, match=f"^SQS {operation} failed: EndpointConnectionError$"):
        call(JobQueue(lambda: sqs, QUEUE_URL))


def test_messages_refused_on_every_attempt_fail_the_run(sqs: Any) -> None:
    # Given: SQS takes one message of two and keeps refusing the other, in a 200 answer
    refused = {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "leak-marker"}
    with Stubber(sqs) as stubber:
        stubber.add_response(
            "send_message_batch",
            {"Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}], "Failed": [refused]},
            {"QueueUrl": QUEUE_URL, "Entries": ANY},
        )
        for _ in range(4):
            stubber.add_response("send_message_batch", {"Successful": [], "Failed": [refused]})
        # When: the run queues both accounts
        with pytest.raises(QueueSendError) as raised:
            JobQueue(lambda: sqs, QUEUE_URL).send_jobs([USER, "1700000000000000002"], SNAPSHOT)
        stubber.assert_no_pending_responses()
    # Then: the run fails, saying how many and why, not which accounts
    assert raised.value.operation == "SendMessageBatch"
    assert str(raised.value) == (
        "SQS SendMessageBatch failed: 1 messages refused after 5 attempts (InternalError)"
    )
    assert_clean(str(raised.value), USER)


def test_a_refusal_that_clears_on_retry_sends_everything(sqs: Any) -> None:
    # Given: a message refused once, then taken
    with Stubber(sqs) as stubber:
        stubber.add_response(
            "send_message_batch",
            {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]},
        )
        stubber.add_response(
            "send_message_batch",
            {"Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}], "Failed": []},
        )
        # When: the run queues the account
        sent = JobQueue(lambda: sqs, QUEUE_URL).send_jobs([USER], SNAPSHOT)
    # Then: it counts as sent once
    assert sent == 1
