"""Export one account: a usable token, every page of its window, one JSON-lines object in S3."""

from __future__ import annotations

import time
from collections.abc import Callable

from xmetrics import records
from xmetrics.deadline import Deadline
from xmetrics.errors import (
    AccountNotFoundError,
    DeadlineError,
    NeedsReconnectError,
    RateLimitedError,
    TokenUnreadableError,
    UnauthorizedError,
    XMetricsError,
)
from xmetrics.limits import EXPORT_RESERVE_SECONDS
from xmetrics.services.ports import AccountStore, ExportSink, Timelines
from xmetrics.services.results import Summary, describe
from xmetrics.services.tokens import AccessGrant, TokenKeeper
from xmetrics.services.window import FetchJob
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z
from xmetrics.x_api import Timeline


class ExportAccount:
    def __init__(
        self,
        store: AccountStore,
        tokens: TokenKeeper,
        x: Timelines,
        exporter: ExportSink,
        telemetry: Telemetry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._x = x
        self._exporter = exporter
        self._telemetry = telemetry
        self._clock = clock

    def run(self, job: FetchJob, deadline: Deadline, *, skip_if_done: bool = False) -> Summary:
        """A status for every outcome, whatever AWS or X answers: never an exception."""
        try:
            return self._run(job, deadline, skip_if_done)
        except AccountNotFoundError:
            return Summary(job.user_id, "not_found", error="no such account; connect it via /connect")
        except NeedsReconnectError:
            return Summary(job.user_id, "needs_reconnect", error="reconnect the account via /connect")
        except RateLimitedError as exc:
            self._telemetry.count("RateLimited")
            return Summary(
                job.user_id,
                "failed",
                error="rate limited by X; retried after the reset",
                retry_after=exc.reset_at,
            )
        except DeadlineError as exc:
            # Handed back untouched: writing last_error would spend the little time that is left.
            self._telemetry.count("HandedBack")
            return Summary(job.user_id, "failed", error=str(exc))
        except XMetricsError as exc:
            return self._failed(job, exc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A shape X's answers should never have (a post without an id, a list for an object):
            # the run fails with a status, and the log names the kind of damage, not the data.
            return self._failed(
                job, XMetricsError(f"X sent an answer this app cannot read ({type(exc).__name__})")
            )

    def _failed(self, job: FetchJob, exc: XMetricsError) -> Summary:
        message = describe(exc)
        if isinstance(exc, TokenUnreadableError):
            self._telemetry.count("TokenUnreadable")
        self._telemetry.count("FetchFailed")
        self._telemetry.warning("fetch failed", user_id=job.user_id, error=message)
        try:
            self._store.record_error(job.user_id, message=message, at_iso=self._now_iso())
        except XMetricsError as also:
            self._telemetry.warning("could not record the error", user_id=job.user_id, error=describe(also))
        return Summary(job.user_id, "failed", error=message)

    def _run(self, job: FetchJob, deadline: Deadline, skip_if_done: bool) -> Summary:
        account = self._store.get_account(job.user_id)
        if account is None:
            raise AccountNotFoundError(job.user_id)
        last = account.last_export or {}
        key = self._exporter.key_for(job.user_id, job.snapshot, window=job.window)
        if skip_if_done and last.get("key") == key:
            # A redelivered message whose export already landed: the object is there, nothing to
            # redo, and no token to refresh for it.
            return Summary(
                job.user_id, "exported", key=key, skipped=True, tweets=int(float(last.get("count", 0)))
            )
        grant = self._tokens.access_token(job.user_id, deadline, known=account)
        try:
            timeline = self._timeline(grant, job, deadline)
        except UnauthorizedError:
            # A token we believed valid was refused (revoked, or X expired it early): refresh
            # once, retry once.
            grant = self._tokens.access_token(job.user_id, deadline, rejected=grant.access_token)
            timeline = self._timeline(grant, job, deadline)
        batch = records.build(
            timeline.pages,
            user_id=job.user_id,
            username=grant.account.username,
            snapshot_at=iso_z(job.snapshot),
        )
        # Only now, with every page in hand, does anything reach S3: no partial exports.
        exported = self._exporter.put(job.user_id, job.snapshot, batch.records, window=job.window)
        try:
            self._store.record_export(
                job.user_id, key=exported.key, count=exported.count, at_iso=self._now_iso()
            )
        except AccountNotFoundError:
            self._telemetry.warning("account disconnected during its export", user_id=job.user_id)
            return Summary(
                job.user_id,
                "not_found",
                key=exported.key,
                tweets=exported.count,
                error="the account was disconnected during this export; its object stays in S3",
            )
        self._report(job, grant, timeline, exported.count, exported.size, exported.key, batch.run_errors)
        return Summary(
            job.user_id,
            "exported",
            tweets=exported.count,
            key=exported.key,
            refreshed=grant.refreshed,
            pages=len(timeline.pages),
            errors=batch.run_errors,
        )

    def _timeline(self, grant: AccessGrant, job: FetchJob, deadline: Deadline) -> Timeline:
        return self._x.timeline(
            grant.access_token,
            job.user_id,
            start_time=job.start_time,
            end_time=job.end_time,
            wait_budget=lambda: deadline.remaining() - EXPORT_RESERVE_SECONDS,
        )

    def _report(
        self,
        job: FetchJob,
        grant: AccessGrant,
        timeline: Timeline,
        count: int,
        size: int,
        key: str,
        run_errors: list[dict[str, object]],
    ) -> None:
        self._telemetry.count("TweetsExported", count)
        self._telemetry.count("PagesFetched", len(timeline.pages))
        if timeline.rate_limited_waits:
            self._telemetry.count("RateLimited", timeline.rate_limited_waits)
        if timeline.retries:
            self._telemetry.count("XRetries", timeline.retries)
        self._telemetry.count("ExportBytes", size, unit="Bytes")
        if run_errors:
            self._telemetry.count("PartialErrors", len(run_errors))
            self._telemetry.warning(
                "X reported errors naming no post", user_id=job.user_id, errors=run_errors[:5]
            )
        self._telemetry.info(
            "account exported",
            user_id=job.user_id,
            key=key,
            tweets=count,
            pages=len(timeline.pages),
            refreshed=grant.refreshed,
        )

    def _now_iso(self) -> str:
        return iso_z(from_epoch(self._clock()))
