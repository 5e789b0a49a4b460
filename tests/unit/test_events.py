import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from xmetrics.errors import ValidationError
from xmetrics.events import Disconnect, ManualRun, QueueBatch, ScheduledRun, parse_fetch_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
NOW = datetime(2026, 11, 28, 16, 30, 5, tzinfo=UTC)


def _event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_schedule_event_uses_its_scheduled_time_as_snapshot() -> None:
    request = parse_fetch_event(_event("schedule.json"), NOW)
    assert request == ScheduledRun(datetime(2026, 11, 28, 16, 0, tzinfo=UTC))


def test_manual_event_asks_for_the_30_day_window_minus_an_hour() -> None:
    request = parse_fetch_event(_event("fetch-one.json"), NOW)
    assert isinstance(request, ManualRun)
    assert request.job.end_time == NOW
    assert request.job.start_time == NOW - timedelta(days=30) + timedelta(hours=1)


def test_backfill_start_is_clamped_into_the_window() -> None:
    event = {"user_id": "5", "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-11-27T00:00:00Z"}
    request = parse_fetch_event(event, NOW)
    assert isinstance(request, ManualRun)
    assert request.job.start_time == NOW - timedelta(days=30) + timedelta(hours=1)
    assert request.job.end_time == datetime(2026, 11, 27, tzinfo=UTC)


def test_sqs_records_become_jobs_with_their_snapshot() -> None:
    request = parse_fetch_event(_event("sqs-fetch.json"), NOW)
    assert isinstance(request, QueueBatch)
    (message,) = request.messages
    assert message.job is not None and message.job.snapshot == datetime(2026, 11, 28, 16, tzinfo=UTC)


def test_malformed_sqs_body_is_marked_not_raised() -> None:
    event = _event("sqs-fetch.json")
    event["Records"][0]["body"] = "{not json"
    request = parse_fetch_event(event, NOW)
    assert isinstance(request, QueueBatch) and request.messages[0].job is None


def test_disconnect_event() -> None:
    assert parse_fetch_event(_event("disconnect.json"), NOW) == Disconnect("1700000000000000001")


@pytest.mark.parametrize(
    "event",
    [
        [],
        {},
        {"user_id": "abc"},
        {"user_id": "1", "start_time": "yesterday"},
        {"user_id": "1", "end_time": "2026-11-28T10:00:00+02:00"},
        {"user_id": "1", "end_time": "2099-01-01T00:00:00Z"},
        {"user_id": "1", "start_time": "2026-11-27T00:00:00Z", "end_time": "2026-11-26T00:00:00Z"},
        {"user_id": "1", "surprise": True},
        {"Records": [{"eventSource": "aws:s3"}]},
    ],
)
def test_bad_events_raise_a_validation_error(event: object) -> None:
    with pytest.raises(ValidationError):
        parse_fetch_event(event, NOW)
