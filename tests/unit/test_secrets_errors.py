"""secrets.py: Secrets Manager failures become SecretsUnavailableError; a missing secret is a setting."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.aws_stubs import assert_clean, client, failing, network_down
from xmetrics.errors import ConfigError, SecretsUnavailableError
from xmetrics.secrets import load_client_credentials

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:leak-marker-AbCdEf"

FAILURES = [
    pytest.param("ThrottlingException", 400, id="throttled"),
    pytest.param("InternalServiceError", 500, id="5xx"),
    pytest.param("AccessDeniedException", 400, id="access-denied"),
    pytest.param("DecryptionFailure", 400, id="kms-refused"),
]


@pytest.fixture
def secretsmanager() -> Any:
    return client("secretsmanager")


@pytest.mark.parametrize(("code", "status"), FAILURES)
def test_a_secrets_failure_becomes_secrets_unavailable(secretsmanager: Any, code: str, status: int) -> None:
    # Given: Secrets Manager answers with an error
    with failing(secretsmanager, "get_secret_value", code, status):
        # When: the credentials are loaded
        with pytest.raises(SecretsUnavailableError) as raised:
            load_client_credentials(secretsmanager, SECRET_ARN)
    # Then: the project's error, naming service, operation and code only
    assert str(raised.value) == f"Secrets Manager GetSecretValue failed: {code}"
    assert isinstance(raised.value.__cause__, ClientError)
    assert_clean(str(raised.value), SECRET_ARN)


def test_an_unreachable_secrets_manager_becomes_secrets_unavailable(secretsmanager: Any) -> None:
    # Given: the endpoint cannot be reached
    network_down(secretsmanager)
    # When / Then: loading fails as the project's error
    with pytest.raises(
        SecretsUnavailableError, match="^Secrets Manager GetSecretValue failed: EndpointConnection"
    ):
        load_client_credentials(secretsmanager, SECRET_ARN)


def test_a_missing_secret_is_a_setting_to_fix(secretsmanager: Any) -> None:
    # Given: CLIENT_SECRET_ARN names no secret (or one that never got a value)
    with failing(secretsmanager, "get_secret_value", "ResourceNotFoundException", 400):
        # When: the credentials are loaded
        with pytest.raises(ConfigError) as raised:
            load_client_credentials(secretsmanager, SECRET_ARN)
    # Then: the message names the variable to fix, not the ARN
    assert str(raised.value).startswith("CLIENT_SECRET_ARN:")
    assert_clean(str(raised.value), SECRET_ARN)
