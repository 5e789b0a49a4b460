"""What a handler reads and answers, apart from the HTTP server, so every section can build its replies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _Halt(Exception):
    """Stop handling and answer this instead."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _json(
    status: int, payload: Any, headers: dict[str, str] | None = None, *, problem: bool = False
) -> _Reply:
    kind = "application/problem+json" if problem else "application/json; charset=utf-8"
    return _Reply(status, json.dumps(payload).encode(), kind, dict(headers or {}))
