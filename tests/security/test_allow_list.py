"""ALLOWED_X_USERS: an account not on the list is refused, its grant revoked at X, nothing stored."""

from __future__ import annotations

import pytest

from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox


def _restrict(stack: LocalStack, allowed: str) -> None:
    stack.environment["ALLOWED_X_USERS"] = allowed
    stack.activate()


def _items(stack: LocalStack) -> list[dict[str, object]]:
    return list(stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Items"])


def test_account_not_on_the_list_is_refused_revoked_and_not_stored(
    stack: LocalStack, sandbox: XSandbox
) -> None:
    # Given: only @someone_else may connect
    _restrict(stack, "someone_else, 42")
    revokes_before = sandbox.requests_to("revoke")
    # When: @ada_metrics goes through the flow
    response = flows.connect(stack)
    # Then: a 403 page naming the account, the grant revoked at X, the table empty
    assert response["statusCode"] == 403
    assert "@ada_metrics is not on this deployment" in response["body"]
    assert sandbox.requests_to("revoke") > revokes_before
    assert sandbox.live_refresh_token("ada_metrics", stack.client_id) is None
    assert _items(stack) == []


@pytest.mark.parametrize("entry", ["ada_metrics", "@ADA_Metrics", "1700000000000000001"])
def test_listed_account_connects_by_name_or_id(stack: LocalStack, entry: str) -> None:
    _restrict(stack, f"someone_else,{entry}")
    response = flows.connect(stack)
    assert response["statusCode"] == 200 and "@ada_metrics" in response["body"]
    assert len(_items(stack)) == 1
