"""Envelope encryption of an account's tokens with a KMS data key.

One data key per account, encrypted under the customer-managed key with the user id as
encryption context. A run decrypts it once (one KMS call) and reuses it to seal the rotated
tokens, so a run with a refresh still costs a single KMS request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from xmetrics.errors import TokenUnreadableError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

_NONCE_BYTES = 12


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


def _aad(user_id: str, name: str) -> bytes:
    # Binds each ciphertext to its account and field: swapping blobs between items fails to open.
    return f"{user_id}:{name}".encode()


class TokenCipher:
    def __init__(self, kms: KMSClient, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    def new_data_key(self, user_id: str) -> DataKey:
        answer = self._kms.generate_data_key(
            KeyId=self._key_id, KeySpec="AES_256", EncryptionContext={"user_id": user_id}
        )
        return DataKey(plaintext=answer["Plaintext"], encrypted=answer["CiphertextBlob"])

    def open_data_key(self, user_id: str, encrypted: bytes) -> DataKey:
        try:
            answer = self._kms.decrypt(
                CiphertextBlob=encrypted, KeyId=self._key_id, EncryptionContext={"user_id": user_id}
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "InvalidCiphertextException",
                "IncorrectKeyException",
            ):
                raise TokenUnreadableError(user_id) from exc
            raise
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
