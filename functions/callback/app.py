"""GET /callback -> exchange X's code, store the account's tokens, say which account connected."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from xmetrics import pages, web
from xmetrics.config import AuthSettings
from xmetrics.observability import PowertoolsTelemetry, log_failure, logger, metrics
from xmetrics.services.callback import Callback, CallbackRequest
from xmetrics.wiring import Clients, build_callback

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _settings() -> AuthSettings:
    return AuthSettings.from_env()


@lru_cache(maxsize=1)
def _service() -> Callback:
    return build_callback(_settings(), Clients(), PowertoolsTelemetry())


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    secure = True
    connect_url = "/connect"
    try:
        request = web.parse_request(event)
        secure = request.secure
        connect_url = f"{request.base_url()}/connect"
        redirect_uri = _settings().redirect_uri or f"{request.base_url()}/callback"
        connected = _service().complete(
            CallbackRequest(request.query, request.browser_secret(), redirect_uri)
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes a page, never a trace
        log_failure(exc)
        return web.error_response(exc, connect_url=connect_url, secure=secure)
    verb = "reconnected" if connected.reconnected else "connected"
    body = pages.page(
        f"@{connected.username} is {verb}",
        [
            f"The X account @{connected.username} (id {connected.user_id}) is {verb}.",
            "Its tweet metrics will be exported on the next scheduled run. You can close this page.",
        ],
        ok=True,
    )
    return web.html(200, body, cookies=[web.clear_state_cookie(secure=secure)])
