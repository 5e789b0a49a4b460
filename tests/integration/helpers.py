from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from local.stack import LocalStack
from local.x_sandbox import XSandbox
from xmetrics.crypto import PlainTokens, SealedTokens, TokenCipher

USER_ID = "1700000000000000001"


def account_item(stack: LocalStack, user_id: str = USER_ID) -> dict[str, Any]:
    item: dict[str, Any] = stack.client("dynamodb").get_item(
        TableName=stack.resources.table_name, Key={"pk": {"S": f"account#{user_id}"}}, ConsistentRead=True
    )["Item"]
    return item


def stored_tokens(stack: LocalStack, user_id: str = USER_ID) -> PlainTokens:
    item = account_item(stack, user_id)
    cipher = TokenCipher(stack.client("kms"), stack.resources.key_id)
    key = cipher.open_data_key(user_id, bytes(item["data_key"]["B"]))
    sealed = SealedTokens(
        bytes(item["data_key"]["B"]), bytes(item["access_token"]["B"]), bytes(item["refresh_token"]["B"])
    )
    return cipher.open(user_id, key, sealed)


def make_refresh_due(stack: LocalStack, user_id: str = USER_ID) -> None:
    stack.client("dynamodb").update_item(
        TableName=stack.resources.table_name,
        Key={"pk": {"S": f"account#{user_id}"}},
        UpdateExpression="SET access_expires_at = :soon",
        ExpressionAttributeValues={":soon": {"N": str(int(time.time()) + 60)}},
    )


def spend_refresh_token(stack: LocalStack, refresh_token: str) -> None:
    """Use the refresh token out of band, as a second tool sharing the app would."""
    assert stack.x is not None
    answer = requests.post(
        stack.x.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(stack.client_id, "local-client-secret"),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def export_keys(stack: LocalStack, dataset: str = "tweets") -> list[str]:
    listing = stack.client("s3").list_objects_v2(
        Bucket=stack.resources.bucket_name, Prefix=f"x-metrics/{dataset}/"
    )
    return sorted(o["Key"] for o in listing.get("Contents", []))


def served_pages(
    stack: LocalStack, params: dict[str, str], user_id: str = USER_ID, username: str = "ada_metrics"
) -> list[dict[str, Any]]:
    """What X (the sandbox) serves for the same question, fetched independently of the app."""
    assert stack.x is not None
    token = stack.x.issue_tokens(username, stack.client_id)["access_token"]
    pages: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        answer = requests.get(
            f"{stack.x.api_base_url}/2/users/{user_id}/tweets",
            params=query,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        answer.raise_for_status()
        pages.append(answer.json())
        next_token = pages[-1].get("meta", {}).get("next_token")
        if not next_token:
            return pages
        query["pagination_token"] = next_token


# --- simulated time and what X was asked ---------------------------------------------------------


@dataclass(frozen=True)
class TimelineAsk:
    """One GET /2/users/:id/tweets as the sandbox saw it: when (its clock), for whom, the full
    query, the status it answered and the post ids it served."""

    at: float
    user_id: str
    query: dict[str, str]
    status: int
    served: tuple[str, ...]

    @property
    def window(self) -> tuple[str, str]:
        return self.query.get("start_time", ""), self.query.get("end_time", "")


class RecordingSandbox(XSandbox):
    """The X sandbox, keeping every timeline request's query and answer (its request log keeps
    the path only): the windows a run asked for and the posts X served in them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asks: list[TimelineAsk] = []
        self._asks_lock = threading.Lock()

    def _tweets(self, request: Any) -> Any:
        status, served = 0, ()
        try:
            reply = super()._tweets(request)
            status = reply.status
            if reply.status == 200:
                served = tuple(t["id"] for t in json.loads(reply.body).get("data", []))
            return reply
        except Exception as exc:  # the sandbox's _Halt: a refusal (401, the usage cap, a 400)
            status = getattr(getattr(exc, "reply", None), "status", 0)
            raise
        finally:
            user_id = request.path.rstrip("/").split("/")[-2]
            ask = TimelineAsk(self._clock(), user_id, dict(request.query), status, served)
            with self._asks_lock:
                self.asks.append(ask)

    def asks_of(self, user_id: str | None = None, *, at: datetime | None = None) -> list[TimelineAsk]:
        with self._asks_lock:
            return [
                a
                for a in self.asks
                if (user_id is None or a.user_id == user_id) and (at is None or a.at == at.timestamp())
            ]
