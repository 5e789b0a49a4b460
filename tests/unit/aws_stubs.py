"""Real botocore clients that never open a socket: answers come from botocore's Stubber, and the
network failure is raised where the request would have been made.

A real client (not a hand-written fake) validates each request against the service model, so a
parameter the adapter sends that AWS would reject fails the test too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import botocore.session
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

REGION = "us-east-1"
# Planted in every stubbed AWS error message: AWS's messages name ARNs, principals and keys,
# so a project error must never repeat them.
AWS_MESSAGE = "User arn:aws:iam::123456789012:role/leak-marker is not authorized"


@lru_cache(maxsize=1)
def _session() -> Any:
    return botocore.session.get_session()


def client(service: str) -> Any:
    return _session().create_client(
        service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@contextmanager
def failing(aws: Any, method: str, code: str, status: int, **modeled: Any) -> Iterator[Stubber]:
    """`aws.<method>` answers with AWS error `code` (after any answers queued on the yielded stubber)."""
    with Stubber(aws) as stubber:
        stubber.add_client_error(
            method,
            service_error_code=code,
            service_message=AWS_MESSAGE,
            http_status_code=status,
            modeled_fields=modeled or None,
        )
        yield stubber


def network_down(aws: Any) -> None:
    """Every call of `aws` fails as if the endpoint could not be reached (raised before sending)."""

    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://leak-marker.amazonaws.com/")

    aws.meta.events.register("before-call", refuse)


def assert_clean(message: str, *secrets: str) -> None:
    """The project error says what failed, never what was asked or what AWS said about whom."""
    for secret in ("leak-marker", *secrets):
        assert secret not in message
