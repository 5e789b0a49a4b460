"""The admin endpoints drive faults from outside the process; the request log must keep no secrets."""

from __future__ import annotations

import json

import pytest
import requests

from local.x_sandbox import XSandbox
from tests.sandbox.helpers import access, exchange, me, new_code


def test_admin_endpoints_control_faults_and_show_the_log(x: XSandbox) -> None:
    # Given: a fault injected over HTTP
    spec = {"endpoint": "me", "kind": "status", "count": 1, "params": {"status": 504}}
    assert requests.post(f"{x.url}/_sandbox/faults", json=spec, timeout=5).status_code == 201
    # When
    answer = me(x, access(x))
    log = requests.get(f"{x.url}/_sandbox/log", timeout=5).json()["requests"]
    # Then
    assert answer.status_code == 504
    assert log[-1]["endpoint"] == "me" and log[-1]["status"] == 504 and log[-1]["fault"] == "status"
    assert requests.delete(f"{x.url}/_sandbox/faults", timeout=5).status_code == 200


def test_request_log_counts_every_request_and_keeps_no_query(x: XSandbox) -> None:
    # Given
    x.inject("me", "drop")
    code, verifier = new_code(x)
    exchange(x, code, verifier)
    # When
    with pytest.raises(requests.ConnectionError):
        me(x, access(x))
    # Then
    assert (x.requests_to("authorize"), x.requests_to("token"), x.requests_to("me")) == (1, 1, 1)
    assert x.request_log[-1].status == 0 and x.request_log[-1].fault == "drop"
    logged = json.dumps([entry._asdict() for entry in x.request_log])
    assert code not in logged and "?" not in logged
