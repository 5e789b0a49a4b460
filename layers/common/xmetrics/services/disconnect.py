"""Disconnect an account: revoke its grant at X (best effort), then delete it."""

from __future__ import annotations

from xmetrics.errors import XMetricsError
from xmetrics.services.ports import AccountStore, OAuth
from xmetrics.services.results import DisconnectResult, describe
from xmetrics.services.tokens import TokenKeeper
from xmetrics.telemetry import Telemetry


class DisconnectAccount:
    def __init__(self, store: AccountStore, tokens: TokenKeeper, oauth: OAuth, telemetry: Telemetry) -> None:
        self._store = store
        self._tokens = tokens
        self._oauth = oauth
        self._telemetry = telemetry

    def run(self, user_id: str) -> DisconnectResult:
        revoked, why_not = self._revoke(user_id)
        try:
            existed = self._store.delete_account(user_id)
        except XMetricsError as exc:
            return DisconnectResult(user_id, "failed", revoked=revoked, error=describe(exc))
        if not existed:
            return DisconnectResult(user_id, "not_found")
        self._telemetry.info("account disconnected", user_id=user_id, revoked=revoked)
        return DisconnectResult(user_id, "disconnected", revoked=revoked, error=why_not)

    def _revoke(self, user_id: str) -> tuple[bool, str | None]:
        """Revoking the refresh token ends the whole grant at X, its access tokens included.

        Whatever stands in the way (tokens that no longer decrypt, a disabled key, X down), the
        account is still deleted: the result says the revoke was skipped, and why.
        """
        try:
            tokens = self._tokens.current(user_id)
            if tokens is None:
                return False, None
            self._oauth.revoke(tokens.refresh_token, "refresh_token")
        except XMetricsError as exc:
            reason = describe(exc)
            self._telemetry.warning("revoke skipped during disconnect", user_id=user_id, error=reason)
            return False, f"revoke at X skipped ({reason}); revoke the app in X's settings if needed"
        return True, None
