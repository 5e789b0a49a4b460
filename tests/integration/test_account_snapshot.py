"""The account itself, daily, through the fetch handler: the first run of a UTC day reads users/me
into accounts/, and the day's later runs do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, account_item
from xmetrics.x_api import USER_FIELDS


def _served_me(stack: LocalStack, sandbox: XSandbox) -> dict[str, Any]:
    token = sandbox.issue_tokens("ada_metrics", stack.client_id)["access_token"]
    answer = requests.get(
        f"{sandbox.api_base_url}/2/users/me",
        params={"user.fields": USER_FIELDS},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    data: dict[str, Any] = answer.json()["data"]
    return data


def _run(stack: LocalStack, at: datetime) -> dict[str, Any]:
    (summary,) = stack.invoke("FetchFunction", flows.schedule_event(at))["results"]
    assert summary["status"] == "exported", summary
    return dict(summary)


def _account_keys(stack: LocalStack) -> list[str]:
    listed = stack.client("s3").list_objects_v2(
        Bucket=stack.resources.bucket_name, Prefix="x-metrics/accounts/"
    )
    return [o["Key"] for o in listed.get("Contents", [])]


def test_the_first_run_of_a_utc_day_exports_the_account_and_later_runs_do_not(
    stack: LocalStack, sandbox: XSandbox
) -> None:
    flows.connect(stack)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    before = _served_me(stack, sandbox)
    me_calls = sandbox.requests_to("me")
    # When: the day's first scheduled run
    first = _run(stack, day)
    after = _served_me(stack, sandbox)
    # Then: one users/me read, one line under accounts/ with the counts X served
    assert sandbox.requests_to("me") == me_calls + 2  # ours, and the check's `after`
    assert first["account"] == "exported"
    key = first["account_key"]
    assert key == f"x-metrics/accounts/dt={day:%Y-%m-%d}/user_id={USER_ID}/{day:%Y%m%dT%H%M%SZ}.jsonl"
    assert _account_keys(stack) == [key]
    (line,) = flows.read_export(stack, key)
    assert line["user_id"] == USER_ID and line["username"] == "ada_metrics"
    assert line["snapshot_at"] == day.strftime("%Y-%m-%dT%H:%M:%SZ") and line["schema_version"] == 1
    assert line["public_metrics"] in (before["public_metrics"], after["public_metrics"])
    assert {"followers_count", "following_count", "tweet_count", "listed_count"} <= set(
        line["public_metrics"]
    )
    # and X's bill does not count it: the connect read the user this UTC day already
    assert first["reads"]["users"] == 1 and first["billed"]["users"] == 0
    # When: a later run the same UTC day
    me_calls = sandbox.requests_to("me")
    later = _run(stack, day + timedelta(minutes=1))
    # Then: no users/me call and no second account line
    assert sandbox.requests_to("me") == me_calls
    assert "account" not in later and _account_keys(stack) == [key]
    assert f'"accounts":{{"{day:%Y-%m-%d}":' in account_item(stack)["reads"]["S"]


def test_a_failing_users_me_never_blocks_the_posts(stack: LocalStack, sandbox: XSandbox) -> None:
    flows.connect(stack)
    stack.environment["FETCH_QUEUE_URL"] = ""
    stack.activate()
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sandbox.inject("me", "status", count=10, status=503)
    summary = _run(stack, day)
    assert summary["tweets"] > 0 and summary["account"].startswith("failed: ")
    assert _account_keys(stack) == []
    # and the day's next run tries again
    sandbox.clear_faults()
    assert _run(stack, day + timedelta(minutes=1))["account"] == "exported"
