"""The rotation never outlives its Lambda: reproduced with the X sandbox, DynamoDB Local, a real
process kill, and an injected clock and deadline.

Lambda kills a function at its timeout, mid-line. If that happens after X rotated the refresh
token and before the new one is stored, the account is lost until a person reconnects it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

from local import flows
from local.stack import LocalStack
from local.template import ROOT
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, account_item, make_refresh_due, stored_tokens
from tests.reliability.conftest import Figures, aws_fault, budget, new_worker
from xmetrics.deadline import Deadline
from xmetrics.limits import ROTATION
from xmetrics.services.window import make_job

KILL_AFTER = 6.0  # the function's timeout in this scenario
X_ANSWERS_AFTER = 8.0  # X processes the refresh at once, then answers this late

_CHILD = textwrap.dedent(
    """
    import json, sys
    from local.lambda_context import LocalContext
    from local.stack import handler_module

    event, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
    context = LocalContext(function_name="FetchFunction", timeout_seconds=timeout)
    print(json.dumps(handler_module("FetchFunction").lambda_handler(event, context)), flush=True)
    """
)


def _invoke_and_kill(stack: LocalStack, claimed_timeout: float) -> tuple[str, float]:
    """FetchFunction in its own process, killed KILL_AFTER seconds in, as Lambda's hard timeout
    would. `claimed_timeout` is what its context says it has (a lying context is the safeguard
    check: the code then cannot know the kill is coming)."""
    env = {**os.environ, **stack.environment, "PYTHONPATH": f"{ROOT / 'layers' / 'common'}:{ROOT}"}
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps({"user_id": USER_ID}), str(claimed_timeout)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, _ = child.communicate(timeout=KILL_AFTER)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return "killed", time.monotonic() - started
    return out.strip().splitlines()[-1], time.monotonic() - started


def _token_alive(stack: LocalStack) -> bool:
    assert stack.x is not None
    return stored_tokens(stack).refresh_token == stack.x.live_refresh_token("ada_metrics", stack.client_id)


def test_a_rotation_is_not_started_by_an_invocation_that_would_be_killed_mid_way(
    stack: LocalStack, sandbox: XSandbox, figures: Figures
) -> None:
    # Given: a due token, and an X that rotates at once but answers 8 s later
    flows.connect(stack)
    make_refresh_due(stack)
    sandbox.inject("token", "delay_after_processing", count=1, seconds=X_ANSWERS_AFTER)
    posts_before = sandbox.requests_to("token")
    # When: FetchFunction runs with a 6 s timeout, and is killed at 6 s
    answer, _ = _invoke_and_kill(stack, claimed_timeout=KILL_AFTER)
    # Then: it handed the account back without calling X, so there was nothing for the kill to lose
    figures.injected("lambda killed 6 s into a due refresh (X answers after 8 s)")
    assert answer != "killed"
    summary = json.loads(answer)
    assert summary["status"] == "failed" and "not enough time" in summary["error"]
    assert sandbox.requests_to("token") == posts_before
    assert account_item(stack).get("lease_owner") is None
    # And: the next invocation, with its full timeout, rotates and exports
    result = stack.invoke("FetchFunction", {"user_id": USER_ID}, timeout=300)
    assert result["status"] == "exported" and result["refreshed"] is True
    assert _token_alive(stack)
    figures.survived("lambda killed 6 s into a due refresh (X answers after 8 s)")


def test_without_the_deadline_check_the_kill_loses_the_token(stack: LocalStack, sandbox: XSandbox) -> None:
    """Safeguard check: the same kill, with a context that hides the coming kill, spends the token
    at X and leaves the old one stored: the next run can only say needs_reconnect."""
    flows.connect(stack)
    make_refresh_due(stack)
    sandbox.inject("token", "delay_after_processing", count=1, seconds=X_ANSWERS_AFTER)
    answer, elapsed = _invoke_and_kill(stack, claimed_timeout=900)
    assert answer == "killed" and elapsed >= KILL_AFTER
    time.sleep(0.5)
    assert not _token_alive(stack)
    # The killed holder's lease must run out before anyone may try again.
    item = account_item(stack)
    assert float(item["lease_until"]["N"]) - time.time() > ROTATION.loser_wait_seconds - 30


def test_a_rotation_write_throttled_past_the_lease_still_lands(stack: LocalStack, figures: Figures) -> None:
    """The keeper used to give up at lease expiry and drop the rotated token, although the next
    write would have landed. Played on an injected clock: each retry's pause passes at once."""
    flows.connect(stack)
    make_refresh_due(stack)
    clock = {"now": time.time()}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    started = clock["now"]
    label = "aws dynamodb rotation write throttled past the lease"
    with aws_fault(
        "dynamodb", "UpdateItem", status=400, code="ThrottlingException", count=80, when="version = :next"
    ) as fault:
        worker = new_worker(stack, sleep=sleep, clock=lambda: clock["now"], aws_attempts=1)
        summary = worker.service.run(make_job(USER_ID, _snapshot()), budget(300))
    figures.injected(label, fault.fired)
    assert fault.fired == 80
    assert summary.status == "exported" and summary.refreshed
    assert clock["now"] - started > ROTATION.lease_seconds
    assert _token_alive(stack)
    figures.survived(label, fault.fired)


def test_a_queued_message_without_time_for_a_rotation_is_handed_back(stack: LocalStack) -> None:
    flows.connect(stack)
    make_refresh_due(stack)
    posts_before = stack.x.requests_to("token") if stack.x else 0
    worker = new_worker(stack)
    summary = worker.service.run(make_job(USER_ID, _snapshot()), Deadline(lambda: ROTATION.start_seconds - 1))
    assert summary.status == "failed" and summary.retry_after is None
    assert stack.x is not None and stack.x.requests_to("token") == posts_before
    assert worker.telemetry.metrics.get("HandedBack") == 1


def _snapshot() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
