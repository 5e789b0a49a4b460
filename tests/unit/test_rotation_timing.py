"""The lease outlasts the holder's worst case, losers wait less than the lease, and a rotation
starts only with time for that worst case: all from the timeouts the code really uses.

The worst case is played, not computed: the real OAuthClient against a token endpoint where every
request takes the full timeout it was given, and DynamoDB writes that take the SDK's worst case.
Raise a timeout or a retry count anywhere without the lease following and this fails.
"""

from __future__ import annotations

import itertools
import json

import pytest
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError

from tests.fakes.clock import FakeClock
from tests.fakes.crypto import FakeCipher
from tests.fakes.store import FakeStore
from tests.fakes.telemetry import Recorder
from xmetrics import limits
from xmetrics.config import XEndpoints
from xmetrics.crypto import PlainTokens
from xmetrics.oauth.client import ClientCredentials, OAuthClient
from xmetrics.services.tokens import TokenKeeper
from xmetrics.transport import Response
from xmetrics.wiring import client_config

USER = "42"


class SlowTokenEndpoint:
    """Every request takes all the time its timeout allows, then fails as scripted or answers."""

    def __init__(self, clock: FakeClock, script: list[str]) -> None:
        self.clock = clock
        self.script = script
        self.timeouts: list[tuple[float, float]] = []

    def request(
        self, method: str, url: str, *, headers: object, body: object, timeout: tuple[float, float]
    ) -> Response:
        self.timeouts.append(timeout)
        kind = self.script.pop(0) if self.script else "answer"
        if kind == "connect":
            self.clock.sleep(timeout[0])
            raise ConnectTimeoutError("connect timed out")
        self.clock.sleep(limits.post_seconds(timeout))
        if kind == "read":
            raise ReadTimeoutError(None, url, "read timed out")  # type: ignore[arg-type]
        payload = {"access_token": "a1", "refresh_token": "r1", "expires_in": 7200, "scope": "tweet.read"}
        return Response(200, "OK", {}, json.dumps(payload).encode())


def _play(script: list[str]) -> tuple[float, float]:
    """Seconds from just before the lease write to the rotated tokens stored, and the lease's length."""
    clock = FakeClock()
    store, cipher = FakeStore(), FakeCipher()
    store.connect(USER, cipher.seal(USER, cipher.key(USER), PlainTokens("a0", "r0")), clock() + 60)
    marks: dict[str, float] = {}

    def slow_write(operation: str) -> None:
        if operation in ("acquire_lease", "complete_rotation"):
            marks.setdefault(operation, clock())
            clock.sleep(limits.ROTATION.write_seconds)

    store.hook = slow_write
    endpoint = SlowTokenEndpoint(clock, script)
    endpoints = XEndpoints("https://x/authorize", "https://x/token", "https://x/revoke", "https://x")
    # Built as wiring builds it: no timeout given, so the client uses the one it ships with.
    oauth = OAuthClient(endpoints, ClientCredentials("c", "s"), session=endpoint, clock=clock)  # type: ignore[arg-type]
    keeper = TokenKeeper(store, cipher, oauth, Recorder(), clock=clock, sleep=clock.sleep, rand=lambda: 1.0)
    grant = keeper.access_token(USER, clock.deadline(900))
    assert grant.refreshed
    lease = store.accounts[USER]
    assert lease.lease_owner is None
    return clock() - marks["acquire_lease"], limits.ROTATION.lease_seconds


_FAULTS = ["connect"] * limits.TOKEN_CONNECT_RETRIES + ["read"] * limits.TOKEN_RESENDS


@pytest.mark.parametrize("script", sorted(set(itertools.permutations(_FAULTS))))
def test_every_worst_case_rotation_ends_inside_its_lease(script: tuple[str, ...]) -> None:
    elapsed, lease = _play(list(script))
    assert elapsed <= limits.ROTATION.holder_seconds < lease


def test_one_more_failure_than_the_retries_allow_is_not_retried() -> None:
    with pytest.raises(Exception, match="timed out|failed"):
        _play(["read"] * (limits.TOKEN_RESENDS + 1))


def test_losers_wait_less_than_the_lease_and_rotations_start_with_time_to_finish() -> None:
    timing = limits.ROTATION
    assert timing.holder_seconds < timing.loser_wait_seconds < timing.lease_seconds
    assert timing.start_seconds > timing.holder_seconds


def test_the_rotation_write_worst_case_is_the_dynamodb_client_the_functions_build() -> None:
    config = client_config("dynamodb")
    write = limits.sdk_call_seconds(
        config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]
    )
    assert write == limits.ROTATION.write_seconds


def test_a_longer_token_timeout_moves_the_lease_with_it() -> None:
    longer = limits.rotation_timing(token_timeout=(3.05, 30.0))
    assert longer.lease_seconds - limits.ROTATION.lease_seconds == pytest.approx(
        20.0 * (1 + limits.TOKEN_CONNECT_RETRIES + limits.TOKEN_RESENDS)
    )
    assert longer.loser_wait_seconds < longer.lease_seconds


def test_the_dynamodb_client_makes_exactly_the_attempts_the_lease_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore reads retries.max_attempts as retries after the first: the wrong key would add an
    attempt the lease does not cover."""
    import botocore.session
    from botocore.awsrequest import AWSResponse
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    session = botocore.session.get_session()
    client = session.create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=client_config("dynamodb"),
    )
    sent: list[int] = []

    class Raw:
        def stream(self, **_: object) -> object:
            yield b'{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "slow"}'

    def throttle(request: object, **_: object) -> AWSResponse:
        sent.append(1)
        return AWSResponse("http://127.0.0.1:9", 400, {"content-type": "application/x-amz-json-1.0"}, Raw())

    client.meta.events.register("before-send.dynamodb.UpdateItem", throttle)
    with pytest.raises(client.exceptions.ClientError):
        client.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET a = :a",
            ExpressionAttributeValues={":a": {"S": "b"}},
        )
    assert len(sent) == limits.DYNAMODB_MAX_ATTEMPTS
