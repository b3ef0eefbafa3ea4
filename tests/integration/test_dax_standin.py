"""The local DAX stand-in (devstack/dax_proxy.py) has DAX's semantics, seen through the ordinary DynamoDB client.

A simulated clock drives the TTLs (no sleeping, no timing assertions); the embedded AWS behind it
is the session's moto server, written to directly to play a writer that bypasses DAX. The last test
reads through the app's own data seam (``DAX_ENDPOINT`` = the stand-in): the pulled celebrity
timeline on the query cache, the owner's own page straight from DynamoDB.
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


@pytest.fixture
def app_through_stand_in(moto_server, aws_client, unique_name, stand_in, monkeypatch):
    """The app's data seam in a stage with a cache tier: DAX_ENDPOINT is the stand-in, the photos table
    (with its ``by_owner`` index, from the model) on the embedded AWS behind it."""
    from chalicelib import aws, cache, settings
    from chalicelib.models import PhotoRecord

    for name in settings._REQUIRED.values():
        monkeypatch.setenv(name, unique_name(name.lower()))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("PHOTOSCALE_AWS_ENDPOINT", moto_server)
    monkeypatch.setenv("DAX_ENDPOINT", f"http://127.0.0.1:{stand_in.port}")
    settings.reset_settings()
    aws.reset()
    cache.reset()
    from chalicelib.models import bound

    bound(PhotoRecord).create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    yield bound(PhotoRecord)
    settings.reset_settings()
    aws.reset()
    cache.reset()


def test_a_celebritys_pulled_page_is_served_by_the_query_cache_and_their_own_page_is_not(app_through_stand_in,
                                                                                          stand_in):
    from chalicelib import cache
    from chalicelib.repositories import photos

    model = app_through_stand_in

    def post(n: int) -> str:
        photo_id = f"p{n}"
        model(photo_id, owner="star", owner_sort=f"2026-01-01T00:00:0{n}.000Z#{photo_id}", status="ready",
              content_type="image/jpeg", declared_size=1, created_at=f"2026-01-01T00:00:0{n}.000Z").save()
        return photo_id

    def pulled() -> list[str]:
        cache.reset()  # a container that has not read it yet: the in-process cache is not what is tested
        return [p.photo_id for p in photos.ready_before("star", None, 20, for_owner=False)]

    # Given a celebrity's photo, pulled once into a follower's feed (through the stand-in's query cache)
    first = post(1)
    assert pulled() == [first]
    # When the celebrity posts again (a write that never invalidates the query cache)
    second = post(2)
    # Then other readers get the cached page until the query TTL, the celebrity their own at once
    assert pulled() == [first]
    assert [p.photo_id for p in photos.ready_before("star", None, 20, for_owner=True)] == [second, first]
    stand_in.clock.now += QUERY_TTL
    assert pulled() == [second, first]
