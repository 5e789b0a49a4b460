"""Each function's IAM policy in template.yaml allows exactly the AWS calls the function makes.

The calls are recorded from the handlers themselves (botocore's before-call event) while they run
every flow: a call the policy lacks would be AccessDenied once deployed, and an allowed action no
flow uses is privilege to remove.
"""

from __future__ import annotations

import contextvars
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import pytest

from local import flows
from local.stack import CLIENT_ID, FUNCTIONS, LocalStack, reset_handlers
from local.template import function_environment, load, resource
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


def leading_keys(logical_id: str) -> dict[str, set[str]]:
    """DynamoDB action -> the partition key patterns its statement allows (dynamodb:LeadingKeys)."""
    scoped: dict[str, set[str]] = defaultdict(set)
    for policy in resource(load(), logical_id)["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []):
            condition = statement.get("Condition", {})
            # ForAllValues: every key the request names must match (ForAnyValue would need only one).
            patterns = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
            assert not any("dynamodb:LeadingKeys" in c for op, c in condition.items() if "ForAll" not in op)
            listed = statement["Action"]
            for action in [listed] if isinstance(listed, str) else listed:
                if patterns is not None:
                    scoped[action].update(patterns)
    return scoped


@pytest.fixture
def recorded(stack: LocalStack) -> Iterator[dict[str, set[str]]]:
    calls: dict[str, set[str]] = defaultdict(set)

    def hook(model: Any, **_: Any) -> None:
        if _current.get():
            action = f"{model.service_model.signing_name}:{model.name}"
            calls[_current.get()].add(_ACTION_OF.get(action, action))

    def key_hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        keys = [params.get("Key") or params.get("Item") or {}]
        keys += [k for table in (params.get("RequestItems") or {}).values() for k in table.get("Keys", [])]
        for key in keys:
            if _current.get() and "pk" in key:
                # "state#<random>" -> "state#…": the kind of item, which is what a policy can scope.
                kind = re.sub(r"#.*", "#…", key["pk"]["S"])
                calls[_current.get()].add(f"dynamodb:{model.name} {kind}")

    session = aws_session()
    session.register("before-call", hook)
    session.register("before-parameter-build.dynamodb", key_hook)
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
    session.unregister("before-parameter-build.dynamodb", key_hook)
    reset_handlers()


def test_each_function_is_allowed_exactly_what_it_calls(
    stack: LocalStack, sandbox: XSandbox, recorded: dict[str, set[str]]
) -> None:
    # When: every flow runs through the handlers, with a daily read budget
    stack.environment["DAILY_READ_BUDGET"] = "100000"
    stack.activate()
    reset_handlers()
    flows.connect(stack)
    flows.connect(stack)  # a reconnect
    make_refresh_due(stack)
    assert stack.invoke("FetchFunction", {"user_id": USER_ID})["status"] == "exported"
    # X's usage cap: the marker is written, and an hour later a probe claims it and lifts it
    snapshot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    sandbox.usage_capped = "usage_cap"
    capped = flows.schedule_event(snapshot - timedelta(hours=2))
    stack.environment["FETCH_QUEUE_URL"], queue = "", stack.environment["FETCH_QUEUE_URL"]
    stack.activate()
    reset_handlers()
    assert stack.invoke("FetchFunction", capped)["results"][0]["status"] == "usage_capped"
    sandbox.usage_capped = None
    probe = flows.schedule_event(snapshot - timedelta(hours=1))
    assert stack.invoke("FetchFunction", probe)["results"][0]["status"] == "exported"
    stack.environment["FETCH_QUEUE_URL"] = queue
    stack.activate()
    reset_handlers()
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
        actions = {call for call in recorded[logical_id] if " " not in call}
        assert actions == allowed_actions(logical_id), logical_id
    # and every DynamoDB call naming a key is scoped to exactly the kinds of items it touches
    for logical_id in FUNCTIONS:
        keyed = {tuple(call.split(" ")) for call in recorded[logical_id] if " " in call}
        scoped = leading_keys(logical_id)
        used = set()
        for action, kind in keyed:
            matching = {p for p in scoped.get(action, ()) if fnmatchcase(kind, p)}
            assert matching, f"{logical_id}: {action} on {kind} is not scoped by dynamodb:LeadingKeys"
            used |= {(action, p) for p in matching}
        assert used == {(a, p) for a, patterns in scoped.items() for p in patterns}, logical_id


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


def test_authorize_cannot_read_the_client_secret(stack: LocalStack) -> None:
    # The public /connect function needs only the client id, which is public anyway.
    authorize = resource(load(), "AuthorizeFunction")
    assert "ClientSecret" not in repr(authorize)
    assert not any(a.startswith("secretsmanager:") for a in allowed_actions("AuthorizeFunction"))
    environment = function_environment(stack.resources.resolver, "AuthorizeFunction")
    assert environment["CLIENT_ID"] == CLIENT_ID and "CLIENT_SECRET_ARN" not in environment


@pytest.mark.parametrize("prefix", ["*", "x-metrics/*", "a*b", "/x", "x/", "x//y"])
def test_export_prefix_parameter_refuses_wildcards_and_stray_slashes(prefix: str) -> None:
    # The prefix is spliced into FetchFunction's s3:PutObject resource ARN: `*` would widen it.
    pattern = load()["Parameters"]["ExportPrefix"]["AllowedPattern"]
    assert re.fullmatch(pattern, "x-metrics") and re.fullmatch(pattern, "team/x-metrics")
    assert not re.fullmatch(pattern, prefix)
