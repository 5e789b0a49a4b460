"""X over real HTTP, so the app's own transport (timeouts, dropped connections) is what gets tested."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, urlsplit

from local.x_sandbox.api import _TWEETS_PATH, _generic_problem
from local.x_sandbox.faults import ENDPOINTS, Faults, _Fault
from local.x_sandbox.usage import USAGE_SWITCHES
from local.x_sandbox.wire import _Halt, _json, _Reply, _Request


class LoggedRequest(NamedTuple):
    method: str
    path: str  # without the query string: that may carry codes or challenges
    endpoint: str
    status: int  # 0: no answer was sent
    at: float
    fault: str = ""


class XSandbox(Faults):
    """Every layer's state, set up here behind one lock, served over HTTP on a loopback port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        auto_consent: bool = True,
        clock: Callable[[], float] = time.time,
        seed: int = 7,
        dead_token_error: str = "invalid_request",
    ) -> None:
        self.host, self.port = host, port
        self.auto_consent = auto_consent
        self.dead_token_error = dead_token_error
        self.metrics_spelling = "retweet"
        # Posts' counts grow with their age (1 - exp(-age/tau), stepping hourly: timeline.growth), as
        # X's do. The time constant is a plausible guess; X publishes no engagement curve.
        self.metrics_grow = True
        self.metrics_grow_tau_hours = 18.0
        # The reach under `exclude` (Api._reach, Api._kept): the defaults are the reading of X's docs.
        self.reach_counts_excluded = True
        self.exclude_thins_pages = False
        self.exclude_replies_keeps_self_replies = False
        # Problem type URIs: X has served api.twitter.com ones; v2.167 names https://api.x.com/2/problems/.
        self.problem_base = "https://api.twitter.com/2/problems/"
        self.access_token_ttl = 7200
        self.code_ttl = 30.0
        self.rate_limits = {"me": 75, "tweets": 900, "tweets_app": 10_000}
        self.rate_window = 900.0
        # X caps pay-per-use apps at 2 million post reads a month; tests set a small cap, or the switch.
        self.usage_cap: int | None = None
        self.usage_capped: str | None = None
        self.url = ""
        self.request_log: list[LoggedRequest] = []
        self._clock = clock
        self._seed = seed
        self._lock = threading.Lock()
        self._clients = {}
        self._users = {}
        self._login = None
        self._codes = {}
        self._access = {}
        self._refresh = {}
        self._grants = []
        self._windows = {}
        self._ledger = {}
        self._faults = {name: [] for name in ENDPOINTS}
        self._refresh_count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle and URLs

    def start(self) -> XSandbox:
        server = _Server((self.host, self.port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="x-sandbox", daemon=True
        )
        self._thread.start()
        self.url = f"http://{self.host}:{server.server_address[1]}"
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> XSandbox:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def authorize_url(self) -> str:
        return self.url + "/i/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/2/oauth2/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/2/oauth2/revoke"

    @property
    def api_base_url(self) -> str:
        return self.url

    # ------------------------------------------------------------ routing, request log, admin endpoints

    def requests_to(self, endpoint: str) -> int:
        with self._lock:
            return sum(1 for entry in self.request_log if entry.endpoint == endpoint)

    def _route(self, request: _Request) -> tuple[str, Callable[[_Request], _Reply]]:
        path, method = request.path.rstrip("/") or "/", request.method
        if path.startswith("/_sandbox/"):
            return "admin", self._admin
        routes: dict[tuple[str, str], tuple[str, Callable[[_Request], _Reply]]] = {
            ("GET", "/i/oauth2/authorize"): ("authorize", self._authorize_get),
            ("POST", "/i/oauth2/authorize"): ("authorize", self._authorize_post),
            ("POST", "/2/oauth2/token"): ("token", self._token),
            ("POST", "/2/oauth2/revoke"): ("revoke", self._revoke),
            ("GET", "/2/users/me"): ("me", self._me),
        }
        if (method, path) in routes:
            return routes[(method, path)]
        if method == "GET" and _TWEETS_PATH.match(path):
            return "tweets", self._tweets
        return "unknown", lambda _request: _generic_problem(404)

    def _record(self, request: _Request, endpoint: str, status: int, fault: _Fault | None) -> None:
        entry = LoggedRequest(
            request.method, request.path, endpoint, status, self._clock(), fault.kind if fault else ""
        )
        with self._lock:
            self.request_log.append(entry)

    def _admin(self, request: _Request) -> _Reply:
        if request.path == "/_sandbox/faults" and request.method == "POST":
            try:
                spec = json.loads(request.body or b"{}")
                self.inject(
                    str(spec["endpoint"]),
                    str(spec["kind"]),
                    count=int(spec.get("count", 1)),
                    **dict(spec.get("params") or {}),
                )
            except (ValueError, KeyError, TypeError) as exc:
                return _json(400, {"error": type(exc).__name__, "detail": str(exc)[:200]})
            return _json(201, {"ok": True})
        if request.path == "/_sandbox/faults" and request.method == "DELETE":
            self.clear_faults()
            return _json(200, {"ok": True})
        if request.path == "/_sandbox/usage" and request.method == "POST":
            try:
                self._set_usage(json.loads(request.body or b"{}"))
            except (ValueError, TypeError) as exc:
                return _json(400, {"error": type(exc).__name__, "detail": str(exc)[:200]})
        if request.path == "/_sandbox/usage" and request.method in ("GET", "POST"):  # POST: the new state
            with self._lock:
                knobs = {"cap": self.usage_cap, "switch": self.usage_capped}
            return _json(200, {**knobs, "billed_by_day": self.billed_by_day()})
        if request.path == "/_sandbox/log" and request.method == "GET":
            with self._lock:
                entries = [entry._asdict() for entry in self.request_log]
            return _json(200, {"requests": entries})
        return _generic_problem(404)

    def _set_usage(self, spec: Any) -> None:
        """{"cap": int | null, "switch": "usage_cap" | "credits" | null}; a key left out keeps its knob."""
        if not isinstance(spec, dict) or not set(spec) <= {"cap", "switch"}:
            raise ValueError('expected an object with "cap" and/or "switch"')
        cap = spec.get("cap", self.usage_cap)
        switch = spec.get("switch", self.usage_capped)
        if cap is not None and (type(cap) is not int or cap < 0):
            raise ValueError(f"cap must be a whole number >= 0 or null: {cap!r}")
        if switch is not None and switch not in USAGE_SWITCHES:
            raise ValueError(f"switch must be one of {sorted(USAGE_SWITCHES)} or null: {switch!r}")
        with self._lock:
            self.usage_cap, self.usage_capped = cap, switch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: XSandbox

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.open_connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a response on loopback), a delay X does not have.
    disable_nagle_algorithm = True
    server_version = "x-sandbox"
    sys_version = ""
    timeout = 60

    def setup(self) -> None:
        super().setup()
        with self._server.connections_lock:
            self._server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self._server.connections_lock:
            self._server.open_connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines can carry codes, states and challenges."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _read(self) -> _Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        return _Request(self.command, split.path, query, headers, body)

    def _handle(self) -> None:
        sandbox = self._server.sandbox
        request = self._read()
        endpoint, action = sandbox._route(request)
        fault = sandbox._take_fault(endpoint, request)
        kind = fault.kind if fault else ""
        pause = float(fault.params.get("seconds", 1.0)) if fault else 0.0
        if kind == "delay":
            time.sleep(pause)
        if kind == "drop":
            return self._hang_up(request, endpoint, 0, fault)
        reply = sandbox._fault_reply(fault, endpoint) if fault and kind in ("status", "rate_limit") else None
        reply = reply or self._process(action, request)
        reply = sandbox._after_fault(fault, reply)
        if kind == "drop_after_processing":
            return self._hang_up(request, endpoint, reply.status, fault)
        if kind == "delay_after_processing":
            time.sleep(pause)
        if endpoint != "admin":
            sandbox._record(request, endpoint, reply.status, fault)
        self._send(reply)

    def _process(self, action: Callable[[_Request], _Reply], request: _Request) -> _Reply:
        try:
            return action(request)
        except _Halt as halt:
            return halt.reply
        except Exception:  # a sandbox bug must answer, not hang the client
            return _generic_problem(500)

    def _hang_up(self, request: _Request, endpoint: str, status: int, fault: _Fault | None) -> None:
        self._server.sandbox._record(request, endpoint, status, fault)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, reply: _Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:  # the client gave up (read timeout): nothing left to tell it
            self.close_connection = True
