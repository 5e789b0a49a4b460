"""The HTTP transport: what counts as surely never sent, and proxies taken from the environment."""

from __future__ import annotations

import socket

import pytest
import urllib3

from xmetrics.errors import TransportError
from xmetrics.transport import Session, basic_auth, send


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_known_never_sent() -> None:
    # Given: a port nobody listens on
    url = f"http://127.0.0.1:{_closed_port()}/2/oauth2/token?code=secret-code"
    # When: a request goes there
    with pytest.raises(TransportError) as raised:
        send(Session(), "POST", url, headers={}, body=b"x=1", timeout=(1.0, 1.0))
    # Then: the caller may retry it (X never saw it), and the message holds no query string
    assert raised.value.maybe_sent is False
    assert "secret-code" not in str(raised.value) and "NewConnectionError" in str(raised.value)


def test_a_read_timeout_may_have_been_sent() -> None:
    # Given: a server that accepts and never answers
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/2/oauth2/token"
        # When: a request waits past its read timeout
        with pytest.raises(TransportError) as raised:
            send(Session(), "POST", url, headers={}, body=b"x=1", timeout=(1.0, 0.2))
    # Then: it counts as maybe sent (a refresh token may be spent)
    assert raised.value.maybe_sent is True


def test_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: a proxy for https, with one host excluded
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "api.internal")
    session = Session()
    # Then: X goes through the proxy, the excluded host does not, and plain http has no proxy
    via_proxy = session._route("https://api.x.com/2/users/me")
    assert isinstance(via_proxy, urllib3.ProxyManager)
    assert via_proxy.proxy is not None and via_proxy.proxy.host == "proxy.internal"
    assert not isinstance(session._route("https://api.internal/2/users/me"), urllib3.ProxyManager)
    assert not isinstance(session._route("http://127.0.0.1:8000/2/users/me"), urllib3.ProxyManager)


def test_basic_auth_is_rfc_7617() -> None:
    assert basic_auth("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
