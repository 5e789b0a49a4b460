"""The reliability suite's tools: independent workers, AWS faults, direct seeding, and the figures.

Each case adds what it injected and what it proved to `FIGURES`; the totals are printed at the
end of the run (and quoted in README's reliability section).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from local import aws
from local.stack import LocalStack, reset_handlers
from tests.fakes.telemetry import Recorder
from xmetrics.config import FetchSettings
from xmetrics.crypto import PlainTokens, TokenCipher
from xmetrics.deadline import Deadline
from xmetrics.services.export_account import ExportAccount
from xmetrics.store import Store
from xmetrics.wiring import Clients, FetchUseCases, aws_session, build_fetch


@dataclass
class Figures:
    faults_injected: Counter[str] = field(default_factory=Counter)
    faults_survived: Counter[str] = field(default_factory=Counter)
    outcomes: list[str] = field(default_factory=list)
    tokens_checked: int = 0
    tokens_lost: int = 0
    exports_checked: int = 0
    duplicates: int = 0
    partial_objects: int = 0
    unavoidable: list[str] = field(default_factory=list)

    def injected(self, kind: str, count: int = 1) -> None:
        self.faults_injected[kind] += count

    def survived(self, kind: str, count: int = 1) -> None:
        self.faults_survived[kind] += count


FIGURES = Figures()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES.faults_injected and not FIGURES.outcomes:
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability figures")
    width = 60
    write(f"{'fault':<{width}}{'injected':>9}{'survived':>9}")
    for kind in sorted(FIGURES.faults_injected):
        write(f"{kind:<{width}}{FIGURES.faults_injected[kind]:>9}{FIGURES.faults_survived[kind]:>9}")
    injected, survived = sum(FIGURES.faults_injected.values()), sum(FIGURES.faults_survived.values())
    write(f"{'total':<{width}}{injected:>9}{survived:>9}")
    write(
        f"tokens checked {FIGURES.tokens_checked}, lost {FIGURES.tokens_lost}; "
        f"exports checked {FIGURES.exports_checked}, duplicated {FIGURES.duplicates}, "
        f"partial {FIGURES.partial_objects}"
    )
    for line in FIGURES.outcomes:
        write(line)
    for line in FIGURES.unavoidable:
        write(f"beyond any client (counted apart): {line}")


@pytest.fixture
def figures() -> Figures:
    return FIGURES


# --- independent workers ----------------------------------------------------------------------


@dataclass
class Worker:
    """One Lambda container's worth of service: its own boto3 session, HTTP pool and telemetry."""

    service: ExportAccount
    use: FetchUseCases
    telemetry: Recorder


_WORKER_SESSIONS: list[boto3.session.Session] = []
_ACTIVE_HOOKS: list[tuple[str, Any]] = []


def new_worker(
    stack: LocalStack,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    aws_attempts: int = 8,
) -> Worker:
    session = boto3.session.Session()
    for event, hook in _ACTIVE_HOOKS:
        session.events.register(event, hook)
    _WORKER_SESSIONS.append(session)
    config = Config(
        retries={"mode": "standard", "total_max_attempts": aws_attempts}, connect_timeout=3, read_timeout=10
    )

    def factory(service: str) -> Any:
        return session.client(
            service, endpoint_url=stack.endpoint_for(service), region_name=aws.REGION, config=config
        )

    telemetry = Recorder()
    settings = FetchSettings.from_env()
    use = build_fetch(settings, Clients(factory), telemetry, sleep=sleep, clock=clock)
    return Worker(use.export, use, telemetry)


def budget(seconds: float = 300.0) -> Deadline:
    """A Lambda with this much time left, for as long as the test runs (FetchFunction's timeout)."""
    return Deadline(lambda: seconds)


# --- seeding many accounts without a browser -------------------------------------------------------


def seed_account(stack: LocalStack, username: str, user_id: str, *, expires_in: int = 7200) -> None:
    """What a finished /callback leaves behind, written directly: tokens minted by the sandbox."""
    assert stack.x is not None
    answer = stack.x.issue_tokens(username, stack.client_id, expires_in=expires_in)
    cipher = TokenCipher(stack.client("kms"), stack.resources.key_id)
    key = cipher.new_data_key(user_id)
    sealed = cipher.seal(user_id, key, PlainTokens(answer["access_token"], answer["refresh_token"]))
    Store(stack.client("dynamodb"), stack.resources.table_name).save_connection(
        user_id=user_id,
        username=username,
        sealed=sealed,
        access_expires_at=time.time() + expires_in,
        scope=answer["scope"],
        now_iso="2026-11-28T00:00:00Z",
    )


# --- AWS faults ------------------------------------------------------------------------------------


def _aws_error(service: str, status: int, code: str) -> AWSResponse:
    if service == "s3":
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        headers = {"content-type": "application/xml"}
    else:
        body = json.dumps(
            {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}
        ).encode()
        headers = {"content-type": "application/x-amz-json-1.0"}
    return AWSResponse("https://injected", status, headers, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class AwsFault:
    """Answers the next `count` calls of one operation with an error, before they reach AWS's stand-in."""

    service: str
    operation: str
    status: int
    code: str
    count: int
    when: Callable[[dict[str, Any]], bool] = lambda params: True
    fired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self._lock:
            if self.fired >= self.count:
                return None
            self.fired += 1
        return _aws_error(self.service, self.status, self.code)


@contextmanager
def aws_fault(
    service: str, operation: str, *, status: int, code: str, count: int, when: str | None = None
) -> Iterator[AwsFault]:
    """Every boto3 client made while this is active goes through the fault (the handlers' included).

    `when` limits the fault to requests whose body contains that text (e.g. one UpdateExpression).
    """
    fault = AwsFault(service, operation, status, code, count)
    event = f"before-send.{'dynamodb' if service == 'dynamodb' else service}.{operation}"

    def hook(request: Any, **kwargs: Any) -> AWSResponse | None:
        if when is not None and when.encode() not in (request.body or b""):
            return None
        return fault(request, **kwargs)

    emitters = [aws_session(), *(s.events for s in _WORKER_SESSIONS)]
    for emitter in emitters:
        emitter.register(event, hook)
    _ACTIVE_HOOKS.append((event, hook))
    reset_handlers()  # the handlers' next clients see the hook
    try:
        yield fault
    finally:
        for emitter in emitters:
            emitter.unregister(event, hook)
        _ACTIVE_HOOKS.remove((event, hook))
        reset_handlers()


@pytest.fixture(autouse=True)
def _forget_workers() -> Iterator[None]:
    yield
    _WORKER_SESSIONS.clear()
