"""The account itself, once a UTC day: users/me with its public counts, one line under accounts/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from xmetrics import records
from xmetrics.deadline import Deadline
from xmetrics.errors import XMetricsError
from xmetrics.limits import ACCOUNT_SNAPSHOT_SECONDS, EXPORT_RESERVE_SECONDS
from xmetrics.services.billing import Bookkeeping, Reads, utc_day
from xmetrics.services.ports import ExportSink, Timelines
from xmetrics.services.results import describe
from xmetrics.services.tokens import AccessGrant
from xmetrics.services.window import FetchJob
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import from_epoch, iso_z

# A run this late (a replay, a redriven message) reads today's counts, not its day's: it takes none.
LATE = timedelta(hours=6)


@dataclass(frozen=True)
class Snapshot:
    status: str | None = None  # None: not due (taken already this UTC day, or a backfill)
    key: str | None = None
    username: str | None = None
    tweet_count: int | None = None
    reads: Reads = field(default_factory=Reads)
    read_day: str | None = None  # the UTC day users/me answered, whatever became of the line

    @property
    def taken(self) -> bool:
        return self.key is not None


class AccountSnapshots:
    def __init__(
        self,
        x: Timelines,
        exporter: ExportSink,
        telemetry: Telemetry,
        bill: Callable[[Reads], None],
        clock: Callable[[], float],
    ) -> None:
        self._x = x
        self._exporter = exporter
        self._telemetry = telemetry
        self._bill = bill
        self._clock = clock

    def take(self, job: FetchJob, grant: AccessGrant, book: Bookkeeping, deadline: Deadline) -> Snapshot:
        """The first run of each UTC day reads the account (followers and the other public counts)
        after its posts are in S3. It never blocks the posts' export: a failure is its own status,
        and the day's next run tries again. A replay of a day that has its line reads nothing, and
        a run long after its scheduled time, or past its UTC day's end, takes none (X would answer
        with the counts of its own clock's day)."""
        day, now = utc_day(job.snapshot), self._clock()
        # Late, or X's clock already on another UTC day: X would answer with another day's counts.
        late = now - job.snapshot.timestamp() > LATE.total_seconds() or utc_day(from_epoch(now)) != day
        if job.backfill or day in book.accounts or late:
            return Snapshot()
        if not deadline.allows(EXPORT_RESERVE_SECONDS + ACCOUNT_SNAPSHOT_SECONDS):
            return Snapshot(status="waiting: too little time left in this run; the day's next run takes it")
        # X bills a user once a UTC day: the connect's users/me read, or this day's earlier one
        # whose line was lost, was the billed one.
        billed = day not in ((grant.account.connected_at or "")[:10], book.user_read)
        reads = Reads(users=1, billed_users=int(billed))
        try:
            data = self._x.account(grant.access_token)
        except XMetricsError as exc:
            return self._failed(job, describe(exc))
        self._bill(reads)
        if str(data.get("id")) != job.user_id:
            return self._failed(job, "X answered users/me for another account", reads, day)
        try:
            line = records.account(data, snapshot_at=iso_z(job.snapshot))
        except (KeyError, TypeError, ValueError):
            return self._failed(job, "X sent a users/me answer this app cannot read", reads, day)
        try:
            put = self._exporter.put(job.user_id, job.snapshot, [line], dataset="accounts")
        except XMetricsError as exc:
            return self._failed(job, describe(exc), reads, day)
        count = line.get("public_metrics", {}).get("tweet_count")
        return Snapshot(
            status="exported",
            key=put.key,
            username=line["username"],
            tweet_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            reads=reads,
            read_day=day,
        )

    def _failed(
        self, job: FetchJob, message: str, reads: Reads | None = None, day: str | None = None
    ) -> Snapshot:
        self._telemetry.count("AccountSnapshotFailed")
        self._telemetry.warning("account snapshot failed", user_id=job.user_id, error=message)
        return Snapshot(status=f"failed: {message}"[:300], reads=reads or Reads(), read_day=day)
