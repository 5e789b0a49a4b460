"""API Gateway HTTP API (payload 2.0) requests and responses, and the one error -> page mapping."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from xmetrics import pages
from xmetrics.errors import (
    AuthorizationDeniedError,
    ConfigError,
    DeadRefreshTokenError,
    MissingScopeError,
    NotAllowedError,
    OAuthError,
    StateError,
    TransportError,
    ValidationError,
    XApiError,
)

COOKIE_SECURE = "__Host-xmx_state"
# `__Host-` cookies must be Secure; a plain-http local stack uses this name instead.
COOKIE_PLAIN = "xmx_state"


def cookie_name(*, secure: bool) -> str:
    return COOKIE_SECURE if secure else COOKIE_PLAIN


_MAX_QUERY = 4096


@dataclass(frozen=True)
class HttpRequest:
    host: str
    proto: str
    stage: str
    query: dict[str, str]
    cookies: dict[str, str]

    @property
    def secure(self) -> bool:
        return self.proto == "https"

    def base_url(self) -> str:
        prefix = "" if self.stage in ("", "$default") else f"/{self.stage}"
        return f"{self.proto}://{self.host}{prefix}"

    def browser_secret(self) -> str | None:
        # On https only the `__Host-` cookie counts: the browser guarantees it was set by this host,
        # over TLS, for the whole site. A plain-named one may come from a sibling subdomain or
        # plain http; that name is for the plain-http local stack alone.
        return self.cookies.get(cookie_name(secure=self.secure)) or None


def _query(raw: str) -> dict[str, str]:
    if len(raw) > _MAX_QUERY:
        raise ValidationError("the query string is too long")
    try:
        pairs = parse_qsl(
            raw, keep_blank_values=True, strict_parsing=False, max_num_fields=20, errors="strict"
        )
    except ValueError:
        raise ValidationError("the query string is malformed") from None
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            # Two `state`s or two `code`s is never X: refuse rather than pick one. The name is not
            # echoed: it is whatever the link's author chose to put on our page.
            raise ValidationError("a query parameter appears more than once")
        query[name] = value
    return query


def _cookies(event: Mapping[str, Any]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for raw in event.get("cookies") or ():
        if isinstance(raw, str) and "=" in raw:
            name, _, value = raw.partition("=")
            jar.setdefault(name.strip(), value.strip())
    return jar


def parse_request(event: Any) -> HttpRequest:
    if not isinstance(event, dict):
        raise ValidationError("not an HTTP API event")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    host = headers.get("host") or str(context.get("domainName") or "")
    if not host or any(c in host for c in "/\\@ <>\"'"):
        raise ValidationError("the request has no usable Host header")
    proto = headers.get("x-forwarded-proto", "https").split(",")[0].strip().lower()
    return HttpRequest(
        host=host,
        proto=proto if proto in ("http", "https") else "https",
        stage=str(context.get("stage") or "$default"),
        query=_query(str(event.get("rawQueryString") or "")),
        cookies=_cookies(event),
    )


def html(status: int, body: str, *, cookies: list[str] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"statusCode": status, "headers": dict(pages.SECURITY_HEADERS), "body": body}
    if cookies:
        response["cookies"] = cookies
    return response


def redirect(location: str, *, cookies: list[str]) -> dict[str, Any]:
    headers = {k: v for k, v in pages.SECURITY_HEADERS.items() if k != "Content-Type"}
    headers["Location"] = location
    return {"statusCode": 302, "headers": headers, "cookies": cookies, "body": ""}


def state_cookie(value: str, *, secure: bool, max_age: int) -> str:
    name = cookie_name(secure=secure)
    attrs = f"Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    return f"{name}={value}; {attrs}; Secure" if secure else f"{name}={value}; {attrs}"


def clear_state_cookie(*, secure: bool) -> str:
    return state_cookie("", secure=secure, max_age=0)


_STATE_MESSAGES = {
    "missing": "The link has no state parameter, so it did not come from this app's /connect.",
    "malformed": "The state parameter is not one this app issued.",
    "unknown": "This sign-in link was already used or never started here.",
    "expired": "This sign-in took longer than 10 minutes and expired.",
    "browser": "This sign-in was started in a different browser (or its cookie was blocked).",
    "no_cookie": "This browser did not send the cookie /connect set (cookies blocked, or another browser).",
}


def error_response(exc: Exception, *, connect_url: str, secure: bool) -> dict[str, Any]:
    """Every error the HTTP functions can meet, as the page a person should see. No internals."""
    again = ("Start again", connect_url)
    cookies = [clear_state_cookie(secure=secure)]
    if isinstance(exc, StateError):
        text = _STATE_MESSAGES.get(exc.reason, "The sign-in link is not valid.")
        return html(
            400,
            pages.page("Sign-in link not valid", [text, "Nothing was stored."], ok=False, action=again),
            cookies=cookies,
        )
    if isinstance(exc, AuthorizationDeniedError):
        detail = f"X said: {exc.error}" + (f" ({exc.description})" if exc.description else "")
        if exc.error == "access_denied":
            lines = ["You cancelled the authorization on X, so no account was connected.", detail]
        else:
            lines = ["X did not authorize the connection.", detail]
        return html(403, pages.page("Not connected", lines, ok=False, action=again), cookies=cookies)
    if isinstance(exc, NotAllowedError):
        lines = [
            f"@{exc.username} is not on this deployment's list of allowed accounts.",
            "Its authorization was revoked and nothing was stored. Ask the team that runs this app.",
        ]
        return html(403, pages.page("Account not allowed", lines, ok=False), cookies=cookies)
    if isinstance(exc, MissingScopeError):
        lines = [
            f"X did not grant the permissions this app needs: {', '.join(exc.missing)}.",
            "Nothing was stored. Connect again and approve every requested permission.",
        ]
        return html(403, pages.page("Missing permissions", lines, ok=False, action=again), cookies=cookies)
    if isinstance(exc, ValidationError):
        return html(
            400,
            pages.page("Bad request", [str(exc), "Nothing was stored."], ok=False, action=again),
            cookies=cookies,
        )
    if isinstance(exc, OAuthError | DeadRefreshTokenError):
        lines = [
            f"X refused to exchange the authorization code ({exc.error}).",
            "Codes are valid for about 30 seconds and only once. Nothing was stored; start again.",
        ]
        if exc.status == 401:
            lines[1] = "The app's client id or secret was not accepted: check the secret in Secrets Manager."
        return html(
            502 if exc.status >= 500 else 400,
            pages.page("Could not connect", lines, ok=False, action=again),
            cookies=cookies,
        )
    if isinstance(exc, XApiError | TransportError):
        lines = [
            "X could not be reached or answered with an error. Nothing was stored; try again in a minute."
        ]
        return html(502, pages.page("X is not answering", lines, ok=False, action=again), cookies=cookies)
    if isinstance(exc, ConfigError):
        lines = ["This deployment is not fully configured. Its operator can find the reason in the logs."]
        return html(500, pages.page("Not configured", lines, ok=False), cookies=cookies)
    lines = ["Something went wrong on our side. Nothing was stored; please try again."]
    return html(500, pages.page("Unexpected error", lines, ok=False, action=again), cookies=cookies)
