"""Connect -> callback through the handlers with events/*.json, moto server and the X sandbox."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

from local import flows
from local.stack import LocalStack
from local.x_sandbox import XSandbox


def _items(stack: LocalStack) -> list[dict]:
    return stack.client("dynamodb").scan(TableName=stack.resources.table_name)["Items"]


def _started_flow_with_state(stack: LocalStack, name: str, value: dict[str, str]) -> flows.ConnectHop:
    """A flow that went through X, whose stored state item then had `name` set to `value`."""
    hop = flows.start_connect(stack)
    (item,) = _items(stack)
    stack.client("dynamodb").update_item(
        TableName=stack.resources.table_name,
        Key={"pk": item["pk"]},
        UpdateExpression=f"SET {name} = :v",
        ExpressionAttributeValues={":v": value},
    )
    return hop


def test_connect_redirects_to_x_with_pkce_and_a_browser_bound_state(stack: LocalStack) -> None:
    # When
    hop = flows.start_connect(stack)
    # Then: 302 to X's authorize URL with every parameter the flow needs
    assert hop.response["statusCode"] == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(hop.location).query).items()}
    assert hop.location.startswith(stack.x.authorize_url + "?")  # type: ignore[union-attr]
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    assert query["client_id"] == stack.client_id
    assert query["redirect_uri"] == f"https://{flows.load_event('connect.json')['headers']['host']}/callback"
    assert query["scope"] == "tweet.read users.read offline.access"
    assert len(query["code_challenge"]) == 43 and len(query["state"]) >= 22
    # and the cookie is __Host-, HttpOnly, Secure, SameSite=Lax
    set_cookie = hop.response["cookies"][0]
    assert set_cookie.startswith("__Host-xmx_state=")
    assert all(a in set_cookie for a in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"))
    # and the table holds the state with a verifier, a 10-minute expiry and only the cookie's hash
    (item,) = _items(stack)
    assert item["pk"]["S"] == f"state#{query['state']}"
    assert 43 <= len(item["code_verifier"]["S"]) <= 128
    assert int(item["expires_at"]["N"]) - int(item["created_at"]["N"]) == 600
    assert flows.cookie_pair(set_cookie).split("=", 1)[1] not in str(item)


def test_full_connect_stores_an_active_encrypted_account(stack: LocalStack) -> None:
    # When: the whole flow, X consenting automatically
    response = flows.connect(stack)
    # Then: a success page naming the account
    assert response["statusCode"] == 200
    assert "@ada_metrics" in response["body"]
    # and one account item (the state was consumed), active, version 1, tokens not in clear
    (item,) = _items(stack)
    assert item["pk"]["S"] == "account#1700000000000000001"
    assert item["status"]["S"] == "active" and item["version"]["N"] == "1"
    assert item["username"]["S"] == "ada_metrics"
    assert set(item["scope"]["S"].split()) >= {"tweet.read", "users.read", "offline.access"}
    live_refresh = stack.x.live_refresh_token("ada_metrics", stack.client_id)  # type: ignore[union-attr]
    assert live_refresh and live_refresh.encode() not in item["refresh_token"]["B"]
    assert live_refresh not in str(item)


def test_replayed_state_is_refused_and_stores_nothing_new(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a completed connect
    hop = flows.start_connect(stack)
    redirect = flows.authorize_at_x(hop.location)
    assert flows.finish_connect(stack, redirect, hop.cookie)["statusCode"] == 200
    token_calls = sandbox.requests_to("token")
    # When: the same callback URL arrives again
    replay = flows.finish_connect(stack, redirect, hop.cookie)
    # Then: a 400 page, no token call to X, and the account unchanged
    assert replay["statusCode"] == 400
    assert "already used" in replay["body"]
    assert sandbox.requests_to("token") == token_calls
    (item,) = _items(stack)
    assert item["version"]["N"] == "1"


def test_unknown_state_is_refused_without_calling_x(stack: LocalStack, sandbox: XSandbox) -> None:
    event = flows.callback_event("state=" + "A" * 43 + "&code=abc", "__Host-xmx_state=whatever")
    response = stack.invoke("CallbackFunction", event)
    assert response["statusCode"] == 400
    assert sandbox.requests_to("token") == 0
    assert _items(stack) == []


def test_missing_state_is_refused(stack: LocalStack, sandbox: XSandbox) -> None:
    response = stack.invoke("CallbackFunction", flows.callback_event("code=abc", None))
    assert response["statusCode"] == 400
    assert "no state" in response["body"]
    assert sandbox.requests_to("token") == 0


def test_state_from_another_browser_is_refused(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a flow started in one browser
    hop = flows.start_connect(stack)
    redirect = flows.authorize_at_x(hop.location)
    (state_item,) = _items(stack)
    # When: the callback arrives with another browser's cookie
    response = flows.finish_connect(stack, redirect, "__Host-xmx_state=someone-else")
    # Then: refused without calling X, and the user's state is not burnt by the stranger
    assert response["statusCode"] == 400
    assert "different browser" in response["body"]
    assert sandbox.requests_to("token") == 0
    assert _items(stack) == [state_item]
    assert flows.finish_connect(stack, redirect, hop.cookie)["statusCode"] == 200


def test_expired_state_is_refused_even_before_ttl_deletes_it(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a started flow whose state item is past its expiry (TTL has not run)
    hop = _started_flow_with_state(stack, "expires_at", {"N": "1000"})
    redirect = flows.authorize_at_x(hop.location)
    # When
    response = flows.finish_connect(stack, redirect, hop.cookie)
    # Then
    assert response["statusCode"] == 400 and "expired" in response["body"]
    assert sandbox.requests_to("token") == 0


def test_access_denied_shows_a_page_and_stores_nothing(stack: LocalStack, sandbox: XSandbox) -> None:
    hop = flows.start_connect(stack)
    state = parse_qs(urlsplit(hop.location).query)["state"][0]
    query = f"error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={state}"
    response = stack.invoke("CallbackFunction", flows.callback_event(query, hop.cookie))
    assert response["statusCode"] == 403
    assert "cancelled" in response["body"]
    assert "<script>" not in response["body"] and "&lt;script&gt;" in response["body"]
    assert sandbox.requests_to("token") == 0
    assert _items(stack) == []  # the state was spent too


def test_wrong_verifier_is_refused_by_x_and_reported(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a flow whose stored verifier no longer matches the challenge sent to X
    hop = _started_flow_with_state(stack, "code_verifier", {"S": "w" * 64})
    redirect = flows.authorize_at_x(hop.location)
    # When
    response = flows.finish_connect(stack, redirect, hop.cookie)
    # Then: X refused the exchange; the page says so; nothing stored
    assert sandbox.requests_to("token") == 1
    assert response["statusCode"] == 400
    assert "refused to exchange" in response["body"]
    assert _items(stack) == []


def test_pages_carry_security_headers(stack: LocalStack) -> None:
    response = flows.connect(stack)
    headers = response["headers"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_reconnect_replaces_tokens_and_bumps_version(stack: LocalStack) -> None:
    flows.connect(stack)
    response = flows.connect(stack)
    assert response["statusCode"] == 200 and "reconnected" in response["body"]
    (item,) = _items(stack)
    assert item["version"]["N"] == "2" and item["status"]["S"] == "active"


def test_callback_without_the_cookie_is_refused_and_does_not_burn_the_state(
    stack: LocalStack, sandbox: XSandbox
) -> None:
    # Given: a flow that went through X, the callback URL known to someone without the cookie
    hop = flows.start_connect(stack)
    redirect = flows.authorize_at_x(hop.location)
    (state_item,) = _items(stack)
    # When: the callback arrives without it (a link preview, a replay from another machine)
    refused = flows.finish_connect(stack, redirect, None)
    # Then: a clear 4xx page, no call to X, and the state is still there
    assert refused["statusCode"] == 400
    assert "did not send the cookie" in refused["body"]
    assert sandbox.requests_to("token") == 0
    assert _items(stack) == [state_item]
    # and the user's own browser can still finish the sign-in
    assert flows.finish_connect(stack, redirect, hop.cookie)["statusCode"] == 200


def test_an_x_error_without_the_cookie_does_not_burn_the_state(stack: LocalStack) -> None:
    hop = flows.start_connect(stack)
    state = parse_qs(urlsplit(hop.location).query)["state"][0]
    response = stack.invoke(
        "CallbackFunction", flows.callback_event(f"error=access_denied&state={state}", None)
    )
    assert response["statusCode"] == 400
    assert len(_items(stack)) == 1


def test_on_https_only_the_host_prefixed_cookie_counts(stack: LocalStack, sandbox: XSandbox) -> None:
    # Given: a flow started over https, whose cookie is __Host-xmx_state
    hop = flows.start_connect(stack)
    assert hop.cookie.startswith("__Host-xmx_state=")
    redirect = flows.authorize_at_x(hop.location)
    # When: the same value comes back under the plain name (which a sibling subdomain or plain
    # http could have set), over https
    plain = "xmx_state=" + hop.cookie.split("=", 1)[1]
    refused = flows.finish_connect(stack, redirect, plain)
    # Then: it does not count, and the state is not spent
    assert refused["statusCode"] == 400
    assert sandbox.requests_to("token") == 0
    assert len(_items(stack)) == 1
    assert flows.finish_connect(stack, redirect, hop.cookie)["statusCode"] == 200


def test_error_pages_do_not_echo_query_parameter_names(stack: LocalStack) -> None:
    name = "x<b>injected-name</b>"
    query = f"{quote(name)}=1&{quote(name)}=2"
    response = stack.invoke("CallbackFunction", flows.callback_event(query, None))
    assert response["statusCode"] == 400
    assert "injected-name" not in response["body"]
    assert "more than once" in response["body"]
