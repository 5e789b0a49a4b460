"""The X app's client credentials, read from Secrets Manager."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from xmetrics.errors import ConfigError
from xmetrics.oauth.client import ClientCredentials

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_PLACEHOLDER = "REPLACE_ME"


def load_client_credentials(client: SecretsManagerClient, secret_arn: str) -> ClientCredentials:
    raw = client.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ConfigError(
            'CLIENT_SECRET_ARN: the secret is not JSON; expected {"client_id": …, "client_secret": …}'
        ) from None
    client_id = payload.get("client_id") if isinstance(payload, dict) else None
    if not isinstance(client_id, str) or not client_id or client_id == _PLACEHOLDER:
        raise ConfigError(
            "CLIENT_SECRET_ARN: the secret has no client_id yet; put your X app's OAuth 2.0 client id "
            "(and client secret, for a confidential app) in it"
        )
    secret = payload.get("client_secret")
    if secret == _PLACEHOLDER or not isinstance(secret, str) or not secret:
        secret = None  # a public client: PKCE alone, client_id in the body
    return ClientCredentials(client_id=client_id, client_secret=secret)
