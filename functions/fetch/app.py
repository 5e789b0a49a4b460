"""Refresh-and-fetch: the schedule (dispatch), the queue (one account a message), a manual invoke."""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from xmetrics.config import FetchSettings
from xmetrics.errors import ValidationError
from xmetrics.events import Disconnect, ManualRun, QueueBatch, ScheduledRun, parse_fetch_event
from xmetrics.observability import PowertoolsTelemetry, log_failure, logger, metrics
from xmetrics.services.refresh_fetch import RefreshFetch
from xmetrics.timeutil import from_epoch
from xmetrics.wiring import Clients, build_refresh_fetch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Seconds kept back from the Lambda's remaining time for writing the export after a 429 wait.
_WRITE_RESERVE = 30.0


@lru_cache(maxsize=1)
def _service() -> RefreshFetch:
    return build_refresh_fetch(FetchSettings.from_env(), Clients(), PowertoolsTelemetry())


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    def budget() -> float:
        return context.get_remaining_time_in_millis() / 1000.0 - _WRITE_RESERVE

    try:
        request = parse_fetch_event(event, from_epoch(time.time()))
    except ValidationError as exc:
        log_failure(exc)
        return {"status": "invalid_event", "error": str(exc)}
    service = _service()
    if isinstance(request, QueueBatch):
        return service.handle_batch(request, budget)
    if isinstance(request, ScheduledRun):
        return service.dispatch(request.snapshot, budget).as_dict()
    if isinstance(request, ManualRun):
        return service.run(request.job, budget).as_dict()
    assert isinstance(request, Disconnect)
    return service.disconnect(request.user_id)
