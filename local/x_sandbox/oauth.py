"""X's authorization server, as strict as X where the app's token safety depends on it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from local.x_sandbox.timeline import SandboxUser, Timelines
from local.x_sandbox.wire import _Halt, _json, _Reply, _Request

KNOWN_SCOPES = frozenset(
    "tweet.read tweet.write tweet.moderate.write users.email users.read follows.read follows.write "
    "offline.access space.read mute.read mute.write like.read like.write list.read list.write block.read "
    "block.write bookmark.read bookmark.write dm.read dm.write media.write".split()
)
_BAD_CODE = "Value passed for the authorization code was invalid."
_BAD_REDIRECT = "Value passed for the redirect uri did not match the uri of the authorization code."
_BAD_VERIFIER = "Value passed for the code verifier did not match the code challenge."
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


@dataclass
class ClientApp:
    client_id: str
    client_secret: str | None = field(repr=False)  # None: a public client
    redirect_uris: list[str]


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    user_id: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class _Grant:
    """One authorization (a token family): its access tokens and its one live refresh token."""

    user_id: str
    client_id: str
    scope: str
    refresh_token: str | None = None
    access_tokens: list[str] = field(default_factory=list)
    revoked: bool = False
    issued_at: float = 0.0


@dataclass
class _Access:
    grant: _Grant
    expires_at: float
    revoked: bool = False


@dataclass
class _AuthRequest:
    client: ClientApp
    redirect_uri: str
    state: str
    challenge: str
    scopes: list[str]
    user: SandboxUser


def _oauth_error(status: int, error: str, description: str) -> _Reply:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return _json(status, {"error": error, "error_description": description}, headers)


def _html(status: int, title: str, body: str) -> _Reply:
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    base = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return _Reply(status, page.encode(), "text/html; charset=utf-8", base)


def _error_page(message: str) -> _Reply:
    text = "You weren't able to give access to the App. Go back and try logging in again."
    return _html(400, "Something went wrong", f"<p>{html.escape(text)}</p><p>{html.escape(message)}</p>")


def _redirect(uri: str, params: dict[str, str]) -> _Reply:
    separator = "&" if urlsplit(uri).query else "?"
    return _Reply(302, b"", "text/html; charset=utf-8", {"Location": uri + separator + urlencode(params)})


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OAuth(Timelines):
    """Consent, codes, tokens and revocation. State is set by XSandbox.__init__, behind its one lock."""

    auto_consent: bool
    dead_token_error: str
    access_token_ttl: int
    code_ttl: float
    _clients: dict[str, ClientApp]
    _codes: dict[str, _Code]
    _access: dict[str, _Access]
    _refresh: dict[str, _Grant]  # every refresh token ever issued -> its family
    _grants: list[_Grant]
    _refresh_count: int

    # ------------------------------------------------------------ setup and test helpers

    def register_client(
        self, client_id: str, client_secret: str | None, redirect_uris: list[str]
    ) -> ClientApp:
        app = ClientApp(client_id, client_secret, list(redirect_uris))
        with self._lock:
            self._clients[client_id] = app
        return app

    def login_as(self, username: str) -> None:
        with self._lock:
            self._login = self._user_named(username).user_id

    def issue_tokens(
        self,
        username: str,
        client_id: str,
        scopes: str = "tweet.read users.read offline.access",
        expires_in: int = 7200,
    ) -> dict[str, Any]:
        with self._lock:
            user = self._user_named(username)
            return self._mint(_Grant(user.user_id, client_id, " ".join(scopes.split())), expires_in)

    def expire_access_tokens(self, username: str | None = None) -> None:
        with self._lock:
            user_id = self._user_named(username).user_id if username else None
            past = self._clock() - 1
            for access in self._access.values():
                if user_id is None or access.grant.user_id == user_id:
                    access.expires_at = min(access.expires_at, past)

    @property
    def refresh_count(self) -> int:
        with self._lock:
            return self._refresh_count

    def issued_secrets(self) -> set[str]:
        """Every code and token this sandbox has handed out: what must never reach a log or page."""
        with self._lock:
            return set(self._codes) | set(self._access) | set(self._refresh)

    def live_refresh_token(self, username: str, client_id: str) -> str | None:
        """The most recently issued refresh token of that user and client that still works."""
        with self._lock:
            user_id = self._user_named(username).user_id
            for grant in sorted(self._grants, key=lambda g: g.issued_at, reverse=True):
                if grant.user_id == user_id and grant.client_id == client_id and not grant.revoked:
                    if grant.refresh_token:
                        return grant.refresh_token
            return None

    def _mint(self, grant: _Grant, expires_in: int) -> dict[str, Any]:
        """New access (and refresh, with offline.access) token in `grant`. Caller holds the lock."""
        if grant not in self._grants:
            self._grants.append(grant)
        grant.issued_at = time.monotonic()
        access_token = secrets.token_urlsafe(48)
        self._access[access_token] = _Access(grant, self._clock() + expires_in)
        grant.access_tokens.append(access_token)
        answer: dict[str, Any] = {
            "token_type": "bearer",
            "expires_in": expires_in,
            "access_token": access_token,
            "scope": grant.scope,
        }
        if "offline.access" in grant.scope.split():
            grant.refresh_token = secrets.token_urlsafe(48)
            self._refresh[grant.refresh_token] = grant
            answer["refresh_token"] = grant.refresh_token
        return answer

    # ------------------------------------------------------------ authorize

    def _check_authorization(self, params: dict[str, str]) -> _AuthRequest:
        with self._lock:
            client = self._clients.get(params.get("client_id", ""))
            user = self._users.get(self._login or "")
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            raise _Halt(_error_page("The client_id is not registered with X."))
        if redirect_uri not in client.redirect_uris:
            raise _Halt(
                _error_page("The redirect_uri does not match a callback URL registered for this App.")
            )
        state = params.get("state", "")

        def refuse(error: str, description: str) -> _Halt:
            return _Halt(
                _redirect(
                    redirect_uri,
                    {"error": error, "error_description": description, **({"state": state} if state else {})},
                )
            )

        scopes = params.get("scope", "").split()
        if params.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        if not state or len(state) > 500:
            raise refuse("invalid_request", "state is required and at most 500 characters")
        if params.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE_RE.match(params.get("code_challenge", "")):
            raise refuse("invalid_request", "code_challenge must be 43 base64url characters")
        if not scopes or not set(scopes) <= KNOWN_SCOPES:
            raise refuse("invalid_scope", "One or more scopes are invalid")
        if user is None:
            raise _Halt(_error_page("No X account is signed in."))
        return _AuthRequest(client, redirect_uri, state, params["code_challenge"], scopes, user)

    def _authorize_get(self, request: _Request) -> _Reply:
        auth = self._check_authorization(request.query)
        if self.auto_consent:
            return self._issue_code(auth)
        e = html.escape
        names = (
            "response_type client_id redirect_uri scope state code_challenge code_challenge_method".split()
        )
        hidden = "".join(
            f'<input type="hidden" name="{n}" value="{e(request.query.get(n, ""))}">' for n in names
        )
        items = "".join(f"<li>{e(scope)}</li>" for scope in auth.scopes)
        body = (
            f'<p>Signed in as <strong id="username">@{e(auth.user.username)}</strong></p>'
            f'<p>This app will be able to:</p><ul id="scopes">{items}</ul>'
            f'<form method="post" action="/i/oauth2/authorize">{hidden}'
            '<button name="decision" value="allow" id="allow">Authorize app</button> '
            '<button name="decision" value="deny" id="deny">Cancel</button></form>'
        )
        return _html(200, f"Authorize {auth.client.client_id} to access your X account", body)

    def _authorize_post(self, request: _Request) -> _Reply:
        form = request.form()
        auth = self._check_authorization(form)
        decision = form.get("decision")
        if decision == "allow":
            return self._issue_code(auth)
        if decision == "deny":
            denied = {"error": "access_denied", "error_description": "The user denied access to the App."}
            return _redirect(auth.redirect_uri, {**denied, "state": auth.state})
        return _error_page("Choose Authorize app or Cancel.")

    def _issue_code(self, auth: _AuthRequest) -> _Reply:
        code = secrets.token_urlsafe(48)
        with self._lock:
            expires_at, scope = self._clock() + self.code_ttl, " ".join(auth.scopes)
            bound = (auth.client.client_id, auth.redirect_uri, auth.challenge, auth.user.user_id)
            self._codes[code] = _Code(*bound, scope, expires_at)
        return _redirect(auth.redirect_uri, {"state": auth.state, "code": code})

    # ------------------------------------------------------------ token and revoke

    def _authenticate_client(self, request: _Request, form: dict[str, str]) -> ClientApp:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = (
                    base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
                )
            except ValueError:
                client_id, secret = "", ""
            with self._lock:
                client = self._clients.get(client_id)
            known = client is not None and (
                client.client_secret is None or hmac.compare_digest(secret, client.client_secret)
            )
            if client is None or not known:
                raise _Halt(_oauth_error(401, "invalid_client", "Client authentication failed."))
            return client
        with self._lock:
            client = self._clients.get(form.get("client_id", ""))
        if client is None or client.client_secret is not None:
            raise _Halt(_oauth_error(401, "unauthorized_client", "Missing valid authorization header"))
        return client

    def _token(self, request: _Request) -> _Reply:
        form = request.form()
        client = self._authenticate_client(request, form)
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "Missing required parameter [grant_type].")
        if grant_type == "authorization_code":
            return self._code_grant(client, form)
        if grant_type == "refresh_token":
            return self._refresh_grant(client, form)
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type {grant_type[:40]!r}.")

    def _code_grant(self, client: ClientApp, form: dict[str, str]) -> _Reply:
        for name in ("code", "redirect_uri", "code_verifier"):
            if not form.get(name):
                return _oauth_error(400, "invalid_request", f"Missing required parameter [{name}].")
        with self._lock:
            code = self._codes.get(form["code"])
            if (
                code is None
                or code.used
                or code.client_id != client.client_id
                or self._clock() > code.expires_at
            ):
                return _oauth_error(400, "invalid_request", _BAD_CODE)
            code.used = True  # a code is presented once, whatever the outcome
            if form["redirect_uri"] != code.redirect_uri:
                return _oauth_error(400, "invalid_request", _BAD_REDIRECT)
            verifier = form["code_verifier"]
            if not _VERIFIER_RE.match(verifier) or not hmac.compare_digest(_s256(verifier), code.challenge):
                return _oauth_error(400, "invalid_request", _BAD_VERIFIER)
            answer = self._mint(_Grant(code.user_id, client.client_id, code.scope), self.access_token_ttl)
        return _json(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _refresh_grant(self, client: ClientApp, form: dict[str, str]) -> _Reply:
        token = form.get("refresh_token")
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter [refresh_token].")
        with self._lock:
            grant = self._refresh.get(token)
            if (
                grant is None
                or grant.revoked
                or grant.refresh_token != token
                or grant.client_id != client.client_id
            ):
                return _oauth_error(400, self.dead_token_error, "Value passed for the token was invalid.")
            grant.refresh_token = None  # spent; earlier access tokens live on until they expire
            answer = self._mint(grant, self.access_token_ttl)
            self._refresh_count += 1
        return _json(200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _revoke(self, request: _Request) -> _Reply:
        form = request.form()
        client = self._authenticate_client(request, form)
        token = form.get("token")
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter [token].")
        with self._lock:
            access = self._access.get(token)
            if access is not None and access.grant.client_id == client.client_id:
                access.revoked = True
            grant = self._refresh.get(token)
            if grant is not None and grant.client_id == client.client_id and grant.refresh_token == token:
                grant.revoked, grant.refresh_token = True, None
                for issued in grant.access_tokens:
                    self._access[issued].revoked = True
        return _json(200, {"revoked": True})  # unknown tokens too (RFC 7009)
