"""Posts over time, X's per-day billing and its usage cap: the app's budget and back-off rest on them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from local.x_sandbox import XSandbox
from tests.sandbox.helpers import (
    CONFIDENTIAL,
    GRACE,
    REDIRECT,
    SECRET,
    FakeClock,
    access,
    all_pages,
    exchange,
    me,
    new_code,
    tweets,
)

LATE_MAY = datetime(2026, 5, 30, 23, 30, tzinfo=UTC).timestamp()  # 30 min before a UTC midnight
NOTHING = {"posts": 0, "media": 0, "users": 0}
CAPPED = {
    "title": "UsageCapExceeded",
    "period": "Monthly",
    "scope": "Product",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": "https://api.twitter.com/2/problems/usage-capped",
}
WITH_INCLUDES = {"max_results": 10, "expansions": "attachments.media_keys,author_id"}


@pytest.fixture
def clock() -> FakeClock:
    """The conftest sandbox's clock, at a known moment, so days and months turn when a test says."""
    fake = FakeClock()
    fake.now = LATE_MAY
    return fake


def moment(created_at: str) -> float:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


def usage(x: XSandbox, method: str = "GET", body: Any = None) -> requests.Response:
    return requests.request(method, f"{x.url}/_sandbox/usage", json=body, timeout=5)


# ---------------------------------------------------------------- posts appear over time


def test_a_post_appears_when_the_clock_reaches_its_created_at(x: XSandbox, clock: FakeClock) -> None:
    # Given: the clock a second before ada's newest post
    posts = x.user("ada_metrics").tweets
    clock.now = moment(posts[0]["created_at"]) - 1
    token = access(x)
    # When
    before = tweets(x, token, max_results=100).json()
    clock.advance(1)
    after = tweets(x, token, max_results=100).json()
    # Then
    assert [p["id"] for p in before["data"]] == [p["id"] for p in posts[1:]]
    assert after["meta"]["newest_id"] == posts[0]["id"] and after["meta"]["result_count"] == 25


def test_the_3200_post_reach_counts_from_the_newest_visible_post(clock: FakeClock) -> None:
    # Given: 3,300 posts, the newest 50 still in the future
    with XSandbox(clock=clock) as sandbox:
        user = sandbox.add_user("prolific", tweet_count=3300, days=20, video_ratio=0, photo_ratio=0)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        clock.now = moment(user.tweets[50]["created_at"])
        # When
        pages = all_pages(sandbox, access(sandbox, "prolific"), user.user_id, max_results=100)
    # Then
    ids = [p["id"] for page in pages for p in page["data"]]
    assert ids == [t["id"] for t in user.tweets[50:3250]]


# ---------------------------------------------------------------- billing


def test_the_same_page_twice_in_a_utc_day_bills_once(x: XSandbox) -> None:
    # Given
    token = access(x)
    # When
    first = tweets(x, token, **WITH_INCLUDES).json()
    second = tweets(x, token, **WITH_INCLUDES).json()
    # Then: posts, media and the author are billed once, returned twice
    assert first == second
    media = len(first["includes"]["media"])
    assert media > 0 and len(first["includes"]["users"]) == 1
    assert x.billed("2026-05-30") == {"posts": 10, "media": media, "users": 1}
    assert x.returned("2026-05-30") == {"posts": 20, "media": 2 * media, "users": 2}
    assert x.month_posts_billed("2026-05") == 10


def test_the_same_page_bills_again_after_utc_midnight(x: XSandbox, clock: FakeClock) -> None:
    # Given: a page read on 30 May
    token = access(x)
    tweets(x, token)
    # When: read again an hour later, on 31 May
    clock.advance(3600)
    tweets(x, token)
    # Then
    once = {"posts": 10, "media": 0, "users": 0}
    assert x.billed_by_day() == {"2026-05-30": once, "2026-05-31": once}
    assert x.billed() == {"posts": 20, "media": 0, "users": 0} == x.returned()


def test_users_me_bills_one_user(x: XSandbox) -> None:
    # When
    token = access(x)
    me(x, token)
    me(x, token)
    # Then
    assert x.billed() == {"posts": 0, "media": 0, "users": 1}
    assert x.returned() == {"posts": 0, "media": 0, "users": 2}


def test_oauth_and_error_answers_bill_nothing(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x)
    token = exchange(x, code, verifier).json()["access_token"]
    x.inject("tweets", "status", status=503)
    # When
    answers = [tweets(x, token), tweets(x, token, max_results=500), tweets(x, token, "42"), me(x, "nope")]
    # Then
    assert [a.status_code for a in answers] == [503, 400, 200, 401]
    assert x.billed() == NOTHING == x.returned()


# ---------------------------------------------------------------- the usage cap


def test_the_monthly_cap_answers_429_until_a_new_month(x: XSandbox, clock: FakeClock) -> None:
    # Given: a cap of 30 posts; 25 read, then a page of 12 that crosses it is served in full
    x.usage_cap = 30
    token = access(x)
    assert len(tweets(x, token, max_results=100).json()["data"]) == 25
    assert len(tweets(x, token, GRACE, max_results=100).json()["data"]) == 12
    assert x.month_posts_billed("2026-05") == 37
    # When
    capped, capped_me = tweets(x, token), me(x, token)
    # Then: X's usage-capped problem, with rate-limit headers that show plenty left
    assert capped.status_code == 429 and capped.json() == CAPPED
    assert capped.headers["Content-Type"] == "application/problem+json"
    assert int(capped.headers["x-rate-limit-remaining"]) > 800
    assert int(capped.headers["x-rate-limit-reset"]) > clock()
    assert capped_me.status_code == 429 and capped_me.json() == CAPPED
    assert x.returned() == {"posts": 37, "media": 0, "users": 0}
    assert [entry.status for entry in x.request_log[-2:]] == [429, 429]
    again = tweets(x, token)  # a capped request spends no rate-limit budget
    assert again.headers["x-rate-limit-remaining"] == capped.headers["x-rate-limit-remaining"]
    # and a new month lifts it
    clock.now = datetime(2026, 6, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    assert tweets(x, access(x)).status_code == 200


@pytest.mark.parametrize(
    ("switch", "status", "title"),
    [("usage_cap", 429, "UsageCapExceeded"), ("credits", 402, "CreditsDepleted")],
)
def test_the_switch_answers_at_once_whatever_the_counts(
    x: XSandbox, switch: str, status: int, title: str
) -> None:
    # Given
    x.usage_capped = switch
    token = access(x)
    # When
    answers = [tweets(x, token), me(x, token)]
    # Then
    assert [(a.status_code, a.json()["title"]) for a in answers] == [(status, title)] * 2
    assert [entry.status for entry in x.request_log] == [status] * 2
    assert x.billed() == NOTHING == x.returned()
    x.usage_capped = None
    assert tweets(x, token).status_code == 200


def test_exhausted_credits_answer_402_with_x_s_body(x: XSandbox) -> None:
    # Given
    x.usage_capped = "credits"
    # When
    answer = tweets(x, access(x))
    # Then
    body = answer.json()
    assert answer.status_code == 402 and set(body) == {"account_id", "title", "detail", "type"}
    assert body["type"] == "https://api.twitter.com/2/problems/credits"
    assert body["detail"] == (
        f"Your enrolled account [{body['account_id']}] does not have any credits to fulfill this request."
    )


# ---------------------------------------------------------------- admin endpoints


def test_admin_endpoints_set_the_knobs_and_show_the_bill(x: XSandbox) -> None:
    # Given: credits out, over HTTP
    assert usage(x, "POST", {"cap": 10, "switch": "credits"}).json()["switch"] == "credits"
    token = access(x)
    assert tweets(x, token).status_code == 402
    # When: the switch goes off, the cap stays
    assert usage(x, "POST", {"switch": None}).status_code == 200
    first, second = tweets(x, token), tweets(x, token)
    # Then
    assert (first.status_code, second.status_code) == (200, 429)
    assert usage(x).json() == {
        "cap": 10,
        "switch": None,
        "billed_by_day": {"2026-05-30": {"posts": 10, "media": 0, "users": 0}},
    }


@pytest.mark.parametrize(
    "body",
    [{"cap": -1}, {"cap": "5"}, {"cap": True}, {"cap": 2.5}, {"switch": "spend"}, {"colour": 1}, [1]],
)
def test_admin_refuses_bad_usage_settings(x: XSandbox, body: Any) -> None:
    # When
    answer = usage(x, "POST", body)
    # Then: refused, nothing changed
    assert answer.status_code == 400
    assert (x.usage_cap, x.usage_capped) == (None, None)
