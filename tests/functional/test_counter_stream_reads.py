"""The event pump's stream reader and the aggregator, on the records moto streams (issues 9 and 10).

A stream read takes two requests (``GetShardIterator``, then ``GetRecords``); the embedded AWS
serialises requests, not pairs of them, so a cancelled transaction (a retried follow) can run in
between. These tests run exactly that interleaving on in-process moto, with the pump's own
:class:`devstack.event_pump.StreamTail` reading through moto's DynamoDB Streams backend (the code moto's
server runs; its in-process Streams API answers "Not yet implemented").
"""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodbstreams.models import dynamodbstreams_backends

from chalicelib import aggregator, aws, keys
from chalicelib.repositories import counters, graph
from chalicelib.settings import get_settings
from devstack.event_pump import StreamTail, build_stream_event

REGION = "us-east-1"
CREATED_AT = "2026-12-02T07:00:00.000Z"


class BackendStreams:
    """The three DynamoDB Streams calls :class:`StreamTail` makes, answered by moto's backend;
    ``between`` runs once between the next ``GetShardIterator`` and its ``GetRecords`` (another
    request served in that gap)."""

    def __init__(self, region: str) -> None:
        self.backend = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][region]
        self.between: Callable[[], Any] | None = None

    def describe_stream(self, StreamArn: str) -> dict:  # noqa: N803 (boto3's parameter names)
        return {"StreamDescription": self.backend.describe_stream(StreamArn)}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,  # noqa: N803
                           SequenceNumber: str | None = None) -> dict:
        iterator = self.backend.get_shard_iterator(StreamArn, ShardId, ShardIteratorType,
                                                   int(SequenceNumber) if SequenceNumber else None)
        between, self.between = self.between, None
        if between is not None:
            between()
        return {"ShardIterator": iterator.arn}

    def get_records(self, ShardIterator: str, Limit: int) -> dict:  # noqa: N803
        return self.backend.get_records(ShardIterator, Limit)


def aggregate(tail: StreamTail, stream_arn: str) -> None:
    """One delivery of the pump: the next batch to the aggregator, acknowledged as it answers."""
    shard_id, records = tail.next_batch(aggregator.BATCH_SIZE)
    if not records:
        return
    answer = aggregator.handle_stream(build_stream_event(records, stream_arn=stream_arn), region=REGION)
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    tail.acknowledge(shard_id, next((i for i, r in enumerate(records)
                                     if r["dynamodb"]["SequenceNumber"] in failed), len(records)))


def stored(kind: str, entity: str) -> tuple[int, int]:
    """``(the region's #total, the sum of its shards)`` of a counter, read consistently."""
    client = aws.client("dynamodb")

    def n(counter_id: str) -> int:
        item = client.get_item(TableName=get_settings().counters_table, ConsistentRead=True,
                               Key={"counter_id": {"S": counter_id}}).get("Item", {})
        return int(item.get("n", {}).get("N", 0))

    shards = counters.shard_count(kind, entity, fresh=True)
    return (n(keys.counter_total_id(kind, entity, REGION)),
            sum(n(keys.counter_shard_id(kind, entity, REGION, s)) for s in range(shards)))


def test_a_follow_retried_between_the_readers_two_requests_is_neither_counted_nor_hides_the_next(
        api_env, counter_stream):
    # GIVEN the pump's reader on the counters stream, caught up with a first follow (the harness that
    # delivers the stream before every counter read is switched off: this reader is the only one)
    counter_stream.delivering = True
    star, fan, later_fan = (f"u_{uuid.uuid4().hex[:10]}" for _ in range(3))
    stream_arn = aws.client("dynamodb").describe_table(TableName=api_env["CountersTable"])["Table"]["LatestStreamArn"]
    streams = BackendStreams(REGION)
    tail = StreamTail(streams, stream_arn)
    assert graph.follow(fan, star, CREATED_AT) is not None
    aggregate(tail, stream_arn)
    # WHEN the fan's follow is retried (a cancelled transaction: already following) between the reader's
    # GetShardIterator and GetRecords, and then another fan follows
    streams.between = lambda: graph.follow(fan, star, CREATED_AT)
    aggregate(tail, stream_arn)
    assert graph.follow(later_fan, star, CREATED_AT) is not None
    aggregate(tail, stream_arn)
    # THEN every total is its shards' sum: nothing of the cancelled follow counted, the next follow counted
    assert stored("followers", star) == (2, 2)
    assert stored("following", fan) == (1, 1)
    assert stored("following", later_fan) == (1, 1)
