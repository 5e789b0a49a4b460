"""The X sandbox over real HTTP: it must behave like X, or the app's other tests prove nothing."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.x_sandbox import XSandbox

ADA = "1700000000000000001"  # 25 posts over 25 days: all within the 30-day window
GRACE = "1700000000000000002"  # 12 posts over 40 days: some older than 30 days
CONFIDENTIAL, SECRET, PUBLIC = "conf-client", "conf-secret", "public-client"
REDIRECT = "https://app.example/callback"
SCOPES = "tweet.read users.read offline.access"
TWEET_FIELDS = "attachments,created_at,public_metrics,non_public_metrics,organic_metrics"
MEDIA_FIELDS = "media_key,type,duration_ms,public_metrics,non_public_metrics,organic_metrics"
PLAYBACK = [
    "playback_0_count",
    "playback_25_count",
    "playback_50_count",
    "playback_75_count",
    "playback_100_count",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


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


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(x: XSandbox, challenge: str, **overrides: str) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": CONFIDENTIAL,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return requests.get(x.authorize_url, params=params, allow_redirects=False, timeout=5)


def redirect_query(response: requests.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def exchange(
    x: XSandbox,
    code: str,
    verifier: str,
    *,
    auth: tuple[str, str] | None = (CONFIDENTIAL, SECRET),
    **extra: str,
) -> requests.Response:
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    return requests.post(x.token_url, data={**body, **extra}, auth=auth, timeout=5)


def new_code(x: XSandbox, **overrides: str) -> tuple[str, str]:
    verifier, challenge = pkce()
    return redirect_query(authorize(x, challenge, **overrides))["code"], verifier


def refresh(x: XSandbox, token: str, timeout: float = 5) -> requests.Response:
    body = {"grant_type": "refresh_token", "refresh_token": token}
    return requests.post(x.token_url, data=body, auth=(CONFIDENTIAL, SECRET), timeout=timeout)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(x: XSandbox, token: str) -> requests.Response:
    return requests.get(f"{x.api_base_url}/2/users/me", headers=bearer(token), timeout=5)


def tweets(x: XSandbox, token: str, user_id: str = ADA, **params: Any) -> requests.Response:
    url = f"{x.api_base_url}/2/users/{user_id}/tweets"
    return requests.get(url, params=params, headers=bearer(token), timeout=5)


def access(x: XSandbox, username: str = "ada_metrics", scopes: str = SCOPES) -> str:
    return str(x.issue_tokens(username, CONFIDENTIAL, scopes)["access_token"])


def all_pages(x: XSandbox, token: str, user_id: str = ADA, **params: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    while True:
        answer = tweets(x, token, user_id, **params)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        params["pagination_token"] = pages[-1]["meta"].get("next_token")
        if not params["pagination_token"]:
            return pages


# ---------------------------------------------------------------- authorization code flow


def test_code_flow_with_pkce_issues_tokens_for_the_logged_in_user(x: XSandbox) -> None:
    # Given: an authorization with an S256 challenge, consented automatically
    verifier, challenge = pkce()
    redirect = authorize(x, challenge)
    # When: the code is exchanged with its verifier
    query = redirect_query(redirect)
    answer = exchange(x, query["code"], verifier)
    # Then: X's token shape, and the token reads the user who logged in
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith(REDIRECT + "?")
    assert query["state"] == "state-123"
    body = answer.json()
    assert answer.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 7200 and body["scope"] == SCOPES
    assert body["access_token"] and body["refresh_token"]
    assert me(x, body["access_token"]).json() == {
        "data": {"id": ADA, "name": "Ada Metrics", "username": "ada_metrics"}
    }


def test_wrong_verifier_is_refused(x: XSandbox) -> None:
    # Given
    code, _ = new_code(x)
    # When: another verifier is sent
    answer = exchange(x, code, pkce()[0])
    # Then
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the code verifier did not match the code challenge.",
    }


def test_code_works_only_once(x: XSandbox) -> None:
    # Given: a code already exchanged
    code, verifier = new_code(x)
    assert exchange(x, code, verifier).status_code == 200
    # When: it is presented again
    again = exchange(x, code, verifier)
    # Then
    assert again.status_code == 400
    assert again.json()["error_description"] == "Value passed for the authorization code was invalid."


def test_code_expires_after_30_seconds(x: XSandbox, clock: FakeClock) -> None:
    # Given: a code 31 seconds old
    code, verifier = new_code(x)
    clock.advance(31)
    # When
    answer = exchange(x, code, verifier)
    # Then
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_redirect_uri_must_equal_the_one_used_at_authorize(x: XSandbox) -> None:
    # Given: X knows two callback URLs for the client
    x.register_client(CONFIDENTIAL, SECRET, [REDIRECT, REDIRECT + "2"])
    code, verifier = new_code(x)
    # When: the exchange names the other one
    answer = exchange(x, code, verifier, redirect_uri=REDIRECT + "2")
    # Then
    assert answer.status_code == 400 and "redirect uri" in answer.json()["error_description"]


def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(x: XSandbox) -> None:
    # When
    answer = authorize(x, pkce()[1], redirect_uri="https://evil.example/callback")
    # Then
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"scope": "tweet.read users.read launch.missiles"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"state": "s" * 501}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_invalid_authorization_requests_redirect_with_an_error(
    x: XSandbox, override: dict[str, str], error: str
) -> None:
    # When
    answer = authorize(x, pkce()[1], **override)
    # Then: the error goes back to the registered callback, with no code
    query = redirect_query(answer)
    assert answer.status_code == 302 and query["error"] == error and "code" not in query


def test_confidential_client_without_basic_auth_gets_unauthorized_client(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x)
    # When: the client id travels in the body only
    answer = exchange(x, code, verifier, auth=None, client_id=CONFIDENTIAL)
    # Then
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "unauthorized_client",
        "error_description": "Missing valid authorization header",
    }


def test_wrong_client_secret_gets_invalid_client(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x)
    # When
    answer = exchange(x, code, verifier, auth=(CONFIDENTIAL, "not-the-secret"))
    # Then
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_public_client_exchanges_with_its_id_in_the_body(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x, client_id=PUBLIC)
    # When
    answer = exchange(x, code, verifier, auth=None, client_id=PUBLIC)
    # Then
    assert answer.status_code == 200 and answer.json()["access_token"]


def test_no_refresh_token_without_offline_access(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x, scope="tweet.read users.read")
    # When
    body = exchange(x, code, verifier).json()
    # Then
    assert "refresh_token" not in body and body["scope"] == "tweet.read users.read"


# ---------------------------------------------------------------- consent page


def test_consent_page_names_the_user_and_scopes_and_escapes_what_it_echoes(x: XSandbox) -> None:
    # Given: consent is asked, and the state carries markup
    x.auto_consent = False
    # When
    page = authorize(x, pkce()[1], state='<script>alert("x")</script>')
    # Then
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f"<title>Authorize {CONFIDENTIAL} to access your X account</title>" in page.text
    assert "@ada_metrics" in page.text and "<li>offline.access</li>" in page.text
    assert "<script>" not in page.text and html.escape('<script>alert("x")</script>') in page.text
    assert 'id="allow"' in page.text and 'id="deny"' in page.text


def _consent_form(challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CONFIDENTIAL,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def test_consent_deny_redirects_with_access_denied(x: XSandbox) -> None:
    # Given
    x.auto_consent = False
    # When: the user presses Cancel
    form = {**_consent_form(pkce()[1]), "decision": "deny"}
    answer = requests.post(x.authorize_url, data=form, allow_redirects=False, timeout=5)
    # Then
    query = redirect_query(answer)
    assert answer.status_code == 302 and query["error"] == "access_denied" and query["state"] == "state-123"
    assert "code" not in query


def test_consent_allow_redirects_with_a_working_code(x: XSandbox) -> None:
    # Given
    x.auto_consent = False
    verifier, challenge = pkce()
    # When: the user presses Authorize app
    form = {**_consent_form(challenge), "decision": "allow"}
    answer = requests.post(x.authorize_url, data=form, allow_redirects=False, timeout=5)
    # Then
    assert exchange(x, redirect_query(answer)["code"], verifier).status_code == 200


def test_login_as_chooses_who_consents(x: XSandbox) -> None:
    # Given
    x.login_as("grace")
    code, verifier = new_code(x)
    # When
    token = exchange(x, code, verifier).json()["access_token"]
    # Then
    assert me(x, token).json()["data"]["id"] == GRACE


# ---------------------------------------------------------------- refresh and revoke


def test_refresh_rotates_both_tokens(x: XSandbox) -> None:
    # Given
    first = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    answer = refresh(x, first["refresh_token"])
    # Then
    second = answer.json()
    assert answer.status_code == 200 and x.refresh_count == 1
    assert (
        second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    )
    assert x.live_refresh_token("ada_metrics", CONFIDENTIAL) == second["refresh_token"]
    assert refresh(x, second["refresh_token"]).status_code == 200


def test_spent_refresh_token_is_dead(x: XSandbox) -> None:
    # Given: a refresh token used once
    spent = x.issue_tokens("ada_metrics", CONFIDENTIAL)["refresh_token"]
    assert refresh(x, spent).status_code == 200
    # When: it is used again
    again = refresh(x, spent)
    # Then: X's answer for a dead refresh token
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }


def test_dead_token_error_can_be_invalid_grant(clock: FakeClock) -> None:
    # Given: a sandbox answering dead tokens the other way X has been seen to
    with XSandbox(clock=clock, dead_token_error="invalid_grant") as sandbox:
        sandbox.add_user("ada_metrics", user_id=ADA)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        # When
        answer = refresh(sandbox, "never-issued")
    # Then
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_old_access_token_lives_until_it_expires(x: XSandbox, clock: FakeClock) -> None:
    # Given: a refresh happened
    first = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    refresh(x, first["refresh_token"])
    # When / Then: the old access token still works, until its 7200 seconds are up
    assert me(x, first["access_token"]).status_code == 200
    clock.advance(7201)
    assert me(x, first["access_token"]).status_code == 401


def test_expired_access_token_gets_x_unauthorized_problem(x: XSandbox) -> None:
    # Given
    token = access(x)
    x.expire_access_tokens("ada_metrics")
    # When
    answer = me(x, token)
    # Then
    assert answer.status_code == 401
    assert answer.json() == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Unauthorized",
    }


def test_revoking_a_refresh_token_kills_its_family(x: XSandbox) -> None:
    # Given
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    body = {"token": pair["refresh_token"], "token_type_hint": "refresh_token"}
    answer = requests.post(x.revoke_url, data=body, auth=(CONFIDENTIAL, SECRET), timeout=5)
    # Then
    assert answer.status_code == 200 and answer.json() == {"revoked": True}
    assert refresh(x, pair["refresh_token"]).status_code == 400
    assert me(x, pair["access_token"]).status_code == 401
    assert x.live_refresh_token("ada_metrics", CONFIDENTIAL) is None


def test_revoking_an_access_token_leaves_the_refresh_token(x: XSandbox) -> None:
    # Given
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    body = {"token": pair["access_token"], "token_type_hint": "access_token"}
    requests.post(x.revoke_url, data=body, auth=(CONFIDENTIAL, SECRET), timeout=5)
    # Then
    assert me(x, pair["access_token"]).status_code == 401
    assert refresh(x, pair["refresh_token"]).status_code == 200


# ---------------------------------------------------------------- users/me and the timeline


def test_me_needs_users_read_scope(x: XSandbox) -> None:
    # When
    answer = me(x, access(x, scopes="tweet.read offline.access"))
    # Then
    assert answer.status_code == 403 and answer.json()["status"] == 403


def test_own_recent_posts_carry_private_metrics_without_errors(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x), max_results=100, **{"tweet.fields": TWEET_FIELDS}).json()
    # Then
    assert len(body["data"]) == 25 and "errors" not in body
    for post in body["data"]:
        public, private, organic = post["public_metrics"], post["non_public_metrics"], post["organic_metrics"]
        assert set(public) == {
            "retweet_count",
            "reply_count",
            "like_count",
            "quote_count",
            "bookmark_count",
            "impression_count",
        }
        assert private["impression_count"] >= private["engagements"] >= public["like_count"]
        assert organic["impression_count"] <= public["impression_count"]


def test_posts_older_than_30_days_lose_private_metrics_with_an_error_each(
    x: XSandbox, clock: FakeClock
) -> None:
    # Given: grace's own token; some of her posts are older than 30 days
    token = access(x, "grace")
    cutoff = datetime.fromtimestamp(clock(), UTC) - timedelta(days=30)
    # When
    body = tweets(x, token, GRACE, **{"tweet.fields": TWEET_FIELDS}).json()
    # Then
    old = [p for p in body["data"] if datetime.fromisoformat(p["created_at"]) < cutoff]
    recent = [p for p in body["data"] if p not in old]
    assert old and recent
    assert all(
        "non_public_metrics" not in p and "organic_metrics" not in p and "public_metrics" in p for p in old
    )
    assert all("non_public_metrics" in p and "organic_metrics" in p for p in recent)
    errors = {(e["resource_id"], e["field"]) for e in body["errors"]}
    assert errors == {(p["id"], f) for p in old for f in ("non_public_metrics", "organic_metrics")}
    first = body["errors"][0]
    assert first["type"] == "https://api.twitter.com/2/problems/not-authorized-for-field"
    assert first["title"] == "Field Authorization Error" and first["resource_type"] == "tweet"
    assert first["detail"] == (
        f"Sorry, you are not authorized to access '{first['field']}' on the Tweet with ids {first['value']}."
    )


def test_another_users_posts_come_with_public_metrics_only(x: XSandbox) -> None:
    # When: ada reads grace's timeline
    body = tweets(x, access(x), GRACE, **{"tweet.fields": TWEET_FIELDS}).json()
    # Then
    assert all(set(p) >= {"public_metrics"} and "organic_metrics" not in p for p in body["data"])
    assert len(body["errors"]) == 2 * len(body["data"])


def test_pagination_returns_every_post_once_newest_first(x: XSandbox) -> None:
    # When: 25 posts read 10 at a time
    pages = all_pages(x, access(x), max_results=10)
    # Then: three pages, in order, no duplicates, the last without next_token
    ids = [p["id"] for page in pages for p in page["data"]]
    assert [page["meta"]["result_count"] for page in pages] == [10, 10, 5]
    assert "next_token" not in pages[-1]["meta"]
    assert ids == [t["id"] for t in x.user("ada_metrics").tweets]
    assert ids == sorted(ids, key=int, reverse=True) and len(set(ids)) == 25
    assert pages[0]["meta"]["newest_id"] == ids[0] and pages[-1]["meta"]["oldest_id"] == ids[-1]


def test_default_page_has_ten_posts_and_the_default_fields(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x)).json()
    # Then
    assert len(body["data"]) == 10
    assert set(body["data"][0]) == {"id", "text", "edit_history_tweet_ids"}


def test_the_timeline_reaches_only_the_latest_3200_posts(clock: FakeClock) -> None:
    # Given: a user with 3,300 posts
    with XSandbox(clock=clock) as sandbox:
        user = sandbox.add_user("prolific", tweet_count=3300, days=20, video_ratio=0, photo_ratio=0)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        # When
        pages = all_pages(sandbox, access(sandbox, "prolific"), user.user_id, max_results=100)
    # Then
    assert sum(page["meta"]["result_count"] for page in pages) == 3200


@pytest.mark.parametrize("value", ["4", "101", "ten"])
def test_max_results_out_of_range_is_refused(x: XSandbox, value: str) -> None:
    # When
    answer = tweets(x, access(x), max_results=value)
    # Then: X's invalid-request problem naming the parameter
    body = answer.json()
    assert answer.status_code == 400
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert body["errors"][0]["parameters"] == {"max_results": [value]}


@pytest.mark.parametrize(
    "params",
    [
        {"colour": "blue"},
        {"tweet.fields": "public_metrics,favourite_count"},
        {"media.fields": "view_count"},
        {"expansions": "everything"},
        {"pagination_token": "not-a-token"},
        {"start_time": "yesterday"},
        {"start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"},
    ],
)
def test_invalid_query_parameters_are_refused(x: XSandbox, params: dict[str, str]) -> None:
    # When
    answer = tweets(x, access(x), **params)
    # Then
    assert answer.status_code == 400 and answer.json()["title"] == "Invalid Request"


def test_time_window_includes_start_and_excludes_end(x: XSandbox) -> None:
    # Given: the created_at of the 3rd and 8th newest posts
    posts = x.user("ada_metrics").tweets
    start, end = posts[7]["created_at"], posts[2]["created_at"]
    # When
    body = tweets(x, access(x), start_time=start, end_time=end).json()
    # Then
    assert [p["id"] for p in body["data"]] == [p["id"] for p in posts[3:8]]


def test_empty_window_has_result_count_zero_and_no_data(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x), start_time="2020-01-01T00:00:00Z", end_time="2020-01-02T00:00:00Z").json()
    # Then
    assert body == {"meta": {"result_count": 0}}


def test_unknown_user_gives_a_not_found_error(x: XSandbox) -> None:
    # When
    body = tweets(x, access(x), "42").json()
    # Then
    assert "data" not in body and body["errors"][0]["title"] == "Not Found Error"


def test_media_expansion_includes_video_metrics(x: XSandbox) -> None:
    # When
    params = {
        "tweet.fields": TWEET_FIELDS,
        "expansions": "attachments.media_keys",
        "media.fields": MEDIA_FIELDS,
    }
    body = tweets(x, access(x), max_results=100, **params).json()
    # Then: every attached key is in includes.media; videos carry plausible metrics
    keys = [k for p in body["data"] for k in p.get("attachments", {}).get("media_keys", [])]
    media = {m["media_key"]: m for m in body["includes"]["media"]}
    assert keys and set(keys) == set(media)
    videos = [m for m in media.values() if m["type"] == "video"]
    assert videos and {m["type"] for m in media.values()} <= {"video", "photo", "animated_gif"}
    for video in videos:
        quartiles = [video["non_public_metrics"][name] for name in PLAYBACK]
        assert quartiles == sorted(quartiles, reverse=True) and video["duration_ms"] > 0
        assert video["organic_metrics"]["view_count"] <= video["public_metrics"]["view_count"]


def test_other_users_video_metrics_are_refused_per_media(x: XSandbox) -> None:
    # When: ada asks for grace's media metrics
    params = {"expansions": "attachments.media_keys", "media.fields": MEDIA_FIELDS}
    body = tweets(x, access(x), GRACE, max_results=100, **params).json()
    # Then
    videos = [m for m in body["includes"]["media"] if m["type"] == "video"]
    assert videos and all("non_public_metrics" not in v and "public_metrics" in v for v in videos)
    media_errors = [e for e in body["errors"] if e["resource_type"] == "media"]
    assert {e["resource_id"] for e in media_errors} == {v["media_key"] for v in videos}


def test_repost_spelling_serves_repost_count(x: XSandbox) -> None:
    # Given
    x.metrics_spelling = "repost"
    # When: asked with v2.167's parameter name
    body = tweets(x, access(x), **{"post.fields": "public_metrics,organic_metrics"}).json()
    # Then
    post = body["data"][0]
    assert "repost_count" in post["public_metrics"] and "retweet_count" not in post["public_metrics"]
    assert "repost_count" in post["organic_metrics"]


def test_users_are_deterministic_and_ids_grow_with_time(clock: FakeClock) -> None:
    # Given: two sandboxes with the same seed and clock
    with XSandbox(clock=clock) as one, XSandbox(clock=clock) as two:
        # When
        first, second = one.add_user("ada_metrics"), two.add_user("ada_metrics")
    # Then
    assert first.user_id == second.user_id and first.tweets == second.tweets and first.media == second.media
    ids = [int(t["id"]) for t in first.tweets]
    times = [t["created_at"] for t in first.tweets]
    assert ids == sorted(ids, reverse=True) and times == sorted(times, reverse=True)


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


# ---------------------------------------------------------------- faults


def test_status_fault_answers_instead_and_then_recovers(x: XSandbox) -> None:
    # Given
    x.inject("tweets", "status", status=503)
    token = access(x)
    # When
    first, second = tweets(x, token), tweets(x, token)
    # Then
    assert first.status_code == 503 and first.json()["title"] == "Service Unavailable"
    assert second.status_code == 200


def test_status_fault_with_a_custom_body(x: XSandbox) -> None:
    # Given
    x.inject("token", "status", status=400, body={"error": "invalid_grant", "error_description": "nope"})
    # When
    answer = refresh(x, x.issue_tokens("ada_metrics", CONFIDENTIAL)["refresh_token"])
    # Then: not processed
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant" and x.refresh_count == 0


def test_rate_limit_fault_sets_the_reset(x: XSandbox, clock: FakeClock) -> None:
    # Given
    x.inject("me", "rate_limit", reset_in=120)
    # When
    answer = me(x, access(x))
    # Then
    assert answer.status_code == 429
    assert answer.headers["x-rate-limit-remaining"] == "0"
    assert answer.headers["x-rate-limit-reset"] == str(int(clock() + 120))


def test_delay_fault_slows_the_answer(x: XSandbox) -> None:
    # Given
    x.inject("me", "delay", seconds=0.4)
    # When
    started = time.monotonic()
    answer = me(x, access(x))
    # Then
    assert answer.status_code == 200 and time.monotonic() - started >= 0.4


def test_drop_closes_without_answer_and_processes_nothing(x: XSandbox) -> None:
    # Given
    x.inject("token", "drop")
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When / Then
    with pytest.raises(requests.ConnectionError):
        refresh(x, pair["refresh_token"])
    assert x.refresh_count == 0 and refresh(x, pair["refresh_token"]).status_code == 200


def test_drop_after_processing_rotates_but_never_tells(x: XSandbox) -> None:
    # Given
    x.inject("token", "drop_after_processing")
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    with pytest.raises(requests.ConnectionError):
        refresh(x, pair["refresh_token"])
    # Then: X rotated; the token the client holds is dead
    assert x.refresh_count == 1
    assert x.live_refresh_token("ada_metrics", CONFIDENTIAL) not in (None, pair["refresh_token"])
    assert refresh(x, pair["refresh_token"]).status_code == 400


def test_delay_after_processing_times_out_after_the_rotation(x: XSandbox) -> None:
    # Given
    x.inject("token", "delay_after_processing", seconds=1.0)
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    with pytest.raises(requests.ReadTimeout):
        refresh(x, pair["refresh_token"], timeout=0.3)
    # Then
    assert x.refresh_count == 1 and refresh(x, pair["refresh_token"]).status_code == 400


def test_truncate_cuts_the_body_in_half(x: XSandbox) -> None:
    # Given
    token = access(x)
    full = tweets(x, token).content
    x.inject("tweets", "truncate")
    # When
    answer = tweets(x, token)
    # Then
    assert answer.status_code == 200 and answer.content == full[: len(full) // 2]
    with pytest.raises(ValueError):
        answer.json()


def test_partial_error_adds_an_error_naming_no_post(x: XSandbox) -> None:
    # Given
    x.inject("tweets", "partial_error")
    # When
    body = tweets(x, access(x)).json()
    # Then
    assert body["data"] and [e["resource_type"] for e in body["errors"]] == ["user"]


def test_faults_apply_in_order_for_their_count(x: XSandbox) -> None:
    # Given
    x.inject("me", "status", count=2, status=500)
    x.inject("me", "status", status=502)
    token = access(x)
    # When
    statuses = [me(x, token).status_code for _ in range(4)]
    # Then
    assert statuses == [500, 500, 502, 200]


def test_fault_match_picks_only_matching_requests(x: XSandbox) -> None:
    # Given: only refresh grants fail
    x.inject("token", "status", status=503, match={"grant_type": "refresh_token"})
    code, verifier = new_code(x)
    # When / Then: the code exchange passes, the refresh takes the fault
    pair = exchange(x, code, verifier).json()
    assert refresh(x, pair["refresh_token"]).status_code == 503


def test_clear_faults_drops_pending_faults(x: XSandbox) -> None:
    # Given
    x.inject("me", "status", status=500)
    # When
    x.clear_faults()
    # Then
    assert me(x, access(x)).status_code == 200


def test_admin_endpoints_control_faults_and_show_the_log(x: XSandbox) -> None:
    # Given: a fault injected over HTTP
    spec = {"endpoint": "me", "kind": "status", "count": 1, "params": {"status": 504}}
    assert requests.post(f"{x.url}/_sandbox/faults", json=spec, timeout=5).status_code == 201
    # When
    answer = me(x, access(x))
    log = requests.get(f"{x.url}/_sandbox/log", timeout=5).json()["requests"]
    # Then
    assert answer.status_code == 504
    assert log[-1]["endpoint"] == "me" and log[-1]["status"] == 504 and log[-1]["fault"] == "status"
    assert requests.delete(f"{x.url}/_sandbox/faults", timeout=5).status_code == 200


def test_request_log_counts_every_request_and_keeps_no_query(x: XSandbox) -> None:
    # Given
    x.inject("me", "drop")
    code, verifier = new_code(x)
    exchange(x, code, verifier)
    # When
    with pytest.raises(requests.ConnectionError):
        me(x, access(x))
    # Then
    assert (x.requests_to("authorize"), x.requests_to("token"), x.requests_to("me")) == (1, 1, 1)
    assert x.request_log[-1].status == 0 and x.request_log[-1].fault == "drop"
    logged = json.dumps([entry._asdict() for entry in x.request_log])
    assert code not in logged and "?" not in logged
