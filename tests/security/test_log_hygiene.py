"""With DEBUG logging everywhere and whole events logged, no secret reaches a log line or a page."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from local import flows
from local.stack import CLIENT_SECRET, FUNCTIONS, LocalStack, handler_module
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, make_refresh_due
from xmetrics import observability


@pytest.fixture
def loud(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    """The functions at DEBUG, logging every incoming event whole, as a user debugging might set them."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    level = observability.logger.log_level
    observability.logger.setLevel("DEBUG")
    # The handlers read POWERTOOLS_LOGGER_LOG_EVENT when they are decorated, i.e. at import.
    modules = [handler_module(name) for name in FUNCTIONS]
    for module in modules:
        importlib.reload(module)
    yield stack
    observability.logger.setLevel(level)
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    for module in modules:
        importlib.reload(module)


def _state_verifiers(stack: LocalStack) -> set[str]:
    items = stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Items"]
    return {i["code_verifier"]["S"] for i in items if "code_verifier" in i}


def test_no_secret_in_any_log_line_or_response(
    loud: LocalStack,
    sandbox: XSandbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    responses: list[Any] = []
    cookies: set[str] = set()
    verifiers: set[str] = set()
    # A connect that succeeds, with the verifier read from the table before the callback spends it
    hop = flows.start_connect(loud)
    verifiers |= _state_verifiers(loud)
    cookies.add(hop.cookie.split("=", 1)[1])
    redirect = flows.authorize_at_x(hop.location)
    responses += [hop.response, flows.finish_connect(loud, redirect, hop.cookie)]
    # A replayed callback (the same code and state), and one whose code X refuses
    responses.append(flows.finish_connect(loud, redirect, hop.cookie))
    hop = flows.start_connect(loud)
    verifiers |= _state_verifiers(loud)
    redirect = flows.authorize_at_x(hop.location)
    sandbox.inject("token", "status", count=1, status=400, body={"error": "invalid_request"})
    responses.append(flows.finish_connect(loud, redirect, hop.cookie))
    # A refresh, a fetch whose first token X refuses (401 path), then a disconnect that revokes
    make_refresh_due(loud)
    responses.append(loud.invoke("FetchFunction", {"user_id": USER_ID}))
    sandbox.expire_access_tokens("ada_metrics")
    responses.append(loud.invoke("FetchFunction", {"user_id": USER_ID}))
    responses.append(loud.invoke("FetchFunction", {"action": "disconnect", "user_id": USER_ID}))

    secrets = sandbox.issued_secrets() | verifiers | cookies | {CLIENT_SECRET}
    assert len(secrets) >= 8 and all(len(s) >= 16 for s in secrets)
    captured = capfd.readouterr()
    logged = captured.out + captured.err + caplog.text
    assert "account connected" in logged  # the logs are really there
    assert "rawQueryString" in logged  # and the events were logged whole
    # /connect's Set-Cookie is where the browser secret is meant to go; nothing else may show it.
    shown = repr([{k: v for k, v in r.items() if k != "cookies"} for r in responses])
    leaks = [s[:6] + "..." for s in secrets if s in logged or s in shown]
    assert leaks == []
