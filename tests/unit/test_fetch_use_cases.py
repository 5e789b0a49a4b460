"""The fetch function's use cases answer with a status whatever an adapter raises."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.crypto import FakeCipher
from tests.fakes.exporter import FakeExporter
from tests.fakes.oauth import FakeTokenEndpoint
from tests.fakes.store import FakeStore
from tests.fakes.telemetry import Recorder
from tests.fakes.x_api import FakeTimelines
from xmetrics.crypto import PlainTokens
from xmetrics.errors import (
    AccountNotFoundError,
    ExportWriteError,
    KeyUnavailableError,
    QueueSendError,
    StoreUnavailableError,
    TokenConflictError,
    TokenUnreadableError,
    XMetricsError,
)
from xmetrics.services.disconnect import DisconnectAccount
from xmetrics.services.dispatch import DispatchRun
from xmetrics.services.export_account import ExportAccount
from xmetrics.services.results import Summary
from xmetrics.services.tokens import TokenKeeper
from xmetrics.services.window import make_job

USER = "42"
SNAPSHOT = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = FakeStore()
        self.cipher = FakeCipher()
        self.x = FakeTokenEndpoint(clock=self.clock)
        self.timelines = FakeTimelines(posts=[{"id": "1", "created_at": "2026-11-27T10:00:00Z"}])
        self.exporter = FakeExporter()
        self.telemetry = Recorder()
        self.keeper = TokenKeeper(
            self.store, self.cipher, self.x, self.telemetry, clock=self.clock, sleep=self.clock.sleep
        )
        self.export = ExportAccount(
            self.store, self.keeper, self.timelines, self.exporter, self.telemetry, clock=self.clock
        )
        sealed = self.cipher.seal(USER, self.cipher.key(USER), PlainTokens("a0", "r0"))
        self.store.connect(USER, sealed, access_expires_at=self.clock() + 7200)

    def run(self) -> Summary:
        return self.export.run(make_job(USER, SNAPSHOT), self.clock.deadline(300))


@pytest.fixture
def world() -> World:
    return World()


def _fail_on(world: World, operation: str, error: XMetricsError) -> None:
    def hook(called: str) -> None:
        if called == operation:
            raise error

    world.store.hook = hook


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        (
            "get_account_and_cap",
            StoreUnavailableError("BatchGetItem", "ProvisionedThroughputExceededException"),
        ),
        ("record_export", StoreUnavailableError("UpdateItem", "InternalServerError")),
    ],
)
def test_a_store_failure_is_a_failed_status(world: World, operation: str, error: XMetricsError) -> None:
    _fail_on(world, operation, error)
    summary = world.run()
    assert summary.status == "failed" and "DynamoDB" in str(summary.error)


@pytest.mark.parametrize(
    "error",
    [
        KeyUnavailableError("Decrypt", "DisabledException"),
        KeyUnavailableError("Decrypt", "KMSInvalidStateException"),
        KeyUnavailableError("Decrypt", "AccessDeniedException"),
        TokenUnreadableError(USER),
    ],
)
def test_a_key_that_cannot_open_the_tokens_is_a_failed_status(world: World, error: XMetricsError) -> None:
    def refuse(user_id: str, encrypted: bytes) -> object:
        raise error

    world.cipher.open_data_key = refuse  # type: ignore[method-assign,assignment]
    summary = world.run()
    assert summary.status == "failed" and summary.error
    assert world.timelines.calls == 0


def test_an_export_write_failure_is_a_failed_status_and_records_nothing(world: World) -> None:
    def refuse(*args: object, **kwargs: object) -> object:
        raise ExportWriteError("PutObject", "AccessDenied")

    world.exporter.put = refuse  # type: ignore[method-assign,assignment]
    summary = world.run()
    assert summary.status == "failed" and "S3 PutObject failed: AccessDenied" in str(summary.error)
    assert world.store.accounts[USER].last_export is None


def test_a_disconnect_during_the_export_is_not_found_with_the_object_named(world: World) -> None:
    # Given: the account is deleted after its pages were read and its object written
    _fail_on(world, "record_export", AccountNotFoundError(USER))
    summary = world.run()
    assert summary.status == "not_found" and summary.key in world.exporter.objects


def test_a_rotation_write_conflict_is_a_failed_status(world: World) -> None:
    world.store.accounts[USER] = replace(world.store.accounts[USER], access_expires_at=world.clock() + 10)
    _fail_on(world, "complete_rotation", TokenConflictError("lost", current=None))
    summary = world.run()
    assert summary.status == "failed" and summary.error


def test_an_empty_export_says_it_has_no_tweets(world: World) -> None:
    world.timelines.posts = []
    answer = world.run().as_dict()
    assert answer["status"] == "exported" and answer["tweets"] == 0


def test_disconnect_deletes_an_account_whose_tokens_do_not_decrypt(world: World) -> None:
    # Given: stored tokens that no longer open (another account's blob, a tampered item)
    account = world.store.accounts[USER]
    other = world.cipher.seal("7", world.cipher.key("7"), PlainTokens("x", "y"))
    world.store.accounts[USER] = replace(account, sealed=replace(other, data_key=account.sealed.data_key))
    # When
    result = DisconnectAccount(world.store, world.keeper, world.x, world.telemetry).run(USER)
    # Then: deleted, and the answer says the revoke was skipped and why
    assert result.status == "disconnected" and not result.revoked
    assert "revoke at X skipped" in str(result.error)
    assert USER not in world.store.accounts


def test_disconnect_revokes_then_deletes(world: World) -> None:
    result = DisconnectAccount(world.store, world.keeper, world.x, world.telemetry).run(USER)
    assert result.as_dict() == {"user_id": USER, "status": "disconnected", "revoked": True}
    assert world.x.revoked


def test_a_queue_that_refuses_the_jobs_makes_the_scheduled_run_say_failed(world: World) -> None:
    class RefusingQueue:
        def send_jobs(self, user_ids: object, snapshot_at: str) -> int:
            raise QueueSendError("SendMessageBatch", "3 messages refused after 5 attempts (InternalError)")

        def defer(self, receipt_handle: str, seconds: float) -> None:
            raise AssertionError("not called")

    result = DispatchRun(world.store, world.export, world.telemetry, queue=RefusingQueue()).run(
        SNAPSHOT, world.clock.deadline(300)
    )
    assert result.as_dict()["status"] == "failed" and "SQS SendMessageBatch" in str(result.error)
    assert world.telemetry.metrics["DispatchFailed"] == 1


def test_a_redelivered_message_already_exported_calls_no_one(world: World) -> None:
    # Given: the export of this snapshot landed, and the token is now due
    first = world.export.run(make_job(USER, SNAPSHOT), world.clock.deadline(300), skip_if_done=True)
    world.store.accounts[USER] = replace(world.store.accounts[USER], access_expires_at=world.clock() + 10)
    calls_before = world.timelines.calls
    objects = dict(world.exporter.objects)
    # When: SQS delivers the same message again
    again = world.export.run(make_job(USER, SNAPSHOT), world.clock.deadline(300), skip_if_done=True)
    # Then: acknowledged from last_export: no refresh, no timeline, no write
    assert again.skipped and again.key == first.key and again.tweets == first.tweets
    # (the redelivery wrote nothing: no posts, no account snapshot, no run line)
    assert world.x.posts == 0 and world.timelines.calls == calls_before and world.exporter.writes == 1
    assert world.exporter.objects == objects


@pytest.mark.parametrize(
    "damage", [KeyError("id"), TypeError("list"), AttributeError("get"), ValueError("x")]
)
def test_an_answer_of_the_wrong_shape_is_a_failed_status(world: World, damage: Exception) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise damage

    world.timelines.timeline = broken  # type: ignore[method-assign,assignment]
    summary = world.run()
    assert summary.status == "failed" and type(damage).__name__ in str(summary.error)
