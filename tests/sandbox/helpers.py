"""Shared by the sandbox's tests: it must behave like X, or the app's other tests prove nothing."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
