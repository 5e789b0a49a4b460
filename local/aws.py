"""Embedded AWS: moto server on loopback, with the template's table, bucket, key, secret and queues.

The table can live on another DynamoDB endpoint instead (DynamoDB Local, see local/dynamodb_local.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local.template import Resolver, load, resource

REGION = "us-east-1"
# moto and DynamoDB Local accept any credentials; fixed ones keep boto3 from searching the machine
# for real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
NAMES = {
    "TokenTable": "x-metrics-local-tokens",
    "ExportBucket": "x-metrics-local-exports",
    "ClientSecret": "x-metrics-local/x-client",
    "FetchQueue": "x-metrics-local-fetch",
    "FetchDeadLetterQueue": "x-metrics-local-fetch-dlq",
}


class MotoServer:
    """moto's threaded server on an ephemeral loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        # werkzeug attaches its own handler and logs every request, burying the demo's report.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.endpoint = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self._server.stop()


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
    )


@dataclass(frozen=True)
class Resources:
    endpoint: str
    dynamodb_endpoint: str
    table_name: str
    bucket_name: str
    secret_arn: str
    key_id: str
    key_arn: str
    queue_url: str
    resolver: Resolver


def create_table(endpoint: str, props: dict[str, Any]) -> str:
    """The token table as template.yaml defines it, on any DynamoDB endpoint; an old one is dropped."""
    db = client("dynamodb", endpoint)
    name = NAMES["TokenTable"]
    # DynamoDB Local outlives a test (moto is reset instead): a fresh table is what isolates tests.
    with contextlib.suppress(db.exceptions.ResourceNotFoundException):
        db.delete_table(TableName=name)
    sse = props.get("SSESpecification", {})
    db.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        # CloudFormation spells the API's SSESpecification.Enabled "SSEEnabled".
        **(
            {"SSESpecification": {"Enabled": True, "SSEType": sse.get("SSEType", "KMS")}}
            if sse.get("SSEEnabled")
            else {}
        ),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        db.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled"):
        try:
            db.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        except ClientError as exc:
            # DynamoDB Local has no backups (UnknownOperationException); nothing the app does
            # depends on them, and cfn-lint/checkov check that the template asks for them.
            if exc.response["Error"]["Code"] != "UnknownOperationException":
                raise
    return name


def _bucket(endpoint: str, props: dict[str, Any]) -> str:
    s3 = client("s3", endpoint)
    name = NAMES["ExportBucket"]
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    if props.get("PublicAccessBlockConfiguration"):
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if props.get("BucketEncryption"):
        # CloudFormation spells the S3 API's ApplyServerSideEncryptionByDefault without "Apply".
        rules = [
            {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    return name


def _queue(endpoint: str, logical_id: str, props: dict[str, Any], resolver: Resolver) -> tuple[str, str]:
    sqs = client("sqs", endpoint)
    attributes: dict[str, str] = {}
    for key in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if key in props:
            attributes[key] = str(resolver.resolve(props[key]))
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(resolver.resolve(props["RedrivePolicy"]))
    url = sqs.create_queue(QueueName=NAMES[logical_id], Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def provision(
    endpoint: str, *, client_id: str, client_secret: str | None, dynamodb_endpoint: str | None = None
) -> Resources:
    """Create the stack's stateful resources from template.yaml's definitions: in moto, except the
    table when `dynamodb_endpoint` names another DynamoDB (DynamoDB Local)."""
    dynamodb_endpoint = dynamodb_endpoint or endpoint
    template = load()
    resolver = Resolver(template)
    props = {name: resource(template, name).get("Properties", {}) for name in template["Resources"]}

    table = create_table(dynamodb_endpoint, props["TokenTable"])
    bucket = _bucket(endpoint, props["ExportBucket"])
    resolver.physical.update({"TokenTable": table, "ExportBucket": bucket})
    resolver.attributes.update({"ExportBucket.Arn": f"arn:aws:s3:::{bucket}"})

    kms = client("kms", endpoint)
    key = kms.create_key(Description=str(props["TokenKey"].get("Description", "x-metrics-export tokens")))
    key_id, key_arn = key["KeyMetadata"]["KeyId"], key["KeyMetadata"]["Arn"]
    if props["TokenKey"].get("EnableKeyRotation"):
        kms.enable_key_rotation(KeyId=key_id)
    resolver.physical["TokenKey"] = key_id
    resolver.attributes["TokenKey.Arn"] = key_arn
    if "TokenKeyAlias" in props:
        kms.create_alias(
            AliasName=str(resolver.resolve(props["TokenKeyAlias"]["AliasName"])), TargetKeyId=key_id
        )

    secret = {"client_id": client_id, **({"client_secret": client_secret} if client_secret else {})}
    secret_arn = client("secretsmanager", endpoint).create_secret(
        Name=NAMES["ClientSecret"], SecretString=json.dumps(secret)
    )["ARN"]
    resolver.physical["ClientSecret"] = secret_arn

    dlq_url, dlq_arn = _queue(endpoint, "FetchDeadLetterQueue", props["FetchDeadLetterQueue"], resolver)
    resolver.physical["FetchDeadLetterQueue"] = dlq_url
    resolver.attributes["FetchDeadLetterQueue.Arn"] = dlq_arn
    queue_url, queue_arn = _queue(endpoint, "FetchQueue", props["FetchQueue"], resolver)
    resolver.physical["FetchQueue"] = queue_url
    resolver.attributes["FetchQueue.Arn"] = queue_arn
    resolver.physical["HttpApi"] = "local"
    return Resources(
        endpoint, dynamodb_endpoint, table, bucket, secret_arn, key_id, key_arn, queue_url, resolver
    )


def aws_environment(endpoint: str, dynamodb_endpoint: str | None = None) -> dict[str, str]:
    """What points boto3 (in this process or a child) at moto instead of AWS, and DynamoDB at
    `dynamodb_endpoint` when given: botocore's service-specific AWS_ENDPOINT_URL_DYNAMODB takes
    precedence over AWS_ENDPOINT_URL. It is set to moto otherwise, so that one left in the
    caller's environment cannot send the local stack's DynamoDB calls elsewhere."""
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint or endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
