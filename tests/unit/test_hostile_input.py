"""Property-based: whatever arrives, the parsers answer with a validation error or a value, never crash."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmetrics import pages, web
from xmetrics.errors import StateError, ValidationError
from xmetrics.events import parse_fetch_event

NOW = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "user_id",
        "start_time",
        "end_time",
        "action",
        "Records",
        "detail-type",
        "source",
        "time",
        "snapshot_at",
        "body",
    ]
) | st.text(max_size=15)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, json_values, max_size=6) | json_values)
def test_fetch_event_parser_never_crashes(event: object) -> None:
    try:
        parse_fetch_event(event, NOW)
    except ValidationError as exc:
        assert str(exc)  # a message a person can act on


query_chars = st.characters(exclude_categories=("Cs",))


@settings(max_examples=400)
@given(
    st.text(query_chars, max_size=6000), st.lists(st.text(max_size=100), max_size=5), st.text(max_size=300)
)
def test_http_request_parser_never_crashes(raw_query: str, cookies: list[str], host: str) -> None:
    event = {
        "rawQueryString": raw_query,
        "cookies": cookies,
        "headers": {"host": host},
        "requestContext": {"stage": "$default"},
    }
    try:
        request = web.parse_request(event)
    except ValidationError:
        return
    assert len(request.query) <= 20
    assert all(c not in request.host for c in "<>\"' ")


@settings(max_examples=300)
@given(st.text(query_chars, max_size=400), st.text(query_chars, max_size=400))
def test_every_error_page_escapes_what_it_echoes(error: str, description: str) -> None:
    from xmetrics.errors import AuthorizationDeniedError

    response = web.error_response(
        AuthorizationDeniedError(error, description), connect_url="/connect", secure=True
    )
    assert response["statusCode"] == 403
    body = response["body"]
    assert "<script" not in body.lower().replace("&lt;script", "")
    for raw in (error, description):
        # What X sent is shown, escaped: the user sees X's words and the browser sees no markup.
        assert html.escape(raw, quote=True) in body


def test_duplicated_parameters_are_refused_without_echoing_their_name() -> None:
    for name in ("state", "attacker-chosen-words"):
        event = {"rawQueryString": f"{name}=a&{name}=b&code=c", "headers": {"host": "h"}}
        try:
            web.parse_request(event)
        except ValidationError as exc:
            assert "more than once" in str(exc) and name not in str(exc)
        else:
            raise AssertionError("duplicate parameter accepted")


def _request(proto: str, cookies: list[str]) -> web.HttpRequest:
    event = {"headers": {"host": "h", "x-forwarded-proto": proto}, "cookies": cookies}
    return web.parse_request(event)


def test_on_https_only_the_host_prefixed_cookie_is_the_browser_secret() -> None:
    assert _request("https", ["xmx_state=plain"]).browser_secret() is None
    assert _request("https", ["xmx_state=plain", "__Host-xmx_state=ours"]).browser_secret() == "ours"
    assert _request("https", ["__Host-xmx_state="]).browser_secret() is None


def test_on_plain_http_the_plain_cookie_is_the_browser_secret() -> None:
    # The local stack over http: a browser keeps no __Host- cookie there.
    assert _request("http", ["xmx_state=plain"]).browser_secret() == "plain"
    assert _request("http", ["__Host-xmx_state=ours"]).browser_secret() is None


def test_page_escapes_html() -> None:
    html = pages.page("<b>t</b>", ["<img src=x onerror=alert(1)>"], ok=False, action=("go", 'javascript:"x'))
    assert "<img" not in html and "<b>t" not in html and "&lt;img" in html


def test_state_error_pages_are_4xx_without_internals() -> None:
    for reason in ("missing", "malformed", "unknown", "expired", "browser", "no_cookie"):
        response = web.error_response(StateError(reason), connect_url="/connect", secure=False)
        assert response["statusCode"] == 400
        assert "Traceback" not in response["body"] and "StateError" not in response["body"]
        assert response["cookies"][0].startswith("xmx_state=;")
