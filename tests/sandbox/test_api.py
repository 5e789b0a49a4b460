"""users/me's scope check and X's rate limits, which the app's refusals and back-off are tested against."""

from __future__ import annotations

from local.x_sandbox import XSandbox
from tests.sandbox.helpers import GRACE, FakeClock, access, me, tweets

# ---------------------------------------------------------------- users/me


def test_me_needs_users_read_scope(x: XSandbox) -> None:
    # When
    answer = me(x, access(x, scopes="tweet.read offline.access"))
    # Then
    assert answer.status_code == 403 and answer.json()["status"] == 403


# ---------------------------------------------------------------- rate limits


def test_api_answers_carry_rate_limit_headers(x: XSandbox, clock: FakeClock) -> None:
    # When
    answer = tweets(x, access(x))
    # Then
    assert answer.headers["x-rate-limit-limit"] == "900"
    assert answer.headers["x-rate-limit-remaining"] == "899"
    assert int(answer.headers["x-rate-limit-reset"]) == int(clock() + 900)


def test_exhausted_window_gets_429_until_it_resets(x: XSandbox, clock: FakeClock) -> None:
    # Given: users/me allows 3 calls per window here, and 3 were made
    x.rate_limits["me"] = 3
    token = access(x)
    assert [me(x, token).status_code for _ in range(3)] == [200, 200, 200]
    # When
    limited = me(x, token)
    # Then
    assert limited.status_code == 429 and limited.headers["x-rate-limit-remaining"] == "0"
    assert limited.json() == {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    clock.advance(901)
    assert me(x, token).status_code == 200


def test_app_wide_limit_spans_users(x: XSandbox) -> None:
    # Given: the app may make 2 timeline calls per window
    x.rate_limits["tweets_app"] = 2
    tweets(x, access(x))
    tweets(x, access(x, "grace"), GRACE)
    # When: a third user token calls
    answer = tweets(x, access(x))
    # Then
    assert answer.status_code == 429
