"""store.py: every DynamoDB failure reaches the services as the project's own error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.unit.aws_stubs import assert_clean, client, failing, network_down
from xmetrics.crypto import SealedTokens
from xmetrics.errors import AccountNotFoundError, StateError, StoreUnavailableError, TokenConflictError
from xmetrics.store import StateRecord, Store

TABLE = "table-leak-marker"
USER = "1700000000000000001"
OWNER = "owner-leak-marker"
NOW = "2026-11-28T16:00:00Z"
SEALED = SealedTokens(data_key=b"dk", access_token=b"at", refresh_token=b"rt")

Call = Callable[[Store], Any]

# Every method of the store with a boto call, the client method it uses and AWS's operation name.
OPERATIONS = [
    pytest.param(
        lambda s: s.put_state(StateRecord("state-leak-marker", "verifier", "hash", 1.0, 601.0)),
        "put_item",
        "PutItem",
        id="put_state",
    ),
    pytest.param(
        lambda s: s.take_state("state-leak-marker", "hash"), "delete_item", "DeleteItem", id="take_state"
    ),
    pytest.param(lambda s: s.get_account(USER), "get_item", "GetItem", id="get_account"),
    pytest.param(
        lambda s: s.save_connection(
            user_id=USER,
            username="ada",
            sealed=SEALED,
            access_expires_at=7200.0,
            scope="tweet.read",
            now_iso=NOW,
        ),
        "update_item",
        "UpdateItem",
        id="save_connection",
    ),
    pytest.param(
        lambda s: s.acquire_lease(USER, version=3, owner=OWNER, now=100.0, until=160.0),
        "update_item",
        "UpdateItem",
        id="acquire_lease",
    ),
    pytest.param(
        lambda s: s.complete_rotation(
            USER,
            version=3,
            spent=SEALED.refresh_token,
            sealed=SEALED,
            access_expires_at=7200.0,
            scope="tweet.read",
            now_iso=NOW,
        ),
        "update_item",
        "UpdateItem",
        id="complete_rotation",
    ),
    pytest.param(
        lambda s: s.release_lease(USER, owner=OWNER), "update_item", "UpdateItem", id="release_lease"
    ),
    pytest.param(
        lambda s: s.mark_needs_reconnect(USER, version=3, reason="invalid_grant", now_iso=NOW),
        "update_item",
        "UpdateItem",
        id="mark_needs_reconnect",
    ),
    pytest.param(
        lambda s: s.record_export(USER, key="x/tweets/k.jsonl", count=1, at_iso=NOW),
        "update_item",
        "UpdateItem",
        id="record_export",
    ),
    pytest.param(
        lambda s: s.record_error(USER, message="fetch failed", at_iso=NOW),
        "update_item",
        "UpdateItem",
        id="record_error",
    ),
    pytest.param(lambda s: list(s.active_account_ids()), "scan", "Scan", id="active_account_ids"),
    pytest.param(lambda s: s.delete_account(USER), "delete_item", "DeleteItem", id="delete_account"),
]

# What DynamoDB answers when it cannot or will not do the call, after the SDK's own retries.
FAILURES = [
    pytest.param("ProvisionedThroughputExceededException", 400, id="throttled"),
    pytest.param("ThrottlingException", 400, id="throttled-on-demand"),
    pytest.param("InternalServerError", 500, id="5xx"),
    pytest.param("AccessDeniedException", 400, id="access-denied"),
]


@pytest.fixture
def dynamodb() -> Any:
    return client("dynamodb")


def _account_item(
    sealed: SealedTokens, *, version: int = 4, lease_owner: str | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"account#{USER}"},
        "user_id": {"S": USER},
        "username": {"S": "ada"},
        "status": {"S": "active"},
        "version": {"N": str(version)},
        "access_expires_at": {"N": "7200"},
        "scope": {"S": "tweet.read"},
        "data_key": {"B": sealed.data_key},
        "access_token": {"B": sealed.access_token},
        "refresh_token": {"B": sealed.refresh_token},
    }
    if lease_owner:
        item["lease_owner"] = {"S": lease_owner}
        item["lease_until"] = {"N": "160"}
    return item


@pytest.mark.parametrize(("code", "status"), FAILURES)
@pytest.mark.parametrize(("call", "method", "operation"), OPERATIONS)
def test_an_aws_failure_becomes_store_unavailable(
    dynamodb: Any, call: Call, method: str, operation: str, code: str, status: int
) -> None:
    # Given: DynamoDB answers this call with an error
    with failing(dynamodb, method, code, status):
        # When: the store makes the call
        with pytest.raises(StoreUnavailableError) as raised:
            call(Store(dynamodb, TABLE))
    # Then: the services see the project's error naming service, operation and code, nothing else
    assert str(raised.value) == f"DynamoDB {operation} failed: {code}"
    assert (raised.value.operation, raised.value.code) == (operation, code)
    assert isinstance(raised.value.__cause__, ClientError)
    assert_clean(str(raised.value), USER, TABLE, OWNER)


@pytest.mark.parametrize(("call", "method", "operation"), OPERATIONS)
def test_an_unreachable_dynamodb_becomes_store_unavailable(
    dynamodb: Any, call: Call, method: str, operation: str
) -> None:
    # Given: the endpoint cannot be reached
    network_down(dynamodb)
    # When: the store makes the call
    with pytest.raises(StoreUnavailableError) as raised:
        call(Store(dynamodb, TABLE))
    # Then: the error names the failure's kind, not the endpoint
    assert str(raised.value) == f"DynamoDB {operation} failed: EndpointConnectionError"
    assert_clean(str(raised.value), USER, TABLE)


def test_a_scan_failing_on_a_later_page_fails_mid_iteration(dynamodb: Any) -> None:
    # Given: a first page of accounts, then a throttled second page
    with Stubber(dynamodb) as stubber:
        stubber.add_response(
            "scan",
            {"Items": [{"user_id": {"S": USER}}], "LastEvaluatedKey": {"pk": {"S": f"account#{USER}"}}},
        )
        stubber.add_client_error("scan", "ProvisionedThroughputExceededException", http_status_code=400)
        ids = Store(dynamodb, TABLE).active_account_ids()
        # When: the caller iterates
        first = next(ids)
        # Then: what was read arrives, and the failure surfaces as the project's error
        assert first == USER
        with pytest.raises(StoreUnavailableError, match="DynamoDB Scan failed"):
            next(ids)


def test_taking_an_unknown_state_is_a_state_error(dynamodb: Any) -> None:
    # Given: no such state (never issued, already taken, or swept)
    with failing(dynamodb, "delete_item", "ConditionalCheckFailedException", 400):
        # When: the callback takes it
        with pytest.raises(StateError) as raised:
            Store(dynamodb, TABLE).take_state("state-leak-marker", "hash")
    # Then: it is refused as an unknown state
    assert raised.value.reason == "unknown"


def test_a_state_collision_is_not_an_overwrite(dynamodb: Any) -> None:
    # Given: an item already holds this state
    with failing(dynamodb, "put_item", "ConditionalCheckFailedException", 400):
        # When / Then: storing it again fails instead of replacing the other browser's verifier
        with pytest.raises(StoreUnavailableError, match="PutItem failed: ConditionalCheckFailedException"):
            Store(dynamodb, TABLE).put_state(StateRecord("s", "verifier", "hash", 1.0, 601.0))


def test_a_held_lease_is_a_conflict_showing_the_holder(dynamodb: Any) -> None:
    # Given: another run holds the lease; DynamoDB hands back the item that stood in the way
    held = _account_item(SEALED, version=3, lease_owner="someone-else")
    with failing(dynamodb, "update_item", "ConditionalCheckFailedException", 400, Item=held):
        # When: this run asks for the lease
        with pytest.raises(TokenConflictError) as raised:
            Store(dynamodb, TABLE).acquire_lease(USER, version=3, owner=OWNER, now=100.0, until=160.0)
    # Then: the conflict carries who holds it, no second read needed
    assert raised.value.current is not None
    assert raised.value.current.lease_owner == "someone-else"


def _rotate(store: Store) -> int:
    return store.complete_rotation(
        USER,
        version=3,
        spent=SEALED.refresh_token,
        sealed=SEALED,
        access_expires_at=7200.0,
        scope="s",
        now_iso=NOW,
    )


def test_a_lost_rotation_write_shows_whether_it_was_our_own(dynamodb: Any) -> None:
    # Given: the SDK retried our rotation write after its answer was lost: the item holds our tokens
    landed = _account_item(SEALED, version=4)
    with failing(dynamodb, "update_item", "ConditionalCheckFailedException", 400, Item=landed):
        # When: the retry's condition fails against our own write
        with pytest.raises(TokenConflictError) as raised:
            _rotate(Store(dynamodb, TABLE))
    # Then: the conflict carries the standing item, whose ciphertext is ours
    assert raised.value.current is not None
    assert (raised.value.current.sealed, raised.value.current.version) == (SEALED, 4)


def test_a_rotation_conflict_without_the_item_says_so(dynamodb: Any) -> None:
    # Given: the account is gone (a disconnect), so no item stood in the way
    with failing(dynamodb, "update_item", "ConditionalCheckFailedException", 400):
        # When: the rotation write fails its condition
        with pytest.raises(TokenConflictError) as raised:
            _rotate(Store(dynamodb, TABLE))
    # Then: there is nothing to compare against
    assert raised.value.current is None


def test_an_export_recorded_for_a_disconnected_account_is_not_found(dynamodb: Any) -> None:
    # Given: the account was deleted (disconnect) while its export was being written
    with failing(dynamodb, "update_item", "ConditionalCheckFailedException", 400):
        # When / Then: recording the export says the account is gone (a status, not a traceback)
        with pytest.raises(AccountNotFoundError):
            Store(dynamodb, TABLE).record_export(USER, key="k", count=140, at_iso=NOW)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.release_lease(USER, owner=OWNER), id="release_lease"),
        pytest.param(lambda s: s.record_error(USER, message="failed", at_iso=NOW), id="record_error"),
    ],
)
def test_a_failed_condition_is_expected_where_it_means_nothing_to_do(dynamodb: Any, call: Call) -> None:
    # Given: the lease is no longer ours / the account is gone
    with failing(dynamodb, "update_item", "ConditionalCheckFailedException", 400):
        # When / Then: the call is a no-op, not an error
        assert call(Store(dynamodb, TABLE)) is None


def test_a_reconnected_account_is_not_flagged(dynamodb: Any) -> None:
    # Given: a reconnect replaced the dead token (the version moved on)
    with failing(dynamodb, "update_item", "ConditionalCheckFailedException", 400):
        # When: the keeper flags the dead token
        flagged = Store(dynamodb, TABLE).mark_needs_reconnect(USER, version=3, reason="dead", now_iso=NOW)
    # Then: nothing was flagged
    assert flagged is False


def test_a_dead_token_is_flagged(dynamodb: Any) -> None:
    # Given: the version is still the one whose token died
    with Stubber(dynamodb) as stubber:
        stubber.add_response("update_item", {})
        # When: the keeper flags it
        flagged = Store(dynamodb, TABLE).mark_needs_reconnect(USER, version=3, reason="dead", now_iso=NOW)
    # Then: the flag landed
    assert flagged is True
