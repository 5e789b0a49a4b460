"""Envelope encryption of an account's tokens with a KMS data key.

One data key per account, encrypted under the customer-managed key with the user id as
encryption context. A run decrypts it once (one KMS call) and reuses it to seal the rotated
tokens, so a run with a refresh still costs a single KMS request.

KMS's errors become the project's in `_translate` only: a ciphertext that does not open for this
account is TokenUnreadableError (only a reconnect helps), anything else KeyUnavailableError.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from xmetrics.errors import KeyUnavailableError, TokenUnreadableError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

_NONCE_BYTES = 12
# The blob is not a ciphertext of this key for this account (moved between items, tampered,
# encrypted under another key or context): retrying or waiting cannot help.
_UNREADABLE = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes = field(repr=False)
    encrypted: bytes


@dataclass(frozen=True)
class SealedTokens:
    data_key: bytes
    access_token: bytes
    refresh_token: bytes


@dataclass(frozen=True)
class PlainTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


@contextmanager
def _translate(operation: str, user_id: str) -> Iterator[None]:
    """The one place KMS's and botocore's errors become the project's.

    A disabled or pending-deletion key, a denied grant, throttling or a 5xx are the key's state,
    not the account's: KeyUnavailableError, so no account is sent to reconnect for them.
    """
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "unknown"))
        if code in _UNREADABLE:
            raise TokenUnreadableError(user_id) from exc
        raise KeyUnavailableError(operation, code) from exc
    except BotoCoreError as exc:
        raise KeyUnavailableError(operation, type(exc).__name__) from exc


def _aad(user_id: str, name: str) -> bytes:
    # Binds each ciphertext to its account and field: swapping blobs between items fails to open.
    return f"{user_id}:{name}".encode()


class TokenCipher:
    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    def new_data_key(self, user_id: str) -> DataKey:
        with _translate("GenerateDataKey", user_id):
            answer = self._kms.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext={"user_id": user_id}
            )
        return DataKey(plaintext=answer["Plaintext"], encrypted=answer["CiphertextBlob"])

    def open_data_key(self, user_id: str, encrypted: bytes) -> DataKey:
        if not encrypted:
            # An item without a data key: KMS would only refuse the empty blob as a bad parameter.
            raise TokenUnreadableError(user_id)
        with _translate("Decrypt", user_id):
            answer = self._kms.decrypt(
                CiphertextBlob=encrypted, KeyId=self._key_id, EncryptionContext={"user_id": user_id}
            )
        return DataKey(plaintext=answer["Plaintext"], encrypted=encrypted)

    @staticmethod
    def seal(user_id: str, key: DataKey, tokens: PlainTokens) -> SealedTokens:
        # Imported where used: its native module is the layer's costliest import, and /connect
        # (which imports this module through the store) never encrypts.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(key.plaintext)

        def one(name: str, value: str) -> bytes:
            nonce = os.urandom(_NONCE_BYTES)
            return nonce + aead.encrypt(nonce, value.encode(), _aad(user_id, name))

        return SealedTokens(
            data_key=key.encrypted,
            access_token=one("access_token", tokens.access_token),
            refresh_token=one("refresh_token", tokens.refresh_token),
        )

    @staticmethod
    def open(user_id: str, key: DataKey, sealed: SealedTokens) -> PlainTokens:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(key.plaintext)

        def one(name: str, blob: bytes) -> str:
            try:
                return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(user_id, name)).decode()
            except InvalidTag as exc:
                raise TokenUnreadableError(user_id) from exc

        return PlainTokens(
            access_token=one("access_token", sealed.access_token),
            refresh_token=one("refresh_token", sealed.refresh_token),
        )
