"""The connect flow driven through the handlers, the way API Gateway and a browser would."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from local.stack import LocalStack
from local.template import ROOT

EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


def cookie_pair(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


@dataclass
class ConnectHop:
    response: dict[str, Any]
    cookie: str  # name=value, as the browser would send it back
    location: str


@dataclass
class XRedirect:
    status: int
    location: str
    query: dict[str, str]


def start_connect(stack: LocalStack) -> ConnectHop:
    response = stack.invoke("AuthorizeFunction", load_event("connect.json"))
    return ConnectHop(response, cookie_pair(response["cookies"][0]), response["headers"]["Location"])


def authorize_at_x(location: str) -> XRedirect:
    answer = requests.get(location, allow_redirects=False, timeout=10)
    target = answer.headers.get("Location", "")
    query = {k: v[0] for k, v in parse_qs(urlsplit(target).query, keep_blank_values=True).items()}
    return XRedirect(answer.status_code, target, query)


def callback_event(query: str, cookie: str | None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("callback.json"))
    event["rawQueryString"] = query
    event["queryStringParameters"] = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if cookie is None:
        event.pop("cookies", None)
    else:
        event["cookies"] = [cookie]
    return event


def finish_connect(stack: LocalStack, redirect: XRedirect, cookie: str | None) -> dict[str, Any]:
    query = urlsplit(redirect.location).query
    response: dict[str, Any] = stack.invoke("CallbackFunction", callback_event(query, cookie))
    return response


def connect(stack: LocalStack) -> dict[str, Any]:
    """GET /connect -> X (auto consent) -> GET /callback; returns the callback's response."""
    hop = start_connect(stack)
    return finish_connect(stack, authorize_at_x(hop.location), hop.cookie)


def schedule_event(at: datetime) -> dict[str, Any]:
    """events/schedule.json fired at `at`, as EventBridge would."""
    event = load_event("schedule.json")
    event["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS batch as Lambda's poller hands it to the function, from receive_message's answer."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:local",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def drain_queue(stack: LocalStack, max_batches: int = 10_000) -> list[dict[str, Any]]:
    """Deliver the queue to FetchFunction as Lambda's SQS poller would: delete what succeeded,
    leave failed items to come back after their visibility timeout. Returns each batch's answer."""
    sqs = stack.client("sqs")
    answers: list[dict[str, Any]] = []
    for _ in range(max_batches):
        got = sqs.receive_message(
            QueueUrl=stack.resources.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not got:
            break
        answer = stack.invoke("FetchFunction", sqs_event(got))
        answers.append(answer)
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        done = [m for m in got if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=stack.resources.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
    return answers


def read_export(stack: LocalStack, key: str) -> list[dict[str, Any]]:
    body = stack.client("s3").get_object(Bucket=stack.resources.bucket_name, Key=key)["Body"].read()
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]
