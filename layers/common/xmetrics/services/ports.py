"""What the use cases need from the adapters, as Protocols: the real adapters (store, crypto,
oauth, x_api, exporter, queue) satisfy them, and so do the in-memory fakes in tests/fakes/.

Every method raises only the project's own errors (xmetrics.errors): each adapter translates
AWS's and X's once, at its edge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from xmetrics.crypto import DataKey, PlainTokens, SealedTokens
    from xmetrics.exporter import ExportedObject
    from xmetrics.oauth.client import ClientCredentials, TokenSet
    from xmetrics.store import Account, UsageCap
    from xmetrics.x_api import Timeline


class BudgetCounter(Protocol):
    def add_reads(self, day: str, amount: int) -> int: ...


class AccountStore(BudgetCounter, Protocol):
    def get_account(self, user_id: str) -> Account | None: ...

    def get_account_and_cap(self, user_id: str) -> tuple[Account | None, UsageCap | None]: ...

    def set_usage_cap(self, *, until: float, detail: str, at_iso: str) -> None: ...

    def claim_usage_probe(self, *, seen_until: float, until: float, probe_until: float) -> bool: ...

    def clear_usage_cap(self, *, until: float) -> None: ...

    def acquire_lease(self, user_id: str, *, version: int, owner: str, now: float, until: float) -> None: ...

    def complete_rotation(
        self,
        user_id: str,
        *,
        version: int,
        spent: bytes,
        sealed: SealedTokens,
        access_expires_at: float,
        scope: str,
        now_iso: str,
    ) -> int: ...

    def release_lease(self, user_id: str, *, owner: str) -> None: ...

    def mark_needs_reconnect(self, user_id: str, *, version: int, reason: str, now_iso: str) -> bool: ...

    def record_export(
        self,
        user_id: str,
        *,
        key: str,
        count: int,
        at_iso: str,
        reads: str | None = None,
        username: str | None = None,
        completeness: dict[str, object] | None = None,
    ) -> None: ...

    def record_error(self, user_id: str, *, message: str, at_iso: str) -> None: ...

    def active_account_ids(self) -> Iterator[str]: ...

    def delete_account(self, user_id: str) -> bool: ...


class Cipher(Protocol):
    def open_data_key(self, user_id: str, encrypted: bytes) -> DataKey: ...

    def seal(self, user_id: str, key: DataKey, tokens: PlainTokens) -> SealedTokens: ...

    def open(self, user_id: str, key: DataKey, sealed: SealedTokens) -> PlainTokens: ...


class OAuth(Protocol):
    def credentials(self) -> ClientCredentials: ...

    def refresh(self, refresh_token: str) -> TokenSet: ...

    def revoke(self, token: str, token_type_hint: str) -> None: ...


class Timelines(Protocol):
    def account(self, access_token: str) -> dict[str, Any]: ...

    def timeline(
        self,
        access_token: str,
        user_id: str,
        *,
        start_time: datetime,
        end_time: datetime,
        wait_budget: Callable[[], float],
        enough: Callable[[dict[str, Any]], bool] | None = None,
        page_size: int = ...,
        private: bool = ...,
    ) -> Timeline: ...


class ExportSink(Protocol):
    def key_for(
        self, user_id: str, snapshot: datetime, *, window: tuple[datetime, datetime] | None = None
    ) -> str: ...

    def put(
        self,
        user_id: str,
        snapshot: datetime,
        records: Iterable[dict[str, Any]],
        *,
        window: tuple[datetime, datetime] | None = None,
        dataset: str = ...,
    ) -> ExportedObject: ...


class JobQueue(Protocol):
    def send_jobs(self, user_ids: Sequence[str], snapshot_at: str) -> int: ...

    def defer(self, receipt_handle: str, seconds: float) -> None: ...
