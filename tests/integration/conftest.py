from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local import flows
from local.aws import MotoServer
from local.clock import SettableClock, fetch_function_clock
from local.dynamodb_local import DynamoDBLocal
from local.queries import export_prefix
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID

VIDEO_USER_ID = "1700000000000000002"
RUN_EVERY = timedelta(hours=6)


@dataclass(frozen=True)
class Exports:
    """Real exports of a few simulated days, copied out of the bucket into `root` under the same keys."""

    root: Path
    prefix: str
    usernames: dict[str, str]  # user_id -> username
    runs: list[dict[str, Any]]  # each account-run's summary, with its snapshot_at

    def lines(self, dataset: str) -> list[tuple[str, dict[str, Any]]]:
        """(key, line) of every line of `dataset` (tweets, accounts, runs), in key order."""
        found = []
        for path in sorted((self.root / self.prefix / dataset).rglob("*.jsonl")):
            key = path.relative_to(self.root).as_posix()
            found += [(key, json.loads(text)) for text in path.read_text(encoding="utf-8").splitlines()]
        return found

    def records(self, dataset: str, user_id: str) -> list[dict[str, Any]]:
        return [line for key, line in self.lines(dataset) if f"/user_id={user_id}/" in key]


def _schedule(now: datetime) -> list[datetime]:
    """Every 6 hours from the UTC midnight three days ago up to now: runs on four UTC days whatever
    the hour (today's midnight run is always past), each day's first run exporting the account
    snapshot, all inside the named queries' windows."""
    last = now - timedelta(minutes=5)
    at = last.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    times = []
    while at <= last:
        times.append(at)
        at += RUN_EVERY
    return times


@pytest.fixture(scope="session")
def exports(
    moto_server: MotoServer, dynamodb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Exports]:
    """Scheduled runs every 6 hours over three days and a bit, through the fetch handler against the
    X sandbox: two accounts, one with replies, quotes and reposts (exported, ExcludePostTypes=none,
    with the errors X gives them), one mostly videos; counts that grow with each post's age and
    followers that move day by day. Made once per session: the tests only read the files."""
    times = _schedule(datetime.now(UTC))
    # The accounts' posts are made up to an hour past the last run; each run sets the clock to its
    # time, so the posts of the last days appear run by run, as they would at X.
    clock = SettableClock((times[-1] + timedelta(hours=1)).timestamp())
    saved = dict(os.environ)
    with XSandbox(clock=clock) as sandbox:
        sandbox.access_token_ttl = 90 * 86_400
        sandbox.metrics_grow = True
        sandbox.add_user(
            "ada_metrics",
            user_id=USER_ID,
            tweet_count=60,
            days=20,
            reply_ratio=0.2,
            quote_ratio=0.1,
            repost_ratio=0.1,
        )
        # The second account posts only its own posts (no replies, quotes or reposts): the tests
        # tell the two apart by whether reposts were left out.
        sandbox.add_user(
            "grace_video",
            user_id=VIDEO_USER_ID,
            tweet_count=60,
            days=20,
            video_ratio=0.6,
            reply_ratio=0.0,
            quote_ratio=0.0,
            repost_ratio=0.0,
        )
        for username in ("ada_metrics", "grace_video"):
            # Followers grow from the day an account is added: from the first run here.
            sandbox.user(username).added_at = times[0].timestamp()
        clock.at(times[0])
        stack = LocalStack.start(moto=moto_server, sandbox=sandbox, dynamodb_endpoint=dynamodb_local.endpoint)
        try:
            for username in ("ada_metrics", "grace_video"):
                sandbox.login_as(username)
                assert flows.connect(stack)["statusCode"] == 200
            stack.environment.update(FETCH_QUEUE_URL="", EXCLUDE_POST_TYPES="none")
            stack.activate()
            runs = []
            with fetch_function_clock(clock):
                for at in times:
                    clock.at(at)
                    for summary in stack.invoke("FetchFunction", flows.schedule_event(at))["results"]:
                        assert summary["status"] == "exported", summary
                        runs.append({**summary, "snapshot_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
            root = tmp_path_factory.mktemp("exports")
            _copy_bucket(stack, root)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            reset_handlers()
    prefix = export_prefix()
    yield Exports(root, prefix, {USER_ID: "ada_metrics", VIDEO_USER_ID: "grace_video"}, runs)


def _copy_bucket(stack: LocalStack, root: Path) -> None:
    s3 = stack.client("s3")
    bucket = stack.resources.bucket_name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            target = root / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
