"""Every AWS call the fetch function makes, throttled, failing (5xx) and denied, one call at a time.

Nothing here lists the calls by hand. Each path of FetchFunction (a manual run with a token refresh
due and one without, one whose refresh X's token endpoint refuses and one whose refresh token is
dead, a queued job, a queued job X rate-limits, the scheduled dispatch, a disconnect) first runs
clean through the handler while a botocore before-call hook records every call it sends; an
UpdateItem is told apart by its UpdateExpression, since one operation serves the lease, the
rotation write, the lease's release, the reconnect flag, record_export and record_error. Then each
recorded call site gets each fault on every attempt of one invocation, and the case proves:
- the handler returned (nothing escaped), and its answer is the path's status (SQS's batch answer
  for the queue) and says that something failed;
- neither the answer nor the stored last_error holds a traceback, a token or the client secret;
- once the fault is gone the next run succeeds, and the stored refresh token is the one X holds
  live (a disconnect: disconnecting again removes the account; a dead token: the next run says
  needs_reconnect).
A call the faulted run makes that the clean run did not (record_error, say) is a call site too: it
gets the same faults, with the fault that revealed it kept in place so that it is reached.

Only the waiting is shortened: botocore's backoff between attempts is cut to zero (every attempt
the clients are configured with is still made and still refused), and the rotation's timing is
scaled down with the faulted invocation's Lambda timeout, because the token keeper retries a
refused rotation write until the deadline (see `_scaled_rotation`).
"""

from __future__ import annotations

import json
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.retries.standard import ExponentialBackoff

from local import flows
from local.stack import CLIENT_SECRET, LocalStack, reset_handlers
from local.x_sandbox import XSandbox
from tests.integration.helpers import USER_ID, make_refresh_due, spend_refresh_token, stored_tokens
from tests.reliability.conftest import AwsFault, Figures, aws_fault
from tests.reliability.test_faults import assert_token_alive
from xmetrics import limits
from xmetrics.wiring import aws_session

USERNAME = "ada_metrics"
# Far more than any client's attempts (8; DynamoDB 3) times the token keeper's own retries.
EVERY_ATTEMPT = 10_000
# The faulted invocation's Lambda timeout; the clean runs get FetchFunction's 300 s.
FAULT_TIMEOUT = 10.0
CLEAN_TIMEOUT = 300.0
# The one write no client can save once refused for the rest of the invocation: X has already
# spent the refresh token the stored item holds (DESIGN.md, rotation step 3).
ROTATION_WRITE = "version = :next"

# fault -> service -> (HTTP status, AWS error code); "*" for the JSON services (DynamoDB's own
# throttling code apart).
FAULTS: dict[str, dict[str, tuple[int, str]]] = {
    "throttle": {
        "dynamodb": (400, "ProvisionedThroughputExceededException"),
        "s3": (503, "SlowDown"),
        "*": (400, "ThrottlingException"),
    },
    "5xx": {
        "dynamodb": (500, "InternalServerError"),
        "s3": (500, "InternalError"),
        "*": (500, "InternalError"),
    },
    "denied": {"s3": (403, "AccessDenied"), "*": (400, "AccessDeniedException")},
}


# --- call sites -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One place the code calls AWS: botocore's service name (as in its event names), the
    operation and, for an UpdateItem, which write it is."""

    service: str
    operation: str
    expression: str | None = None

    def __str__(self) -> str:
        return f"{self.service} {self.operation}" + (f" [{self.expression}]" if self.expression else "")

    @property
    def short(self) -> str:
        """For the figures: an UpdateItem by the first attribute it writes."""
        if self.expression is None:
            return f"{self.service} {self.operation}"
        verb, first = self.expression.split()[:2]
        return f"{self.operation} {verb} {first.rstrip(',')}…"

    @property
    def when(self) -> str | None:
        """The request body's text that singles this UpdateItem out (the serialized pair, closing
        quote included, so that one expression is never matched as the prefix of another)."""
        return None if self.expression is None else json.dumps({"UpdateExpression": self.expression})[1:-1]

    def inject(self, fault: str) -> AbstractContextManager[AwsFault]:
        by_service = FAULTS[fault]
        status, code = by_service.get(self.service, by_service["*"])
        return aws_fault(
            self.service, self.operation, status=status, code=code, count=EVERY_ATTEMPT, when=self.when
        )


@dataclass(frozen=True)
class Case:
    site: Site
    # Calls that must fail first for this one to be made at all (record_error needs a failure).
    triggers: tuple[Site, ...] = ()

    def __str__(self) -> str:
        return str(self.site) + (
            f" (reached through {', '.join(map(str, self.triggers))})" if self.triggers else ""
        )


class Recorder:
    """Every call FetchFunction sends while on, from botocore's before-call event."""

    def __init__(self) -> None:
        self.on = False
        self.calls: list[Site] = []

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if not self.on:
            return
        expression = None
        if model.name == "UpdateItem":
            expression = json.loads(params["body"])["UpdateExpression"]
        self.calls.append(Site(model.service_model.service_id.hyphenize(), model.name, expression))


@pytest.fixture
def recorder(stack: LocalStack) -> Iterator[Recorder]:
    hook = Recorder()
    aws_session().register("before-call", hook)
    reset_handlers()  # clients copy the session's hooks when made: the handlers' next ones see it
    yield hook
    aws_session().unregister("before-call", hook)
    reset_handlers()


@pytest.fixture(autouse=True)
def _no_sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attempt is made and refused as configured; only the pause between two is cut (8
    throttled attempts would otherwise sleep ~35 s per call)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture(autouse=True)
def _scaled_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rotation's numbers scaled down with FAULT_TIMEOUT, in the order limits.py keeps them
    (holder < loser wait = start < lease): a refused rotation write is retried until the deadline
    (10 s here, not 300), and the lease it leaves behind runs out seconds later, not minutes."""
    scaled = replace(
        limits.ROTATION,
        write_seconds=1.0,
        holder_seconds=3.0,
        loser_wait_seconds=4.0,
        start_seconds=4.0,
        lease_seconds=5.0,
    )
    assert scaled.start_seconds < FAULT_TIMEOUT
    monkeypatch.setattr(limits, "ROTATION", scaled)


# --- runs -------------------------------------------------------------------------------------------


@dataclass
class Run:
    answer: Any
    escaped: str | None  # the traceback, when an exception left the handler
    calls: list[Site]
    message_id: str | None = None


class Bench:
    """One connected account, the handler, and the runs of each path."""

    def __init__(self, stack: LocalStack, sandbox: XSandbox, recorder: Recorder) -> None:
        self.stack = stack
        self.sandbox = sandbox
        self.recorder = recorder
        self._hours = 0

    def snapshot(self) -> datetime:
        """A distinct recent hour per run, so no run finds another's export already done."""
        self._hours += 1
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=self._hours)

    def invoke(self, event: dict[str, Any], timeout: float) -> Run:
        self.recorder.calls = []
        self.recorder.on = True
        try:
            answer = self.stack.invoke("FetchFunction", event, timeout=timeout)
        except Exception:  # noqa: BLE001 - what escaped is the finding
            return Run(None, traceback.format_exc(), self.recorder.calls)
        finally:
            self.recorder.on = False
        return Run(answer, None, self.recorder.calls)

    def manual(self, timeout: float) -> Run:
        return self.invoke({"user_id": USER_ID}, timeout)

    def manual_due(self, timeout: float) -> Run:
        make_refresh_due(self.stack)
        return self.manual(timeout)

    def token_refused(self, timeout: float) -> Run:
        """X's token endpoint answers 503 to every refresh: the grant fails and the lease is dropped."""
        make_refresh_due(self.stack)
        self.sandbox.inject("token", "status", count=100, status=503)
        try:
            return self.manual(timeout)
        finally:
            self.sandbox.clear_faults()

    def token_dead(self, timeout: float) -> Run:
        """The stored refresh token was spent elsewhere: X answers invalid_grant, the account is flagged."""
        make_refresh_due(self.stack)
        spend_refresh_token(self.stack, stored_tokens(self.stack).refresh_token)
        return self.manual(timeout)

    def queued(self, timeout: float) -> Run:
        """One job through the real queue, handed to the handler as Lambda's poller would."""
        sqs = self.stack.client("sqs")
        url = self.stack.resources.queue_url
        body = {"user_id": USER_ID, "snapshot_at": f"{self.snapshot():%Y-%m-%dT%H:%M:%SZ}"}
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
        (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])[
            "Messages"
        ]
        run = self.invoke(flows.sqs_event([message]), timeout)
        run.message_id = message["MessageId"]
        # Done or failed, the message goes: redelivery is test_faults.py's subject, not this file's.
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return run

    def queued_429(self, timeout: float) -> Run:
        """X answers 429 with a reset beyond the Lambda's time: the message is deferred."""
        self.sandbox.inject("tweets", "rate_limit", count=1, reset_in=900)
        try:
            return self.queued(timeout)
        finally:
            self.sandbox.clear_faults()  # unspent when the run failed before reaching X

    def dispatch(self, timeout: float) -> Run:
        run = self.invoke(flows.schedule_event(self.snapshot()), timeout)
        self.purge()
        return run

    def dispatch_and_work(self, timeout: float) -> Run:
        """The schedule fires, then the worker takes what it queued (the clean run of dispatch)."""
        run = self.invoke(flows.schedule_event(self.snapshot()), timeout)
        answers = flows.drain_queue(self.stack)
        if _dispatched(run) and (run.answer["queued"] != 1 or answers != [{"batchItemFailures": []}]):
            run.answer = {"status": "failed", "error": f"queued {run.answer['queued']}, worker: {answers!r}"}
        return run

    def disconnect(self, timeout: float) -> Run:
        self.connected()
        return self.disconnect_again(timeout)

    def disconnect_again(self, timeout: float) -> Run:
        return self.invoke({"action": "disconnect", "user_id": USER_ID}, timeout)

    def purge(self) -> None:
        sqs = self.stack.client("sqs")
        url = self.stack.resources.queue_url
        while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages"
        ):
            for message in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def item(self) -> dict[str, Any] | None:
        answer = self.stack.client("dynamodb").get_item(
            TableName=self.stack.resources.table_name,
            Key={"pk": {"S": f"account#{USER_ID}"}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def connected(self) -> None:
        """The account connected and active (a disconnect, or a lost token, left it otherwise)."""
        item = self.item()
        if item is None or item["status"]["S"] != "active":
            flows.connect(self.stack)

    def wait_out_lease(self) -> None:
        """A failed run may leave its lease behind (it runs out by itself): the next scheduled run
        comes long after; here, just after it has run out."""
        until = float((self.item() or {}).get("lease_until", {}).get("N", 0))
        if until > time.time():
            time.sleep(until - time.time() + 0.2)

    def token_lost(self) -> bool:
        if self.item() is None:
            return False
        assert self.stack.x is not None
        live = self.stack.x.live_refresh_token(USERNAME, self.stack.client_id)
        return stored_tokens(self.stack).refresh_token != live

    def leak(self, run: Run) -> str | None:
        """A traceback, a token or the client secret in the answer or the stored last_error."""
        item = self.item() or {}
        texts = {
            "answer": json.dumps(run.answer, default=str),
            "last_error": item.get("last_error", {}).get("S", ""),
        }
        secrets = self.sandbox.issued_secrets() | {CLIENT_SECRET}
        for where, text in texts.items():
            if "Traceback" in text or 'File "' in text:
                return f"a traceback in the {where}: {text}"
            if any(secret in text for secret in secrets):
                return f"a token or the client secret in the {where}"
        return None


# --- what each path answers -------------------------------------------------------------------------

SUMMARY_STATUSES = {"exported", "failed", "not_found", "needs_reconnect"}


def _summary_shape(run: Run) -> str | None:
    answer = run.answer
    if not isinstance(answer, dict) or answer.get("status") not in SUMMARY_STATUSES:
        return f"not a fetch status: {answer!r}"
    if answer.get("user_id") != USER_ID:
        return f"the summary names another account: {answer!r}"
    if answer["status"] != "exported" and not isinstance(answer.get("error"), str):
        return f"a failure without an error message: {answer!r}"
    return None


def _batch_shape(run: Run) -> str | None:
    if run.answer not in (
        {"batchItemFailures": []},
        {"batchItemFailures": [{"itemIdentifier": run.message_id}]},
    ):
        return f"not SQS's partial batch answer for this message: {run.answer!r}"
    return None


def _dispatch_shape(run: Run) -> str | None:
    answer = run.answer
    if not isinstance(answer, dict) or answer.get("status") not in ("dispatched", "failed"):
        return f"not a dispatch status: {answer!r}"
    if answer["status"] == "failed" and not isinstance(answer.get("error"), str):
        return f"a failed dispatch without an error message: {answer!r}"
    return None


def _disconnect_shape(run: Run) -> str | None:
    answer = run.answer
    if not isinstance(answer, dict) or answer.get("status") not in ("disconnected", "not_found", "failed"):
        return f"not a disconnect status: {answer!r}"
    if answer["status"] == "failed" and not isinstance(answer.get("error"), str):
        return f"a failed disconnect without an error message: {answer!r}"
    return None


def _says_failed(run: Run) -> bool:
    """The answer admits that something failed (a disconnect that skipped the revoke says why)."""
    answer = run.answer
    if isinstance(answer, dict) and "batchItemFailures" in answer:
        return bool(answer["batchItemFailures"])
    return isinstance(answer, dict) and (answer.get("status") == "failed" or bool(answer.get("error")))


def _exported_refreshed(run: Run) -> bool:
    return isinstance(run.answer, dict) and run.answer.get("status") == "exported" and run.answer["refreshed"]


def _failed(run: Run) -> bool:
    return isinstance(run.answer, dict) and run.answer.get("status") == "failed"


def _needs_reconnect(run: Run) -> bool:
    return isinstance(run.answer, dict) and run.answer.get("status") == "needs_reconnect"


def _exported(run: Run) -> bool:
    return isinstance(run.answer, dict) and run.answer.get("status") == "exported"


def _batch_done(run: Run) -> bool:
    return run.answer == {"batchItemFailures": []}


def _batch_deferred(run: Run) -> bool:
    return run.answer == {"batchItemFailures": [{"itemIdentifier": run.message_id}]}


def _dispatched(run: Run) -> bool:
    return isinstance(run.answer, dict) and run.answer.get("status") == "dispatched"


def _disconnected(run: Run) -> bool:
    return (
        isinstance(run.answer, dict) and run.answer.get("status") == "disconnected" and run.answer["revoked"]
    )


def _gone(run: Run) -> bool:
    return isinstance(run.answer, dict) and run.answer.get("status") in ("disconnected", "not_found")


@dataclass(frozen=True)
class Path:
    run: Callable[[Bench, float], Run]
    shape: Callable[[Run], str | None]
    clean: Callable[[Run], bool]  # what the clean (recording) run answers
    # The run after the fault is gone (with a refresh due, so it proves the stored refresh token
    # works at X), and what it must answer.
    recover: Callable[[Bench, float], Run]
    recovered: Callable[[Run], bool]
    # (service, operation) the clean run must be seen making: the recording is not silently empty.
    minimum: frozenset[tuple[str, str]]
    # A disconnect revokes the grant first: afterwards the account is gone, not exporting.
    disconnects: bool = False
    # The path spends the refresh token itself: afterwards the account needs a reconnect.
    token_dead: bool = False


def _due(run: Callable[[Bench, float], Run]) -> Callable[[Bench, float], Run]:
    def recover(bench: Bench, timeout: float) -> Run:
        make_refresh_due(bench.stack)
        return run(bench, timeout)

    return recover


# An export's first read takes the account and the usage-cap marker in one BatchGetItem.
_RUN = frozenset({("dynamodb", "BatchGetItem"), ("kms", "Decrypt")})
_ACCOUNT = frozenset({("dynamodb", "GetItem"), ("kms", "Decrypt")})
_EXPORT = _RUN | {("s3", "PutObject"), ("dynamodb", "UpdateItem")}

PATHS: dict[str, Path] = {
    "manual, refresh due": Path(
        Bench.manual_due,
        _summary_shape,
        _exported_refreshed,
        _due(Bench.manual),
        _exported_refreshed,
        _EXPORT | {("secrets-manager", "GetSecretValue")},
    ),
    "manual": Path(Bench.manual, _summary_shape, _exported, _due(Bench.manual), _exported_refreshed, _EXPORT),
    "manual, token endpoint refuses": Path(
        Bench.token_refused,
        _summary_shape,
        _failed,
        _due(Bench.manual),
        _exported_refreshed,
        _RUN | {("secrets-manager", "GetSecretValue"), ("dynamodb", "UpdateItem")},
    ),
    "manual, refresh token dead": Path(
        Bench.token_dead,
        _summary_shape,
        _needs_reconnect,
        Bench.manual,
        _needs_reconnect,
        _RUN | {("secrets-manager", "GetSecretValue"), ("dynamodb", "UpdateItem")},
        token_dead=True,
    ),
    "queue": Path(Bench.queued, _batch_shape, _batch_done, _due(Bench.queued), _batch_done, _EXPORT),
    "queue, X answers 429": Path(
        Bench.queued_429,
        _batch_shape,
        _batch_deferred,
        _due(Bench.queued),
        _batch_done,
        _RUN | {("sqs", "ChangeMessageVisibility")},
    ),
    "scheduled dispatch": Path(
        Bench.dispatch,
        _dispatch_shape,
        _dispatched,
        _due(Bench.dispatch_and_work),
        _dispatched,
        frozenset({("dynamodb", "Scan"), ("sqs", "SendMessageBatch")}),
    ),
    "disconnect": Path(
        Bench.disconnect,
        _disconnect_shape,
        _disconnected,
        Bench.disconnect_again,
        _gone,
        _ACCOUNT | {("secrets-manager", "GetSecretValue"), ("dynamodb", "DeleteItem")},
        disconnects=True,
    ),
}


# --- the cases ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    revealed: list[Site] = field(default_factory=list)  # calls the faulted run made, the clean one not
    fired: int = 0
    unavoidable: str | None = None


def _fault_run(bench: Bench, path: Path, fault: str, case: Case) -> tuple[Run, int]:
    bench.connected()  # before the fault: connecting makes some of the same calls
    with ExitStack() as active:
        for trigger in case.triggers:
            active.enter_context(trigger.inject(fault))
        injected = active.enter_context(case.site.inject(fault))
        run = path.run(bench, FAULT_TIMEOUT)
    return run, injected.fired


def _check_answer(bench: Bench, path: Path, run: Run, fired: int) -> list[str]:
    if run.escaped is not None:
        return [f"an exception escaped the handler:\n{run.escaped}"]
    problems = []
    if fired == 0:
        problems.append("the fault was never reached: the call was not made")
    elif not _says_failed(run):
        problems.append(f"the answer does not say anything failed: {run.answer!r}")
    shape = path.shape(run)
    if shape:
        problems.append(shape)
    leak = bench.leak(run)
    if leak:
        problems.append(leak)
    return problems


def _recover(bench: Bench, path: Path, case: Case, run: Run, outcome: Outcome) -> None:
    """The fault gone, the next run succeeds and the refresh token lives (or, for the one write
    no client can save, the loss is said at once)."""
    if path.disconnects:
        after = path.recover(bench, CLEAN_TIMEOUT)
        if after.escaped or not path.recovered(after) or bench.item() is not None:
            outcome.problems.append(f"disconnecting again did not remove the account: {after.answer!r}")
        return
    if not path.token_dead and bench.token_lost():
        refused = (case.site, *case.triggers)
        if any(s.expression and ROTATION_WRITE in s.expression for s in refused) and _says_failed(run):
            _report_loss(bench, case, outcome)
            return
        outcome.problems.append("the stored refresh token is no longer the one X holds live")
        bench.connected()
    bench.wait_out_lease()
    refreshes = bench.sandbox.refresh_count
    after = path.recover(bench, CLEAN_TIMEOUT)
    if after.escaped or not path.recovered(after):
        outcome.problems.append(
            f"the run after the fault did not succeed: {after.answer!r} {after.escaped or ''}"
        )
    if path.token_dead:
        return  # said needs_reconnect, as it must: the next case reconnects
    if bench.sandbox.refresh_count == refreshes:
        outcome.problems.append("the run after the fault did not refresh the token")
    try:
        assert_token_alive(bench.stack, USERNAME, USER_ID)
    except AssertionError as exc:
        outcome.problems.append(f"after the fault: {exc}")


def _report_loss(bench: Bench, case: Case, outcome: Outcome) -> None:
    """X spent the refresh token and the write of its successor was refused until the deadline:
    no client gets that token back. What is owed is saying so at once: the next run answers
    needs_reconnect (and marks the account), then a reconnect brings it back."""
    after = bench.manual(CLEAN_TIMEOUT)
    status = after.answer.get("status") if isinstance(after.answer, dict) else None
    if status != "needs_reconnect":
        outcome.problems.append(f"the lost token was not reported by the next run: {after.answer!r}")
    outcome.unavoidable = (
        f"{case.site.short} refused for the whole invocation, X had rotated -> next run {status}"
    )
    bench.connected()


def _one_case(bench: Bench, path: Path, fault: str, case: Case, known: set[Site]) -> Outcome:
    run, fired = _fault_run(bench, path, fault, case)
    outcome = Outcome(fired=fired)
    outcome.problems = _check_answer(bench, path, run, fired)
    outcome.revealed = [site for site in dict.fromkeys(run.calls) if site not in known]
    if run.escaped is None:
        _recover(bench, path, case, run, outcome)
    return outcome


def _record(bench: Bench, name: str, path: Path) -> list[Site]:
    clean = path.run(bench, CLEAN_TIMEOUT)
    assert clean.escaped is None, clean.escaped
    assert path.clean(clean), f"{name}: the clean run answered {clean.answer!r}"
    sites = list(dict.fromkeys(clean.calls))
    seen = {(site.service, site.operation) for site in sites}
    assert path.minimum <= seen, f"{name}: the recording missed {sorted(path.minimum - seen)}"
    return sites


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", list(PATHS))
def test_every_aws_call_refused_on_every_attempt_is_a_status(
    stack: LocalStack, sandbox: XSandbox, recorder: Recorder, figures: Figures, name: str, fault: str
) -> None:
    # Given: a connected account, and every call this path makes, recorded from a clean run
    path = PATHS[name]
    flows.connect(stack)
    bench = Bench(stack, sandbox, recorder)
    sites = _record(bench, name, path)
    cases = [Case(site) for site in sites]
    known = set(sites)
    report: list[str] = []
    tally: Counter[str] = Counter()
    # When: each call site in turn is refused on every attempt for one invocation
    for case in cases:  # grows while running: a faulted run may reveal an error path's calls
        outcome = _one_case(bench, path, fault, case, known)
        for site in outcome.revealed:
            known.add(site)
            cases.append(Case(site, (*case.triggers, case.site)))
        label = f"aws {case.site.short} {fault}, every attempt"
        figures.injected(label, outcome.fired)
        tally["cases"] += 1
        if outcome.unavoidable:
            figures.unavoidable.append(f"{name}: {outcome.unavoidable} under {fault}")
        if outcome.problems:
            report.append(f"{name} | {case} | {fault}:\n  " + "\n  ".join(outcome.problems))
        elif not outcome.unavoidable:
            figures.survived(label, outcome.fired)
            tally["survived"] += 1
    figures.outcomes.append(
        f"every AWS call, {name}, {fault}: {tally['cases']} call sites refused on every attempt, "
        f"{tally['survived']} survived ({', '.join(c.site.short for c in cases)})"
    )
    # Then: every case answered a status, leaked nothing, and the account came back
    assert len(cases) >= len(path.minimum)
    assert not report, "\n\n".join(report)
