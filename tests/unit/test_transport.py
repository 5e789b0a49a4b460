"""The HTTP transport: what counts as surely never sent, proxies from the environment, TLS checked."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def test_tls_verifies_with_botocores_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # X's certificate is checked against the bundle AWS calls already trust in this process,
    from botocore.httpsession import get_cert_path

    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    manager = Session()._route("https://api.x.com/2/users/me")
    assert manager.connection_pool_kw["ca_certs"] == get_cert_path(True)
    # and AWS_CA_BUNDLE (a TLS-inspecting proxy's CA) replaces it for both
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    manager = Session()._route("https://api.x.com/2/users/me")
    assert manager.connection_pool_kw["ca_certs"] == "/etc/ssl/corporate.pem"


def test_basic_auth_is_rfc_7617() -> None:
    assert basic_auth("Aladdin", "open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_a_certificate_nobody_vouches_for_is_refused(tmp_path: Path) -> None:
    # Given: an HTTPS server with a self-signed certificate
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        # When: the transport calls it
        with pytest.raises(TransportError) as raised:
            send(
                Session(),
                "GET",
                f"https://localhost:{server.server_address[1]}/2/users/me",
                headers={},
                timeout=(2.0, 2.0),
            )
    finally:
        server.server_close()
    # Then: the handshake fails verification; nothing was sent over it
    assert "SSLError" in str(raised.value)
