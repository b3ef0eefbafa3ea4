"""What the counter reconciliation job reads and keeps (``chalicelib.reconcile``).

- suspects (``GraphTable``, global): ``pk=suspects#{n}``, ``sk={kind}#{entity}``, ``created_at`` =
  when last noted. Noted by a region that accepted a write away from its home; cleared only if not
  noted again since it was read (a newer suspicion is never lost);
- edge counts: the exact count a counter should have, from its edges (followers shards, the
  following partition, a photo's likers, the owner's ready photos);
- the sweep's checkpoint (``JobsTable``, regional: the job runs in the primary region only), the
  counters table's scan position as JSON.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from pynamodb.exceptions import DeleteError

from chalicelib import aws, ddb, keys
from chalicelib.lifecycle import READY
from chalicelib.models import FanoutJobRecord, GraphEdgeRecord, PhotoRecord, bound
from chalicelib.repositories import counters
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING, LIKES, PHOTOS
from chalicelib.settings import get_settings


def note_suspects(suspects: Iterable[tuple[str, str]], noted_at: str) -> None:
    """Record counters to reconcile first (idempotent: noting again only moves ``created_at``)."""
    graph = bound(GraphEdgeRecord)
    for kind, entity in suspects:
        graph(keys.suspect_pk(kind, entity), keys.suspect_sk(kind, entity), created_at=noted_at).save()


def suspects(limit: int) -> list[tuple[str, str, str]]:
    """Up to ``limit`` noted suspects: ``(kind, entity, noted_at)`` (strongly consistent reads)."""
    graph = bound(GraphEdgeRecord)
    found: list[tuple[str, str, str]] = []
    for n in range(keys.SUSPECT_PARTITIONS):
        if len(found) >= limit:
            break
        for record in graph.query(f"suspects#{n}", limit=limit - len(found), consistent_read=True):
            kind, _, entity = record.sk.partition("#")
            found.append((kind, entity, record.created_at or ""))
    return found


def clear_suspect(kind: str, entity: str, noted_at: str) -> bool:
    """Forget a suspect reconciled as of ``noted_at``; False if it was noted again since (kept)."""
    item = bound(GraphEdgeRecord)(keys.suspect_pk(kind, entity), keys.suspect_sk(kind, entity))
    try:
        item.delete(condition=GraphEdgeRecord.created_at == noted_at)
    except DeleteError as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True


def edge_count(kind: str, entity: str) -> int:
    """What counter ``kind`` of ``entity`` must read, counted from its edges (strongly consistent)."""
    graph = bound(GraphEdgeRecord)
    if kind == FOLLOWERS:
        shards = counters.shard_count(FOLLOWERS, entity, fresh=True)
        return sum(graph.count(keys.followers_pk(entity, shard), consistent_read=True) for shard in range(shards))
    if kind == FOLLOWING:
        return graph.count(keys.following_pk(entity), consistent_read=True)
    if kind == LIKES:  # the likers mirror, in every likers shard (as many as the likes counter has)
        shards = counters.shard_count(LIKES, entity, fresh=True)
        return sum(graph.count(keys.likers_pk(entity, shard), consistent_read=True) for shard in range(shards))
    if kind == PHOTOS:
        return bound(PhotoRecord).by_owner.count(entity, filter_condition=PhotoRecord.status == READY)
    raise ValueError(f"no edges count counter kind {kind!r}")


def counter_page(start: dict | None, limit: int) -> tuple[list[tuple[str, str]], dict | None]:
    """The distinct counters among up to ``limit`` items of the counters table from ``start`` (a
    scan position), and the position after them (None when the scan is complete)."""
    settings = get_settings()
    request = {"TableName": settings.counters_table, "Limit": limit, "ProjectionExpression": "counter_id",
               "ConsistentRead": True}
    if start:
        request["ExclusiveStartKey"] = start
    answer = aws.client("dynamodb").scan(**request)
    found: dict[tuple[str, str], None] = {}
    for item in answer.get("Items", []):
        parsed = keys.parse_counter_item_id(item["counter_id"]["S"])
        if parsed is not None:
            found[parsed] = None
    return list(found), answer.get("LastEvaluatedKey")


def checkpoint() -> dict | None:
    """Where the last sweep of the counters table stopped (None: start from the beginning)."""
    model = bound(FanoutJobRecord)
    try:
        record = model.get(keys.RECONCILE_JOB_ID, consistent_read=True)
    except model.DoesNotExist:
        return None
    return json.loads(record.position) if record.position else None


def save_checkpoint(position: dict | None, updated_at: str) -> None:
    bound(FanoutJobRecord)(keys.RECONCILE_JOB_ID, status="sweeping" if position else "complete",
                           position=json.dumps(position) if position else None, updated_at=updated_at).save()


def shard_sum(kind: str, entity: str) -> int:
    """The counter's stored total: every shard of every region, read strongly consistent here
    (not through the counters' read path or its cache: the job compares the items themselves)."""
    from chalicelib.models import CounterRecord

    shards = counters.shard_count(kind, entity, fresh=True)
    ids = keys.counter_shard_ids(kind, entity, counters.regions(), shards)
    return sum(int(r.n or 0) for r in bound(CounterRecord).batch_get(ids, consistent_read=True,
                                                                     attributes_to_get=["counter_id", "n"]))
