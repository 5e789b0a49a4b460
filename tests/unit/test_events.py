import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from xmetrics.errors import ValidationError
from xmetrics.events import (
    Disconnect,
    ManualRun,
    QueueBatch,
    QueueMessage,
    ScheduledRun,
    parse_fetch_event,
)
from xmetrics.services.window import MAX_CLOCK_SKEW, WINDOW, make_job
from xmetrics.timeutil import iso_z

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


def test_backfill_inside_the_window_asks_for_exactly_its_window() -> None:
    event = {"user_id": "5", "start_time": "2026-11-20T00:00:00Z", "end_time": "2026-11-27T00:00:00Z"}
    request = parse_fetch_event(event, NOW)
    assert isinstance(request, ManualRun)
    assert request.job.start_time == datetime(2026, 11, 20, tzinfo=UTC)
    assert request.job.end_time == datetime(2026, 11, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        # before now - WINDOW: was clamped silently to the window's start
        ({"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-11-27T00:00:00Z"}, "start_time is outside"),
        ({"start_time": iso_z(NOW - WINDOW - timedelta(seconds=1))}, "earliest is 2026-10-29T17:30:05Z"),
        # after now
        ({"end_time": iso_z(NOW + timedelta(seconds=1))}, "end_time is in the future"),
        # start >= end
        (
            {"start_time": "2026-11-27T00:00:00Z", "end_time": "2026-11-27T00:00:00Z"},
            "must be before end_time",
        ),
        (
            {"start_time": "2026-11-27T00:00:00Z", "end_time": "2026-11-26T00:00:00Z"},
            "must be before end_time",
        ),
    ],
)
def test_backfill_outside_the_window_is_refused_with_a_reason(window: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_fetch_event({"user_id": "5", **window}, NOW)


def test_backfill_at_the_window_edges_is_accepted() -> None:
    event = {"user_id": "5", "start_time": iso_z(NOW - WINDOW), "end_time": iso_z(NOW)}
    request = parse_fetch_event(event, NOW)
    assert isinstance(request, ManualRun)
    assert (request.job.start_time, request.job.end_time) == (NOW - WINDOW, NOW)


def test_make_job_refuses_an_explicit_start_before_the_window() -> None:
    with pytest.raises(ValidationError, match="start_time"):
        make_job("5", NOW, NOW - timedelta(days=31), NOW)


@pytest.mark.parametrize("user_id", ["123\n", "123\r\n", " 123", "123 ", "١٢٣", "0x1f"])
def test_user_id_must_be_digits_and_nothing_else(user_id: str) -> None:
    # `$` matches before a trailing newline: "123\n" passed a `^…$` .match() check.
    with pytest.raises(ValidationError, match="user_id"):
        parse_fetch_event({"user_id": user_id}, NOW)
    with pytest.raises(ValidationError, match="user_id"):
        parse_fetch_event({"action": "disconnect", "user_id": user_id}, NOW)


@pytest.mark.parametrize(
    ("time", "reason"),
    [
        ("2099-01-01T00:00:00Z", "in the future"),  # wrote a 0-line object and became last_export
        (iso_z(NOW + MAX_CLOCK_SKEW + timedelta(seconds=1)), "in the future"),
        ("2001-01-01T00:00:00Z", "older than the 30-day window"),  # was retried to the DLQ
        (iso_z(NOW - WINDOW - timedelta(seconds=1)), "older than the 30-day window"),
    ],
)
def test_scheduled_time_out_of_range_is_refused(time: str, reason: str) -> None:
    event = {**_event("schedule.json"), "time": time}
    with pytest.raises(ValidationError, match=f"time is {reason}"):
        parse_fetch_event(event, NOW)


@pytest.mark.parametrize("offset", [MAX_CLOCK_SKEW, -WINDOW])
def test_scheduled_time_at_the_edges_is_accepted(offset: timedelta) -> None:
    event = {**_event("schedule.json"), "time": iso_z(NOW + offset)}
    assert parse_fetch_event(event, NOW) == ScheduledRun(NOW + offset)


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


def _one_message(change: dict) -> QueueMessage:
    event = _event("sqs-fetch.json")
    event["Records"][0].update(change)
    request = parse_fetch_event(event, NOW)
    assert isinstance(request, QueueBatch)
    (message,) = request.messages
    return message


def _body(**fields: object) -> dict:
    return {
        "body": json.dumps(
            {"user_id": "1700000000000000001", "snapshot_at": "2026-11-28T16:00:00Z", **fields}
        )
    }


@pytest.mark.parametrize(
    "change",
    [
        # raised TypeError / ValueError out of the handler
        {"body": {"user_id": "1", "snapshot_at": "2026-11-28T16:00:00Z"}},
        {"body": 5},
        {"body": 1.5},
        {"body": ["x"]},
        {"attributes": {"ApproximateReceiveCount": "abc"}, "body": 7},
        {"body": "[" * 100_000},
        # out of range or malformed contents
        _body(snapshot_at="2099-01-01T00:00:00Z"),
        _body(snapshot_at="2001-01-01T00:00:00Z"),
        _body(user_id="123\n"),
        _body(snapshot_at=None),
    ],
)
def test_malformed_sqs_record_becomes_a_message_to_drop(change: dict) -> None:
    message = _one_message(change)
    assert message.job is None and message.error
    assert message.message_id == "059f36b4-87a3-44ab-83d2-661975830a7d"


def test_unreadable_receive_count_does_not_matter() -> None:
    # The count was parsed (and crashed on "abc") but never used.
    message = _one_message({"attributes": {"ApproximateReceiveCount": "abc"}})
    assert message.job is not None


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
