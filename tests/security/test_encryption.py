"""Tokens at rest: encrypted per account under the KMS key, never in clear, bound to their account."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from local import flows
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, account_item, make_refresh_due
from xmetrics.wiring import aws_session

OTHER = "1700000000000000009"


def _scan(stack: LocalStack) -> list[dict[str, Any]]:
    return list(stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Items"])


@pytest.fixture
def kms_calls(stack: LocalStack) -> Iterator[list[str]]:
    calls: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        calls.append(model.name)

    session = aws_session()
    session.register("before-call.kms", hook)
    reset_handlers()
    yield calls
    session.unregister("before-call.kms", hook)
    reset_handlers()


def test_a_plain_read_of_the_table_shows_no_token(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a connect, then a refresh (rotated tokens are sealed too)
    flows.connect(stack)
    make_refresh_due(stack)
    assert stack.invoke("FetchFunction", {"user_id": USER_ID})["refreshed"] is True
    # When: someone with read access to the table dumps it
    dump = repr(_scan(stack))
    # Then: no token, raw or base64, is in it; the token fields are binary ciphertext
    for secret in sandbox.issued_secrets():
        assert secret not in dump and base64.b64encode(secret.encode()).decode() not in dump
    item = account_item(stack)
    assert {"B"} == set(item["access_token"]) == set(item["refresh_token"]) == set(item["data_key"])


def test_one_kms_call_per_run_even_with_a_refresh(stack: LocalStack, kms_calls: list[str]) -> None:
    flows.connect(stack)
    assert kms_calls == ["GenerateDataKey"]
    make_refresh_due(stack)
    kms_calls.clear()
    summary = stack.invoke("FetchFunction", {"user_id": USER_ID})
    assert summary["refreshed"] is True and kms_calls == ["Decrypt"]


def test_tokens_moved_to_another_account_do_not_open(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: two accounts, and someone copying the first one's sealed tokens onto the second
    flows.connect(stack)
    sandbox.add_user("second", user_id=OTHER, tweet_count=5)
    sandbox.login_as("second")
    flows.connect(stack)
    source = account_item(stack)
    stack.client("dynamodb").update_item(
        TableName=stack.resources.table_name,
        Key={"pk": {"S": f"account#{OTHER}"}},
        UpdateExpression="SET data_key = :k, access_token = :a, refresh_token = :r",
        ExpressionAttributeValues={
            ":k": source["data_key"],
            ":a": source["access_token"],
            ":r": source["refresh_token"],
        },
    )
    calls = sandbox.requests_to("tweets")
    # When
    summary = stack.invoke("FetchFunction", {"user_id": OTHER})
    # Then: KMS refuses the data key under the other account's context; X is never called with it
    assert summary["status"] == "failed" and "do not decrypt" in summary["error"]
    assert sandbox.requests_to("tweets") == calls
