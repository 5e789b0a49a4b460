"""X's usage cap met in the middle of a scheduled run, on the queue path.

The scheduled event goes to FetchFunction (dispatch: one SQS message per account), then
FetchConcurrency workers drain the queue as Lambda's poller would: batches of the template's
BatchSize, each message through `ExportQueued.run` (what the handler's batch loop calls), the
messages that did not fail deleted, the failed ones left to SQS. Every worker is a container of
its own (its own clients, HTTP pool and use cases). Once a few accounts are exported, the X sandbox
starts answering X's usage-cap 429 (`usage_capped = "usage_cap"`).

Then three more scheduled runs, with the sandbox still capped unless said: one 30 minutes later
(within the marker's hour: no run may call X), the next hourly one (the hour is over: one probe),
and one more hour later with X serving again (the probe goes through and lets the rest in).
Snapshots lie in the past hours of the wall clock, as the handler accepts them; the sandbox and
the app keep the wall clock (the marker counts scheduled time, not the clock).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.fixture import POSTS_ONLY, BenchUser, connect, new_sandbox
from bench.scale import Template
from local import aws, flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox
from xmetrics.config import FetchSettings
from xmetrics.deadline import Deadline
from xmetrics.events import QueueBatch, parse_fetch_event
from xmetrics.wiring import Clients, build_fetch, client_config

ACCOUNTS = 12
POSTS = 40
FLIP_AFTER = 3  # accounts exported before X starts answering with the cap
USERS = tuple(BenchUser(f"cap_{i:02d}", f"17900000000000000{i:02d}", POSTS) for i in range(ACCOUNTS))
# Lambda's function timeout (template.yaml FetchFunction Timeout).
FUNCTION_SECONDS = 300.0


@dataclass
class Handled:
    worker: int
    message_id: str
    user_id: str
    status: str
    done_at: float  # perf_counter


@dataclass
class Round:
    """One scheduled run: dispatched, then drained by the workers."""

    name: str
    snapshot: datetime
    queued: int
    handled: list[Handled]
    batch_failures: int
    timeline_calls: int  # every timeline request of the round
    timeline_statuses: Counter[int]
    seconds: float  # dispatch to the last message handled
    flip_at: float | None = None  # perf_counter when X started answering with the cap
    calls_after_flip: dict[int, int] = field(default_factory=dict)  # by worker
    statuses_after_flip: Counter[int] = field(default_factory=Counter)

    @property
    def statuses(self) -> Counter[str]:
        return Counter(h.status for h in self.handled)

    @property
    def redelivered(self) -> int:
        """Messages handled more than once (SQS delivers at least once; moto's receive, polled
        by concurrent workers, now and then hands a message to two of them)."""
        return len(self.handled) - len({h.message_id for h in self.handled})

    @property
    def seconds_after_flip(self) -> float:
        if self.flip_at is None or not self.handled:
            return 0.0
        return max(h.done_at for h in self.handled) - self.flip_at


@dataclass
class CapResult:
    workers: int
    batch_size: int
    accounts: int
    rounds: list[Round]
    dead_letters: int
    left_in_queue: int
    marker_until: str | None
    seconds: float

    def round(self, name: str) -> Round:
        return next(r for r in self.rounds if r.name == name)


class _Flip:
    """Turns X's usage cap on once `after` accounts are exported (at most once)."""

    def __init__(self, sandbox: XSandbox, after: int | None) -> None:
        self._sandbox = sandbox
        self._after = after
        self._lock = threading.Lock()
        self.exported = 0
        self.at: float | None = None
        self.log_index: int | None = None

    def exported_one(self) -> None:
        with self._lock:
            self.exported += 1
            if self._after is not None and self.at is None and self.exported >= self._after:
                self._sandbox.usage_capped = "usage_cap"
                self.log_index = len(self._sandbox.request_log)
                self.at = time.perf_counter()


def _worker_use(stack: LocalStack) -> Any:
    """A Lambda container's worth of service: its own botocore session, clients and HTTP pool."""
    import botocore.session

    session = botocore.session.get_session()
    clients = Clients(lambda service: session.create_client(service, config=client_config(service)))
    from bench.bill import Recorder

    return build_fetch(FetchSettings.from_env(stack.environment), clients, Recorder())


def _drain(stack: LocalStack, uses: list[Any], batch_size: int, flip: _Flip) -> tuple[list[Handled], int]:
    sqs = stack.client("sqs")
    url = stack.resources.queue_url
    handled: list[Handled] = []
    failures = 0
    lock = threading.Lock()

    def poll(worker: int) -> None:
        nonlocal failures
        idle = 0
        while idle < 3:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=batch_size, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                idle += 1
                time.sleep(0.05)
                continue
            idle = 0
            batch = parse_fetch_event(flows.sqs_event(got), datetime.now(UTC))
            assert isinstance(batch, QueueBatch)
            deadline = Deadline.after(FUNCTION_SECONDS)
            failed = set()
            for message in batch.messages:
                job = message.job
                assert job is not None
                summary = uses[worker].queued.run(job, message.receipt_handle, deadline)
                one = Handled(worker, message.message_id, job.user_id, summary.status, time.perf_counter())
                with lock:
                    handled.append(one)
                if summary.status == "exported":
                    flip.exported_one()
                if summary.status == "failed":
                    failed.add(message.message_id)
            done = [m for m in got if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            with lock:
                failures += len(failed)

    threads = [threading.Thread(target=poll, args=(w,), name=f"cap-worker-{w}") for w in range(len(uses))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return handled, failures


def _round(
    stack: LocalStack,
    sandbox: XSandbox,
    uses: list[Any],
    batch_size: int,
    name: str,
    snapshot: datetime,
    flip_after: int | None = None,
) -> Round:
    flip = _Flip(sandbox, flip_after)
    start_index = len(sandbox.request_log)
    started = time.perf_counter()
    answer = stack.invoke("FetchFunction", flows.schedule_event(snapshot))
    handled, failures = _drain(stack, uses, batch_size, flip)
    ended = max((h.done_at for h in handled), default=time.perf_counter())
    log = [e for e in sandbox.request_log[start_index:] if e.endpoint == "tweets"]
    worker_of = {h.user_id: h.worker for h in handled}
    result = Round(
        name=name,
        snapshot=snapshot,
        queued=int(answer.get("queued", 0)),
        handled=handled,
        batch_failures=failures,
        timeline_calls=len(log),
        timeline_statuses=Counter(e.status for e in log),
        seconds=ended - started,
        flip_at=flip.at,
    )
    if flip.log_index is not None:
        after = [e for e in sandbox.request_log[flip.log_index :] if e.endpoint == "tweets"]
        result.calls_after_flip = dict.fromkeys(range(len(uses)), 0)
        for entry in after:
            user_id = entry.path.split("/")[3]
            result.calls_after_flip[worker_of[user_id]] += 1
        result.statuses_after_flip = Counter(e.status for e in after)
    return result


def measure(progress: Callable[[str], None]) -> CapResult:
    started = time.perf_counter()
    template = Template.read()
    sandbox = new_sandbox().start()
    for user in USERS:
        sandbox.add_user(user.name, user_id=user.user_id, tweet_count=user.tweets, days=20, **POSTS_ONLY)
    moto = aws.MotoServer().start()  # moto's state is per process: reset by LocalStack.start
    stack = LocalStack.start(moto=moto, sandbox=sandbox, extra_env={"LOG_LEVEL": "WARNING"})
    try:
        for user in USERS:
            connect(stack, user)
        uses = [_worker_use(stack) for _ in range(template.concurrency)]
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
        rounds = [
            _round(stack, sandbox, uses, template.batch_size, "capped mid-run", hour, flip_after=FLIP_AFTER)
        ]
        progress("bill: usage cap met mid-run")
        rounds.append(
            _round(stack, sandbox, uses, template.batch_size, "30 min later", hour + timedelta(minutes=30))
        )
        rounds.append(
            _round(stack, sandbox, uses, template.batch_size, "next hourly run", hour + timedelta(hours=1))
        )
        sandbox.usage_capped = None
        rounds.append(
            _round(
                stack,
                sandbox,
                uses,
                template.batch_size,
                "an hour later, X serving",
                hour + timedelta(hours=2),
            )
        )
        progress("bill: the runs after the cap")
        sqs = stack.client("sqs")
        dlq = stack.resources.resolver.physical["FetchDeadLetterQueue"]
        dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        marker = stack.client("dynamodb").get_item(
            TableName=stack.resources.table_name, Key={"pk": {"S": "app#usage-cap"}}, ConsistentRead=True
        )
        until = marker.get("Item", {}).get("until", {}).get("N")
    finally:
        stack.stop()
        moto.stop()
    return CapResult(
        workers=template.concurrency,
        batch_size=template.batch_size,
        accounts=ACCOUNTS,
        rounds=rounds,
        dead_letters=len(dead),
        left_in_queue=sum(int(v) for v in attributes.values()),
        marker_until=None
        if until is None
        else datetime.fromtimestamp(float(until), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        seconds=time.perf_counter() - started,
    )
