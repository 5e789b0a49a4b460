from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from local import aws
from local.dynamodb_local import DynamoDBLocal, DynamoDBLocalMissing, distribution
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import XSandbox

_DYNAMODB_RAN: list[DynamoDBLocal] = []


def pytest_report_header(config: Any) -> str:
    try:
        engine = distribution().engine
    except DynamoDBLocalMissing as exc:
        engine = f"DynamoDB Local is missing, every test with a stack will fail: {exc}"
    return f"dynamodb: {engine} (tests with a stack; moto for S3, SQS, KMS, Secrets Manager)"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for server in _DYNAMODB_RAN:
        terminalreporter.write_line(
            f"dynamodb: {server.describe()} ran, started in {server.startup_seconds:.1f} s"
        )


@pytest.fixture(scope="session")
def moto_server() -> Iterator[aws.MotoServer]:
    server = aws.MotoServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """AWS's DynamoDB Local, once per run, under every test with a stack. Without Java or the jar
    the tests fail with the fix in the message, never skip: they are here to run on the real engine."""
    server = DynamoDBLocal().start()
    _DYNAMODB_RAN.append(server)
    yield server
    server.stop()


@pytest.fixture
def sandbox() -> Iterator[XSandbox]:
    with XSandbox() as x:
        x.add_user("ada_metrics", user_id="1700000000000000001", tweet_count=25)
        yield x


@pytest.fixture
def stack(
    moto_server: aws.MotoServer, dynamodb_local: DynamoDBLocal, sandbox: XSandbox
) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    local = LocalStack.start(moto=moto_server, sandbox=sandbox, dynamodb_endpoint=dynamodb_local.endpoint)
    yield local
    os.environ.clear()
    os.environ.update(saved)
    reset_handlers()
