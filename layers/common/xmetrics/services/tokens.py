"""The token rotation protocol (DESIGN.md), whole: the only code that calls X's refresh grant.

X spends a refresh token on use. Two holders refreshing at once would leave one of them with
a dead token, so nobody calls the token endpoint without first winning a lease on the account's
current version, and the rotated tokens are written, conditioned on that version and lease,
before anything else happens. Lambda kills a function at its timeout, mid-line: a rotation starts
only with time left for its worst case, and the lease outlasts that worst case (limits.py).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NoReturn

from xmetrics import limits
from xmetrics.crypto import DataKey, PlainTokens, SealedTokens
from xmetrics.deadline import Deadline
from xmetrics.errors import (
    AccountNotFoundError,
    DeadlineError,
    DeadRefreshTokenError,
    LeaseTimeoutError,
    NeedsReconnectError,
    RotationNotStoredError,
    StoreUnavailableError,
    TokenConflictError,
    TransportError,
    XMetricsError,
)
from xmetrics.limits import SAFETY_SECONDS, RotationTiming
from xmetrics.oauth.client import TokenSet
from xmetrics.services.ports import AccountStore, Cipher, OAuth
from xmetrics.store import ACTIVE, Account
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z

# An access token with less than this left is refreshed first: a page fetch must not outlive it.
REFRESH_MARGIN_SECONDS = 300
# A rotation that lost its write to a reconnect re-reads the account; a third loss is a failure.
_MAX_CONFLICTS = 2


@dataclass(frozen=True)
class AccessGrant:
    access_token: str
    account: Account
    refreshed: bool


class TokenKeeper:
    def __init__(
        self,
        store: AccountStore,
        cipher: Cipher,
        oauth: OAuth,
        telemetry: Telemetry,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        timing: RotationTiming | None = None,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._oauth = oauth
        self._telemetry = telemetry
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._timing = timing or limits.ROTATION

    def access_token(
        self,
        user_id: str,
        deadline: Deadline,
        *,
        rejected: str | None = None,
        known: Account | None = None,
    ) -> AccessGrant:
        """A usable access token for the account, refreshing it if due.

        `rejected` is a token X just answered 401 to: if it is still the stored one, refresh now
        even though its expiry says it is valid. `known` is the account as the caller has just
        read it (consistently), to save this a second read.
        """
        wait_until: float | None = None
        conflicts = 0
        key: DataKey | None = None
        pause = 0.05
        while True:
            account, known = known or self._store.get_account(user_id), None
            if account is None:
                raise AccountNotFoundError(user_id)
            if account.status != ACTIVE:
                raise NeedsReconnectError(user_id)
            key, tokens = self._open(account, key)
            due = account.access_expires_at - self._clock() <= REFRESH_MARGIN_SECONDS
            if not due and tokens.access_token != rejected:
                return AccessGrant(tokens.access_token, account, refreshed=False)
            owner = uuid.uuid4().hex
            # Waiting for another run's live lease needs no time for a rotation of our own.
            if self._held_by_another(account):
                leased = False
            else:
                self._prepare(deadline, user_id)
                leased = self._lease(account, owner)
            if not leased:
                # Someone else is refreshing (or just did): wait for a new version, then re-read.
                if wait_until is None:
                    wait_until = self._clock() + self._timing.loser_wait_seconds
                if self._clock() + pause > wait_until:
                    raise LeaseTimeoutError(user_id)
                if not deadline.allows(pause + SAFETY_SECONDS):
                    raise DeadlineError("the invocation ran out of time waiting for another run's refresh")
                self._telemetry.count("LeaseWaits")
                self._sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            try:
                return self._rotate(account, key, tokens, owner, deadline)
            except TokenConflictError:
                # A reconnect or a disconnect replaced the tokens while we held the lease: what is
                # stored now is the truth, so read it again.
                conflicts += 1
                if conflicts > _MAX_CONFLICTS:
                    raise

    def _open(self, account: Account, key: DataKey | None) -> tuple[DataKey, PlainTokens]:
        if key is None or key.encrypted != account.sealed.data_key:
            # One KMS call per run: the data key survives rotations (only a reconnect replaces it).
            key = self._cipher.open_data_key(account.user_id, account.sealed.data_key)
        return key, self._cipher.open(account.user_id, key, account.sealed)

    def _held_by_another(self, account: Account) -> bool:
        return account.lease_owner is not None and (account.lease_until or 0.0) >= self._clock()

    def _prepare(self, deadline: Deadline, user_id: str) -> None:
        """Time for a whole rotation, and the client credentials in hand before any lease (a
        slow Secrets Manager call must not eat into it)."""
        self._require_time(deadline, user_id)
        self._oauth.credentials()
        self._require_time(deadline, user_id)

    def _lease(self, account: Account, owner: str) -> bool:
        now = self._clock()
        try:
            self._store.acquire_lease(
                account.user_id,
                version=account.version,
                owner=owner,
                now=now,
                until=now + self._timing.lease_seconds,
            )
        except TokenConflictError as exc:
            # Ours after all when an SDK retry of our own lease write lost its first answer.
            return exc.current is not None and exc.current.lease_owner == owner
        return True

    def current(self, user_id: str) -> PlainTokens | None:
        """The stored tokens as they are, without refreshing (for revoking them)."""
        account = self._store.get_account(user_id)
        if account is None:
            return None
        key = self._cipher.open_data_key(user_id, account.sealed.data_key)
        return self._cipher.open(user_id, key, account.sealed)

    def _require_time(self, deadline: Deadline, user_id: str) -> None:
        if not deadline.allows(self._timing.start_seconds):
            self._telemetry.count("RotationDeferred")
            self._telemetry.warning(
                "not enough time left to refresh the token safely; handed back",
                user_id=user_id,
                remaining_seconds=round(deadline.remaining(), 1),
                needed_seconds=round(self._timing.start_seconds, 1),
            )
            raise DeadlineError(
                f"not enough time left in this invocation to refresh the token safely "
                f"(needs {self._timing.start_seconds:.0f} s); handed back untouched"
            )

    def _rotate(
        self, account: Account, key: DataKey, tokens: PlainTokens, owner: str, deadline: Deadline
    ) -> AccessGrant:
        user_id = account.user_id
        try:
            fresh = self._grant(tokens.refresh_token)
        except DeadRefreshTokenError as exc:
            self._dead(account, owner, exc)
        except BaseException:
            self._release(user_id, owner)
            raise
        # Nothing may come between X's answer and this write: the old refresh token is now spent.
        sealed = self._cipher.seal(
            user_id, key, PlainTokens(fresh.access_token, fresh.refresh_token or tokens.refresh_token)
        )
        try:
            version = self._persist(account, sealed, fresh, deadline)
        except RotationNotStoredError:
            # The stored token is spent: let the next run find that out now, not at lease expiry.
            self._release(user_id, owner)
            raise
        self._telemetry.count("RefreshSucceeded")
        rotated = replace(
            account,
            version=version,
            sealed=sealed,
            access_expires_at=fresh.expires_at,
            lease_owner=None,
            lease_until=None,
        )
        return AccessGrant(fresh.access_token, rotated, refreshed=True)

    def _dead(self, account: Account, owner: str, exc: DeadRefreshTokenError) -> NoReturn:
        """X refused the refresh token: flag the account, unless a reconnect (or a late rotation
        write) replaced the token meanwhile, in which case the stored tokens are read again."""
        user_id = account.user_id
        try:
            flagged = self._store.mark_needs_reconnect(
                user_id,
                version=account.version,
                now_iso=iso_z(from_epoch(self._clock())),
                reason=f"X refused the refresh token ({exc.error}); reconnect the account via /connect",
            )
        except XMetricsError:
            # Unflagged, the next run meets the same refusal and flags it; our lease must not
            # keep it waiting until then.
            self._release(user_id, owner)
            flagged = True
        if not flagged:
            raise TokenConflictError("the refresh token was replaced while X refused the old one") from exc
        self._telemetry.count("RefreshFailed")
        self._telemetry.warning(
            "refresh token dead; account needs reconnect", user_id=user_id, error=exc.error
        )
        raise NeedsReconnectError(user_id) from exc

    def _grant(self, refresh_token: str) -> TokenSet:
        """Step 5: retry a POST that surely never reached X; send once more, with the same token,
        one whose answer may have been lost: X either never saw it, or now answers invalid_grant."""
        connect_retries = resends = 0
        while True:
            try:
                return self._oauth.refresh(refresh_token)
            except TransportError as exc:
                if not exc.maybe_sent and connect_retries < self._timing.connect_retries:
                    connect_retries += 1
                elif exc.maybe_sent and resends < self._timing.resends:
                    resends += 1
                else:
                    raise
            self._telemetry.count("TokenRetries")
            self._sleep(self._rand() * self._timing.backoff_cap)

    def _release(self, user_id: str, owner: str) -> None:
        try:
            self._store.release_lease(user_id, owner=owner)
        except XMetricsError:
            # The lease runs out by itself; the error being handled says more than this one.
            self._telemetry.count("LeaseReleaseFailed")

    def _persist(self, account: Account, sealed: SealedTokens, fresh: TokenSet, deadline: Deadline) -> int:
        """Write rotated tokens; X has already spent the old refresh token, so this write must land.

        Retried until the invocation's deadline, past the lease if need be: the write is
        conditioned on the spent token, not the lease, since nobody else can hold a live one.
        Each retry starts only with time for a whole write (SDK retries included) left, so the
        run ends with a status, not a kill. A conflict may mean our own write landed and only its
        answer was lost: the stored ciphertext tells.
        """
        pause = 0.2
        while True:
            try:
                return self._write(account, sealed, fresh)
            except TokenConflictError as exc:
                stored = exc.current if exc.current is not None else self._read_back(account.user_id)
                if stored is not None and stored.sealed == sealed:
                    return stored.version
                self._telemetry.count("RotationWriteLost")
                self._telemetry.warning(
                    "rotated tokens were not stored: the account changed meanwhile", user_id=account.user_id
                )
                raise
            except StoreUnavailableError as exc:
                if not deadline.allows(pause + self._timing.write_seconds + 1.0):
                    self._telemetry.count("RotationWriteFailed")
                    self._telemetry.warning(
                        "rotated tokens could not be stored before the deadline; "
                        "the account will need a reconnect",
                        user_id=account.user_id,
                        error=str(exc),
                    )
                    raise RotationNotStoredError(
                        f"X rotated the refresh token but {exc} until the deadline; "
                        "reconnect the account via /connect"
                    ) from exc
                self._telemetry.count("RotationWriteRetries")
                self._sleep(pause)
                pause = min(pause * 2, 5.0)

    def _write(self, account: Account, sealed: SealedTokens, fresh: TokenSet) -> int:
        """One attempt at storing the rotated tokens in place of the spent ones."""
        return self._store.complete_rotation(
            account.user_id,
            version=account.version,
            spent=account.sealed.refresh_token,
            sealed=sealed,
            access_expires_at=fresh.expires_at,
            scope=fresh.scope or account.scope,
            now_iso=iso_z(from_epoch(self._clock())),
        )

    def _read_back(self, user_id: str) -> Account | None:
        try:
            return self._store.get_account(user_id)
        except StoreUnavailableError:
            return None
