"""Composition root: builds each function's service from settings and boto3 clients.

Nothing here runs at import time; the handlers cache what these return, so a warm Lambda builds
its clients once. Tests and the local stack call the same builders with their own clients.
Each builder imports only what its function uses: a cold start loads no other function's code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from xmetrics.transport import new_session

if TYPE_CHECKING:
    from xmetrics.config import AuthSettings, ConnectSettings, FetchSettings
    from xmetrics.oauth.client import OAuthClient
    from xmetrics.services.callback import Callback
    from xmetrics.services.connect import Connect
    from xmetrics.services.disconnect import DisconnectAccount
    from xmetrics.services.dispatch import DispatchRun
    from xmetrics.services.export_account import ExportAccount
    from xmetrics.services.export_queued import ExportQueued
    from xmetrics.telemetry import Telemetry
    from xmetrics.transport import Session


_aws_session: Any = None


def aws_session() -> Any:
    """The botocore session every default client comes from, created on first use.

    botocore's, not boto3's: boto3 adds resources and s3transfer (imported on every cold start,
    ~10 ms) and creates clients through this same call.
    """
    global _aws_session
    if _aws_session is None:
        import botocore.session

        _aws_session = botocore.session.get_session()
    return _aws_session


def client_config(service: str) -> Any:
    """Standard retry mode (it backs off throttling) with the timeouts limits.py counts on.

    total_max_attempts, not max_attempts: botocore reads the latter as retries after the first.
    """
    from botocore.config import Config

    from xmetrics import limits

    if service == "dynamodb":
        connect, read, attempts = (
            limits.DYNAMODB_CONNECT_TIMEOUT,
            limits.DYNAMODB_READ_TIMEOUT,
            limits.DYNAMODB_MAX_ATTEMPTS,
        )
    else:
        connect, read, attempts = limits.AWS_CONNECT_TIMEOUT, limits.AWS_READ_TIMEOUT, limits.AWS_MAX_ATTEMPTS
    return Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=connect,
        read_timeout=read,
    )


class Clients:
    """AWS clients, each created on first use only (a cold start pays for what it touches)."""

    def __init__(self, factory: Callable[..., Any] | None = None) -> None:
        self._factory = factory

    def _make(self, service: str) -> Any:
        if self._factory is not None:
            return self._factory(service)
        return aws_session().create_client(service, config=client_config(service))

    @cached_property
    def dynamodb(self) -> Any:
        return self._make("dynamodb")

    @cached_property
    def kms(self) -> Any:
        return self._make("kms")

    @cached_property
    def s3(self) -> Any:
        return self._make("s3")

    @cached_property
    def sqs(self) -> Any:
        return self._make("sqs")

    @cached_property
    def secretsmanager(self) -> Any:
        return self._make("secretsmanager")


def _oauth(
    settings: AuthSettings | FetchSettings,
    clients: Clients,
    session: Session,
    clock: Callable[[], float],
) -> OAuthClient:
    from xmetrics.oauth.client import OAuthClient
    from xmetrics.secrets import load_client_credentials

    return OAuthClient(
        settings.x,
        lambda: load_client_credentials(clients.secretsmanager, settings.client_secret_arn),
        session=session,
        clock=clock,
    )


def build_connect(
    settings: ConnectSettings, clients: Clients, *, clock: Callable[[], float] = time.time
) -> Connect:
    from xmetrics.oauth.client import ClientCredentials, OAuthClient
    from xmetrics.services.connect import Connect
    from xmetrics.store import Store

    # Only the client id goes into an authorize URL: this function never reads the secret.
    oauth = OAuthClient(
        settings.x, ClientCredentials(settings.client_id), session=new_session(2), clock=clock
    )
    return Connect(
        Store(clients.dynamodb, settings.table_name),
        oauth,
        scopes=settings.scopes,
        clock=clock,
    )


def build_callback(
    settings: AuthSettings, clients: Clients, telemetry: Telemetry, *, clock: Callable[[], float] = time.time
) -> Callback:
    from xmetrics.crypto import TokenCipher
    from xmetrics.services.callback import Callback
    from xmetrics.store import Store
    from xmetrics.x_api import XApi

    session = new_session(2)
    return Callback(
        Store(clients.dynamodb, settings.table_name),
        _oauth(settings, clients, session, clock),
        XApi(settings.x.api_base_url, session=session, clock=clock),
        TokenCipher(clients.kms, settings.token_key_id),
        telemetry,
        allowed_users=settings.allowed_users,
        clock=clock,
    )


@dataclass(frozen=True)
class FetchUseCases:
    """The fetch function's use cases, sharing one store, token keeper and HTTP pool."""

    export: ExportAccount
    queued: ExportQueued
    dispatch: DispatchRun
    disconnect: DisconnectAccount


def build_fetch(
    settings: FetchSettings,
    clients: Clients,
    telemetry: Telemetry,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchUseCases:
    from xmetrics.crypto import TokenCipher
    from xmetrics.exporter import Exporter
    from xmetrics.queue import JobQueue
    from xmetrics.services.budget import ReadBudget
    from xmetrics.services.disconnect import DisconnectAccount
    from xmetrics.services.dispatch import DispatchRun
    from xmetrics.services.export_account import ExportAccount
    from xmetrics.services.export_queued import ExportQueued
    from xmetrics.services.tokens import TokenKeeper
    from xmetrics.store import Store
    from xmetrics.x_api import XApi, reach

    session = new_session()
    store = Store(clients.dynamodb, settings.table_name)
    oauth = _oauth(settings, clients, session, clock)
    tokens = TokenKeeper(
        store, TokenCipher(clients.kms, settings.token_key_id), oauth, telemetry, clock=clock, sleep=sleep
    )
    queue = JobQueue(lambda: clients.sqs, settings.fetch_queue_url) if settings.fetch_queue_url else None
    export = ExportAccount(
        store,
        tokens,
        XApi(settings.x.api_base_url, session=session, clock=clock, exclude=settings.exclude),
        Exporter(clients.s3, settings.bucket_name, settings.export_prefix),
        telemetry,
        tiers=settings.tiers,
        budget=ReadBudget(store, settings.daily_read_budget),
        prices=settings.prices,
        reach=reach(settings.exclude),
        clock=clock,
    )
    return FetchUseCases(
        export=export,
        queued=ExportQueued(export, queue, telemetry, clock=clock),
        dispatch=DispatchRun(store, export, telemetry, queue=queue),
        disconnect=DisconnectAccount(store, tokens, oauth, telemetry),
    )
