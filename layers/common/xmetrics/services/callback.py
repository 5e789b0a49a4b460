"""GET /callback: turn X's code into stored, encrypted tokens for the account that authorized."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from xmetrics.config import REQUIRED_SCOPES
from xmetrics.crypto import PlainTokens, TokenCipher
from xmetrics.errors import (
    AuthorizationDeniedError,
    MissingScopeError,
    NotAllowedError,
    OAuthError,
    StateError,
    ValidationError,
    XMetricsError,
)
from xmetrics.oauth import pkce
from xmetrics.oauth.client import OAuthClient
from xmetrics.store import Store
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z
from xmetrics.x_api import XApi

_MAX_CODE_LENGTH = 1000


@dataclass(frozen=True)
class CallbackRequest:
    params: dict[str, str]
    browser_secret: str | None
    redirect_uri: str


@dataclass(frozen=True)
class Connected:
    user_id: str
    username: str
    version: int
    reconnected: bool


class Callback:
    def __init__(
        self,
        store: Store,
        oauth: OAuthClient,
        x: XApi,
        cipher: TokenCipher,
        telemetry: Telemetry,
        *,
        allowed_users: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._oauth = oauth
        self._x = x
        self._cipher = cipher
        self._telemetry = telemetry
        self._allowed = allowed_users
        self._clock = clock

    def complete(self, request: CallbackRequest) -> Connected:
        params = request.params
        state = params.get("state", "")
        if not state:
            raise StateError("missing")
        if not pkce.STATE_RE.fullmatch(state):
            raise StateError("malformed")  # never one of ours: don't even ask the table
        browser_secret = request.browser_secret
        if not browser_secret:
            # Taking the state is what spends it: a request without the browser's cookie (a link
            # preview, a replay by someone who saw the URL) must not burn the user's sign-in.
            raise StateError("no_cookie")
        if "error" in params:
            # Spend the state so the same flow cannot be resumed, then say what X said.
            self._take_state(state, browser_secret)
            raise AuthorizationDeniedError(params["error"][:100], params.get("error_description", "")[:300])
        code = params.get("code", "")
        if not code or len(code) > _MAX_CODE_LENGTH:
            raise ValidationError("the callback has no usable authorization code")
        verifier = self._take_state(state, browser_secret)
        tokens = self._oauth.exchange_code(code=code, verifier=verifier, redirect_uri=request.redirect_uri)
        if not tokens.refresh_token:
            raise MissingScopeError(["offline.access"])
        granted = set(tokens.scope.split())
        missing = sorted(REQUIRED_SCOPES - granted) if granted else []
        user = self._x.me(tokens.access_token)
        # X bills this read (a user, once a UTC day): the fetch's account snapshot that day is not.
        self._telemetry.count("XUsersRead")
        self._telemetry.count("XUsersBilled")
        if self._allowed and user.username.lower() not in self._allowed and user.user_id not in self._allowed:
            self._revoke(tokens.refresh_token, tokens.access_token)
            self._telemetry.warning("connect refused: account not allowed", user_id=user.user_id)
            raise NotAllowedError(user.username)
        if missing:
            self._revoke(tokens.refresh_token, tokens.access_token)
            raise MissingScopeError(missing)
        key = self._cipher.new_data_key(user.user_id)
        sealed = self._cipher.seal(user.user_id, key, PlainTokens(tokens.access_token, tokens.refresh_token))
        version = self._store.save_connection(
            user_id=user.user_id,
            username=user.username,
            sealed=sealed,
            access_expires_at=tokens.expires_at,
            scope=tokens.scope,
            now_iso=iso_z(from_epoch(self._clock())),
        )
        self._telemetry.count("AccountsConnected")
        self._telemetry.info("account connected", user_id=user.user_id, version=version)
        return Connected(user.user_id, user.username, version, reconnected=version > 1)

    def _take_state(self, state: str, browser_secret: str) -> str:
        record = self._store.take_state(state, pkce.cookie_hash(browser_secret))
        # TTL deletion is lazy: an item past its expiry can still be in the table.
        if record.expires_at <= self._clock():
            raise StateError("expired")
        return record.code_verifier

    def _revoke(self, refresh_token: str, access_token: str) -> None:
        for token, hint in ((refresh_token, "refresh_token"), (access_token, "access_token")):
            try:
                self._oauth.revoke(token, hint)
            except (OAuthError, XMetricsError) as exc:
                self._telemetry.warning("revoke failed", hint=hint, error=type(exc).__name__)
