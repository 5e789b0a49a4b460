"""An in-memory account store with DynamoDB's conditional-write semantics (store.py's contract),
and hooks to fail or slow any call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from xmetrics.crypto import SealedTokens
from xmetrics.errors import AccountNotFoundError, StoreUnavailableError, TokenConflictError
from xmetrics.store import ACTIVE, NEEDS_RECONNECT, Account, UsageCap

# A hook gets the operation's name and may raise (a fault) or advance a clock (a slow call).
Hook = Callable[[str], None]


@dataclass
class FakeStore:
    accounts: dict[str, Account] = field(default_factory=dict)
    hook: Hook = lambda operation: None
    calls: list[str] = field(default_factory=list)
    # Called after a write is applied and before its answer returns: raising here is "landed,
    # but the answer was lost".
    after_write: Hook = lambda operation: None
    usage_cap: UsageCap | None = None
    budget: dict[str, int] = field(default_factory=dict)  # UTC day -> billable reads counted
    completeness: dict[str, dict[str, object]] = field(default_factory=dict)  # user -> the latest

    def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        self.hook(operation)

    def connect(
        self, user_id: str, sealed: SealedTokens, access_expires_at: float, username: str = "u"
    ) -> int:
        before = self.accounts.get(user_id)
        version = (before.version if before else 0) + 1
        self.accounts[user_id] = Account(
            user_id=user_id,
            username=username,
            status=ACTIVE,
            version=version,
            access_expires_at=access_expires_at,
            scope="tweet.read users.read offline.access",
            sealed=sealed,
        )
        return version

    def get_account(self, user_id: str) -> Account | None:
        self._enter("get_account")
        return self.accounts.get(user_id)

    def get_account_and_cap(self, user_id: str) -> tuple[Account | None, UsageCap | None]:
        self._enter("get_account_and_cap")
        return self.accounts.get(user_id), self.usage_cap

    def add_reads(self, day: str, amount: int) -> int:
        self._enter("add_reads")
        self.budget[day] = self.budget.get(day, 0) + amount
        return self.budget[day]

    def set_usage_cap(self, *, until: float, detail: str, at_iso: str) -> None:
        self._enter("set_usage_cap")
        if self.usage_cap is None or self.usage_cap.until <= until:
            self.usage_cap = UsageCap(until, detail)

    def claim_usage_probe(self, *, seen_until: float, until: float, probe_until: float) -> bool:
        self._enter("claim_usage_probe")
        if self.usage_cap is None or self.usage_cap.until != seen_until:
            return False
        self.usage_cap = replace(self.usage_cap, until=until, probe_until=probe_until)
        return True

    def clear_usage_cap(self, *, until: float) -> None:
        self._enter("clear_usage_cap")
        if self.usage_cap is not None and self.usage_cap.until == until:
            self.usage_cap = None

    def acquire_lease(self, user_id: str, *, version: int, owner: str, now: float, until: float) -> None:
        self._enter("acquire_lease")
        account = self.accounts.get(user_id)
        free = account is not None and (account.lease_until is None or account.lease_until < now)
        if account is None or account.version != version or not free:
            raise TokenConflictError("lease held or tokens changed", current=account)
        self.accounts[user_id] = replace(account, lease_owner=owner, lease_until=until)
        self.after_write("acquire_lease")

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
    ) -> int:
        self._enter("complete_rotation")
        account = self.accounts.get(user_id)
        if account is None or account.version != version or account.sealed.refresh_token != spent:
            raise TokenConflictError(
                "the tokens changed before the rotated ones were written", current=account
            )
        self.accounts[user_id] = replace(
            account,
            status=ACTIVE,
            last_error=None,
            version=version + 1,
            sealed=sealed,
            access_expires_at=access_expires_at,
            scope=scope,
            lease_owner=None,
            lease_until=None,
            updated_at=now_iso,
        )
        self.after_write("complete_rotation")
        return version + 1

    def release_lease(self, user_id: str, *, owner: str) -> None:
        self._enter("release_lease")
        account = self.accounts.get(user_id)
        if account is not None and account.lease_owner == owner:
            self.accounts[user_id] = replace(account, lease_owner=None, lease_until=None)

    def mark_needs_reconnect(self, user_id: str, *, version: int, reason: str, now_iso: str) -> bool:
        self._enter("mark_needs_reconnect")
        account = self.accounts.get(user_id)
        if account is None or account.version != version:
            return False
        self.accounts[user_id] = replace(
            account, status=NEEDS_RECONNECT, last_error=reason, lease_owner=None, lease_until=None
        )
        return True

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
    ) -> None:
        self._enter("record_export")
        account = self.accounts.get(user_id)
        if account is None:
            raise AccountNotFoundError(user_id)
        if completeness is not None:
            self.completeness[user_id] = completeness
        self.accounts[user_id] = replace(
            account,
            last_export={"key": key, "count": str(count), "at": at_iso},
            last_error=None,
            reads=account.reads if reads is None else reads,
            username=username or account.username,
        )

    def record_error(self, user_id: str, *, message: str, at_iso: str) -> None:
        self._enter("record_error")
        account = self.accounts.get(user_id)
        if account is not None:
            self.accounts[user_id] = replace(account, last_error=message)

    def active_account_ids(self) -> Iterator[str]:
        self._enter("active_account_ids")
        return iter([a.user_id for a in self.accounts.values() if a.status == ACTIVE])

    def delete_account(self, user_id: str) -> bool:
        self._enter("delete_account")
        return self.accounts.pop(user_id, None) is not None


def throttled(operation: str) -> StoreUnavailableError:
    return StoreUnavailableError(operation, "ThrottlingException")
