"""One pooled `requests.Session` per process, timeouts always, and transport errors classified once."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from xmetrics.errors import TransportError

# (connect, read): connecting is quick or hopeless; X's timeline can take a few seconds per page.
DEFAULT_TIMEOUT = (3.05, 15.0)
USER_AGENT = "x-metrics-export/0.1"


def new_session(pool_size: int = 10) -> requests.Session:
    session = requests.Session()
    # Retries are ours (they differ for a token POST and a GET); the adapter never retries.
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _never_sent(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, NewConnectionError | ConnectTimeoutError)
    return False


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs: Any,
) -> requests.Response:
    """Send one request; any failure without a response becomes a TransportError.

    The message carries the exception's class only: requests' own messages can echo URLs with
    query strings, and those may hold codes or tokens.
    """
    try:
        return session.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.RequestException as exc:
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
