"""Calls per account per run: the scheduled dispatch, the queue worker with and without a refresh."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.counting import CallCounter, Calls
from bench.fixture import LARGE, MEDIUM, USERS
from local import flows
from local.stack import LocalStack, reset_handlers
from xmetrics.timeutil import iso_z

PAGE = 100


@dataclass
class Scenario:
    name: str
    container: str  # "warm": the function's clients already exist; "cold": a new container
    accounts: int
    tweets: int
    expected_pages: int
    refresh_due: bool
    calls: Calls
    seconds: float

    @property
    def dynamodb(self) -> int:
        return self.calls.service("dynamodb")

    def checks(self) -> list[Check]:
        """The targets this run must meet, each with what was measured (per account)."""
        c, n = self.calls, self.accounts
        if self.name.startswith("dispatch"):
            batches = c.aws["sqs.SendMessageBatch"]
            return [
                Check("X requests 0", str(sum(c.x.values())), sum(c.x.values()) == 0),
                Check(
                    "SendMessageBatch ceil(n/10)",
                    f"{batches} for {n}",
                    batches == math.ceil(n / 10),
                ),
            ]
        ddb_limit = 5 if self.refresh_due else 3
        refreshes = n if self.refresh_due else 0
        return [
            Check(
                "pages ceil(posts/100)",
                f"{c.x['tweets']}/{self.expected_pages}",
                c.x["tweets"] == self.expected_pages,
            ),
            Check(f"token {refreshes}", str(c.x["token"]), c.x["token"] == refreshes),
            Check("users/me 0", str(c.x["me"]), c.x["me"] == 0),
            Check(f"DynamoDB <= {ddb_limit}", _per(self.dynamodb, n), self.dynamodb <= ddb_limit * n),
            Check("S3 put 1", _per(c.aws["s3.PutObject"], n), c.aws["s3.PutObject"] == n),
            Check("KMS <= 1", _per(c.service("kms"), n), c.service("kms") <= n),
        ]


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    ok: bool


def _per(count: int, accounts: int) -> str:
    return str(count) if accounts == 1 else f"{count / accounts:g}"


class Harness:
    def __init__(self, stack: LocalStack, counter: CallCounter) -> None:
        assert stack.x is not None
        self.stack = stack
        self.sandbox = stack.x
        self.counter = counter
        self.sqs = stack.client("sqs")
        self.dynamodb = stack.client("dynamodb")

    def account(self, user_id: str) -> dict[str, Any]:
        item: dict[str, Any] = self.dynamodb.get_item(
            TableName=self.stack.resources.table_name,
            Key={"pk": {"S": f"account#{user_id}"}},
            ConsistentRead=True,
        )["Item"]
        return item

    def exported(self, user_id: str) -> int:
        return int(self.account(user_id)["last_export"]["M"]["count"]["N"])

    def make_refresh_due(self, user_id: str) -> None:
        """Leave the access token a minute to live: inside the 5-minute margin, so due now."""
        self.dynamodb.update_item(
            TableName=self.stack.resources.table_name,
            Key={"pk": {"S": f"account#{user_id}"}},
            UpdateExpression="SET access_expires_at = :soon",
            ExpressionAttributeValues={":soon": {"N": str(int(time.time()) + 60)}},
        )

    def _receive(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.stack.resources.queue_url,
            MaxNumberOfMessages=5,  # the template's BatchSize
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        return got

    def drain(self, calls: Calls) -> int:
        """Hand the queue to FetchFunction as Lambda's poller would; only the invocations count."""
        delivered = 0
        while batch := self._receive():
            with self.counter.window(self.sandbox) as one:
                answer = self.stack.invoke("FetchFunction", flows.sqs_event(batch))
            _merge(calls, one)
            if answer.get("batchItemFailures"):
                raise RuntimeError(f"worker failed: {answer}")
            self.sqs.delete_message_batch(
                QueueUrl=self.stack.resources.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
            delivered += len(batch)
        return delivered

    def enqueue(self, user_id: str, snapshot: datetime) -> None:
        body = json.dumps({"user_id": user_id, "snapshot_at": iso_z(snapshot)})
        self.sqs.send_message(QueueUrl=self.stack.resources.queue_url, MessageBody=body)


def _merge(total: Calls, part: Calls) -> None:
    total.aws.update(part.aws)
    total.attempts.update(part.attempts)
    total.x.update(part.x)
    total.x_failed += part.x_failed


def _pages(tweets: int) -> int:
    return max(1, math.ceil(tweets / PAGE))


@dataclass
class CallsResult:
    scenarios: list[Scenario]
    account_item_bytes: int
    export_bytes_per_post: float


def measure(stack: LocalStack, counter: CallCounter, progress: Callable[[str], None]) -> CallsResult:
    h = Harness(stack, counter)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    scenarios: list[Scenario] = []
    reset_handlers()

    # The scheduled run: the dispatch, then every queued account through the worker.
    started = time.perf_counter()
    with counter.window(h.sandbox) as calls:
        answer = stack.invoke("FetchFunction", flows.schedule_event(hour))
    if answer.get("queued") != len(USERS):
        raise RuntimeError(f"dispatch queued {answer.get('queued')} of {len(USERS)}")
    scenarios.append(
        Scenario(
            "dispatch (schedule event)", "cold", len(USERS), 0, 0, False, calls, time.perf_counter() - started
        )
    )
    started = time.perf_counter()
    drained = Calls()
    if h.drain(drained) != len(USERS):
        raise RuntimeError("not every dispatched account reached the worker")
    tweets = {u.user_id: h.exported(u.user_id) for u in USERS}
    scenarios.append(
        Scenario(
            "worker: every dispatched account",
            "warm",
            len(USERS),
            sum(tweets.values()),
            sum(_pages(n) for n in tweets.values()),
            False,
            drained,
            time.perf_counter() - started,
        )
    )
    progress("calls: scheduled run")

    cases = [
        ("worker: no refresh", MEDIUM, "warm", False),
        ("worker: no refresh", MEDIUM, "cold", False),
        ("worker: refresh due", MEDIUM, "warm", True),
        ("worker: refresh due", MEDIUM, "cold", True),
        ("worker: no refresh, 3,200 posts", LARGE, "warm", False),
    ]
    for offset, (name, user, container, due) in enumerate(cases, start=1):
        if container == "cold":
            reset_handlers()
        if due:
            h.make_refresh_due(user.user_id)
        # A new snapshot each time: a redelivered snapshot whose export landed is skipped by design.
        h.enqueue(user.user_id, hour - timedelta(hours=offset))
        started = time.perf_counter()
        calls = Calls()
        h.drain(calls)
        n = h.exported(user.user_id)
        scenarios.append(
            Scenario(name, container, 1, n, _pages(n), due, calls, time.perf_counter() - started)
        )
    progress("calls: worker scenarios")
    large = h.account(LARGE.user_id)["last_export"]["M"]
    head = stack.client("s3").head_object(Bucket=stack.resources.bucket_name, Key=large["key"]["S"])
    return CallsResult(
        scenarios,
        account_item_bytes=item_bytes(h.account(MEDIUM.user_id)),
        export_bytes_per_post=head["ContentLength"] / int(large["count"]["N"]),
    )


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = str(raw).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_bytes(v) for k, v in raw.items())
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in raw)
    return 1  # BOOL, NULL


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it (attribute names + values), for the capacity-unit maths."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())
