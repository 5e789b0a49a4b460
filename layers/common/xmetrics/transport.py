"""HTTP to X on urllib3 (which botocore already loads): pooled connections, timeouts always,
transport errors classified once.

Not requests: a page costs requests about as much CPU as parsing its JSON (settings merging,
environment and netrc lookups, cookie extraction, chunked body reads), and its import adds to
every cold start. This module keeps what the app used of it: a pool, a response with status,
headers and body, and proxies from the environment.
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from xmetrics.errors import TransportError
from xmetrics.limits import X_TIMEOUT

USER_AGENT = "x-metrics-export/0.1"


@dataclass(frozen=True)
class Response:
    status_code: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    content: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)


def _ca_bundle() -> str:
    """The CA bundle botocore verifies AWS with: AWS_CA_BUNDLE when set (one setting for a
    TLS-inspecting proxy), else certifi's when installed, else botocore's own. Not the system's
    store, which python.org builds on macOS lack; requests used certifi's as well."""
    from botocore.httpsession import get_cert_path

    return os.environ.get("AWS_CA_BUNDLE") or str(get_cert_path(True))


class Session:
    """Connection pools (one per origin and proxy), built once per process and shared by a
    function's clients."""

    def __init__(self, pool_size: int = 10) -> None:
        self._pool_size = pool_size
        self._routes: dict[tuple[str, str], urllib3.PoolManager] = {}
        self._managers: dict[str, urllib3.PoolManager] = {}

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
    ) -> Response:
        answer = self._route(url).request(
            method,
            url,
            body=body,
            headers={"User-Agent": USER_AGENT, **headers},
            # total: the worst cases in limits.py count one request as connect + read at most.
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1], total=timeout[0] + timeout[1]),
            # Retries are ours (they differ for a token POST and a GET); redirects are never followed.
            retries=False,
            redirect=False,
        )
        return Response(answer.status, answer.reason or "", answer.headers, answer.data)

    def _route(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        manager = self._routes.get(origin)
        if manager is None:
            # Proxies as requests honoured them: *_PROXY and NO_PROXY from the environment.
            proxy = "" if proxy_bypass(parts.hostname or "") else getproxies().get(parts.scheme, "")
            manager = self._managers.get(proxy)
            if manager is None:
                options: dict[str, Any] = {"maxsize": self._pool_size, "ca_certs": _ca_bundle()}
                manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
                self._managers[proxy] = manager
            self._routes[origin] = manager
        return manager


def new_session(pool_size: int = 10) -> Session:
    return Session(pool_size)


def basic_auth(user: str, password: str) -> str:
    """RFC 7617 credentials, encoded as X's token endpoint reads them (no form-encoding first)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _never_sent(exc: BaseException) -> bool:
    # NewConnectionError: refused or unresolvable; either way X never saw a byte.
    return isinstance(exc, ConnectTimeoutError | NewConnectionError)


def send(
    session: Session,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | None = None,
    timeout: tuple[float, float] = X_TIMEOUT,
) -> Response:
    """Send one request; any failure without a complete response becomes a TransportError.

    The message carries the exception's class only: urllib3's own messages can echo URLs with
    query strings, and those may hold codes or tokens.
    """
    try:
        return session.request(method, url, headers=headers, body=body, timeout=timeout)
    except (HTTPError, OSError) as exc:
        raise TransportError(
            f"{method} {url.split('?', 1)[0]} failed: {type(exc).__name__}", maybe_sent=not _never_sent(exc)
        ) from exc


@dataclass
class Backoff:
    """Exponential backoff with full jitter (AWS Architecture Blog, 'Exponential Backoff And Jitter')."""

    attempts: int = 4
    base: float = 0.2
    cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = field(default=random.random)

    def pause(self, attempt: int) -> None:
        self.sleep(self.rand() * min(self.cap, self.base * 2**attempt))
