"""The suites' DynamoDB is AWS's DynamoDB Local, for the handlers and the tests alike; moto's is not used."""

from __future__ import annotations

from local import aws, flows
from local.dynamodb_local import DynamoDBLocal
from local.stack import LocalStack
from tests.integration.helpers import USER_ID, account_item


def test_the_engine_is_dynamodb_local_3(dynamodb_local: DynamoDBLocal) -> None:
    assert dynamodb_local.engine.startswith("DynamoDB Local 3.")
    # DynamoDB Local answers from Jetty; moto's server is werkzeug.
    answer = aws.client("dynamodb", dynamodb_local.endpoint).list_tables()
    assert answer["ResponseMetadata"]["HTTPHeaders"]["server"].startswith("Jetty")


def test_the_handlers_write_to_dynamodb_local_and_not_to_moto(
    stack: LocalStack, dynamodb_local: DynamoDBLocal
) -> None:
    # Given: the handlers' environment names DynamoDB Local for DynamoDB, moto for the rest
    assert stack.environment["AWS_ENDPOINT_URL_DYNAMODB"] == dynamodb_local.endpoint
    assert stack.environment["AWS_ENDPOINT_URL"] == stack.moto.endpoint
    # When: an account connects through the handlers
    flows.connect(stack)
    # Then: its item is in DynamoDB Local, and moto holds no table at all
    assert account_item(stack, USER_ID)["username"] == {"S": "ada_metrics"}
    assert aws.client("dynamodb", stack.moto.endpoint).list_tables()["TableNames"] == []
