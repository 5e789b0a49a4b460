"""A local stand-in for API Gateway's HTTP API: real HTTP in, payload-2.0 events to the handlers.

Routes come from template.yaml's HttpApi events, so a route added there is served here too.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.template import http_routes, load

Invoke = Callable[[str, dict[str, Any]], Any]


def build_event(
    method: str, raw_path: str, headers: dict[str, str], host: str, route_key: str
) -> dict[str, Any]:
    path, _, query = raw_path.partition("?")
    lowered = {k.lower(): v for k, v in headers.items()}
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        # API Gateway joins repeated parameters with commas in queryStringParameters.
        params[name] = f"{params[name]},{value}" if name in params else value
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": {**lowered, "host": host, "x-forwarded-proto": lowered.get("x-forwarded-proto", "http")},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if params:
        event["queryStringParameters"] = params
    return event


class LocalGateway:
    def __init__(self, invoke: Invoke, host: str = "127.0.0.1", port: int = 0) -> None:
        self._invoke = invoke
        self.routes = http_routes(load())
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # as in the X sandbox: no delayed-ACK stall per response

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                gateway._serve(self)

            def do_POST(self) -> None:  # noqa: N802
                gateway._serve(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # the query string carries codes: never print request lines

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalGateway:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        method = request.command
        path = urlsplit(request.path).path
        function = self.routes.get((method, path)) or self.routes.get(("ANY", path))
        if function is None:
            self._write(request, 404, {"Content-Type": "application/json"}, [], b'{"message":"Not Found"}')
            return
        host = request.headers.get("Host") or self.url.removeprefix("http://")
        event = build_event(method, request.path, dict(request.headers.items()), host, f"{method} {path}")
        try:
            response = self._invoke(function, event)
        except Exception:  # noqa: BLE001 - API Gateway answers 500 without details, so do we
            self._write(
                request, 500, {"Content-Type": "application/json"}, [], b'{"message":"Internal Server Error"}'
            )
            return
        status, headers, cookies, body = _map_response(response)
        self._write(request, status, headers, cookies, body)

    @staticmethod
    def _write(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], cookies: list[str], body: bytes
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        for cookie in cookies:
            request.send_header("Set-Cookie", cookie)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def _map_response(response: Any) -> tuple[int, dict[str, str], list[str], bytes]:
    """Payload 2.0's response rules: a dict without statusCode is a 200 JSON body."""
    if not isinstance(response, dict) or "statusCode" not in response:
        import json

        return 200, {"Content-Type": "application/json"}, [], json.dumps(response).encode()
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    return int(response["statusCode"]), headers, [str(c) for c in response.get("cookies") or ()], raw
