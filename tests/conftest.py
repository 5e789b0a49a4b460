from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from local import aws
from local.stack import LocalStack, reset_handlers
from local.x_sandbox import XSandbox


@pytest.fixture(scope="session")
def moto_server() -> Iterator[aws.MotoServer]:
    server = aws.MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def sandbox() -> Iterator[XSandbox]:
    with XSandbox() as x:
        x.add_user("ada_metrics", user_id="1700000000000000001", tweet_count=25)
        yield x


@pytest.fixture
def stack(moto_server: aws.MotoServer, sandbox: XSandbox) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    local = LocalStack.start(moto=moto_server, sandbox=sandbox)
    yield local
    os.environ.clear()
    os.environ.update(saved)
    reset_handlers()
