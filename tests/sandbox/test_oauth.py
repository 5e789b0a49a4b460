"""The sandbox's OAuth must refuse what X refuses, or the app's connect and refresh tests prove nothing."""

from __future__ import annotations

import html

import pytest
import requests

from local.x_sandbox import XSandbox
from tests.sandbox.helpers import (
    ADA,
    CONFIDENTIAL,
    GRACE,
    PUBLIC,
    REDIRECT,
    SCOPES,
    SECRET,
    FakeClock,
    access,
    authorize,
    exchange,
    me,
    new_code,
    pkce,
    redirect_query,
    refresh,
)

# ---------------------------------------------------------------- authorization code flow


def test_code_flow_with_pkce_issues_tokens_for_the_logged_in_user(x: XSandbox) -> None:
    # Given: an authorization with an S256 challenge, consented automatically
    verifier, challenge = pkce()
    redirect = authorize(x, challenge)
    # When: the code is exchanged with its verifier
    query = redirect_query(redirect)
    answer = exchange(x, query["code"], verifier)
    # Then: X's token shape, and the token reads the user who logged in
    assert redirect.status_code == 302 and redirect.headers["Location"].startswith(REDIRECT + "?")
    assert query["state"] == "state-123"
    body = answer.json()
    assert answer.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 7200 and body["scope"] == SCOPES
    assert body["access_token"] and body["refresh_token"]
    assert me(x, body["access_token"]).json() == {
        "data": {"id": ADA, "name": "Ada Metrics", "username": "ada_metrics"}
    }


def test_wrong_verifier_is_refused(x: XSandbox) -> None:
    # Given
    code, _ = new_code(x)
    # When: another verifier is sent
    answer = exchange(x, code, pkce()[0])
    # Then
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the code verifier did not match the code challenge.",
    }


def test_code_works_only_once(x: XSandbox) -> None:
    # Given: a code already exchanged
    code, verifier = new_code(x)
    assert exchange(x, code, verifier).status_code == 200
    # When: it is presented again
    again = exchange(x, code, verifier)
    # Then
    assert again.status_code == 400
    assert again.json()["error_description"] == "Value passed for the authorization code was invalid."


def test_code_expires_after_30_seconds(x: XSandbox, clock: FakeClock) -> None:
    # Given: a code 31 seconds old
    code, verifier = new_code(x)
    clock.advance(31)
    # When
    answer = exchange(x, code, verifier)
    # Then
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_redirect_uri_must_equal_the_one_used_at_authorize(x: XSandbox) -> None:
    # Given: X knows two callback URLs for the client
    x.register_client(CONFIDENTIAL, SECRET, [REDIRECT, REDIRECT + "2"])
    code, verifier = new_code(x)
    # When: the exchange names the other one
    answer = exchange(x, code, verifier, redirect_uri=REDIRECT + "2")
    # Then
    assert answer.status_code == 400 and "redirect uri" in answer.json()["error_description"]


def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(x: XSandbox) -> None:
    # When
    answer = authorize(x, pkce()[1], redirect_uri="https://evil.example/callback")
    # Then
    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert answer.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"scope": "tweet.read users.read launch.missiles"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"state": "s" * 501}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_invalid_authorization_requests_redirect_with_an_error(
    x: XSandbox, override: dict[str, str], error: str
) -> None:
    # When
    answer = authorize(x, pkce()[1], **override)
    # Then: the error goes back to the registered callback, with no code
    query = redirect_query(answer)
    assert answer.status_code == 302 and query["error"] == error and "code" not in query


def test_confidential_client_without_basic_auth_gets_unauthorized_client(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x)
    # When: the client id travels in the body only
    answer = exchange(x, code, verifier, auth=None, client_id=CONFIDENTIAL)
    # Then
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "unauthorized_client",
        "error_description": "Missing valid authorization header",
    }


def test_wrong_client_secret_gets_invalid_client(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x)
    # When
    answer = exchange(x, code, verifier, auth=(CONFIDENTIAL, "not-the-secret"))
    # Then
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_public_client_exchanges_with_its_id_in_the_body(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x, client_id=PUBLIC)
    # When
    answer = exchange(x, code, verifier, auth=None, client_id=PUBLIC)
    # Then
    assert answer.status_code == 200 and answer.json()["access_token"]


def test_no_refresh_token_without_offline_access(x: XSandbox) -> None:
    # Given
    code, verifier = new_code(x, scope="tweet.read users.read")
    # When
    body = exchange(x, code, verifier).json()
    # Then
    assert "refresh_token" not in body and body["scope"] == "tweet.read users.read"


# ---------------------------------------------------------------- consent page


def test_consent_page_names_the_user_and_scopes_and_escapes_what_it_echoes(x: XSandbox) -> None:
    # Given: consent is asked, and the state carries markup
    x.auto_consent = False
    # When
    page = authorize(x, pkce()[1], state='<script>alert("x")</script>')
    # Then
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f"<title>Authorize {CONFIDENTIAL} to access your X account</title>" in page.text
    assert "@ada_metrics" in page.text and "<li>offline.access</li>" in page.text
    assert "<script>" not in page.text and html.escape('<script>alert("x")</script>') in page.text
    assert 'id="allow"' in page.text and 'id="deny"' in page.text


def _consent_form(challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": CONFIDENTIAL,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def test_consent_deny_redirects_with_access_denied(x: XSandbox) -> None:
    # Given
    x.auto_consent = False
    # When: the user presses Cancel
    form = {**_consent_form(pkce()[1]), "decision": "deny"}
    answer = requests.post(x.authorize_url, data=form, allow_redirects=False, timeout=5)
    # Then
    query = redirect_query(answer)
    assert answer.status_code == 302 and query["error"] == "access_denied" and query["state"] == "state-123"
    assert "code" not in query


def test_consent_allow_redirects_with_a_working_code(x: XSandbox) -> None:
    # Given
    x.auto_consent = False
    verifier, challenge = pkce()
    # When: the user presses Authorize app
    form = {**_consent_form(challenge), "decision": "allow"}
    answer = requests.post(x.authorize_url, data=form, allow_redirects=False, timeout=5)
    # Then
    assert exchange(x, redirect_query(answer)["code"], verifier).status_code == 200


def test_login_as_chooses_who_consents(x: XSandbox) -> None:
    # Given
    x.login_as("grace")
    code, verifier = new_code(x)
    # When
    token = exchange(x, code, verifier).json()["access_token"]
    # Then
    assert me(x, token).json()["data"]["id"] == GRACE


# ---------------------------------------------------------------- refresh and revoke


def test_refresh_rotates_both_tokens(x: XSandbox) -> None:
    # Given
    first = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    answer = refresh(x, first["refresh_token"])
    # Then
    second = answer.json()
    assert answer.status_code == 200 and x.refresh_count == 1
    assert (
        second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    )
    assert x.live_refresh_token("ada_metrics", CONFIDENTIAL) == second["refresh_token"]
    assert refresh(x, second["refresh_token"]).status_code == 200


def test_spent_refresh_token_is_dead(x: XSandbox) -> None:
    # Given: a refresh token used once
    spent = x.issue_tokens("ada_metrics", CONFIDENTIAL)["refresh_token"]
    assert refresh(x, spent).status_code == 200
    # When: it is used again
    again = refresh(x, spent)
    # Then: X's answer for a dead refresh token
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }


def test_dead_token_error_can_be_invalid_grant(clock: FakeClock) -> None:
    # Given: a sandbox answering dead tokens the other way X has been seen to
    with XSandbox(clock=clock, dead_token_error="invalid_grant") as sandbox:
        sandbox.add_user("ada_metrics", user_id=ADA)
        sandbox.register_client(CONFIDENTIAL, SECRET, [REDIRECT])
        # When
        answer = refresh(sandbox, "never-issued")
    # Then
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_old_access_token_lives_until_it_expires(x: XSandbox, clock: FakeClock) -> None:
    # Given: a refresh happened
    first = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    refresh(x, first["refresh_token"])
    # When / Then: the old access token still works, until its 7200 seconds are up
    assert me(x, first["access_token"]).status_code == 200
    clock.advance(7201)
    assert me(x, first["access_token"]).status_code == 401


def test_expired_access_token_gets_x_unauthorized_problem(x: XSandbox) -> None:
    # Given
    token = access(x)
    x.expire_access_tokens("ada_metrics")
    # When
    answer = me(x, token)
    # Then
    assert answer.status_code == 401
    assert answer.json() == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Unauthorized",
    }


def test_revoking_a_refresh_token_kills_its_family(x: XSandbox) -> None:
    # Given
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    body = {"token": pair["refresh_token"], "token_type_hint": "refresh_token"}
    answer = requests.post(x.revoke_url, data=body, auth=(CONFIDENTIAL, SECRET), timeout=5)
    # Then
    assert answer.status_code == 200 and answer.json() == {"revoked": True}
    assert refresh(x, pair["refresh_token"]).status_code == 400
    assert me(x, pair["access_token"]).status_code == 401
    assert x.live_refresh_token("ada_metrics", CONFIDENTIAL) is None


def test_revoking_an_access_token_leaves_the_refresh_token(x: XSandbox) -> None:
    # Given
    pair = x.issue_tokens("ada_metrics", CONFIDENTIAL)
    # When
    body = {"token": pair["access_token"], "token_type_hint": "access_token"}
    requests.post(x.revoke_url, data=body, auth=(CONFIDENTIAL, SECRET), timeout=5)
    # Then
    assert me(x, pair["access_token"]).status_code == 401
    assert refresh(x, pair["refresh_token"]).status_code == 200
