from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.x_sandbox import XSandbox
from tests.sandbox.helpers import ADA, CONFIDENTIAL, GRACE, PUBLIC, REDIRECT, SECRET, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def x(clock: FakeClock) -> Iterator[XSandbox]:
    with XSandbox(clock=clock) as sandbox:
        sandbox.add_user("ada_metrics", user_id=ADA, tweet_count=25, days=25)
        sandbox.add_user("grace", user_id=GRACE, tweet_count=12, days=40)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        sandbox.register_client(PUBLIC, None, [REDIRECT])
        yield sandbox
