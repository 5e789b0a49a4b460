"""GET /connect: start an authorization code + PKCE flow bound to this browser."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from xmetrics.oauth import pkce
from xmetrics.oauth.client import OAuthClient
from xmetrics.store import StateRecord, Store

# X's codes live ~30 s; ten minutes covers a person logging in to X first, and no more.
STATE_TTL_SECONDS = 600


@dataclass(frozen=True)
class ConnectStart:
    location: str
    browser_secret: str = field(repr=False)
    max_age: int = STATE_TTL_SECONDS


class Connect:
    def __init__(
        self, store: Store, oauth: OAuthClient, *, scopes: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._oauth = oauth
        self._scopes = scopes
        self._clock = clock

    def start(self, redirect_uri: str) -> ConnectStart:
        verifier = pkce.new_verifier()
        state = pkce.new_state()
        # The browser keeps this in a cookie; the table keeps only its hash.
        browser_secret = secrets.token_urlsafe(32)
        # Whole seconds: DynamoDB's TTL reads the attribute as epoch seconds.
        now = int(self._clock())
        self._store.put_state(
            StateRecord(
                state=state,
                code_verifier=verifier,
                browser_hash=pkce.cookie_hash(browser_secret),
                created_at=now,
                expires_at=now + STATE_TTL_SECONDS,
            )
        )
        location = self._oauth.authorization_url(
            redirect_uri=redirect_uri,
            scope=self._scopes,
            state=state,
            code_challenge=pkce.challenge_s256(verifier),
        )
        return ConnectStart(location=location, browser_secret=browser_secret)
