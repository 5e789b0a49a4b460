"""X's error answers become one exception each: a usage cap or exhausted credits is not a rate limit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from xmetrics.errors import RateLimitedError, UsageCappedError, XApiError
from xmetrics.transport import Backoff, Response, Session
from xmetrics.x_api import XApi

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
CAP = {
    "title": "UsageCapExceeded",
    "period": "Monthly",
    "scope": "Product",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": "https://api.twitter.com/2/problems/usage-capped",
}
CREDITS = {
    "title": "CreditsDepleted",
    "detail": "Your enrolled account [1] does not have any credits to fulfill this request.",
    "type": "https://api.twitter.com/2/problems/credits",
}
# X's usage cap leaves the rate-limit headers showing plenty.
PLENTY = {"x-rate-limit-limit": "900", "x-rate-limit-remaining": "899", "x-rate-limit-reset": "1900000000"}


class Canned(Session):
    """Answers every request with the next canned response, and counts the requests."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.requests = 0

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: tuple[float, float],
    ) -> Response:
        self.requests += 1
        return self.answers.pop(0)


def _answer(status: int, body: Any, headers: Mapping[str, str] = PLENTY) -> Response:
    return Response(status, "", dict(headers), json.dumps(body).encode())


def _timeline(session: Canned, waits: list[float]) -> Any:
    api = XApi("https://api.x.com", session=session, backoff=Backoff(sleep=waits.append), clock=lambda: 0.0)
    return api.timeline(
        "t", "1", start_time=NOW - timedelta(days=1), end_time=NOW, wait_budget=lambda: 3600.0
    )


@pytest.mark.parametrize(("status", "body"), [(429, CAP), (402, CREDITS), (429, {**CAP, "type": ""})])
def test_a_usage_cap_is_raised_at_once_without_waiting_or_retrying(status: int, body: Any) -> None:
    session, waits = Canned(_answer(status, body)), []
    with pytest.raises(UsageCappedError) as raised:
        _timeline(session, waits)
    assert session.requests == 1 and waits == []
    assert raised.value.status == status and raised.value.detail == body["detail"]


def test_a_rate_limit_is_still_waited_out() -> None:
    limited = _answer(
        429, {"title": "Too Many Requests", "detail": "Too Many Requests"}, {"x-rate-limit-reset": "30"}
    )
    session, waits = Canned(limited, _answer(200, {"data": [], "meta": {"result_count": 0}})), []
    timeline = _timeline(session, waits)
    assert session.requests == 2 and timeline.rate_limited_waits == 1 and waits == [31.0]


def test_a_402_that_names_no_cap_or_credits_is_an_api_error() -> None:
    session = Canned(_answer(402, {"title": "Payment Required", "detail": "Client Forbidden"}))
    with pytest.raises(XApiError) as raised:
        _timeline(session, [])
    assert not isinstance(raised.value, UsageCappedError | RateLimitedError)
