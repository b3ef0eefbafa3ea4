"""The replication stand-in against real moto streams (devstack.replicator on the embedded AWS, in process):
changes and deletes cross regions, pause and region-down queue them, and nothing is lost."""
from __future__ import annotations

import itertools

import pytest

from devstack.chaos import ChaosFlags
from devstack.replicator import Replicator, make_client_factory

REGIONS = ("us-east-1", "eu-west-1")


def streamed_table(dynamodb, table: str) -> str:
    """A ``pk``-keyed table with a NEW_AND_OLD_IMAGES stream (as the global tables have); its stream ARN."""
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]


@pytest.fixture
def two_regions(moto_server, unique_name, tmp_path):
    """One table with a stream in each region, and a replicator (lag 0) between them, ticked by hand."""
    client = make_client_factory(moto_server)
    table = unique_name("replicated")
    for region in REGIONS:
        streamed_table(client("dynamodb", region), table)
    flags = ChaosFlags(tmp_path / "chaos")
    replicator = Replicator(REGIONS, [table], client, lag_seconds=0.0, flags=flags)
    replicator.MIN_IDLE_SECONDS = replicator.MAX_IDLE_SECONDS = 0.0
    return replicator, client, table, flags


def item(client, region, table, pk):
    found = client("dynamodb", region).get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
    return found.get("Item", {}).get("v", {}).get("S")


def settle(replicator, ticks=4):
    for _ in range(ticks):
        replicator.tick()


def test_a_write_in_either_region_appears_in_the_other_and_is_not_sent_back(two_regions):
    replicator, client, table, _ = two_regions
    client("dynamodb", "us-east-1").put_item(TableName=table, Item={"pk": {"S": "a"}, "v": {"S": "from-us"}})
    client("dynamodb", "eu-west-1").put_item(TableName=table, Item={"pk": {"S": "b"}, "v": {"S": "from-eu"}})
    settle(replicator)
    assert [item(client, r, table, k) for r, k in itertools.product(REGIONS, "ab")] == ["from-us", "from-eu"] * 2
    assert replicator.status()["backlog"] == 0
    assert replicator.status()["lag_ms"]["count"] == 2  # one apply each way, no echoes


def test_a_delete_replicates(two_regions):
    replicator, client, table, _ = two_regions
    client("dynamodb", "us-east-1").put_item(TableName=table, Item={"pk": {"S": "gone"}, "v": {"S": "x"}})
    settle(replicator)
    client("dynamodb", "eu-west-1").delete_item(TableName=table, Key={"pk": {"S": "gone"}})
    settle(replicator)
    assert item(client, "us-east-1", table, "gone") is None


def test_changes_made_while_paused_or_while_the_target_is_down_all_arrive_afterwards(two_regions):
    replicator, client, table, flags = two_regions
    flags.set_replication_paused(True)
    for n in range(5):
        client("dynamodb", "us-east-1").put_item(TableName=table, Item={"pk": {"S": f"p{n}"}, "v": {"S": "1"}})
    settle(replicator)
    assert item(client, "eu-west-1", table, "p0") is None
    flags.set_replication_paused(False)
    flags.set_region_down("eu-west-1", True)  # the target refuses requests signed for it
    settle(replicator)
    flags.set_region_down("eu-west-1", False)
    settle(replicator)
    assert [item(client, "eu-west-1", table, f"p{n}") for n in range(5)] == ["1"] * 5
    assert replicator.status()["backlog"] == 0


def test_changes_after_a_cancelled_transaction_still_replicate(two_regions):
    # moto restores a deep copy of the table (stream shard included) when a transaction is cancelled
    replicator, client, table, _ = two_regions
    us = client("dynamodb", "us-east-1")
    us.put_item(TableName=table, Item={"pk": {"S": "edge"}, "v": {"S": "1"}})
    settle(replicator)
    with pytest.raises(us.exceptions.TransactionCanceledException):
        us.transact_write_items(TransactItems=[{"Put": {
            "TableName": table, "Item": {"pk": {"S": "edge"}, "v": {"S": "2"}},
            "ConditionExpression": "attribute_not_exists(pk)"}}])
    us.put_item(TableName=table, Item={"pk": {"S": "after"}, "v": {"S": "3"}})
    settle(replicator)
    assert item(client, "eu-west-1", table, "after") == "3"


def test_media_objects_are_copied_both_ways_and_deletes_follow_where_the_rule_says(moto_server, unique_name):
    from devstack.replicator import BucketCopier

    client = make_client_factory(moto_server)
    buckets = {}
    for region in REGIONS:
        buckets[region] = unique_name(f"media-{region}")
        extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        client("s3", region).create_bucket(Bucket=buckets[region], **extra)
    copier = BucketCopier({r: client("s3", r) for r in REGIONS}, buckets, [("media/", True), ("keep/", False)])
    us, eu = client("s3", "us-east-1"), client("s3", "eu-west-1")
    us.put_object(Bucket=buckets["us-east-1"], Key="media/a.jpg", Body=b"a")
    eu.put_object(Bucket=buckets["eu-west-1"], Key="keep/b.jpg", Body=b"b")
    us.put_object(Bucket=buckets["us-east-1"], Key="other/c.jpg", Body=b"c")
    copier.sync(frozenset(), lag_seconds=0.0)
    assert eu.get_object(Bucket=buckets["eu-west-1"], Key="media/a.jpg")["Body"].read() == b"a"
    assert us.get_object(Bucket=buckets["us-east-1"], Key="keep/b.jpg")["Body"].read() == b"b"
    assert "Contents" not in eu.list_objects_v2(Bucket=buckets["eu-west-1"], Prefix="other/")
    eu.delete_object(Bucket=buckets["eu-west-1"], Key="media/a.jpg")
    us.delete_object(Bucket=buckets["us-east-1"], Key="keep/b.jpg")
    copier.sync(frozenset(), lag_seconds=0.0)
    assert "Contents" not in us.list_objects_v2(Bucket=buckets["us-east-1"], Prefix="media/")
    assert eu.list_objects_v2(Bucket=buckets["eu-west-1"], Prefix="keep/")["KeyCount"] == 1  # deletes not replicated


def test_the_event_pumps_stream_poller_sees_records_written_after_a_cancelled_transaction(moto_server, unique_name):
    # moto puts back a deep copy of the table (stream shard included) when it cancels a transaction;
    # the embedded AWS keeps the live table (devstack.moto_dynamodb), so later records are on its shard.
    from devstack.event_pump import StreamTail

    client = make_client_factory(moto_server)
    dynamodb, table = client("dynamodb", "us-east-1"), unique_name("tail")
    arn = streamed_table(dynamodb, table)
    tail = StreamTail(client("dynamodbstreams", "us-east-1"), arn)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "before"}})
    shard, first = tail.next_batch(10)
    tail.acknowledge(shard, len(first))
    # A cancelled transaction, then a write
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[{"Put": {
            "TableName": table, "Item": {"pk": {"S": "before"}}, "ConditionExpression": "attribute_not_exists(pk)"}}])
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "after"}})
    _, later = tail.next_batch(10)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first] == ["before"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in later] == ["after"]


def test_a_restarted_stream_poller_resumes_after_its_last_acknowledged_record(moto_server, unique_name, tmp_path):
    # Lambda's mapping keeps its checkpoint when a function crashes: a restarted local pump must not
    # replay the stream from its start (an erased counter's records would recreate its total).
    from devstack.event_pump import StreamTail

    client = make_client_factory(moto_server)
    dynamodb, table = client("dynamodb", "us-east-1"), unique_name("ckpt")
    arn = streamed_table(dynamodb, table)
    streams, checkpoints = client("dynamodbstreams", "us-east-1"), tmp_path / "checkpoints.json"
    for pk in ("a", "b"):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}})
    first = StreamTail(streams, arn, checkpoint_file=checkpoints)
    shard, batch = first.next_batch(10)
    first.acknowledge(shard, 1)  # "a" done, "b" failed: redelivered after the restart
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "c"}})
    _, resumed = StreamTail(streams, arn, checkpoint_file=checkpoints).next_batch(10)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in batch] == ["a", "b"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in resumed] == ["b", "c"]


def test_records_of_a_transaction_cancelled_between_a_readers_two_requests_are_never_read(moto_server, unique_name):
    # A stream read is GetShardIterator, then GetRecords: the embedded AWS serialises requests, not pairs.
    client = make_client_factory(moto_server)
    dynamodb, streams, table = client("dynamodb", "us-east-1"), client("dynamodbstreams", "us-east-1"), unique_name("gap")
    arn = streamed_table(dynamodb, table)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "edge"}})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    # A transaction whose first write ran before its second was refused, then a committed write
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "phantom"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "edge"}}, "ConditionExpression": "attribute_not_exists(pk)"}}])
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "after"}})
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["after"]
