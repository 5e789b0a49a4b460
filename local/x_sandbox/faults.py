"""What the network and X do on bad days, queued per endpoint, so tests can prove the app survives them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from local.x_sandbox.api import Api, _generic_problem
from local.x_sandbox.wire import _json, _Reply, _Request

ENDPOINTS = ("authorize", "token", "revoke", "me", "tweets")
FAULT_KINDS = frozenset(
    "status rate_limit delay drop drop_after_processing delay_after_processing truncate partial_error".split()
)


@dataclass
class _Fault:
    kind: str
    remaining: int
    params: dict[str, Any]
    match: dict[str, str]


class Faults(Api):
    """Injection and the replies faults give; the server carries out drops and delays.

    State is set by XSandbox.__init__, behind its one lock.
    """

    _faults: dict[str, list[_Fault]]

    def inject(self, endpoint: str, kind: str, *, count: int = 1, **params: Any) -> None:
        """The next `count` requests to `endpoint` (matching `match={param: value}`, if given) get `kind`."""
        if endpoint not in ENDPOINTS or kind not in FAULT_KINDS or count < 1:
            raise ValueError(f"unknown fault {kind!r} for {endpoint!r} (count {count})")
        match = {str(k): str(v) for k, v in dict(params.pop("match", None) or {}).items()}
        with self._lock:
            self._faults[endpoint].append(_Fault(kind, count, params, match))

    def clear_faults(self) -> None:
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    def _take_fault(self, endpoint: str, request: _Request) -> _Fault | None:
        if endpoint not in self._faults:
            return None
        values = {**request.query, **(request.form() if request.method == "POST" else {})}
        with self._lock:
            queue = self._faults[endpoint]
            for fault in queue:
                if all(values.get(k) == v for k, v in fault.match.items()):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        queue.remove(fault)
                    return fault
        return None

    def _fault_reply(self, fault: _Fault, endpoint: str) -> _Reply:
        """The answer of a 'status' or 'rate_limit' fault, given instead of the real one."""
        if fault.kind == "rate_limit":
            reset = int(self._clock() + float(fault.params.get("reset_in", 60)))
            limit = self.rate_limits.get(endpoint, 900)
            headers = {
                "x-rate-limit-limit": str(limit),
                "x-rate-limit-remaining": "0",
                "x-rate-limit-reset": str(reset),
            }
            return _generic_problem(429, headers)
        status = int(fault.params.get("status", 503))
        body = fault.params.get("body")
        if body is None:
            reply = _generic_problem(status)
        elif isinstance(body, str | bytes):
            reply = _Reply(status, body.encode() if isinstance(body, str) else body, "text/plain")
        else:
            reply = _json(status, body)
        reply.headers.update({str(k): str(v) for k, v in dict(fault.params.get("headers") or {}).items()})
        return reply

    def _after_fault(self, fault: _Fault | None, reply: _Reply) -> _Reply:
        if fault is None:
            return reply
        if fault.kind == "truncate":
            return _Reply(reply.status, reply.body[: len(reply.body) // 2], reply.content_type, reply.headers)
        if (
            fault.kind == "partial_error"
            and reply.status == 200
            and reply.content_type.startswith("application/json")
        ):
            payload = json.loads(reply.body)
            detail = "Sorry, you are not authorized to see the User with id: [2244994945]."
            error = fault.params.get("error") or self._problem(
                "Authorization Error",
                detail,
                "user",
                "2244994945",
                parameter="entities.mentions.username",
                section="includes",
                problem="not-authorized-for-resource",
            )
            payload.setdefault("errors", []).append(error)
            return _json(200, payload, reply.headers)
        return reply
