"""One reader of DynamoDB streams for the local stand-ins (dev-only): the event pump's poller
(:class:`devstack.event_pump.StreamTail`) and the replicator (:class:`devstack.replicator.StreamReader`).

It keeps, per shard, the last sequence number read, and each read asks for a fresh iterator after it
(``AFTER_SEQUENCE_NUMBER``; ``TRIM_HORIZON`` for a shard not read yet) instead of following
``NextShardIterator``: the reader's whole state is one sequence number per shard, which a poller can
save and resume from (Lambda's mapping keeps its checkpoint across restarts), and no iterator can
expire between reads (AWS's expire after 15 minutes). One extra request per read.

(The fresh iterator is not what keeps moto's cancelled transactions out of a reader's way: the
iterator and the records are two requests; :mod:`devstack.moto_dynamodb` does that.)
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

#: GetRecords' own maximum.
MAX_RECORDS = 1000


class StreamCursor:
    """Where a reader is in one stream: ``last`` maps each shard to the last sequence number read
    (None: from the start). ``read_through`` (epoch s, 0 until then) is when the latest :meth:`read_all`
    that reached the end of every shard began: every record written before it has been read."""

    def __init__(self, streams: Any, stream_arn: str, positions: Mapping[str, str | None] | None = None) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.last: dict[str, str | None] = dict(positions or {})
        self.read_through = 0.0

    def refresh(self) -> list[str]:
        """Learn the stream's shards (``DescribeStream``; new ones are read from the start); returns
        the shards that were new."""
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        new = [s["ShardId"] for s in description.get("Shards", []) if s["ShardId"] not in self.last]
        for shard_id in new:
            self.last[shard_id] = None
        return new

    def read(self, shard_id: str, limit: int = MAX_RECORDS) -> list[dict[str, Any]]:
        """Up to ``limit`` records of ``shard_id`` after the last one read, through a fresh iterator."""
        last = self.last[shard_id]
        position = ({"ShardIteratorType": "TRIM_HORIZON"} if last is None else
                    {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last})
        iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id,
                                                   **position)["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator, Limit=limit).get("Records", [])
        if records:
            self.last[shard_id] = max((r["dynamodb"]["SequenceNumber"] for r in records), key=int)
        return records

    def read_all(self, limit: int = MAX_RECORDS) -> list[dict[str, Any]]:
        """One read of every shard (learning the shards first if none is known yet), in shard order."""
        if not self.last:
            self.refresh()
        started = time.time()
        records: list[dict[str, Any]] = []
        complete = True
        for shard_id in list(self.last):
            got = self.read(shard_id, limit)
            complete = complete and len(got) < limit
            records.extend(got)
        if complete:
            self.read_through = started
        return records
