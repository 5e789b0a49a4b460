"""GET /connect -> 302 to X's consent page with a PKCE challenge and a browser-bound state."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from xmetrics import web
from xmetrics.config import ConnectSettings
from xmetrics.observability import log_failure, logger
from xmetrics.services.connect import Connect
from xmetrics.wiring import Clients, build_connect

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@lru_cache(maxsize=1)
def _settings() -> ConnectSettings:
    return ConnectSettings.from_env()


@lru_cache(maxsize=1)
def _service() -> Connect:
    return build_connect(_settings(), Clients())


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    secure = True
    try:
        request = web.parse_request(event)
        secure = request.secure
        redirect_uri = _settings().redirect_uri or f"{request.base_url()}/callback"
        start = _service().start(redirect_uri)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a page, never a trace
        log_failure(exc)
        return web.error_response(exc, connect_url="/connect", secure=secure)
    cookie = web.state_cookie(start.browser_secret, secure=secure, max_age=start.max_age)
    return web.redirect(start.location, cookies=[cookie])
