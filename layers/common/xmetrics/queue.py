"""SQS adapter for the fan-out queue: batched sends, and handing a message back for later."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_BATCH = 10
_SEND_ATTEMPTS = 5
# SQS caps a message's visibility timeout at 12 hours.
MAX_VISIBILITY_SECONDS = 43_200


class QueueSendError(Exception):
    """SQS kept refusing some messages: the scheduled run fails so nothing is skipped silently."""


class JobQueue:
    def __init__(self, client: Callable[[], SQSClient], url: str) -> None:
        self._client = client
        self._url = url

    def send_jobs(self, user_ids: Sequence[str], snapshot_at: str) -> int:
        sqs = self._client()
        sent = 0
        for start in range(0, len(user_ids), _BATCH):
            pending = {
                str(i): json.dumps({"user_id": uid, "snapshot_at": snapshot_at})
                for i, uid in enumerate(user_ids[start : start + _BATCH])
            }
            for _ in range(_SEND_ATTEMPTS):
                answer = sqs.send_message_batch(
                    QueueUrl=self._url, Entries=[{"Id": i, "MessageBody": b} for i, b in pending.items()]
                )
                for ok in answer.get("Successful", []):
                    if pending.pop(ok["Id"], None) is not None:
                        sent += 1
                if not pending:
                    break
            if pending:
                raise QueueSendError(f"SQS refused {len(pending)} messages after {_SEND_ATTEMPTS} attempts")
        return sent

    def defer(self, receipt_handle: str, seconds: float) -> None:
        delay = int(min(MAX_VISIBILITY_SECONDS, max(1.0, seconds)))
        self._client().change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay
        )
