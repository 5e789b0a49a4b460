"""OAuth 2.0 client for X: authorization URL, code exchange, refresh, revoke.

Errors from the token endpoint are translated here, once, into OAuthError / DeadRefreshTokenError.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from xmetrics import limits
from xmetrics.config import XEndpoints
from xmetrics.errors import DeadRefreshTokenError, OAuthError, TransportError
from xmetrics.transport import Response, Session, basic_auth, new_session, send

_MAX_EXPIRES_IN = 30 * 24 * 3600
# X has answered a spent refresh token with invalid_request as well as invalid_grant.
_DEAD_TOKEN_ERRORS = frozenset({"invalid_grant"})


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    scope: str


def _is_dead_token(error: str, description: str) -> bool:
    if error in _DEAD_TOKEN_ERRORS:
        return True
    return error == "invalid_request" and "token" in description.lower()


class OAuthClient:
    """One HTTP request per call: retries are the caller's, since only the caller knows what a
    retry may spend (the rotation protocol in services/tokens.py decides for the refresh grant)."""

    def __init__(
        self,
        endpoints: XEndpoints,
        credentials: ClientCredentials | Callable[[], ClientCredentials],
        *,
        session: Session | None = None,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        self._x = endpoints
        # A callable is resolved on first use: a run whose tokens are fresh never reads the secret.
        self._source = credentials
        self._resolved: ClientCredentials | None = (
            credentials if isinstance(credentials, ClientCredentials) else None
        )
        self._session = session or new_session()
        self._clock = clock
        self._timeout = timeout or limits.TOKEN_TIMEOUT

    def credentials(self) -> ClientCredentials:
        """The client credentials, read once (the token keeper reads them before taking a lease)."""
        if self._resolved is None:
            assert callable(self._source)
            self._resolved = self._source()
        return self._resolved

    def authorization_url(self, *, redirect_uri: str, scope: str, state: str, code_challenge: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.credentials().client_id,
                "redirect_uri": redirect_uri,
                "scope": scope,
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self._x.authorize_url}?{query}"

    def exchange_code(self, *, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        # A code works once: never retried after the request may have reached X.
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        return self._token_set(self._post_token(body), previous_refresh=None)

    def refresh(self, refresh_token: str) -> TokenSet:
        """One POST of the refresh grant.

        TransportError(maybe_sent=True) when X may have rotated without us seeing the answer
        (read timeout, 5xx, unreadable 200); DeadRefreshTokenError when X refuses the token.
        """
        body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token_set(self._post_token(body), previous_refresh=refresh_token)

    def revoke(self, token: str, token_type_hint: str) -> None:
        response = self._send(self._x.revoke_url, {"token": token, "token_type_hint": token_type_hint})
        if response.status_code != 200:
            raise self._error(response, dead_means_reconnect=False)

    def _post_token(self, body: dict[str, str]) -> dict[str, Any]:
        response = self._send(self._x.token_url, body)
        if response.status_code >= 500:
            raise TransportError(f"token endpoint answered {response.status_code}", maybe_sent=True)
        if response.status_code == 401 and callable(self._source):
            # The client secret was refused: it may have been rotated since this container read it.
            self._resolved = None
        if response.status_code != 200:
            raise self._error(response, dead_means_reconnect=body["grant_type"] == "refresh_token")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            # Like a lost answer: X may have rotated.
            raise TransportError("token endpoint sent unreadable JSON", maybe_sent=True)
        return payload

    def _send(self, url: str, body: dict[str, str]) -> Response:
        fields = dict(body)
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        credentials = self.credentials()
        if credentials.client_secret:
            headers["Authorization"] = basic_auth(credentials.client_id, credentials.client_secret)
        else:
            fields["client_id"] = credentials.client_id
        body_bytes = urlencode(fields).encode()
        return send(self._session, "POST", url, body=body_bytes, headers=headers, timeout=self._timeout)

    @staticmethod
    def _error(response: Response, *, dead_means_reconnect: bool) -> OAuthError:
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        error = str(payload.get("error") or f"http_{response.status_code}")
        description = str(payload.get("error_description") or "")[:300]
        if dead_means_reconnect and _is_dead_token(error, description):
            return DeadRefreshTokenError(error, description, response.status_code)
        return OAuthError(error, description, response.status_code)

    def _token_set(self, payload: dict[str, Any], *, previous_refresh: str | None) -> TokenSet:
        access = payload.get("access_token")
        if not isinstance(access, str) or not access:
            raise OAuthError("invalid_response", "the token endpoint sent no access_token", 502)
        refresh = payload.get("refresh_token")
        expires_in = payload.get("expires_in", 7200)
        # X says 7200; anything not a plausible lifetime (inf, nan, 1e300 are not numbers DynamoDB
        # stores) is taken as X's documented default rather than failing the rotated token's write.
        if not isinstance(expires_in, int | float) or not 0 < expires_in <= _MAX_EXPIRES_IN:
            expires_in = 7200
        return TokenSet(
            access_token=access,
            # A refresh answer without a new refresh token leaves the old one in force.
            refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
            expires_at=self._clock() + float(expires_in),
            scope=str(payload.get("scope", "")),
        )
