"""Export records -> one JSON-lines object per account and snapshot in S3."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from xmetrics.records import to_jsonl

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class ExportedObject:
    key: str
    count: int
    size: int


def export_key(prefix: str, user_id: str, snapshot: datetime) -> str:
    # The key is a function of the scheduled time only, so a retried run overwrites its own object.
    return f"{prefix}/tweets/dt={snapshot:%Y-%m-%d}/user_id={user_id}/{snapshot:%Y%m%dT%H%M%SZ}.jsonl"


class Exporter:
    def __init__(self, s3: S3Client, bucket: str, prefix: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._prefix = prefix

    def key_for(self, user_id: str, snapshot: datetime) -> str:
        return export_key(self._prefix, user_id, snapshot)

    def put(self, user_id: str, snapshot: datetime, records: Iterable[dict[str, Any]]) -> ExportedObject:
        lines = list(to_jsonl(records))
        body = b"".join(lines)
        key = self.key_for(user_id, snapshot)
        # One PutObject of the whole body: S3 never shows a reader half an export.
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentType="application/x-ndjson",
            Metadata={"records": str(len(lines)), "schema-version": "1"},
        )
        return ExportedObject(key=key, count=len(lines), size=len(body))
