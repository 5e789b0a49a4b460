"""What the fetch function's use cases answer: one shape each, as DESIGN.md's events section says."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from xmetrics.errors import (
    AwsUnavailableError,
    LeaseTimeoutError,
    OAuthError,
    TokenConflictError,
    TokenUnreadableError,
    XApiError,
    XMetricsError,
)

# Always said, even when zero or false: a reader must not have to guess what a missing key means.
_ALWAYS = frozenset({"user_id", "status", "tweets", "refreshed", "errors"})
# The runs dataset's own schema version: its lines are not posts, they change on their own.
RUNS_SCHEMA_VERSION = 1


@dataclass
class Summary:
    """One account's run: exported | needs_reconnect | not_found | failed | usage_capped |
    budget_exhausted."""

    user_id: str
    status: str
    tweets: int = 0
    key: str | None = None
    refreshed: bool = False
    pages: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    # Epoch seconds X's rate limit resets at: a queued job is handed back to SQS until then.
    retry_after: float | None = None
    skipped: bool = False
    # The read tiers this run read, and the due ones it left for a later run (the budget).
    tiers: list[str] = field(default_factory=list)
    skipped_tiers: list[str] = field(default_factory=list)
    # What X returned, by kind, what of it X bills (new for the UTC day), and its estimated cost.
    reads: dict[str, int] = field(default_factory=dict)
    billed: dict[str, int] = field(default_factory=dict)
    cost_usd: float = 0.0
    # The day's account snapshot (users/me): exported, or failed with why; absent when not due.
    account: str | None = None
    account_key: str | None = None
    # Whether X's reach covered the windows the run read (services/completeness.py), and why.
    complete: bool | None = None
    complete_reason: str | None = None
    oldest_reached: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in asdict(self).items()
            if k in _ALWAYS or (k == "complete" and v is not None) or v not in (None, False, 0, [], {})
        }

    def as_run_line(self, snapshot_at: str) -> dict[str, Any]:
        """The account-run as one line of the runs dataset: every field always present, so the
        table's columns never depend on what a run happened to say."""
        return {
            "schema_version": RUNS_SCHEMA_VERSION,
            "snapshot_at": snapshot_at,
            "user_id": self.user_id,
            "status": self.status,
            "tweets": self.tweets,
            "pages": self.pages,
            "tiers": self.tiers,
            "skipped_tiers": self.skipped_tiers,
            "reads": {k: self.reads.get(k, 0) for k in ("posts", "media", "users")},
            "billed": {k: self.billed.get(k, 0) for k in ("posts", "media", "users")},
            "cost_usd": self.cost_usd,
            "complete": self.complete,
            "complete_reason": self.complete_reason,
            "oldest_reached": self.oldest_reached,
            "account": self.account,
            "error": self.error,
        }


@dataclass
class DispatchResult:
    """The scheduled run: jobs queued (or, without a queue, each account's summary)."""

    snapshot_at: str
    status: str = "dispatched"  # dispatched | failed
    accounts: int = 0
    queued: int = 0
    summaries: list[Summary] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "snapshot_at": self.snapshot_at,
            "status": self.status,
            "accounts": self.accounts,
        }
        if self.summaries:
            out["results"] = [s.as_dict() for s in self.summaries]
            out["exported"] = sum(s.status == "exported" for s in self.summaries)
        else:
            out["queued"] = self.queued
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class DisconnectResult:
    user_id: str
    status: str  # disconnected | not_found | failed
    revoked: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def describe(exc: XMetricsError) -> str:
    """One line for a user and a log: what failed, never request data or a secret."""
    if isinstance(exc, XApiError):
        return f"X API answered {exc.status}{': ' + exc.detail if exc.detail else ''}"[:300]
    if isinstance(exc, OAuthError):
        return f"token endpoint refused: {exc.error}"
    if isinstance(exc, LeaseTimeoutError):
        return "another run held the token lease too long; will retry next run"
    if isinstance(exc, TokenUnreadableError):
        return "stored tokens do not decrypt for this account; reconnect it via /connect"
    if isinstance(exc, TokenConflictError):
        return "the account's tokens changed during this run (reconnected or disconnected); will retry"
    if isinstance(exc, AwsUnavailableError):
        if "AccessDenied" in exc.code:
            return f"{exc}; check the function's IAM role (and the key policy for KMS)"[:300]
        return f"{exc}; will retry"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
