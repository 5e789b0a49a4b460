"""The fetch function's event shapes (DESIGN.md), parsed and validated into typed requests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from xmetrics.errors import ValidationError
from xmetrics.timeutil import parse_utc

_USER_ID_RE = re.compile(r"^[0-9]{1,20}$")
# X keeps private metrics for 30 days; the hour of margin keeps the oldest post inside the
# window even when the run starts a little late.
WINDOW = timedelta(days=30) - timedelta(hours=1)


@dataclass(frozen=True)
class FetchJob:
    user_id: str
    snapshot: datetime
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True)
class ScheduledRun:
    snapshot: datetime


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    receive_count: int
    job: FetchJob | None
    error: str | None = None


@dataclass(frozen=True)
class QueueBatch:
    messages: list[QueueMessage]


@dataclass(frozen=True)
class ManualRun:
    job: FetchJob


@dataclass(frozen=True)
class Disconnect:
    user_id: str


FetchEvent = ScheduledRun | QueueBatch | ManualRun | Disconnect


def _user_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _USER_ID_RE.match(value):
        raise ValidationError('user_id must be X\'s numeric user id as a string, e.g. "2244994945"')
    return value


def _moment(event: dict[str, Any], name: str) -> datetime | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ValidationError(f"{name} must be an ISO 8601 UTC timestamp like 2026-11-28T16:00:00Z")
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise ValidationError(f"{name}: {exc}") from None


def make_job(
    user_id: str, snapshot: datetime, start: datetime | None = None, end: datetime | None = None
) -> FetchJob:
    """The window a run asks X for: the same snapshot always asks the same question."""
    end_time = min(end, snapshot) if end else snapshot
    start_time = max(snapshot - WINDOW, start) if start else snapshot - WINDOW
    if start_time >= end_time:
        raise ValidationError("start_time must be before end_time, and inside the last 30 days")
    return FetchJob(user_id, snapshot, start_time, end_time)


def _queue_message(record: dict[str, Any]) -> QueueMessage:
    message_id = str(record.get("messageId", ""))
    receipt = str(record.get("receiptHandle", ""))
    count = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1") or 1)
    try:
        body = json.loads(record.get("body") or "")
        if not isinstance(body, dict):
            raise ValidationError("message body must be a JSON object")
        snapshot = _moment(body, "snapshot_at")
        if snapshot is None:
            raise ValidationError("snapshot_at is required")
        job = make_job(_user_id(body.get("user_id")), snapshot)
    except (ValueError, ValidationError) as exc:
        reason = str(exc) if isinstance(exc, ValidationError) else "message body is not JSON"
        return QueueMessage(message_id, receipt, count, None, reason)
    return QueueMessage(message_id, receipt, count, job)


def parse_fetch_event(event: Any, now: datetime) -> FetchEvent:
    if not isinstance(event, dict):
        raise ValidationError("the event must be a JSON object")
    if isinstance(event.get("Records"), list):
        records = event["Records"]
        if not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
            raise ValidationError("only SQS records are accepted")
        return QueueBatch([_queue_message(r) for r in records])
    if event.get("detail-type") == "Scheduled Event" or event.get("source") in (
        "aws.events",
        "aws.scheduler",
    ):
        snapshot = _moment(event, "time") or now
        return ScheduledRun(snapshot)
    if event.get("action") == "disconnect":
        return Disconnect(_user_id(event.get("user_id")))
    if "user_id" in event:
        unknown = set(event) - {"user_id", "start_time", "end_time", "action"}
        if unknown or event.get("action") not in (None, "fetch"):
            raise ValidationError(f"unknown fields: {', '.join(sorted(map(str, unknown))) or 'action'}")
        end = _moment(event, "end_time")
        if end and end > now:
            raise ValidationError("end_time is in the future")
        return ManualRun(make_job(_user_id(event["user_id"]), now, _moment(event, "start_time"), end))
    raise ValidationError(
        "unrecognised event: expected an EventBridge Scheduled Event, SQS records, "
        '{"user_id": "…"} or {"action": "disconnect", "user_id": "…"}'
    )
