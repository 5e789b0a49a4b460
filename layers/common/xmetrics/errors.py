"""Domain errors. Adapters translate transport and AWS errors into these exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xmetrics.store import Account


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


class UsageCappedError(XApiError):
    """429 or 402 whose body says the app's usage cap or prepaid credits are exhausted: not a rate
    limit. Waiting minutes does not lift it, so nobody waits or retries."""


class BudgetExhaustedError(XMetricsError):
    """The app's DailyReadBudget has no billable reads left for this UTC day."""


class XServerError(XApiError):
    """5xx (or an unreadable body) that persisted through the retries."""


class TokenUnreadableError(XMetricsError):
    """The stored tokens do not decrypt for this account (moved between items, tampered, wrong key)."""


class AwsUnavailableError(XMetricsError):
    """An AWS call failed after the SDK's own retries (throttled, 5xx, access denied, a disabled
    key, the network). Each adapter raises its own subclass, translated once, in one place.

    The message names the service, the operation and AWS's error code, never request data.
    """

    service = "AWS"

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"{self.service} {operation} failed: {code}")
        self.operation = operation
        self.code = code


class StoreUnavailableError(AwsUnavailableError):
    """DynamoDB refused or lost a call."""

    service = "DynamoDB"


class KeyUnavailableError(AwsUnavailableError):
    """KMS refused to use the token key (disabled, pending deletion, access denied, throttled)."""

    service = "KMS"


class SecretsUnavailableError(AwsUnavailableError):
    """Secrets Manager could not hand over the client credentials."""

    service = "Secrets Manager"


class QueueSendError(AwsUnavailableError):
    """SQS refused a send or a visibility change; a scheduled run fails so nothing is skipped silently."""

    service = "SQS"


class ExportWriteError(AwsUnavailableError):
    """S3 did not take the export object."""

    service = "S3"


class RotationNotStoredError(XMetricsError):
    """X rotated the refresh token and DynamoDB refused the new one until the invocation's end:
    the stored token is spent, so the account will need a reconnect."""


class DeadlineError(XMetricsError):
    """Not enough of the Lambda's time is left to do this safely; the work is handed back untouched."""


class TokenConflictError(XMetricsError):
    """A conditional write lost: someone else changed the account's tokens or holds the lease.

    `current` is the item that stood in the way, as DynamoDB handed it back with the failure
    (None when it was not sent, or the account is gone): it tells "someone else won" from
    "my own earlier attempt landed" without a second read.
    """

    def __init__(self, message: str = "", *, current: Account | None = None) -> None:
        super().__init__(message)
        self.current = current


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
