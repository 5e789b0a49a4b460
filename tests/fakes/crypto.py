"""A cipher without KMS: sealing is reversible and bound to the account, as crypto.py's is."""

from __future__ import annotations

from xmetrics.crypto import DataKey, PlainTokens, SealedTokens
from xmetrics.errors import TokenUnreadableError


class FakeCipher:
    def open_data_key(self, user_id: str, encrypted: bytes) -> DataKey:
        return DataKey(plaintext=encrypted, encrypted=encrypted)

    def seal(self, user_id: str, key: DataKey, tokens: PlainTokens) -> SealedTokens:
        return SealedTokens(
            data_key=key.encrypted,
            access_token=f"{user_id}|{tokens.access_token}".encode(),
            refresh_token=f"{user_id}|{tokens.refresh_token}".encode(),
        )

    def open(self, user_id: str, key: DataKey, sealed: SealedTokens) -> PlainTokens:
        def one(blob: bytes) -> str:
            owner, _, value = blob.decode().partition("|")
            if owner != user_id:
                raise TokenUnreadableError(user_id)
            return value

        return PlainTokens(one(sealed.access_token), one(sealed.refresh_token))

    def key(self, user_id: str) -> DataKey:
        return DataKey(plaintext=b"k-" + user_id.encode(), encrypted=b"k-" + user_id.encode())
