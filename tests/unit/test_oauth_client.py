"""The OAuth client's reading of token answers: one POST, what X may have done, what to store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from xmetrics.config import XEndpoints
from xmetrics.errors import DeadRefreshTokenError, TransportError
from xmetrics.oauth.client import ClientCredentials, OAuthClient
from xmetrics.transport import Response

ENDPOINTS = XEndpoints("https://x/authorize", "https://x/token", "https://x/revoke", "https://x")


class Answer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body, self.posts = status, body, 0

    def request(self, method: str, url: str, **_: Any) -> Response:
        self.posts += 1
        return Response(self.status, "", {}, self.body)


def _client(answer: Answer) -> OAuthClient:
    return OAuthClient(ENDPOINTS, ClientCredentials("c", "s"), session=answer, clock=lambda: 1000.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("expires_in", ["Infinity", "NaN", "1e300", "-5", "0", '"soon"'])
def test_an_implausible_lifetime_is_taken_as_xs_default(expires_in: str) -> None:
    body = f'{{"access_token": "a", "refresh_token": "r", "expires_in": {expires_in}, "scope": "s"}}'
    tokens = _client(Answer(200, body.encode())).refresh("old")
    assert tokens.expires_at == 1000.0 + 7200


@pytest.mark.parametrize(("status", "body"), [(503, b"{}"), (200, b"{not json"), (200, b"[]")])
def test_an_answer_x_may_have_rotated_behind_is_maybe_sent(status: int, body: bytes) -> None:
    answer = Answer(status, body)
    with pytest.raises(TransportError) as caught:
        _client(answer).refresh("old")
    assert caught.value.maybe_sent and answer.posts == 1


def test_a_spent_token_is_dead() -> None:
    body = json.dumps(
        {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}
    )
    with pytest.raises(DeadRefreshTokenError):
        _client(Answer(400, body.encode())).refresh("old")
