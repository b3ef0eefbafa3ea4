"""The local DAX stand-in (devstack/dax_proxy.py) has DAX's semantics, seen through the ordinary DynamoDB client.

A simulated clock drives the TTLs (no sleeping, no timing assertions); the embedded AWS behind it
is the session's moto server, written to directly to play a writer that bypasses DAX.
"""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from devstack.dax_proxy import DaxSemantics, StandIn, http_forward, parameter_group_ttls
from devstack.stack import free_port

RECORD_TTL, QUERY_TTL = parameter_group_ttls()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(aws_client, unique_name):
    name = unique_name("daxcache")
    aws_client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return name


@pytest.fixture
def stand_in(moto_server):
    clock = Clock()
    semantics = DaxSemantics(http_forward(moto_server), record_ttl=RECORD_TTL, query_ttl=QUERY_TTL, clock=clock)
    server = StandIn(semantics, "127.0.0.1", free_port(), free_port()).start()
    server.clock = clock
    yield server
    server.stop()


@pytest.fixture
def dax(stand_in):
    """The ordinary DynamoDB client with the stand-in as its endpoint (what the app uses locally)."""
    return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{stand_in.port}", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


def key(sk="a"):
    return {"pk": {"S": "p"}, "sk": {"S": sk}}


def item(n, sk="a"):
    return {**key(sk), "n": {"N": str(n)}, "note": {"S": "x"}}


def test_ttls_come_from_the_templates_parameter_group():
    assert (RECORD_TTL, QUERY_TTL) == (60.0, 10.0)


def test_a_write_that_bypasses_dax_is_not_seen_until_the_record_ttl(dax, aws_client, table, stand_in):
    direct = aws_client("dynamodb")
    direct.put_item(TableName=table, Item=item(1))
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "1"}
    direct.put_item(TableName=table, Item=item(2))
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "1"}  # stale: served from the item cache
    stand_in.clock.now += RECORD_TTL
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "2"}


def test_writes_through_dax_update_the_item_cache(dax, aws_client, table):
    dax.put_item(TableName=table, Item=item(1))
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "1"}
    dax.update_item(TableName=table, Key=key(), UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "5"}})
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "5"}
    assert "Attributes" not in dax.update_item(TableName=table, Key=key(), UpdateExpression="SET n = :n",
                                               ExpressionAttributeValues={":n": {"N": "6"}})
    dax.delete_item(TableName=table, Key=key())
    assert "Item" not in dax.get_item(TableName=table, Key=key())


def test_projections_are_applied_to_the_cached_item(dax, table):
    dax.put_item(TableName=table, Item=item(3))
    got = dax.get_item(TableName=table, Key=key(), ProjectionExpression="#n", ExpressionAttributeNames={"#n": "n"})
    assert got["Item"] == {"n": {"N": "3"}}


def test_not_found_is_cached_too(dax, aws_client, table, stand_in):
    assert "Item" not in dax.get_item(TableName=table, Key=key("late"))
    aws_client("dynamodb").put_item(TableName=table, Item=item(1, "late"))
    assert "Item" not in dax.get_item(TableName=table, Key=key("late"))  # the negative entry
    got = dax.batch_get_item(RequestItems={table: {"Keys": [key("late")]}})
    assert got["Responses"][table] == []
    stand_in.clock.now += RECORD_TTL
    assert dax.get_item(TableName=table, Key=key("late"))["Item"]["n"] == {"N": "1"}


def test_batch_get_serves_hits_from_the_item_cache_and_fetches_only_misses(dax, aws_client, table, stand_in):
    dax.put_item(TableName=table, Item=item(1, "a"))
    aws_client("dynamodb").put_item(TableName=table, Item=item(2, "b"))
    before = stand_in.semantics.upstream_reads
    got = dax.batch_get_item(RequestItems={table: {"Keys": [key("a"), key("b"), key("none")]}})
    assert sorted(i["n"]["N"] for i in got["Responses"][table]) == ["1", "2"]
    assert stand_in.semantics.upstream_reads == before + 1
    dax.batch_get_item(RequestItems={table: {"Keys": [key("a"), key("b"), key("none")]}})
    assert stand_in.semantics.upstream_reads == before + 1  # all three cached (one of them negative)


def test_the_query_cache_is_not_invalidated_by_writes_even_through_dax(dax, table, stand_in):
    def query():
        return dax.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})

    assert query()["Count"] == 0
    dax.put_item(TableName=table, Item=item(1))
    assert query()["Count"] == 0  # stale until the query TTL
    stand_in.clock.now += QUERY_TTL
    assert query()["Count"] == 1


def test_consistent_reads_and_transactions_pass_through(dax, aws_client, table):
    dax.get_item(TableName=table, Key=key())  # caches "not found"
    aws_client("dynamodb").put_item(TableName=table, Item=item(7))
    assert dax.get_item(TableName=table, Key=key(), ConsistentRead=True)["Item"]["n"] == {"N": "7"}
    got = dax.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key()}}])
    assert got["Responses"][0]["Item"]["n"] == {"N": "7"}
    assert "Item" not in dax.get_item(TableName=table, Key=key())  # the item cache was left as it was


def test_dynamodb_errors_reach_the_client_unchanged(dax, table):
    dax.put_item(TableName=table, Item=item(1))
    with pytest.raises(dax.exceptions.ConditionalCheckFailedException):
        dax.put_item(TableName=table, Item=item(2), ConditionExpression="attribute_not_exists(pk)")
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "1"}


def test_cache_down_refuses_connections_and_cache_up_comes_back_cold(dax, table, stand_in):
    from botocore.exceptions import EndpointConnectionError

    dax.put_item(TableName=table, Item=item(1))
    stand_in.cache_down()
    with pytest.raises(EndpointConnectionError):
        dax.get_item(TableName=table, Key=key())
    stand_in.cache_up()
    assert len(stand_in.semantics.items) == 0
    assert dax.get_item(TableName=table, Key=key())["Item"]["n"] == {"N": "1"}
