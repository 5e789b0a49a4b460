from __future__ import annotations

import time
from typing import Any

import requests

from local.stack import LocalStack
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


def export_keys(stack: LocalStack) -> list[str]:
    listing = stack.client("s3").list_objects_v2(Bucket=stack.resources.bucket_name)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def served_pages(stack: LocalStack, params: dict[str, str], user_id: str = USER_ID) -> list[dict[str, Any]]:
    """What X (the sandbox) serves for the same question, fetched independently of the app."""
    assert stack.x is not None
    token = stack.x.issue_tokens("ada_metrics", stack.client_id)["access_token"]
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
