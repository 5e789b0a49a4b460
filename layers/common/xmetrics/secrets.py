"""The X app's client credentials, read from Secrets Manager.

Secrets Manager's errors become the project's in `_read` only: a secret that is not there is a
setting to fix (ConfigError naming CLIENT_SECRET_ARN), anything else SecretsUnavailableError.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from xmetrics.errors import ConfigError, SecretsUnavailableError
from xmetrics.oauth.client import ClientCredentials

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_PLACEHOLDER = "REPLACE_ME"


def _read(client: SecretsManagerClient, secret_arn: str) -> str:
    """The secret's current string: the one place Secrets Manager's errors are translated."""
    try:
        return client.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code == "ResourceNotFoundException":
            # No such secret, or one that never got a value: no retry helps, the deployment
            # (or the put-secret-value step of the README) does. The ARN is not echoed.
            raise ConfigError(
                "CLIENT_SECRET_ARN: the secret does not exist or has no value yet; put "
                '{"client_id": …, "client_secret": …} in it'
            ) from exc
        raise SecretsUnavailableError("GetSecretValue", code) from exc
    except BotoCoreError as exc:
        raise SecretsUnavailableError("GetSecretValue", type(exc).__name__) from exc


def load_client_credentials(client: SecretsManagerClient, secret_arn: str) -> ClientCredentials:
    raw = _read(client, secret_arn)
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
