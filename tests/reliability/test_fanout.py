"""One scheduled run over many accounts: queued in batches, drained by concurrent workers,
every account exported exactly once. `make soak` runs a bigger variant with faults on top."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from functions.fetch import app as fetch_app
from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox, post_type
from tests.integration.helpers import make_refresh_due, stored_tokens
from tests.reliability.conftest import FIGURES, Figures, budget, new_worker, seed_account
from xmetrics.events import QueueBatch, parse_fetch_event

BATCH_SIZE = 5  # template.yaml's FetchFunction SQS event BatchSize
FIRST_ID = 1_800_000_000_000_000_000
CLEAN = {"missing": 0, "duplicated": 0, "partial_in_sample": 0}


@dataclass
class Drained:
    batches: int = 0
    failures: int = 0
    receive_counts: Counter[int] = field(default_factory=Counter)


def seed(stack: LocalStack, sandbox: XSandbox, accounts: int, tweets: int) -> list[str]:
    ids = [str(FIRST_ID + i) for i in range(accounts)]
    for i, user_id in enumerate(ids):
        sandbox.add_user(f"acct{i}", user_id=user_id, tweet_count=tweets, days=20, video_ratio=0.3)
        seed_account(stack, f"acct{i}", user_id)
    return ids


def drain(stack: LocalStack, workers: int, *, redeliver_after: float = 0.0) -> Drained:
    """`workers` concurrent Lambda containers polling the queue (the mapping's MaximumConcurrency).

    A failed item becomes visible again after `redeliver_after` seconds instead of the queue's
    30 minutes, so retries happen within the test.
    """
    result = Drained()
    lock = threading.Lock()
    sqs = stack.client("sqs")
    url = stack.resources.queue_url

    def poll() -> None:
        worker = new_worker(stack)
        idle = 0
        while idle < 3:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=BATCH_SIZE, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                idle += 1
                time.sleep(redeliver_after or 0.05)
                continue
            idle = 0
            batch = parse_fetch_event(flows.sqs_event(got), datetime.now(UTC))
            assert isinstance(batch, QueueBatch)
            answer = fetch_app._batch(worker.use.queued, batch, budget())
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            done = [m for m in got if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            for message in got:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            with lock:
                result.batches += 1
                result.failures += len(failed)
                for message in done:
                    result.receive_counts[int(message["Attributes"]["ApproximateReceiveCount"])] += 1

    threads = [threading.Thread(target=poll) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=1200)
    return result


def check_exports(stack: LocalStack, sandbox: XSandbox, ids: list[str], snapshot: datetime) -> dict[str, int]:
    """Every account has one object at the snapshot, written once, holding all of its posts."""
    s3 = stack.client("s3")
    stamp = f"{snapshot:%Y%m%dT%H%M%SZ}"
    versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=stack.resources.bucket_name, Prefix="x-metrics/tweets/"
    ):
        for version in page.get("Versions", []):
            if version["Key"].endswith(f"/{stamp}.jsonl"):
                versions[version["Key"].split("user_id=")[1].split("/")[0]] += 1
    missing = [i for i in ids if versions[i] == 0]
    duplicated = [i for i in ids if versions[i] > 1]
    partial = 0
    for user_id in random.Random(7).sample(ids, min(50, len(ids))):
        key = f"x-metrics/tweets/dt={snapshot:%Y-%m-%d}/user_id={user_id}/{stamp}.jsonl"
        rows = flows.read_export(stack, key)
        timeline = sandbox.user(f"acct{int(user_id) - FIRST_ID}").tweets
        expected = {t["id"] for t in timeline if post_type(t) != "repost"}  # excluded by default
        partial += {r["tweet_id"] for r in rows} != expected
    FIGURES.exports_checked += len(ids)
    FIGURES.duplicates += len(duplicated)
    FIGURES.partial_objects += partial + len(missing)
    return {"missing": len(missing), "duplicated": len(duplicated), "partial_in_sample": partial}


def check_dataset(stack: LocalStack, dataset: str, snapshot: datetime) -> set[str]:
    """The accounts with an object of `dataset` at the snapshot."""
    stamp = f"{snapshot:%Y%m%dT%H%M%SZ}"
    found = set()
    for page in (
        stack.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(Bucket=stack.resources.bucket_name, Prefix=f"x-metrics/{dataset}/")
    ):
        for item in page.get("Contents", []):
            if item["Key"].endswith(f"/{stamp}.jsonl"):
                found.add(item["Key"].split("user_id=")[1].split("/")[0])
    return found


def test_five_hundred_accounts_are_each_exported_exactly_once(
    stack: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: 500 connected accounts
    ids = seed(stack, sandbox, 500, tweets=3)
    snapshot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    started = time.monotonic()
    # When: one scheduled run dispatches them and 5 workers drain the queue
    dispatched = stack.invoke("FetchFunction", flows.schedule_event(snapshot))
    drained = drain(stack, workers=5)
    elapsed = time.monotonic() - started
    # Then: 500 queued in batches, no failure, one object per account written once, X asked once each
    assert dispatched == {
        "snapshot_at": f"{snapshot:%Y-%m-%dT%H:%M:%SZ}",
        "status": "dispatched",
        "accounts": 500,
        "queued": 500,
    }
    assert drained.failures == 0 and drained.receive_counts == Counter({1: 500})
    assert check_exports(stack, sandbox, ids, snapshot) == {
        "missing": 0,
        "duplicated": 0,
        "partial_in_sample": 0,
    }
    # one timeline read each, and the day's account snapshot: one users/me each
    assert sandbox.requests_to("tweets") == 500 and sandbox.requests_to("me") == 500
    # and each account-run left its account snapshot and its run line, once
    assert check_dataset(stack, "accounts", snapshot) == check_dataset(stack, "runs", snapshot) == set(ids)
    figures.outcomes.append(
        f"fan-out: 500 accounts, 1 scheduled run, 5 workers, {drained.batches} batches -> 500 exported once, "
        f"0 missing, 0 duplicated, 0 partial ({elapsed:.1f}s)"
    )


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_soak_thousands_of_accounts_with_faults_and_due_tokens(
    stack: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: 2,000 accounts, a third of them with a token due, and X failing now and then
    accounts = 2000
    ids = seed(stack, sandbox, accounts, tweets=5)
    for user_id in ids[::3]:
        make_refresh_due(stack, user_id)
    rng = random.Random(11)
    faults: Counter[str] = Counter()
    for _ in range(60):
        kind, params = rng.choice(
            [("status", {"status": 503}), ("drop", {}), ("truncate", {}), ("rate_limit", {"reset_in": 1})]
        )
        sandbox.inject("tweets", kind, count=rng.randint(1, 3), **params)
        faults[f"x tweets {kind}"] += 1
    for _ in range(10):
        sandbox.inject("token", "status", count=1, status=503)
        faults["x token 503"] += 1
    snapshot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    started = time.monotonic()
    # When: one scheduled run, 10 workers
    dispatched = stack.invoke("FetchFunction", flows.schedule_event(snapshot))
    drained = drain(stack, workers=10, redeliver_after=0.2)
    elapsed = time.monotonic() - started
    # Then: every account exported exactly once, every due token rotated once, none lost
    assert dispatched["queued"] == accounts
    assert check_exports(stack, sandbox, ids, snapshot) == CLEAN
    assert sandbox.refresh_count == len(ids[::3])
    lost = sum(
        stored_tokens(stack, user_id).refresh_token
        != sandbox.live_refresh_token(f"acct{int(user_id) - FIRST_ID}", stack.client_id)
        for user_id in ids
    )
    figures.tokens_checked += len(ids)
    figures.tokens_lost += lost
    assert lost == 0
    for kind, n in faults.items():
        figures.injected(f"soak {kind}", n)
        figures.survived(f"soak {kind}", n)
    figures.outcomes.append(
        f"soak: {accounts} accounts, {len(ids[::3])} due tokens, {sum(faults.values())} fault bursts, "
        f"10 workers -> all exported once, {drained.failures} item failures retried, tokens lost 0 "
        f"({elapsed:.1f}s)"
    )
