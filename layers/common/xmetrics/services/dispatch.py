"""The scheduled run: one job per active account, queued (or, without a queue, done inline)."""

from __future__ import annotations

from datetime import datetime

from xmetrics.deadline import Deadline
from xmetrics.errors import XMetricsError
from xmetrics.services.export_account import ExportAccount
from xmetrics.services.ports import AccountStore, JobQueue
from xmetrics.services.results import DispatchResult, describe
from xmetrics.services.window import make_job
from xmetrics.telemetry import Telemetry
from xmetrics.timeutil import iso_z


class DispatchRun:
    def __init__(
        self, store: AccountStore, export: ExportAccount, telemetry: Telemetry, *, queue: JobQueue | None
    ) -> None:
        self._store = store
        self._export = export
        self._telemetry = telemetry
        self._queue = queue

    def run(self, snapshot: datetime, deadline: Deadline) -> DispatchResult:
        result = DispatchResult(snapshot_at=iso_z(snapshot))
        try:
            user_ids = list(self._store.active_account_ids())
            result.accounts = len(user_ids)
            if self._queue is not None:
                result.queued = self._queue.send_jobs(user_ids, result.snapshot_at)
                self._telemetry.info(
                    "scheduled run dispatched", accounts=len(user_ids), snapshot_at=result.snapshot_at
                )
                return result
        except XMetricsError as exc:
            # Nothing is skipped silently: the run says failed, the metric feeds an alarm, and the
            # next scheduled run covers the whole window again.
            result.status, result.error = "failed", describe(exc)
            self._telemetry.count("DispatchFailed")
            self._telemetry.warning("scheduled run failed", error=result.error, queued=result.queued)
            return result
        for user_id in user_ids:
            result.summaries.append(self._export.run(make_job(user_id, snapshot), deadline))
        return result
