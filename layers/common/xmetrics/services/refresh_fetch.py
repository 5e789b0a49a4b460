"""Refresh-and-fetch: dispatch the scheduled run, and export one account per job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from xmetrics import records
from xmetrics.errors import (
    AccountNotFoundError,
    LeaseTimeoutError,
    NeedsReconnectError,
    OAuthError,
    RateLimitedError,
    StoreUnavailableError,
    TokenUnreadableError,
    TransportError,
    UnauthorizedError,
    XApiError,
)
from xmetrics.events import FetchJob, QueueBatch, make_job
from xmetrics.exporter import Exporter
from xmetrics.oauth.client import OAuthClient
from xmetrics.queue import JobQueue
from xmetrics.services.tokens import AccessGrant, TokenKeeper
from xmetrics.store import Store
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z
from xmetrics.x_api import XApi


@dataclass
class Summary:
    user_id: str
    status: str  # exported | needs_reconnect | not_found | failed
    tweets: int = 0
    key: str | None = None
    refreshed: bool = False
    pages: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    retry_after: float | None = None
    skipped: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False) or k == "refreshed"}


@dataclass
class DispatchResult:
    snapshot_at: str
    accounts: int = 0
    queued: int = 0
    summaries: list[Summary] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"snapshot_at": self.snapshot_at, "accounts": self.accounts}
        if self.summaries:
            out["results"] = [s.as_dict() for s in self.summaries]
            out["exported"] = sum(s.status == "exported" for s in self.summaries)
        else:
            out["queued"] = self.queued
        return out


class RefreshFetch:
    def __init__(
        self,
        store: Store,
        tokens: TokenKeeper,
        x: XApi,
        exporter: Exporter,
        telemetry: Telemetry,
        *,
        oauth: OAuthClient | None = None,
        queue: JobQueue | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._x = x
        self._exporter = exporter
        self._telemetry = telemetry
        self._oauth = oauth
        self._queue = queue
        self._clock = clock

    # --- one account ------------------------------------------------------------------------
    def run(self, job: FetchJob, wait_budget: Callable[[], float], *, skip_if_done: bool = False) -> Summary:
        """Export one account. Statuses, not exceptions, for accounts that cannot be exported;
        RateLimitedError propagates so a queue consumer can hand the message back to SQS."""
        try:
            return self._run(job, wait_budget, skip_if_done)
        except AccountNotFoundError:
            return Summary(job.user_id, "not_found", error="no such account; connect it via /connect")
        except NeedsReconnectError:
            return Summary(job.user_id, "needs_reconnect", error="reconnect the account via /connect")
        except TokenUnreadableError:
            self._telemetry.count("TokenUnreadable")
            self._telemetry.warning("stored tokens do not decrypt for this account", user_id=job.user_id)
            return Summary(
                job.user_id,
                "failed",
                error="stored tokens do not decrypt for this account; reconnect it via /connect",
            )
        except RateLimitedError:
            raise
        except (LeaseTimeoutError, OAuthError, XApiError, TransportError, StoreUnavailableError) as exc:
            message = _describe(exc)
            self._store.record_error(job.user_id, message=message, at_iso=self._now_iso())
            self._telemetry.count("FetchFailed")
            self._telemetry.warning("fetch failed", user_id=job.user_id, error=message)
            return Summary(job.user_id, "failed", error=message)

    def _run(self, job: FetchJob, wait_budget: Callable[[], float], skip_if_done: bool) -> Summary:
        grant = self._tokens.access_token(job.user_id)
        key_done = (grant.account.last_export or {}).get("key")
        if skip_if_done and key_done and key_done == self._exporter.key_for(job.user_id, job.snapshot):
            # A redelivered message whose export already landed: the object is there, nothing to redo.
            return Summary(
                job.user_id,
                "exported",
                key=key_done,
                skipped=True,
                tweets=int(float((grant.account.last_export or {}).get("count", 0))),
            )
        try:
            timeline = self._timeline(grant, job, wait_budget)
        except UnauthorizedError:
            # A token we believed valid was refused (revoked, or X expired it early): refresh
            # once, retry once.
            grant = self._tokens.access_token(job.user_id, rejected=grant.access_token)
            timeline = self._timeline(grant, job, wait_budget)
        account = grant.account
        batch = records.build(
            timeline.pages, user_id=job.user_id, username=account.username, snapshot_at=iso_z(job.snapshot)
        )
        # Only now, with every page in hand, does anything reach S3: no partial exports.
        exported = self._exporter.put(job.user_id, job.snapshot, batch.records)
        self._store.record_export(job.user_id, key=exported.key, count=exported.count, at_iso=self._now_iso())
        self._telemetry.count("TweetsExported", exported.count)
        self._telemetry.count("PagesFetched", len(timeline.pages))
        if timeline.rate_limited_waits:
            self._telemetry.count("RateLimited", timeline.rate_limited_waits)
        if timeline.retries:
            self._telemetry.count("XRetries", timeline.retries)
        self._telemetry.count("ExportBytes", exported.size, unit="Bytes")
        if batch.run_errors:
            self._telemetry.count("PartialErrors", len(batch.run_errors))
            self._telemetry.warning(
                "X reported errors naming no post", user_id=job.user_id, errors=batch.run_errors[:5]
            )
        self._telemetry.info(
            "account exported",
            user_id=job.user_id,
            key=exported.key,
            tweets=exported.count,
            pages=len(timeline.pages),
            refreshed=grant.refreshed,
        )
        return Summary(
            job.user_id,
            "exported",
            tweets=exported.count,
            key=exported.key,
            refreshed=grant.refreshed,
            pages=len(timeline.pages),
            errors=batch.run_errors,
        )

    def _timeline(self, grant: AccessGrant, job: FetchJob, wait_budget: Callable[[], float]) -> Any:
        return self._x.timeline(
            grant.access_token,
            job.user_id,
            start_time=job.start_time,
            end_time=job.end_time,
            wait_budget=wait_budget,
        )

    # --- the scheduled run ----------------------------------------------------------------------
    def dispatch(self, snapshot: datetime, wait_budget: Callable[[], float]) -> DispatchResult:
        result = DispatchResult(snapshot_at=iso_z(snapshot))
        user_ids = list(self._store.active_account_ids())
        result.accounts = len(user_ids)
        if self._queue is not None:
            result.queued = self._queue.send_jobs(user_ids, result.snapshot_at)
            self._telemetry.info(
                "scheduled run dispatched", accounts=len(user_ids), snapshot_at=result.snapshot_at
            )
            return result
        for user_id in user_ids:
            try:
                summary = self.run(make_job(user_id, snapshot), wait_budget)
            except RateLimitedError as exc:
                summary = Summary(user_id, "failed", error="rate limited by X", retry_after=exc.reset_at)
            result.summaries.append(summary)
        return result

    # --- the queue worker -------------------------------------------------------------------------
    def handle_batch(self, batch: QueueBatch, wait_budget: Callable[[], float]) -> dict[str, Any]:
        failures: list[dict[str, str]] = []
        for message in batch.messages:
            if message.job is None:
                # A malformed message will never succeed: log it and let it go (not to the DLQ loop).
                self._telemetry.warning(
                    "dropped malformed queue message", message_id=message.message_id, error=message.error
                )
                continue
            try:
                summary = self.run(message.job, wait_budget, skip_if_done=True)
            except RateLimitedError as exc:
                self._telemetry.count("RateLimited")
                if self._queue is not None:
                    self._queue.defer(message.receipt_handle, exc.reset_at - self._clock() + 1)
                failures.append({"itemIdentifier": message.message_id})
                continue
            except Exception as exc:  # noqa: BLE001 - one account's crash must not fail its batch mates
                self._telemetry.warning(
                    "queue message failed",
                    message_id=message.message_id,
                    user_id=message.job.user_id,
                    error=type(exc).__name__,
                )
                failures.append({"itemIdentifier": message.message_id})
                continue
            if summary.status == "failed":
                failures.append({"itemIdentifier": message.message_id})
        return {"batchItemFailures": failures}

    # --- disconnect -----------------------------------------------------------------------------
    def disconnect(self, user_id: str) -> dict[str, Any]:
        """Revoke the account's tokens at X (best effort) and delete it."""
        tokens = self._tokens.current(user_id)
        if tokens is None:
            return {"user_id": user_id, "status": "not_found"}
        revoked = False
        if self._oauth is not None:
            try:
                # Revoking the refresh token ends the whole grant, its access tokens included.
                self._oauth.revoke(tokens.refresh_token, "refresh_token")
                revoked = True
            except (OAuthError, TransportError) as exc:
                self._telemetry.warning(
                    "revoke failed during disconnect", user_id=user_id, error=type(exc).__name__
                )
        self._store.delete_account(user_id)
        self._telemetry.info("account disconnected", user_id=user_id, revoked=revoked)
        return {"user_id": user_id, "status": "disconnected", "revoked": revoked}

    def _now_iso(self) -> str:
        return iso_z(from_epoch(self._clock()))


def _describe(exc: Exception) -> str:
    if isinstance(exc, XApiError):
        return f"X API answered {exc.status}{': ' + exc.detail if exc.detail else ''}"[:300]
    if isinstance(exc, OAuthError):
        return f"token endpoint refused: {exc.error}"
    if isinstance(exc, LeaseTimeoutError):
        return "another run held the token lease too long; will retry next run"
    return f"{type(exc).__name__}: {exc}"[:300]
