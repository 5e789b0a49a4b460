"""One queued job: export it, unless a redelivery finds it done; after a 429, hand the message
back to SQS until X's reset instead of burning a receive."""

from __future__ import annotations

import time
from collections.abc import Callable

from xmetrics.deadline import Deadline
from xmetrics.errors import XMetricsError
from xmetrics.services.export_account import ExportAccount
from xmetrics.services.ports import JobQueue
from xmetrics.services.results import Summary
from xmetrics.services.window import FetchJob
from xmetrics.telemetry import Telemetry


class ExportQueued:
    def __init__(
        self,
        export: ExportAccount,
        queue: JobQueue | None,
        telemetry: Telemetry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._export = export
        self._queue = queue
        self._telemetry = telemetry
        self._clock = clock

    def run(self, job: FetchJob, receipt_handle: str, deadline: Deadline) -> Summary:
        summary = self._export.run(job, deadline, skip_if_done=True)
        if summary.retry_after is not None and self._queue is not None:
            try:
                self._queue.defer(receipt_handle, summary.retry_after - self._clock() + 1)
            except XMetricsError as exc:
                # The message still fails: SQS redelivers it after the queue's own visibility timeout.
                self._telemetry.warning("could not defer the message", user_id=job.user_id, error=str(exc))
        return summary
