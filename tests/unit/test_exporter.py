"""exporter.py: export keys (a backfill never reuses a full snapshot's key) and S3 failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from tests.unit.aws_stubs import assert_clean, client, failing, network_down
from xmetrics.errors import ExportWriteError
from xmetrics.exporter import Exporter, export_key

BUCKET = "bucket-leak-marker"
USER = "1700000000000000001"
SNAPSHOT = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 20, 0, 0, tzinfo=UTC), datetime(2026, 11, 21, 0, 0, tzinfo=UTC))
RECORDS = [{"tweet_id": "1", "text": "leak-marker"}]

FAILURES = [
    pytest.param("SlowDown", 503, id="throttled"),
    pytest.param("InternalError", 500, id="5xx"),
    pytest.param("AccessDenied", 403, id="access-denied"),
    pytest.param("NoSuchBucket", 404, id="bucket-gone"),
]


@pytest.fixture
def s3() -> Any:
    return client("s3")


def test_a_full_run_key_is_the_snapshot() -> None:
    # Given / When: the key of a full run
    key = export_key("x-metrics", USER, SNAPSHOT)
    # Then: the documented layout, unchanged
    assert key == f"x-metrics/tweets/dt=2026-11-28/user_id={USER}/20261128T160000Z.jsonl"


def test_a_backfill_never_reuses_the_full_snapshot_key() -> None:
    # Given: a full run and a backfill run in the same second
    full = export_key("x-metrics", USER, SNAPSHOT)
    # When: the backfill's key is made
    backfill = export_key("x-metrics", USER, SNAPSHOT, WINDOW)
    # Then: it differs, stays in the same partition (query engines still see it) and names its window
    assert backfill != full
    assert backfill.rsplit("/", 1)[0] == full.rsplit("/", 1)[0]
    assert backfill.endswith("/20261128T160000Z.backfill-20261120T000000Z-20261121T000000Z.jsonl")


def test_backfills_of_different_windows_keep_apart_and_a_retry_overwrites_its_own() -> None:
    # Given: two windows in the same snapshot second
    other = (WINDOW[0], datetime(2026, 11, 22, 0, 0, tzinfo=UTC))
    exporter = Exporter(client("s3"), BUCKET, "x-metrics")
    # When / Then: different windows, different keys; the same window, the same key
    assert exporter.key_for(USER, SNAPSHOT, window=WINDOW) != exporter.key_for(USER, SNAPSHOT, window=other)
    assert exporter.key_for(USER, SNAPSHOT, window=WINDOW) == export_key("x-metrics", USER, SNAPSHOT, WINDOW)


@pytest.mark.parametrize(("window", "run"), [(None, "full"), (WINDOW, "backfill")])
def test_the_object_says_which_run_wrote_it(s3: Any, window: Any, run: str) -> None:
    # Given: S3 expects one PutObject of the whole export at the run's key
    key = export_key("x-metrics", USER, SNAPSHOT, window)
    with Stubber(s3) as stubber:
        stubber.add_response(
            "put_object",
            {},
            {
                "Bucket": BUCKET,
                "Key": key,
                "Body": ANY,
                "ContentType": "application/x-ndjson",
                "Metadata": {"records": "1", "schema-version": "3", "run": run},
            },
        )
        # When: the export is written
        written = Exporter(s3, BUCKET, "x-metrics").put(USER, SNAPSHOT, RECORDS, window=window)
        stubber.assert_no_pending_responses()
    # Then: it landed where the key says, with its line count
    assert (written.key, written.count) == (key, 1)


@pytest.mark.parametrize(("code", "status"), FAILURES)
def test_an_s3_failure_becomes_export_write_error(s3: Any, code: str, status: int) -> None:
    # Given: S3 refuses the object
    with failing(s3, "put_object", code, status):
        # When: the export is written
        with pytest.raises(ExportWriteError) as raised:
            Exporter(s3, BUCKET, "x-metrics").put(USER, SNAPSHOT, RECORDS)
    # Then: the project's error, naming service, operation and code, not the key or the body
    assert str(raised.value) == f"S3 PutObject failed: {code}"
    assert isinstance(raised.value.__cause__, ClientError)
    assert_clean(str(raised.value), USER, BUCKET)


def test_an_unreachable_s3_becomes_export_write_error(s3: Any) -> None:
    # Given: the endpoint cannot be reached
    network_down(s3)
    # When / Then: the write fails as the project's error
    with pytest.raises(ExportWriteError, match="^S3 PutObject failed: EndpointConnectionError$"):
        Exporter(s3, BUCKET, "x-metrics").put(USER, SNAPSHOT, RECORDS)
