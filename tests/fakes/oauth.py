"""X's token endpoint as a model: one live refresh token per grant, rotated on every use, a spent
one refused with invalid_grant; each POST can be given a fault."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from xmetrics.errors import DeadRefreshTokenError, OAuthError, TransportError
from xmetrics.oauth.client import ClientCredentials, TokenSet

# What can happen to one POST, and whether X rotated the token before it went wrong.
NEVER_SENT = "never_sent"  # connect error: X saw nothing
SERVER_ERROR = "server_error"  # 5xx: X did not rotate
TIMEOUT_BEFORE = "timeout_before"  # read timeout, X had not processed it yet
LOST_AFTER = "lost_after"  # X rotated, the answer never arrived: no client survives this
FAULTS = (NEVER_SENT, SERVER_ERROR, TIMEOUT_BEFORE, LOST_AFTER)


@dataclass
class FakeTokenEndpoint:
    clock: Callable[[], float]
    live_refresh: str = "r0"
    issued: int = 0
    posts: int = 0
    revoked: bool = False
    # Each POST pops the next fault (None = answer normally).
    faults: list[str | None] = field(default_factory=list)
    # Called at every POST: may advance a fake clock (a slow X).
    on_post: Callable[[], None] = lambda: None
    credential_reads: int = 0
    events: list[str] = field(default_factory=list)
    # Seconds an access token lives (X's is 2 h); a simulation shortens it to make every run rotate.
    access_lifetime: float = 7200.0

    def credentials(self) -> ClientCredentials:
        self.credential_reads += 1
        self.events.append("credentials")
        return ClientCredentials("client", "secret")

    def refresh(self, refresh_token: str) -> TokenSet:
        self.posts += 1
        self.events.append("refresh")
        self.on_post()
        fault = self.faults.pop(0) if self.faults else None
        if fault == NEVER_SENT:
            raise TransportError("connect failed", maybe_sent=False)
        if fault in (SERVER_ERROR, TIMEOUT_BEFORE):
            raise TransportError(f"token POST failed: {fault}", maybe_sent=True)
        if self.revoked or refresh_token != self.live_refresh:
            raise DeadRefreshTokenError("invalid_grant", "Value passed for the token was invalid.", 400)
        answer = self.mint()
        if fault == LOST_AFTER:
            raise TransportError("read timed out", maybe_sent=True)
        return answer

    def mint(self) -> TokenSet:
        self.issued += 1
        self.live_refresh = f"r{self.issued}"
        return TokenSet(
            access_token=f"a{self.issued}",
            refresh_token=self.live_refresh,
            expires_at=self.clock() + self.access_lifetime,
            scope="tweet.read users.read offline.access",
        )

    def revoke(self, token: str, token_type_hint: str) -> None:
        if token != self.live_refresh:
            raise OAuthError("invalid_request", "unknown token", 400)
        self.revoked = True
