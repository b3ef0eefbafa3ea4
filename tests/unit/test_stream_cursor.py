"""devstack.streams.StreamCursor: the one stream reader of the event pump and the replicator."""
from __future__ import annotations

import time

from devstack.streams import StreamCursor

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/label"


class FakeStreams:
    """DynamoDB Streams with shards of records numbered from 1 (an iterator is its start position)."""

    def __init__(self, shards: dict[str, int]) -> None:
        self.records = {shard: [str(n) for n in range(1, count + 1)] for shard, count in shards.items()}

    def write(self, shard: str) -> None:
        self.records.setdefault(shard, []).append(str(len(self.records[shard]) + 1))

    def describe_stream(self, StreamArn: str) -> dict:  # noqa: N803 (boto3's names)
        return {"StreamDescription": {"Shards": [{"ShardId": shard} for shard in self.records]}}

    def get_shard_iterator(self, StreamArn: str, ShardId: str, ShardIteratorType: str,  # noqa: N803
                           SequenceNumber: str | None = None) -> dict:
        start = 0 if ShardIteratorType == "TRIM_HORIZON" else int(SequenceNumber)
        return {"ShardIterator": (ShardId, start)}

    def get_records(self, ShardIterator: tuple[str, int], Limit: int) -> dict:  # noqa: N803
        shard, start = ShardIterator
        return {"Records": [{"dynamodb": {"SequenceNumber": n}} for n in self.records[shard][start:start + Limit]]}


def numbers(records: list[dict]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def test_each_read_returns_the_records_after_the_last_one_read_in_every_shard():
    streams = FakeStreams({"a": 2, "b": 1})
    cursor = StreamCursor(streams, ARN)
    assert numbers(cursor.read_all()) == ["1", "2", "1"]
    streams.write("a")
    assert numbers(cursor.read_all()) == ["3"]
    assert cursor.last == {"a": "3", "b": "1"}


def test_a_cursor_resumes_after_saved_positions_and_reads_new_shards_from_the_start():
    streams = FakeStreams({"a": 3})
    cursor = StreamCursor(streams, ARN, {"a": "2"})
    assert cursor.refresh() == []
    streams.write("b")
    assert cursor.refresh() == ["b"]
    assert numbers(cursor.read("a")) == ["3"] and numbers(cursor.read("b")) == ["1"]


def test_read_through_moves_only_when_a_read_reached_the_end_of_every_shard():
    streams = FakeStreams({"a": 3, "b": 1})
    cursor = StreamCursor(streams, ARN)
    assert cursor.read_through == 0.0
    cursor.read_all(limit=2)  # shard a had more than the limit: not read through
    assert cursor.read_through == 0.0
    before = time.time()
    cursor.read_all(limit=2)
    assert cursor.read_through >= before
