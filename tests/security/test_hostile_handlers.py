"""Property-based, through the real handlers: hostile query strings, cookies and events get a 4xx
page or a validation message, never a 5xx or a trace, echo nothing unescaped and change nothing."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox
from tests.security.conftest import tried
from xmetrics.timeutil import iso_z

HEADERS = {
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cache-Control",
}
nasty = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "javascript:alert(1)",
        "\u202e\u0000\ufeff",
        "%00%0d%0aSet-Cookie:x=1",
        "a" * 5000,
        "state#account#1",
        "' OR '1'='1",
    ]
)
values = nasty | st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
names = st.sampled_from(["state", "code", "error", "error_description", "error_uri", "iss"]) | st.text(
    max_size=12
)
queries = st.lists(st.tuples(names, values), max_size=8)
cookie_lists = st.lists(
    st.sampled_from(["__Host-xmx_state=", "xmx_state=", ""]).flatmap(
        lambda prefix: values.map(lambda v: prefix + v)
    ),
    max_size=3,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40) | nasty,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)
fetch_keys = st.sampled_from(
    ["user_id", "start_time", "end_time", "action", "Records", "source", "detail-type", "time"]
)


def _world(stack: LocalStack, sandbox: XSandbox) -> tuple[int, int, int]:
    items = stack.client("dynamodb").scan(TableName=stack.resources.table_name, Select="COUNT")["Count"]
    objects = stack.client("s3").list_objects_v2(Bucket=stack.resources.bucket_name).get("KeyCount", 0)
    return items, objects, sandbox.requests_to("token")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=queries, cookies=cookie_lists)
def test_callback_refuses_hostile_queries_cleanly(
    stack: LocalStack, sandbox: XSandbox, query: list[tuple[str, str]], cookies: list[str]
) -> None:
    tried("callback query strings")
    before = _world(stack, sandbox)
    raw = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    event = flows.callback_event(raw, None)
    event["cookies"] = cookies
    response: dict[str, Any] = stack.invoke("CallbackFunction", event)
    assert 400 <= response["statusCode"] < 500
    assert HEADERS <= set(response["headers"]) and response["headers"]["Referrer-Policy"] == "no-referrer"
    body = response["body"]
    assert "Traceback" not in body and "<script" not in body
    for _, value in query:
        if "<" in value and len(value) > 3:
            assert value not in body or html.escape(value) == value
    assert _world(stack, sandbox) == before


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.dictionaries(fetch_keys | st.text(max_size=10), json_values, max_size=5) | json_values)
def test_fetch_refuses_hostile_events_cleanly(stack: LocalStack, sandbox: XSandbox, event: Any) -> None:
    tried("fetch events")
    before = _world(stack, sandbox)
    answer = stack.invoke("FetchFunction", event)
    assert isinstance(answer, dict)
    if "batchItemFailures" not in answer and "queued" not in answer:
        assert answer.get("status") in {"invalid_event", "not_found"}, answer
    assert _world(stack, sandbox)[:2] == before[:2]


def _queued(stack: LocalStack) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@pytest.mark.parametrize("time", ["2099-01-01T00:00:00Z", "2001-01-01T00:00:00Z"])
def test_scheduled_run_out_of_range_is_an_invalid_event(
    stack: LocalStack, sandbox: XSandbox, time: str
) -> None:
    # Given: a connected account
    flows.connect(stack)
    before = _world(stack, sandbox)
    # When: a scheduled event far in the future (it wrote a 0-line export that became last_export)
    # or the past (retried until the dead-letter queue)
    answer = stack.invoke("FetchFunction", {**flows.load_event("schedule.json"), "time": time})
    # Then: refused as an invalid event, nothing dispatched, nothing written
    assert answer["status"] == "invalid_event" and "time is" in answer["error"]
    assert _queued(stack) == 0
    assert _world(stack, sandbox) == before


def test_malformed_sqs_records_are_dropped_without_an_exception(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a connected account and a batch of records no retry can fix
    flows.connect(stack)
    before = _world(stack, sandbox)
    good = flows.load_event("sqs-fetch.json")["Records"][0]
    changes: list[dict[str, Any]] = [
        {"body": {"user_id": "1700000000000000001", "snapshot_at": "2026-11-28T16:00:00Z"}},
        {"body": 42},
        {"attributes": {"ApproximateReceiveCount": "abc"}, "body": None},
        {"body": json.dumps({"user_id": "1700000000000000001", "snapshot_at": "2099-01-01T00:00:00Z"})},
        {"body": json.dumps({"user_id": "1700000000000000001", "snapshot_at": "2001-01-01T00:00:00Z"})},
        {"body": json.dumps({"user_id": "1700000000000000001\n", "snapshot_at": iso_z(datetime.now(UTC))})},
    ]
    records = [{**good, **change, "messageId": f"m{i}"} for i, change in enumerate(changes)]
    # When
    answer = stack.invoke("FetchFunction", {"Records": records})
    # Then: every one is dropped (acknowledged, so not retried), and nothing was exported or sent to X
    assert answer == {"batchItemFailures": []}
    assert _world(stack, sandbox) == before
    assert sandbox.requests_to("tweets") == 0
