"""DynamoDB adapter: OAuth states, accounts, leases and the rotation's conditional writes.

Every boto call runs inside `_translate`, the one place DynamoDB's errors become the project's:
a failed condition becomes the domain error that call means (StateError, TokenConflictError,
AccountNotFoundError) or an expected outcome, anything else StoreUnavailableError.
Conditions are built from named fragments so each write says which invariant it protects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from xmetrics.crypto import SealedTokens
from xmetrics.errors import AccountNotFoundError, StateError, StoreUnavailableError, TokenConflictError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACTIVE = "active"
NEEDS_RECONNECT = "needs_reconnect"

# --- condition fragments -------------------------------------------------------------------
_SAME_VERSION = "version = :v"
# A lease is free when nobody took one or the holder's time ran out (a crashed holder must
# not block the account forever). lease_until outlasts the token request's timeout, so two
# live holders can never overlap.
_LEASE_FREE = "(attribute_not_exists(lease_until) OR lease_until < :now)"
_LEASE_MINE = "lease_owner = :me"
# The refresh token a rotation spent at X is still the stored one: nobody replaced it meanwhile.
_SPENT_TOKEN = "refresh_token = :spent"
_EXISTS = "attribute_exists(pk)"


_CONDITION_FAILED = "ConditionalCheckFailedException"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


# What a failed condition means to one call: the domain error to raise, or None when the
# call treats it as an expected outcome (the error is swallowed, the rest of the block skipped).
_OnConflict = Callable[[ClientError], Exception | None]


@contextmanager
def _translate(operation: str, *, conflict: _OnConflict | None = None) -> Iterator[None]:
    """The one place DynamoDB's and botocore's errors become the project's.

    Without `conflict`, a failed condition is as unexpected as a throttle: StoreUnavailableError.
    """
    try:
        yield
    except ClientError as exc:
        code = _code(exc)
        if code == _CONDITION_FAILED and conflict is not None:
            domain = conflict(exc)
            if domain is None:
                return
            raise domain from exc
        raise StoreUnavailableError(operation, code) from exc
    except BotoCoreError as exc:
        raise StoreUnavailableError(operation, type(exc).__name__) from exc


def _expected(_: ClientError) -> None:
    return None


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: float) -> dict[str, Any]:
    return {"N": repr(int(value)) if float(value).is_integer() else repr(float(value))}


def _b(value: bytes) -> dict[str, Any]:
    return {"B": value}


def _get_s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def _get_n(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


def _get_b(item: dict[str, Any], name: str) -> bytes:
    value = item.get(name)
    return bytes(value["B"]) if value and "B" in value else b""


@dataclass(frozen=True)
class StateRecord:
    state: str
    code_verifier: str = field(repr=False)
    browser_hash: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class Account:
    user_id: str
    username: str
    status: str
    version: int
    access_expires_at: float
    scope: str
    sealed: SealedTokens = field(repr=False)
    lease_owner: str | None = None
    lease_until: float | None = None
    last_export: dict[str, str] | None = None
    last_error: str | None = None
    connected_at: str | None = None
    updated_at: str | None = None
    # The read tiers' bookkeeping (services/billing.py's Bookkeeping, as JSON).
    reads: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Account:
        last_export = item.get("last_export", {}).get("M")
        return cls(
            user_id=_get_s(item, "user_id") or "",
            username=_get_s(item, "username") or "",
            status=_get_s(item, "status") or NEEDS_RECONNECT,
            version=int(_get_n(item, "version") or 0),
            access_expires_at=_get_n(item, "access_expires_at") or 0.0,
            scope=_get_s(item, "scope") or "",
            sealed=SealedTokens(
                data_key=_get_b(item, "data_key"),
                access_token=_get_b(item, "access_token"),
                refresh_token=_get_b(item, "refresh_token"),
            ),
            lease_owner=_get_s(item, "lease_owner"),
            lease_until=_get_n(item, "lease_until"),
            last_export={k: next(iter(v.values())) for k, v in last_export.items()} if last_export else None,
            last_error=_get_s(item, "last_error"),
            connected_at=_get_s(item, "connected_at"),
            updated_at=_get_s(item, "updated_at"),
            reads=_get_s(item, "reads"),
        )


@dataclass(frozen=True)
class UsageCap:
    """X answered that the app's usage cap (or its credits) ran out: no timeline call by any run
    scheduled before `until` (epoch seconds of the runs' scheduled time)."""

    until: float
    detail: str = ""
    # While a run probes X (epoch seconds, wall clock: a lease, like the token's), others wait.
    probe_until: float | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> UsageCap:
        return cls(
            until=_get_n(item, "until") or 0.0,
            detail=_get_s(item, "detail") or "",
            probe_until=_get_n(item, "probe_until"),
        )


def _standing(exc: ClientError) -> Account | None:
    """The item a failed condition ran into (sent with ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    item: dict[str, Any] | None = dict(exc.response).get("Item")
    return Account.from_item(item) if item else None


def _scalar(value: object) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    return _s(str(value))


def _account_key(user_id: str) -> dict[str, Any]:
    return {"pk": _s(f"account#{user_id}")}


_USAGE_CAP_KEY = {"pk": _s("app#usage-cap")}
# A day's budget counter must outlive every run that may still be charged to it: a snapshot is
# accepted for 30 days (an SQS retry, a redrive, a replay), and a swept counter would start that
# day's budget from zero again.
_BUDGET_TTL_SECONDS = 32 * 86_400
# BatchGetItem hands back what it could not read under throttling; a few more tries, then fail.
_BATCH_TRIES = 3


def _token_values(sealed: SealedTokens, access_expires_at: float, scope: str, now_iso: str) -> dict[str, Any]:
    return {
        ":dk": _b(sealed.data_key),
        ":at": _b(sealed.access_token),
        ":rt": _b(sealed.refresh_token),
        ":exp": _n(access_expires_at),
        ":scope": _s(scope),
        ":updated": _s(now_iso),
    }


_SET_TOKENS = (
    "data_key = :dk, access_token = :at, refresh_token = :rt, access_expires_at = :exp, "
    "#scope = :scope, updated_at = :updated"
)


class Store:
    def __init__(self, dynamodb: DynamoDBClient, table_name: str) -> None:
        self._db = dynamodb
        self._table = table_name

    # --- OAuth state ---------------------------------------------------------------------
    def put_state(self, record: StateRecord) -> None:
        with _translate("PutItem"):
            self._db.put_item(
                TableName=self._table,
                Item={
                    "pk": _s(f"state#{record.state}"),
                    "code_verifier": _s(record.code_verifier),
                    "browser_hash": _s(record.browser_hash),
                    "created_at": _n(record.created_at),
                    "expires_at": _n(record.expires_at),
                },
                # 256 random bits never collide; the condition makes a collision an error, not an
                # overwrite (StoreUnavailableError naming ConditionalCheckFailedException).
                ConditionExpression="attribute_not_exists(pk)",
            )

    def take_state(self, state: str, browser_hash: str) -> StateRecord:
        """Delete the state and return what it held: a state can be taken exactly once, and only
        by the browser that started the flow (a request with another cookie leaves it in place)."""

        def refused(exc: ClientError) -> StateError:
            # No item: never issued, already taken, or expired and swept by TTL.
            return StateError("browser" if exc.response.get("Item") else "unknown")

        with _translate("DeleteItem", conflict=refused):
            answer = self._db.delete_item(
                TableName=self._table,
                Key={"pk": _s(f"state#{state}")},
                ConditionExpression=f"{_EXISTS} AND browser_hash = :browser",
                ExpressionAttributeValues={":browser": _s(browser_hash)},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        item = answer.get("Attributes", {})
        return StateRecord(
            state=state,
            code_verifier=_get_s(item, "code_verifier") or "",
            browser_hash=_get_s(item, "browser_hash") or "",
            created_at=_get_n(item, "created_at") or 0.0,
            expires_at=_get_n(item, "expires_at") or 0.0,
        )

    # --- accounts ------------------------------------------------------------------------
    def get_account(self, user_id: str) -> Account | None:
        # Consistent: a stale read would hand us a refresh token that was already spent.
        with _translate("GetItem"):
            answer = self._db.get_item(TableName=self._table, Key=_account_key(user_id), ConsistentRead=True)
        item = answer.get("Item")
        return Account.from_item(item) if item else None

    def get_account_and_cap(self, user_id: str) -> tuple[Account | None, UsageCap | None]:
        """The account and X's usage-cap marker in one request (a run's first read)."""
        keys = [_account_key(user_id), _USAGE_CAP_KEY]
        items: list[dict[str, Any]] = []
        for _ in range(_BATCH_TRIES):
            with _translate("BatchGetItem"):
                answer = self._db.batch_get_item(
                    RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
                )
            items += answer.get("Responses", {}).get(self._table, [])
            unprocessed: Any = answer.get("UnprocessedKeys", {}).get(self._table) or {}
            keys = list(unprocessed.get("Keys", []))
            if not keys:
                break
        else:
            raise StoreUnavailableError("BatchGetItem", "UnprocessedKeys")
        by_pk = {_get_s(item, "pk"): item for item in items}
        account = by_pk.get(_account_key(user_id)["pk"]["S"])
        cap = by_pk.get(_USAGE_CAP_KEY["pk"]["S"])
        return (
            Account.from_item(account) if account else None,
            UsageCap.from_item(cap) if cap else None,
        )

    def save_connection(
        self,
        *,
        user_id: str,
        username: str,
        sealed: SealedTokens,
        access_expires_at: float,
        scope: str,
        now_iso: str,
    ) -> int:
        """Store a (re)connected account: new tokens, version+1, active, any lease dropped."""
        values = _token_values(sealed, access_expires_at, scope, now_iso)
        values.update({":uid": _s(user_id), ":name": _s(username), ":active": _s(ACTIVE), ":one": _n(1)})
        with _translate("UpdateItem"):
            answer = self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression=(
                    f"SET {_SET_TOKENS}, user_id = :uid, username = :name, #status = :active, "
                    "connected_at = :updated ADD version :one REMOVE lease_owner, lease_until, last_error"
                ),
                ExpressionAttributeNames={"#status": "status", "#scope": "scope"},
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        return int(answer["Attributes"]["version"]["N"])

    def acquire_lease(self, user_id: str, *, version: int, owner: str, now: float, until: float) -> None:
        def lost(exc: ClientError) -> Exception:
            return TokenConflictError("lease held or tokens changed", current=_standing(exc))

        with _translate("UpdateItem", conflict=lost):
            self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression=f"{_SAME_VERSION} AND {_LEASE_FREE}",
                ExpressionAttributeValues={
                    ":v": _n(version),
                    ":now": _n(now),
                    ":me": _s(owner),
                    ":until": _n(until),
                },
                # A retried request whose first answer was lost finds our own lease in the way.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )

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
        """Write the rotated tokens and drop the lease in one conditional write.

        Conditioned on the version and on the refresh token X just rotated (`spent`, as stored),
        not on holding the lease: whoever got X's answer for that token holds the only live one,
        so this write must win even after the lease ran out and another run took it (that run can
        only be refused by X). The account is active again if that run marked it otherwise.
        """
        values = _token_values(sealed, access_expires_at, scope, now_iso)
        values.update(
            {":v": _n(version), ":spent": _b(spent), ":next": _n(version + 1), ":active": _s(ACTIVE)}
        )

        def lost(exc: ClientError) -> Exception:
            return TokenConflictError(
                "the tokens changed before the rotated ones were written", current=_standing(exc)
            )

        with _translate("UpdateItem", conflict=lost):
            self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression=(
                    f"SET {_SET_TOKENS}, version = :next, #status = :active "
                    "REMOVE lease_owner, lease_until, last_error"
                ),
                ConditionExpression=f"{_SAME_VERSION} AND {_SPENT_TOKEN}",
                ExpressionAttributeNames={"#scope": "scope", "#status": "status"},
                ExpressionAttributeValues=values,
                # The SDK retries a write whose answer was lost; the retry then fails its condition
                # against our own landed write. The item it ran into tells that apart from a real loss.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        return version + 1

    def release_lease(self, user_id: str, *, owner: str) -> None:
        # Not ours any more (expired and taken, or already dropped): nothing to release.
        with _translate("UpdateItem", conflict=_expected):
            self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression=_LEASE_MINE,
                ExpressionAttributeValues={":me": _s(owner)},
            )

    def mark_needs_reconnect(self, user_id: str, *, version: int, reason: str, now_iso: str) -> bool:
        """Flag a dead refresh token, unless a reconnect already replaced it (version moved on)."""
        flagged = False
        with _translate("UpdateItem", conflict=_expected):
            self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression=(
                    "SET #status = :nr, last_error = :why, updated_at = :now REMOVE lease_owner, lease_until"
                ),
                ConditionExpression=_SAME_VERSION,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":v": _n(version),
                    ":nr": _s(NEEDS_RECONNECT),
                    ":why": _s(reason[:500]),
                    ":now": _s(now_iso),
                },
            )
            flagged = True
        return flagged

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
        """The export landed: `last_export`, and in the same write the read tiers' bookkeeping,
        the username X now shows (an account renamed at X is renamed here) and whether X's reach
        covered the run's window (`completeness`: complete, reason, oldest_reached)."""
        values: dict[str, Any] = {
            ":le": {"M": {"key": _s(key), "count": _n(count), "at": _s(at_iso)}},
            ":at": _s(at_iso),
        }
        update, names = "SET #le = :le, updated_at = :at", {"#le": "last_export"}
        if reads is not None:
            # READS is one of DynamoDB's reserved words.
            update, names["#reads"] = update + ", #reads = :reads", "reads"
            values[":reads"] = _s(reads)
        if username:
            update += ", username = :name"
            values[":name"] = _s(username)
        if completeness is not None:
            update, names["#cm"] = update + ", #cm = :cm", "completeness"
            values[":cm"] = {"M": {k: _scalar(v) for k, v in completeness.items()}}
        # The account was disconnected (deleted) while its export was written; the condition keeps
        # this write from resurrecting it as a token-less item.
        with _translate("UpdateItem", conflict=lambda _: AccountNotFoundError(user_id)):
            self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression=f"{update} REMOVE last_error",
                ConditionExpression=_EXISTS,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )

    def record_error(self, user_id: str, *, message: str, at_iso: str) -> None:
        # A deleted account has nowhere to keep its error, and must not be recreated to hold one.
        with _translate("UpdateItem", conflict=_expected):
            self._db.update_item(
                TableName=self._table,
                Key=_account_key(user_id),
                UpdateExpression="SET last_error = :e, updated_at = :at",
                ConditionExpression=_EXISTS,
                ExpressionAttributeValues={":e": _s(message[:500]), ":at": _s(at_iso)},
            )

    # --- X's bill: the daily read budget and the usage-cap marker ----------------------------
    def add_reads(self, day: str, amount: int) -> int:
        """Add to the UTC day's billable-read counter (atomically); the day's total after it."""
        expires_at = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
        with _translate("UpdateItem"):
            answer = self._db.update_item(
                TableName=self._table,
                Key={"pk": _s(f"budget#{day}")},
                UpdateExpression="ADD #posts :n SET expires_at = if_not_exists(expires_at, :exp)",
                ExpressionAttributeNames={"#posts": "posts"},
                ExpressionAttributeValues={":n": _n(amount), ":exp": _n(expires_at + _BUDGET_TTL_SECONDS)},
                ReturnValues="UPDATED_NEW",
            )
        return int(answer["Attributes"]["posts"]["N"])

    def set_usage_cap(self, *, until: float, detail: str, at_iso: str) -> None:
        """Keep every run off X's timeline until `until`, unless a later run already set a later
        end (two runs capped at once: the later end wins whichever writes last)."""
        with _translate("PutItem", conflict=_expected):
            self._db.put_item(
                TableName=self._table,
                Item={
                    **_USAGE_CAP_KEY,
                    "until": _n(until),
                    "detail": _s(detail[:300] or "usage cap"),
                    "at": _s(at_iso),
                    # Swept a day after it stops mattering; `until` is what the code checks.
                    "expires_at": _n(until + 86_400),
                },
                ConditionExpression="attribute_not_exists(#until) OR #until <= :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":until": _n(until)},
            )

    def claim_usage_probe(self, *, seen_until: float, until: float, probe_until: float) -> bool:
        """Push the marker's end to `until` if it still ends at `seen_until`, and hold the probe
        until `probe_until`: the one run that does so probes X; the others wait for its answer.
        X answering the cap again replaces the whole item (set_usage_cap), probe included."""
        claimed = False
        with _translate("UpdateItem", conflict=_expected):
            self._db.update_item(
                TableName=self._table,
                Key=_USAGE_CAP_KEY,
                UpdateExpression="SET #until = :until, probe_until = :probe",
                ConditionExpression="#until = :seen",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={
                    ":seen": _n(seen_until),
                    ":until": _n(until),
                    ":probe": _n(probe_until),
                },
            )
            claimed = True
        return claimed

    def clear_usage_cap(self, *, until: float) -> None:
        """Drop the marker a probe claimed, unless X capped someone else since (it moved on)."""
        with _translate("DeleteItem", conflict=_expected):
            self._db.delete_item(
                TableName=self._table,
                Key=_USAGE_CAP_KEY,
                ConditionExpression="#until = :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues={":until": _n(until)},
            )

    def active_account_ids(self) -> Iterator[str]:
        paginator = self._db.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            ProjectionExpression="user_id",
            FilterExpression="begins_with(pk, :acct) AND #status = :active",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":acct": _s("account#"), ":active": _s(ACTIVE)},
        )
        # The paginator calls Scan lazily, page by page: its errors surface here, mid-iteration.
        with _translate("Scan"):
            for page in pages:
                for item in page.get("Items", []):
                    user_id = _get_s(item, "user_id")
                    if user_id:
                        yield user_id

    def delete_account(self, user_id: str) -> bool:
        with _translate("DeleteItem"):
            answer = self._db.delete_item(
                TableName=self._table, Key=_account_key(user_id), ReturnValues="ALL_OLD"
            )
        return bool(answer.get("Attributes"))
