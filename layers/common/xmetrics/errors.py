"""Domain errors. Adapters translate transport and AWS errors into these exactly once."""

from __future__ import annotations


class XMetricsError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(XMetricsError):
    """A missing or malformed setting; the message names the variable."""


class ValidationError(XMetricsError):
    """Input from a caller (an event, a query string) that cannot be used."""


class StateError(XMetricsError):
    """The OAuth `state` is missing, unknown, spent, expired or from another browser."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OAuthError(XMetricsError):
    """The token endpoint refused a request (RFC 6749 §5.2 error)."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


class DeadRefreshTokenError(OAuthError):
    """The refresh token is spent or revoked: only a reconnect can bring the account back."""


class TransportError(XMetricsError):
    """The HTTP request failed without an answer.

    `maybe_sent` is False only when the request surely never reached the server
    (a connect error); that is the one case where a token grant may be retried blindly.
    """

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class XApiError(XMetricsError):
    """X's API answered with an error status."""

    def __init__(self, status: int, title: str = "", detail: str = "") -> None:
        super().__init__(f"X API {status}: {title or detail}".rstrip(": "))
        self.status = status
        self.title = title
        self.detail = detail


class UnauthorizedError(XApiError):
    """401: the access token was not accepted."""


class RateLimitedError(XApiError):
    """429: wait until `reset_at` (epoch seconds) before asking again."""

    def __init__(self, reset_at: float, detail: str = "") -> None:
        super().__init__(429, "Too Many Requests", detail)
        self.reset_at = reset_at


class XServerError(XApiError):
    """5xx (or an unreadable body) that persisted through the retries."""


class TokenUnreadableError(XMetricsError):
    """The stored tokens do not decrypt for this account (moved between items, tampered, wrong key)."""


class StoreUnavailableError(XMetricsError):
    """DynamoDB did not take a write (throttled, 5xx, network) after the SDK's own retries."""


class TokenConflictError(XMetricsError):
    """A conditional write lost: someone else changed the account's tokens or holds the lease."""


class LeaseTimeoutError(XMetricsError):
    """Waited the bounded time for another holder's refresh without seeing new tokens."""


class AccountNotFoundError(XMetricsError):
    """No `account#<user_id>` item."""


class NeedsReconnectError(XMetricsError):
    """The account is marked `needs_reconnect`; no call to X is made for it."""


class AuthorizationDeniedError(XMetricsError):
    """X sent the user back with `error=` (they pressed Cancel, or X refused the request)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


class NotAllowedError(XMetricsError):
    """The account is not on ALLOWED_X_USERS; its tokens were revoked and nothing was stored."""

    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username


class MissingScopeError(XMetricsError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__(" ".join(missing))
        self.missing = missing
