"""The token rotation protocol (DESIGN.md): the only code that calls X's refresh grant.

X spends a refresh token on use. Two holders refreshing at once would leave one of them with
a dead token, so nobody calls the token endpoint without first winning a lease on the account's
current version, and the rotated tokens are written, conditioned on that version and lease,
before anything else happens.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from xmetrics.crypto import DataKey, PlainTokens, SealedTokens, TokenCipher
from xmetrics.errors import (
    AccountNotFoundError,
    DeadRefreshTokenError,
    LeaseTimeoutError,
    NeedsReconnectError,
    StoreUnavailableError,
    TokenConflictError,
)
from xmetrics.oauth.client import OAuthClient
from xmetrics.store import ACTIVE, Account, Store
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z

# An access token with less than this left is refreshed first: a page fetch must not outlive it.
REFRESH_MARGIN_SECONDS = 300
# Longer than a refresh can take (3 connect tries + 2 sends of 10 s read timeout + backoff),
# so a live holder never loses its lease mid-request.
LEASE_SECONDS = 60
# How long a loser waits for the holder's new tokens before giving up on this run.
WAIT_SECONDS = 75


@dataclass(frozen=True)
class AccessGrant:
    access_token: str
    account: Account
    refreshed: bool


class TokenKeeper:
    def __init__(
        self,
        store: Store,
        cipher: TokenCipher,
        oauth: OAuthClient,
        telemetry: Telemetry,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._oauth = oauth
        self._telemetry = telemetry
        self._clock = clock
        self._sleep = sleep

    def access_token(self, user_id: str, *, rejected: str | None = None) -> AccessGrant:
        """A usable access token for the account, refreshing it if due.

        `rejected` is a token X just answered 401 to: if it is still the stored one, refresh now
        even though its expiry says it is valid.
        """
        deadline = self._clock() + WAIT_SECONDS
        key: DataKey | None = None
        pause = 0.05
        while True:
            account = self._store.get_account(user_id)
            if account is None:
                raise AccountNotFoundError(user_id)
            if account.status != ACTIVE:
                raise NeedsReconnectError(user_id)
            if key is None or key.encrypted != account.sealed.data_key:
                # One KMS call per run: the data key survives rotations (only a reconnect replaces it).
                key = self._cipher.open_data_key(user_id, account.sealed.data_key)
            tokens = self._cipher.open(user_id, key, account.sealed)
            now = self._clock()
            due = account.access_expires_at - now <= REFRESH_MARGIN_SECONDS
            if not due and tokens.access_token != rejected:
                return AccessGrant(tokens.access_token, account, refreshed=False)
            owner = uuid.uuid4().hex
            try:
                self._store.acquire_lease(
                    user_id, version=account.version, owner=owner, now=now, until=now + LEASE_SECONDS
                )
            except TokenConflictError:
                # Someone else is refreshing (or just did): wait for a new version, then re-read.
                if self._clock() + pause > deadline:
                    raise LeaseTimeoutError(user_id) from None
                self._telemetry.count("LeaseWaits")
                self._sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            return self._rotate(account, key, tokens, owner, lease_until=now + LEASE_SECONDS)

    def current(self, user_id: str) -> PlainTokens | None:
        """The stored tokens as they are, without refreshing (for revoking them)."""
        account = self._store.get_account(user_id)
        if account is None:
            return None
        key = self._cipher.open_data_key(user_id, account.sealed.data_key)
        return self._cipher.open(user_id, key, account.sealed)

    def _rotate(
        self, account: Account, key: DataKey, tokens: PlainTokens, owner: str, *, lease_until: float
    ) -> AccessGrant:
        user_id = account.user_id
        try:
            fresh = self._oauth.refresh(tokens.refresh_token)
        except DeadRefreshTokenError as exc:
            self._store.mark_needs_reconnect(
                user_id,
                version=account.version,
                now_iso=iso_z(from_epoch(self._clock())),
                reason=f"X refused the refresh token ({exc.error}); reconnect the account via /connect",
            )
            self._telemetry.count("RefreshFailed")
            self._telemetry.warning(
                "refresh token dead; account needs reconnect", user_id=user_id, error=exc.error
            )
            raise NeedsReconnectError(user_id) from exc
        except BaseException:
            self._store.release_lease(user_id, owner=owner)
            raise
        # Nothing may come between X's answer and this write: the old refresh token is now spent.
        sealed = self._cipher.seal(
            user_id, key, PlainTokens(fresh.access_token, fresh.refresh_token or tokens.refresh_token)
        )
        version = self._persist(account, owner, sealed, fresh.expires_at, fresh.scope, lease_until)
        self._telemetry.count("RefreshSucceeded")
        rotated = Account(
            **{
                **account.__dict__,
                "version": version,
                "sealed": sealed,
                "access_expires_at": fresh.expires_at,
                "lease_owner": None,
                "lease_until": None,
            }
        )
        return AccessGrant(fresh.access_token, rotated, refreshed=True)

    def _persist(
        self,
        account: Account,
        owner: str,
        sealed: SealedTokens,
        access_expires_at: float,
        scope: str | None,
        lease_until: float,
    ) -> int:
        """Write rotated tokens; X has already spent the old refresh token, so this write must land.

        Transient failures are retried for as long as the lease is ours. A conflict may mean
        our own write landed and only its answer was lost: the stored ciphertext tells.
        """
        pause = 0.2
        while True:
            try:
                return self._store.complete_rotation(
                    account.user_id,
                    version=account.version,
                    owner=owner,
                    sealed=sealed,
                    access_expires_at=access_expires_at,
                    scope=scope or account.scope,
                    now_iso=iso_z(from_epoch(self._clock())),
                )
            except TokenConflictError:
                stored = self._store.get_account(account.user_id)
                if stored is not None and stored.sealed == sealed:
                    return stored.version
                raise
            except StoreUnavailableError:
                if self._clock() + pause >= lease_until:
                    self._telemetry.count("RotationWriteFailed")
                    self._telemetry.warning(
                        "rotated tokens could not be stored; the account will need a reconnect",
                        user_id=account.user_id,
                    )
                    raise
                self._telemetry.count("RotationWriteRetries")
                self._sleep(pause)
                pause = min(pause * 2, 5.0)
