"""devstack.moto_dynamodb: a cancelled transaction leaves moto's tables and streams in place."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends

from devstack import moto_dynamodb

REGION = "us-east-1"


@pytest.fixture
def table(aws_credentials, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items",
                        moto_dynamodb.keeping_tables(DynamoDBBackend.transact_write_items))
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
        yield client


def moto_table():
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables["t"]


def increment_and_create(key: str) -> list[dict]:
    """A transaction: ADD 1 to ``a``, then create ``key`` only if it does not exist."""
    return [{"Update": {"TableName": "t", "Key": {"k": {"S": "a"}}, "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": "t", "Item": {"k": {"S": key}}, "ConditionExpression": "attribute_not_exists(k)"}}]


def test_table_names_are_those_the_transaction_items_name():
    items = [{"Put": {"TableName": "a", "Item": {}}}, {"ConditionCheck": {"TableName": "b", "Key": {}}},
             {"Update": {"TableName": "a", "Key": {}}}]
    assert moto_dynamodb.table_names(items) == {"a", "b"}


def test_a_cancelled_transaction_keeps_the_table_and_its_stream_shard_with_nothing_of_it_written(table):
    # GIVEN a table whose item ``b`` exists, and its stream shard as a reader's iterator holds it
    table.transact_write_items(TransactItems=increment_and_create("b"))
    before, shard = moto_table(), moto_table().stream_shard
    records = len(shard.items)
    # WHEN a transaction whose second write is refused (``b`` exists) is cancelled after its first ran
    with pytest.raises(ClientError, match="TransactionCanceled"):
        table.transact_write_items(TransactItems=increment_and_create("b"))
    # THEN the same table and shard objects remain, with neither the increment nor its stream record
    assert moto_table() is before and moto_table().stream_shard is shard
    assert len(shard.items) == records
    assert table.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["n"] == {"N": "1"}


def test_a_committed_transaction_is_streamed_on_the_same_shard(table):
    shard = moto_table().stream_shard
    table.transact_write_items(TransactItems=increment_and_create("c"))
    assert moto_table().stream_shard is shard
    assert [r.to_json()["eventName"] for r in shard.items][-1] == "INSERT"
    assert table.get_item(TableName="t", Key={"k": {"S": "c"}})["Item"] == {"k": {"S": "c"}}
