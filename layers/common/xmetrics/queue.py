"""SQS adapter for the fan-out queue: batched sends, and handing a message back for later.

SQS's errors become the project's in `_translate` only: QueueSendError, so a scheduled run that
could not queue every account fails loudly instead of skipping some.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from xmetrics.errors import QueueSendError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_BATCH = 10
_SEND_ATTEMPTS = 5
# SQS caps a message's visibility timeout at 12 hours.
MAX_VISIBILITY_SECONDS = 43_200


@contextmanager
def _translate(operation: str) -> Iterator[None]:
    """The one place SQS's and botocore's errors become the project's."""
    try:
        yield
    except ClientError as exc:
        raise QueueSendError(operation, str(exc.response.get("Error", {}).get("Code", "unknown"))) from exc
    except BotoCoreError as exc:
        raise QueueSendError(operation, type(exc).__name__) from exc


class JobQueue:
    def __init__(self, client: Callable[[], SQSClient], url: str) -> None:
        self._client = client
        self._url = url

    def send_jobs(self, user_ids: Sequence[str], snapshot_at: str) -> int:
        sent = 0
        with _translate("SendMessageBatch"):
            sqs = self._client()
            for start in range(0, len(user_ids), _BATCH):
                sent += self._send_batch(sqs, user_ids[start : start + _BATCH], snapshot_at)
        return sent

    def _send_batch(self, sqs: SQSClient, user_ids: Sequence[str], snapshot_at: str) -> int:
        pending = {
            str(i): json.dumps({"user_id": uid, "snapshot_at": snapshot_at}) for i, uid in enumerate(user_ids)
        }
        sent = 0
        codes: set[str] = set()
        for _ in range(_SEND_ATTEMPTS):
            answer = sqs.send_message_batch(
                QueueUrl=self._url, Entries=[{"Id": i, "MessageBody": b} for i, b in pending.items()]
            )
            for ok in answer.get("Successful", []):
                if pending.pop(ok["Id"], None) is not None:
                    sent += 1
            if not pending:
                return sent
            codes = {failed.get("Code", "unknown") for failed in answer.get("Failed", [])}
        # Entry-level refusals arrive in a 200 answer, so no ClientError carries them.
        refused = f"{len(pending)} messages refused after {_SEND_ATTEMPTS} attempts"
        raise QueueSendError("SendMessageBatch", f"{refused} ({', '.join(sorted(codes)) or 'no code'})")

    def defer(self, receipt_handle: str, seconds: float) -> None:
        delay = int(min(MAX_VISIBILITY_SECONDS, max(1.0, seconds)))
        with _translate("ChangeMessageVisibility"):
            self._client().change_message_visibility(
                QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay
            )
