"""Faults must fire in order, for their count, at the right moment, or reliability tests prove nothing."""

from __future__ import annotations

import time

import pytest
import requests

from local.x_sandbox import XSandbox
from tests.sandbox.helpers import CONFIDENTIAL, FakeClock, access, exchange, me, new_code, refresh, tweets


def test_status_fault_answers_instead_and_then_recovers(x: XSandbox) -> None:
    # Given
    x.inject("tweets", "status", status=503)
    token = access(x)
    # When
    first, second = tweets(x, token), tweets(x, token)
    # Then
    assert first.status_code == 503 and first.json()["title"] == "Service Unavailable"
    assert second.status_code == 200


def test_status_fault_with_a_custom_body(x: XSandbox) -> None:
    # Given
    x.inject("token", "status", status=400, body={"error": "invalid_grant", "error_description": "nope"})
    # When
    answer = refresh(x, x.issue_tokens("ada_metrics", CONFIDENTIAL)["refresh_token"])
    # Then: not processed
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant" and x.refresh_count == 0


def test_rate_limit_fault_sets_the_reset(x: XSandbox, clock: FakeClock) -> None:
    # Given
    x.inject("me", "rate_limit", reset_in=120)
    # When
    answer = me(x, access(x))
    # Then
    assert answer.status_code == 429
    assert answer.headers["x-rate-limit-remaining"] == "0"
    assert answer.headers["x-rate-limit-reset"] == str(int(clock() + 120))


def test_delay_fault_slows_the_answer(x: XSandbox) -> None:
    # Given
    x.inject("me", "delay", seconds=0.4)
    # When
    started = time.monotonic()
    answer = me(x, access(x))
    # Then
    assert answer.status_code == 200 and time.monotonic() - started >= 0.4


def test_drop_closes_without_answer_and_processes_nothing(x: XSandbox) -> None:
    # Given
    x.inject("token", "drop")
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When / Then
    with pytest.raises(requests.ConnectionError):
        refresh(x, pair["refresh_token"])
    assert x.refresh_count == 0 and refresh(x, pair["refresh_token"]).status_code == 200


def test_drop_after_processing_rotates_but_never_tells(x: XSandbox) -> None:
    # Given
    x.inject("token", "drop_after_processing")
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    with pytest.raises(requests.ConnectionError):
        refresh(x, pair["refresh_token"])
    # Then: X rotated; the token the client holds is dead
    assert x.refresh_count == 1
    assert x.live_refresh_token("ada_metrics", CONFIDENTIAL) not in (None, pair["refresh_token"])
    assert refresh(x, pair["refresh_token"]).status_code == 400


def test_delay_after_processing_times_out_after_the_rotation(x: XSandbox) -> None:
    # Given
    x.inject("token", "delay_after_processing", seconds=1.0)
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    with pytest.raises(requests.ReadTimeout):
        refresh(x, pair["refresh_token"], timeout=0.3)
    # Then
    assert x.refresh_count == 1 and refresh(x, pair["refresh_token"]).status_code == 400


def test_truncate_cuts_the_body_in_half(x: XSandbox) -> None:
    # Given
    token = access(x)
    full = tweets(x, token).content
    x.inject("tweets", "truncate")
    # When
    answer = tweets(x, token)
    # Then
    assert answer.status_code == 200 and answer.content == full[: len(full) // 2]
    with pytest.raises(ValueError):
        answer.json()


def test_partial_error_adds_an_error_naming_no_post(x: XSandbox) -> None:
    # Given
    x.inject("tweets", "partial_error")
    # When
    body = tweets(x, access(x)).json()
    # Then
    assert body["data"] and [e["resource_type"] for e in body["errors"]] == ["user"]


def test_faults_apply_in_order_for_their_count(x: XSandbox) -> None:
    # Given
    x.inject("me", "status", count=2, status=500)
    x.inject("me", "status", status=502)
    token = access(x)
    # When
    statuses = [me(x, token).status_code for _ in range(4)]
    # Then
    assert statuses == [500, 500, 502, 200]


def test_fault_match_picks_only_matching_requests(x: XSandbox) -> None:
    # Given: only refresh grants fail
    x.inject("token", "status", status=503, match={"grant_type": "refresh_token"})
    code, verifier = new_code(x)
    # When / Then: the code exchange passes, the refresh takes the fault
    pair = exchange(x, code, verifier).json()
    assert refresh(x, pair["refresh_token"]).status_code == 503


def test_clear_faults_drops_pending_faults(x: XSandbox) -> None:
    # Given
    x.inject("me", "status", status=500)
    # When
    x.clear_faults()
    # Then
    assert me(x, access(x)).status_code == 200
