"""Export records -> one JSON-lines object per dataset, account and snapshot in S3.

S3's errors become the project's in `_translate` only: ExportWriteError.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from xmetrics.errors import ExportWriteError
from xmetrics.records import SCHEMA_VERSION, to_jsonl

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_STAMP = "%Y%m%dT%H%M%SZ"

# A backfill's time window (start, end); None is a full run.
Window = tuple[datetime, datetime]
# tweets: a line per post; accounts: the day's account snapshot; runs: a line per account-run.
DATASETS = ("tweets", "accounts", "runs")


@dataclass(frozen=True)
class ExportedObject:
    key: str
    count: int
    size: int


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def export_key(
    prefix: str, user_id: str, snapshot: datetime, window: Window | None = None, *, dataset: str = "tweets"
) -> str:
    # The key is a function of the scheduled time (and a backfill's window) only, so a retried run
    # overwrites its own object. A backfill answers a narrower question than the full run of the
    # same second: sharing its key would bury the full snapshot as a noncurrent version. It stays
    # in the same dt=/user_id= partition so query engines still find it.
    name = f"{snapshot:{_STAMP}}"
    if window is not None:
        start, end = window
        name += f".backfill-{_stamp(start)}-{_stamp(end)}"
    if dataset not in DATASETS:
        raise ValueError(f"no such dataset: {dataset}")
    return f"{prefix}/{dataset}/dt={snapshot:%Y-%m-%d}/user_id={user_id}/{name}.jsonl"


@contextmanager
def _translate(operation: str) -> Iterator[None]:
    """The one place S3's and botocore's errors become the project's."""
    try:
        yield
    except ClientError as exc:
        raise ExportWriteError(operation, str(exc.response.get("Error", {}).get("Code", "unknown"))) from exc
    except BotoCoreError as exc:
        raise ExportWriteError(operation, type(exc).__name__) from exc


class Exporter:
    def __init__(self, s3: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    def key_for(self, user_id: str, snapshot: datetime, *, window: Window | None = None) -> str:
        return export_key(self._prefix, user_id, snapshot, window)

    def put(
        self,
        user_id: str,
        snapshot: datetime,
        records: Iterable[dict[str, Any]],
        *,
        window: Window | None = None,
        dataset: str = "tweets",
    ) -> ExportedObject:
        lines = list(to_jsonl(records))
        body = b"".join(lines)
        key = export_key(self._prefix, user_id, snapshot, window, dataset=dataset)
        # One PutObject of the whole body: S3 never shows a reader half an export.
        with _translate("PutObject"):
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata={
                    "records": str(len(lines)),
                    "schema-version": str(SCHEMA_VERSION),
                    "run": "full" if window is None else "backfill",
                },
            )
        return ExportedObject(key=key, count=len(lines), size=len(body))
