"""The embedded stack: moto server + X sandbox + the functions of template.yaml, in one process.

Used by the integration tests, `make demo`, `make local` and the benchmarks. The functions run
in-process with the environment template.yaml gives them, resolved against what was provisioned.
DynamoDB is moto's unless a DynamoDB endpoint is given (the tests give DynamoDB Local's).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from local import aws
from local.lambda_context import LocalContext
from local.template import ROOT, function_code, function_environment, load
from local.x_sandbox import XSandbox

FUNCTIONS = ("AuthorizeFunction", "CallbackFunction", "FetchFunction")
CLIENT_ID = "local-client"
CLIENT_SECRET = "local-client-secret"
EVENT_HOST = "abc123example.execute-api.us-east-1.amazonaws.com"


def handler_module(logical_id: str) -> ModuleType:
    code_dir, handler = function_code(load(), logical_id)
    module = ".".join(code_dir.relative_to(ROOT).parts) + "." + handler.rsplit(".", 1)[0]
    return importlib.import_module(module)


def reset_handlers() -> None:
    """Drop each handler's cached settings and clients, as a new Lambda container would."""
    for logical_id in FUNCTIONS:
        module = handler_module(logical_id)
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()


@dataclass
class LocalStack:
    moto: aws.MotoServer
    resources: aws.Resources
    x: XSandbox | None
    client_id: str
    environment: dict[str, str] = field(default_factory=dict)
    owns_moto: bool = True

    @classmethod
    def start(
        cls,
        *,
        moto: aws.MotoServer | None = None,
        sandbox: XSandbox | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str | None = CLIENT_SECRET,
        redirect_uris: tuple[str, ...] = (),
        x_urls: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        dynamodb_endpoint: str | None = None,
    ) -> LocalStack:
        owns = moto is None
        server = moto or aws.MotoServer().start()
        if not owns:
            server.reset()
        resources = aws.provision(
            server.endpoint,
            client_id=client_id,
            client_secret=client_secret,
            dynamodb_endpoint=dynamodb_endpoint,
        )
        if sandbox is None and x_urls is None:
            sandbox = XSandbox().start()
        if sandbox is not None:
            sandbox.register_client(
                client_id, client_secret, [f"https://{EVENT_HOST}/callback", *redirect_uris]
            )
            x_urls = {
                "XAuthorizeUrl": sandbox.authorize_url,
                "XTokenUrl": sandbox.token_url,
                "XApiBaseUrl": sandbox.api_base_url,
            }
        resources.resolver.overrides = {"XClientId": client_id, **(x_urls or {})}
        environment: dict[str, str] = {}
        for logical_id in FUNCTIONS:
            environment.update(function_environment(resources.resolver, logical_id))
        environment.update(aws.aws_environment(server.endpoint, resources.dynamodb_endpoint))
        # EMF metrics go to stdout in Lambda; locally they would only bury the output.
        environment.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        environment.update(extra_env or {})
        stack = cls(server, resources, sandbox, client_id, environment, owns)
        stack.activate()
        return stack

    def activate(self) -> None:
        os.environ.update(self.environment)
        reset_handlers()

    def endpoint_for(self, service: str) -> str:
        return self.resources.dynamodb_endpoint if service == "dynamodb" else self.moto.endpoint

    def client(self, service: str) -> Any:
        return aws.client(service, self.endpoint_for(service))

    def invoke(self, logical_id: str, event: Any, *, timeout: float = 300.0) -> Any:
        module = handler_module(logical_id)
        return module.lambda_handler(event, LocalContext(function_name=logical_id, timeout_seconds=timeout))

    def stop(self) -> None:
        if self.x is not None:
            self.x.stop()
        if self.owns_moto:
            self.moto.stop()
