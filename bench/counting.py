"""Counting what one invocation asks of AWS and X, from the outside.

AWS: botocore's own events on `xmetrics.wiring.aws_session()`, which `xmetrics.wiring.Clients`
builds its clients from. A client copies the session's handlers when it is created, so the counter is
installed before the first handler runs. `before-call` fires once per API operation,
`before-send` once per HTTP attempt (so attempts - operations = retries).

X: the sandbox's own request log. Only what happens on the recording thread inside a
`window()` counts: the bench's own setup calls (sending, receiving, deleting queue messages)
and moto's server threads stay out.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local.x_sandbox import XSandbox
from xmetrics.wiring import aws_session


@dataclass
class Calls:
    aws: Counter[str] = field(default_factory=Counter)  # "dynamodb.GetItem" -> operations
    attempts: Counter[str] = field(default_factory=Counter)  # HTTP attempts, retries included
    x: Counter[str] = field(default_factory=Counter)  # sandbox endpoint -> requests
    x_failed: int = 0

    def service(self, name: str) -> int:
        return sum(n for op, n in self.aws.items() if op.split(".", 1)[0] == name)

    def ops(self, name: str) -> str:
        parts = [
            f"{op.split('.', 1)[1]} {n}" for op, n in sorted(self.aws.items()) if op.startswith(name + ".")
        ]
        return ", ".join(parts) or "-"

    @property
    def retries(self) -> int:
        return sum(self.attempts.values()) - sum(self.aws.values())


class CallCounter:
    def __init__(self) -> None:
        self._thread: int | None = None
        self._current: Calls | None = None

    def install(self) -> None:
        session = aws_session()
        session.register("before-call", self._on_call)
        session.register("before-send", self._on_send)

    def _recording(self) -> Calls | None:
        if self._current is not None and threading.get_ident() == self._thread:
            return self._current
        return None

    def _on_call(self, event_name: str, **kwargs: Any) -> None:
        calls = self._recording()
        if calls is not None:
            _, service, operation = event_name.split(".", 2)
            calls.aws[f"{service}.{operation}"] += 1

    def _on_send(self, event_name: str, **kwargs: Any) -> None:
        calls = self._recording()
        if calls is not None:
            _, service, operation = event_name.split(".", 2)
            calls.attempts[f"{service}.{operation}"] += 1

    @contextmanager
    def window(self, sandbox: XSandbox) -> Iterator[Calls]:
        calls = Calls()
        start = len(sandbox.request_log)
        self._thread, self._current = threading.get_ident(), calls
        try:
            yield calls
        finally:
            self._thread, self._current = None, None
            for entry in sandbox.request_log[start:]:
                calls.x[entry.endpoint] += 1
                calls.x_failed += entry.status != 200
