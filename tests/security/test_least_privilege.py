"""Each function's IAM policy in template.yaml allows exactly the AWS calls the function makes.

The calls are recorded from the handlers themselves (botocore's before-call event) while they run
every flow: a call the policy lacks would be AccessDenied once deployed, and an allowed action no
flow uses is privilege to remove.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local import flows
from local.stack import FUNCTIONS, LocalStack, reset_handlers
from local.template import load, resource
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, make_refresh_due
from xmetrics.wiring import aws_session

# IAM action for an API operation, where the two differ.
_ACTION_OF = {"sqs:SendMessageBatch": "sqs:SendMessage", "sqs:DeleteMessageBatch": "sqs:DeleteMessage"}
_MANAGED = {"AWSSecretsManagerGetSecretValuePolicy": ["secretsmanager:GetSecretValue"]}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("function", default="")


def allowed_actions(logical_id: str) -> set[str]:
    actions: set[str] = set()
    for policy in resource(load(), logical_id)["Properties"].get("Policies", []):
        for name, managed in _MANAGED.items():
            if name in policy:
                actions.update(managed)
        for statement in policy.get("Statement", []):
            assert statement["Effect"] == "Allow"
            assert statement["Resource"] != "*", f"{logical_id}: {statement.get('Sid')} on every resource"
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


@pytest.fixture
def recorded(stack: LocalStack) -> Iterator[dict[str, set[str]]]:
    calls: dict[str, set[str]] = defaultdict(set)

    def hook(model: Any, **_: Any) -> None:
        if _current.get():
            action = f"{model.service_model.signing_name}:{model.name}"
            calls[_current.get()].add(_ACTION_OF.get(action, action))

    session = aws_session()
    session.register("before-call", hook)
    reset_handlers()
    original = stack.invoke

    def invoke(logical_id: str, event: Any, **kwargs: Any) -> Any:
        token = _current.set(logical_id)
        try:
            return original(logical_id, event, **kwargs)
        finally:
            _current.reset(token)

    stack.invoke = invoke  # type: ignore[method-assign]
    yield calls
    session.unregister("before-call", hook)
    reset_handlers()


def test_each_function_is_allowed_exactly_what_it_calls(
    stack: LocalStack, sandbox: XSandbox, recorded: dict[str, set[str]]
) -> None:
    # When: every flow runs through the handlers
    flows.connect(stack)
    flows.connect(stack)  # a reconnect
    make_refresh_due(stack)
    assert stack.invoke("FetchFunction", {"user_id": USER_ID})["status"] == "exported"
    snapshot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert stack.invoke("FetchFunction", flows.schedule_event(snapshot))["queued"] == 1
    sandbox.inject("tweets", "rate_limit", count=1, reset_in=900)
    (answer,) = flows.drain_queue(stack)
    assert len(answer["batchItemFailures"]) == 1  # deferred: ChangeMessageVisibility
    assert (
        stack.invoke("FetchFunction", {"action": "disconnect", "user_id": USER_ID})["status"]
        == "disconnected"
    )
    # Then: per function, the calls made are exactly the actions allowed
    assert set(recorded) == set(FUNCTIONS)
    for logical_id in FUNCTIONS:
        assert recorded[logical_id] == allowed_actions(logical_id), logical_id


def test_the_table_and_key_are_protected_at_rest() -> None:
    template = load()
    key = resource(template, "TokenKey")["Properties"]
    assert key["EnableKeyRotation"] is True
    table = resource(template, "TokenTable")["Properties"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True
    bucket = resource(template, "ExportBucket")["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    policy = resource(template, "ExportBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy
    )
