"""crypto.py: KMS's answers become TokenUnreadableError (the account's ciphertext) or
KeyUnavailableError (the key's state, the service, the network), never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.unit.aws_stubs import assert_clean, client, failing, network_down
from xmetrics.crypto import TokenCipher
from xmetrics.errors import KeyUnavailableError, TokenUnreadableError

KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/leak-marker"
USER = "1700000000000000001"

Call = Callable[[TokenCipher], Any]

OPERATIONS = [
    pytest.param(lambda c: c.new_data_key(USER), "generate_data_key", "GenerateDataKey", id="new_data_key"),
    pytest.param(lambda c: c.open_data_key(USER, b"blob"), "decrypt", "Decrypt", id="open_data_key"),
]

FAILURES = [
    pytest.param("DisabledException", 400, id="key-disabled"),
    pytest.param("KMSInvalidStateException", 400, id="key-pending-deletion"),
    pytest.param("AccessDeniedException", 400, id="access-denied"),
    pytest.param("ThrottlingException", 400, id="throttled"),
    pytest.param("KMSInternalException", 500, id="5xx"),
    pytest.param("DependencyTimeoutException", 503, id="dependency-timeout"),
    pytest.param("NotFoundException", 400, id="key-not-found"),
]


@pytest.fixture
def kms() -> Any:
    return client("kms")


@pytest.mark.parametrize(("code", "status"), FAILURES)
@pytest.mark.parametrize(("call", "method", "operation"), OPERATIONS)
def test_a_key_failure_becomes_key_unavailable(
    kms: Any, call: Call, method: str, operation: str, code: str, status: int
) -> None:
    # Given: KMS refuses to use the key
    with failing(kms, method, code, status):
        # When: the cipher asks it
        with pytest.raises(KeyUnavailableError) as raised:
            call(TokenCipher(kms, KEY_ID))
    # Then: the key's problem, named by service, operation and code; the account is not blamed
    assert str(raised.value) == f"KMS {operation} failed: {code}"
    assert isinstance(raised.value.__cause__, ClientError)
    assert_clean(str(raised.value), USER, KEY_ID)


@pytest.mark.parametrize(("call", "method", "operation"), OPERATIONS)
def test_an_unreachable_kms_becomes_key_unavailable(
    kms: Any, call: Call, method: str, operation: str
) -> None:
    # Given: the endpoint cannot be reached
    network_down(kms)
    # When / Then: the cipher's call fails as the project's error
    with pytest.raises(KeyUnavailableError, match=f"^KMS {operation} failed: EndpointConnectionError$"):
        call(TokenCipher(kms, KEY_ID))


@pytest.mark.parametrize("code", ["InvalidCiphertextException", "IncorrectKeyException"])
def test_a_ciphertext_that_does_not_open_is_unreadable(kms: Any, code: str) -> None:
    # Given: the data key was moved from another item, tampered with, or sealed under another key
    with failing(kms, "decrypt", code, 400):
        # When / Then: the account's tokens are unreadable (only a reconnect helps)
        with pytest.raises(TokenUnreadableError):
            TokenCipher(kms, KEY_ID).open_data_key(USER, b"blob")


def test_an_account_without_a_data_key_is_unreadable(kms: Any) -> None:
    # Given: an account item that holds no data key
    network_down(kms)
    # When / Then: its tokens are unreadable, and KMS is not asked
    with pytest.raises(TokenUnreadableError):
        TokenCipher(kms, KEY_ID).open_data_key(USER, b"")
