"""The fetch function's event shapes (DESIGN.md), parsed and validated into typed requests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xmetrics.errors import ValidationError
from xmetrics.services.window import FetchJob, check_snapshot, make_job
from xmetrics.timeutil import parse_utc

_USER_ID_RE = re.compile(r"[0-9]{1,20}")


@dataclass(frozen=True)
class ScheduledRun:
    snapshot: datetime


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
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
    if not isinstance(value, str) or not _USER_ID_RE.fullmatch(value):
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


def _snapshot(event: dict[str, Any], name: str, now: datetime) -> datetime | None:
    """A run's snapshot time: near enough to `now` to be a real run of the last 30 days."""
    moment = _moment(event, name)
    if moment is not None:
        check_snapshot(name, moment, now)
    return moment


def _queue_message(record: dict[str, Any], now: datetime) -> QueueMessage:
    """One SQS record as a job, or as a malformed message (job None) to drop: retrying a message
    that can never succeed would only walk it to the dead-letter queue."""
    message_id = str(record.get("messageId", ""))
    receipt = str(record.get("receiptHandle", ""))
    raw = record.get("body")
    try:
        if not isinstance(raw, str):
            raise ValidationError("message body must be a JSON object in a string")
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValidationError("message body must be a JSON object")
        snapshot = _snapshot(body, "snapshot_at", now)
        if snapshot is None:
            raise ValidationError("snapshot_at is required")
        job = make_job(_user_id(body.get("user_id")), snapshot)
    except ValidationError as exc:
        return QueueMessage(message_id, receipt, None, str(exc))
    # RecursionError: a body nested deeper than the parser's stack is as unreadable as bad JSON.
    except (ValueError, RecursionError):
        return QueueMessage(message_id, receipt, None, "message body is not JSON")
    return QueueMessage(message_id, receipt, job)


def parse_fetch_event(event: Any, now: datetime) -> FetchEvent:
    if not isinstance(event, dict):
        raise ValidationError("the event must be a JSON object")
    if isinstance(event.get("Records"), list):
        records = event["Records"]
        if not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records):
            raise ValidationError("only SQS records are accepted")
        return QueueBatch([_queue_message(r, now) for r in records])
    if event.get("detail-type") == "Scheduled Event" or event.get("source") in (
        "aws.events",
        "aws.scheduler",
    ):
        return ScheduledRun(_snapshot(event, "time", now) or now)
    if event.get("action") == "disconnect":
        return Disconnect(_user_id(event.get("user_id")))
    if "user_id" in event:
        unknown = set(event) - {"user_id", "start_time", "end_time", "action"}
        if unknown or event.get("action") not in (None, "fetch"):
            raise ValidationError(f"unknown fields: {', '.join(sorted(map(str, unknown))) or 'action'}")
        start, end = _moment(event, "start_time"), _moment(event, "end_time")
        return ManualRun(make_job(_user_id(event["user_id"]), now, start, end))
    raise ValidationError(
        "unrecognised event: expected an EventBridge Scheduled Event, SQS records, "
        '{"user_id": "…"} or {"action": "disconnect", "user_id": "…"}'
    )
