"""The rotation protocol against the Lambda's deadline, with fakes and an injected clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.crypto import FakeCipher
from tests.fakes.oauth import LOST_AFTER, NEVER_SENT, SERVER_ERROR, TIMEOUT_BEFORE, FakeTokenEndpoint
from tests.fakes.store import FakeStore, throttled
from tests.fakes.telemetry import Recorder
from xmetrics.crypto import PlainTokens
from xmetrics.errors import (
    DeadlineError,
    LeaseTimeoutError,
    NeedsReconnectError,
    RotationNotStoredError,
    TokenConflictError,
)
from xmetrics.limits import ROTATION
from xmetrics.services.tokens import TokenKeeper

USER = "42"


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = FakeStore()
        self.cipher = FakeCipher()
        self.x = FakeTokenEndpoint(clock=self.clock)
        self.telemetry = Recorder()
        self.keeper = TokenKeeper(
            self.store,
            self.cipher,
            self.x,
            self.telemetry,
            clock=self.clock,
            sleep=self.clock.sleep,
            rand=lambda: 1.0,
        )
        # A connected account whose access token is due for a refresh.
        self.store.connect(USER, self.seal("a0", "r0"), access_expires_at=self.clock() + 60)

    def seal(self, access: str, refresh: str) -> object:
        return self.cipher.seal(USER, self.cipher.key(USER), PlainTokens(access, refresh))

    def stored_refresh(self) -> str:
        account = self.store.accounts[USER]
        return self.cipher.open(USER, self.cipher.key(USER), account.sealed).refresh_token

    def alive(self) -> bool:
        return self.stored_refresh() == self.x.live_refresh


@pytest.fixture
def world() -> World:
    return World()


def test_a_rotation_does_not_start_without_time_for_its_worst_case(world: World) -> None:
    # Given: a due token and an invocation with less time left than a rotation's worst case
    deadline = world.clock.deadline(ROTATION.start_seconds - 1)
    # When / Then: handed back untouched: no lease, no call to X
    with pytest.raises(DeadlineError, match="handed back"):
        world.keeper.access_token(USER, deadline)
    assert world.x.posts == 0 and "acquire_lease" not in world.store.calls
    assert world.store.accounts[USER].lease_owner is None
    # And: the next invocation, with time, rotates
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    assert grant.refreshed and world.alive()


def test_credentials_are_read_before_the_lease(world: World) -> None:
    world.store.hook = lambda operation: world.x.events.append(operation)
    world.keeper.access_token(USER, world.clock.deadline(300))
    assert world.x.events.index("credentials") < world.x.events.index("acquire_lease")
    assert world.x.events.index("acquire_lease") < world.x.events.index("refresh")


def test_a_slow_secret_read_is_checked_against_the_deadline_again(world: World) -> None:
    # Given: Secrets Manager takes 100 s (SDK retries) in a 200 s invocation
    slow = world.x.credentials

    def credentials() -> object:
        world.clock.sleep(100)
        return slow()

    world.x.credentials = credentials  # type: ignore[method-assign]
    # When / Then: what is left no longer covers a rotation: no lease, no X
    with pytest.raises(DeadlineError):
        world.keeper.access_token(USER, world.clock.deadline(200))
    assert world.x.posts == 0 and "acquire_lease" not in world.store.calls


def test_a_write_throttled_past_the_lease_is_retried_until_the_deadline(world: World) -> None:
    # Given: the rotation write fails for longer than the lease lasts (nobody else waiting)
    started = world.clock()

    def hook(operation: str) -> None:
        if operation == "complete_rotation" and world.clock() - started < ROTATION.lease_seconds + 20:
            world.clock.sleep(ROTATION.write_seconds)
            raise throttled(operation)

    world.store.hook = hook
    # When
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    # Then: the write landed after the lease ran out, and the rotated token is the stored one
    assert grant.refreshed and world.alive()
    assert world.clock() - started > ROTATION.lease_seconds
    assert world.telemetry.metrics["RotationWriteRetries"] >= 1


def test_a_write_that_never_lands_gives_up_only_at_the_deadline(world: World) -> None:
    world.store.hook = lambda operation: (
        (_ for _ in ()).throw(throttled(operation)) if operation == "complete_rotation" else None
    )
    started = world.clock()
    with pytest.raises(RotationNotStoredError, match="reconnect"):
        world.keeper.access_token(USER, world.clock.deadline(300))
    # it stops with time for a status left, rather than being killed mid-write
    assert 300 - ROTATION.write_seconds - 10 < world.clock() - started < 300
    assert world.telemetry.metrics["RotationWriteFailed"] == 1


def test_a_loser_gives_up_before_a_live_holders_lease_runs_out(world: World) -> None:
    # Given: another run took the lease just now
    account = world.store.accounts[USER]
    taken = world.clock()
    world.store.accounts[USER] = replace(
        account, lease_owner="other", lease_until=taken + ROTATION.lease_seconds
    )
    # When / Then: this run waits, but never as long as the lease, and never calls X
    with pytest.raises(LeaseTimeoutError):
        world.keeper.access_token(USER, world.clock.deadline(900))
    assert world.clock() - taken < ROTATION.lease_seconds
    assert world.x.posts == 0


def test_a_loser_never_waits_past_the_invocations_deadline(world: World) -> None:
    account = world.store.accounts[USER]
    world.store.accounts[USER] = replace(account, lease_owner="other", lease_until=world.clock() + 1000)
    started = world.clock()
    with pytest.raises(DeadlineError):
        world.keeper.access_token(USER, world.clock.deadline(ROTATION.start_seconds + 5))
    assert world.clock() - started < ROTATION.start_seconds + 5
    assert world.x.posts == 0


def test_a_loser_sees_the_holders_new_tokens(world: World) -> None:
    # Given: another run holds the lease and finishes its rotation 3 s later
    account = world.store.accounts[USER]
    world.store.accounts[USER] = replace(account, lease_owner="other", lease_until=world.clock() + 100)
    done_at = world.clock() + 3

    world.store.hook = _other_holder_finishes(world, done_at)
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    assert not grant.refreshed and grant.access_token == "a1" and world.x.posts == 0


@pytest.mark.parametrize("fault", [NEVER_SENT, SERVER_ERROR, TIMEOUT_BEFORE])
def test_a_post_x_did_not_process_is_retried_with_the_same_token(world: World, fault: str) -> None:
    world.x.faults = [fault]
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    assert grant.refreshed and world.alive() and world.x.posts == 2


def test_an_answer_lost_after_x_rotated_is_reported_in_the_same_run(world: World) -> None:
    """No client survives this one: X spent the token and its answer never arrived."""
    world.x.faults = [LOST_AFTER]
    with pytest.raises(NeedsReconnectError):
        world.keeper.access_token(USER, world.clock.deadline(300))
    assert world.store.accounts[USER].status == "needs_reconnect"
    assert world.telemetry.metrics["RefreshFailed"] == 1


def test_a_reconnect_during_the_rotation_hands_over_the_reconnected_tokens(world: World) -> None:
    # Given: the user reconnects while this run holds the lease and X is rotating
    def hook(operation: str) -> None:
        if operation == "complete_rotation" and world.store.accounts[USER].lease_owner:
            world.store.connect(
                USER, world.seal("reconnected", "r-new"), access_expires_at=world.clock() + 7200
            )

    world.store.hook = hook
    # When
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    # Then: no exception; the run goes on with the reconnect's token
    assert grant.access_token == "reconnected" and not grant.refreshed


def test_a_disconnect_during_the_rotation_is_a_domain_error(world: World) -> None:
    def hook(operation: str) -> None:
        if operation == "complete_rotation":
            world.store.accounts.pop(USER, None)

    world.store.hook = hook
    with pytest.raises(Exception) as caught:
        world.keeper.access_token(USER, world.clock.deadline(300))
    assert type(caught.value).__name__ == "AccountNotFoundError"


def test_a_lease_write_whose_answer_was_lost_is_still_ours(world: World) -> None:
    # Given: the lease write landed, but the SDK's retry met its own lease (condition failed)
    lost = {"done": False}

    def after(operation: str) -> None:
        if operation == "acquire_lease" and not lost["done"]:
            lost["done"] = True
            raise TokenConflictError("retry met its own lease", current=world.store.accounts[USER])

    world.store.after_write = after
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    assert grant.refreshed and world.alive() and "LeaseWaits" not in world.telemetry.metrics


def test_a_holder_writing_past_its_lease_still_wins_over_a_run_that_took_the_lease(world: World) -> None:
    """Found in review: a second run may take the expired lease, but it holds the spent token;
    only the first run's rotated tokens are live, so its late write must land."""
    second = TokenKeeper(
        world.store, world.cipher, world.x, Recorder(), clock=world.clock, sleep=world.clock.sleep
    )
    started = world.clock()
    outcome: dict[str, str] = {}

    def hook(operation: str) -> None:
        if "second" in outcome or operation != "complete_rotation":
            return
        if world.clock() - started > ROTATION.lease_seconds + 1:
            # The lease has run out: another run arrives, takes it, and is refused by X.
            outcome["second"] = "started"
            try:
                second.access_token(USER, world.clock.deadline(300))
            except NeedsReconnectError:
                outcome["second"] = "needs_reconnect"
            return
        world.clock.sleep(20)
        raise throttled(operation)

    world.store.hook = hook
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    assert outcome["second"] == "needs_reconnect"
    assert grant.refreshed and world.alive()
    assert world.store.accounts[USER].status == "active"


def test_x_refusing_a_token_a_reconnect_just_replaced_is_not_a_reconnect(world: World) -> None:
    # Given: X refuses the old token, and a reconnect lands before the flag is written
    world.x.live_refresh = "someone-else-spent-it"

    def hook(operation: str) -> None:
        if operation == "mark_needs_reconnect" and world.store.accounts[USER].lease_owner:
            world.store.connect(
                USER, world.seal("reconnected", "r-new"), access_expires_at=world.clock() + 7200
            )

    world.store.hook = hook
    grant = world.keeper.access_token(USER, world.clock.deadline(300))
    assert grant.access_token == "reconnected"
    assert "RefreshFailed" not in world.telemetry.metrics


def test_a_flag_that_cannot_be_written_still_releases_the_lease(world: World) -> None:
    world.x.live_refresh = "spent-elsewhere"
    world.store.hook = lambda operation: (
        (_ for _ in ()).throw(throttled(operation)) if operation == "mark_needs_reconnect" else None
    )
    with pytest.raises(NeedsReconnectError):
        world.keeper.access_token(USER, world.clock.deadline(300))
    assert world.store.accounts[USER].lease_owner is None
    assert world.telemetry.metrics["RefreshFailed"] == 1


def test_a_loser_short_of_rotation_time_still_waits_for_the_holder(world: World) -> None:
    # Given: another run holds a live lease, and this run has too little time for a rotation
    account = world.store.accounts[USER]
    world.store.accounts[USER] = replace(account, lease_owner="other", lease_until=world.clock() + 100)
    done_at = world.clock() + 5

    world.store.hook = _other_holder_finishes(world, done_at)
    # When / Then: it waits and uses the holder's new token
    grant = world.keeper.access_token(USER, world.clock.deadline(ROTATION.start_seconds - 30))
    assert grant.access_token == "a1" and world.x.posts == 0


def _other_holder_finishes(world: World, done_at: float) -> Callable[[str], None]:
    """A store hook: the run holding the lease ("other") stores its rotated tokens at `done_at`."""

    def hook(operation: str) -> None:
        held = world.store.accounts[USER]
        if operation == "get_account" and world.clock() >= done_at and held.lease_owner == "other":
            fresh = world.x.mint()
            world.store.accounts[USER] = replace(
                held,
                version=held.version + 1,
                sealed=world.seal(fresh.access_token, str(fresh.refresh_token)),
                access_expires_at=fresh.expires_at,
                lease_owner=None,
                lease_until=None,
            )

    return hook
