"""The account itself, once a UTC day: users/me with its public counts, one line under accounts/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from xmetrics import records
from xmetrics.errors import XMetricsError
from xmetrics.services.billing import Bookkeeping, Reads, utc_day
from xmetrics.services.ports import ExportSink, Timelines
from xmetrics.services.results import describe
from xmetrics.services.tokens import AccessGrant
from xmetrics.services.window import FetchJob
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import iso_z


@dataclass(frozen=True)
class Snapshot:
    status: str | None = None  # None: not due (taken already this UTC day, or a backfill)
    key: str | None = None
    username: str | None = None
    tweet_count: int | None = None
    reads: Reads = field(default_factory=Reads)

    @property
    def taken(self) -> bool:
        return self.key is not None


class AccountSnapshots:
    def __init__(
        self, x: Timelines, exporter: ExportSink, telemetry: Telemetry, bill: Callable[[Reads], None]
    ) -> None:
        self._x = x
        self._exporter = exporter
        self._telemetry = telemetry
        self._bill = bill

    def take(self, job: FetchJob, grant: AccessGrant, book: Bookkeeping) -> Snapshot:
        """The first run of each UTC day reads the account (followers and the other public counts)
        after its posts are in S3. It never blocks the posts' export: a failure is its own status,
        and the day's next run tries again. A replay of a day that has its line reads nothing."""
        day = utc_day(job.snapshot)
        if job.backfill or day in book.accounts:
            return Snapshot()
        # X bills a user once a UTC day: the connect's own users/me read, that day, was the one.
        connected = (grant.account.connected_at or "")[:10]
        reads = Reads(users=1, billed_users=0 if connected == day else 1)
        try:
            data = self._x.account(grant.access_token)
        except XMetricsError as exc:
            return self._failed(job, describe(exc))
        self._bill(reads)
        try:
            line = records.account(data, snapshot_at=iso_z(job.snapshot))
        except (KeyError, TypeError, ValueError):
            return self._failed(job, "X sent a users/me answer this app cannot read", reads)
        try:
            put = self._exporter.put(job.user_id, job.snapshot, [line], dataset="accounts")
        except XMetricsError as exc:
            return self._failed(job, describe(exc), reads)
        count = line.get("public_metrics", {}).get("tweet_count")
        return Snapshot(
            status="exported",
            key=put.key,
            username=line["username"],
            tweet_count=count if isinstance(count, int) else None,
            reads=reads,
        )

    def _failed(self, job: FetchJob, message: str, reads: Reads | None = None) -> Snapshot:
        self._telemetry.count("AccountSnapshotFailed")
        self._telemetry.warning("account snapshot failed", user_id=job.user_id, error=message)
        return Snapshot(status=f"failed: {message}"[:300], reads=reads or Reads())
