"""Sharded counters that stay exact under hot keys and multi-region replication.

A counter is ``shards`` items per region (see :mod:`chalicelib.keys`). An increment ADDs to one
shard of the writer's own region; a read sums all shards of all regions in one BatchGetItem.
Resharding only ever raises the shard count, so every shard ever written stays in the sum and no
count is lost.
"""
from __future__ import annotations

import random

from pynamodb.exceptions import UpdateError

from chalicelib import cache, ddb, keys
from chalicelib.models import CounterRecord, bound, reading
from chalicelib.settings import get_settings

#: The counter kinds (users' followers, following and photos; photos' likes).
FOLLOWERS, FOLLOWING, PHOTOS, LIKES = "followers", "following", "photos", "likes"


def regions() -> tuple[str, ...]:
    """The regions whose shards a read must include (all regions the app has ever written in)."""
    settings = get_settings()
    return settings.active_regions or (settings.region,)


def shard_count(kind: str, entity: str, fresh: bool = False) -> int:
    """How many shards per region the counter is spread over (default from settings).

    Cached (kind ``shard_count``, "no meta item" included) unless ``fresh``: a reader that must
    see every shard written so far (the fan-out worker walking followers shards) asks for ``fresh``.
    """
    meta_id = keys.counter_meta_id(kind, entity)
    if fresh:
        shards = _load_shard_counts([meta_id])[meta_id]
    else:
        shards = cache.shared.get("shard_count", meta_id, lambda: _load_shard_counts([meta_id])[meta_id])
    return shards or get_settings().counter_default_shards


def _load_shard_counts(meta_ids: list) -> dict:
    """``meta_id -> shards`` (None where the counter has no meta item) in one BatchGetItem."""
    found = dict.fromkeys(meta_ids)
    for record in reading(CounterRecord).batch_get(list(meta_ids), attributes_to_get=["counter_id", "shards"]):
        found[record.counter_id] = int(record.shards) if record.shards else None
    return found


def increment_action(kind: str, entity: str, delta: int = 1, shards: int | None = None):
    """A PynamoDB update on one random shard of the caller's region, for the repositories' transactions
    (``tx.update(item, actions=actions)``; call :func:`applied` once the transaction has committed)."""
    count = shards if shards is not None else shard_count(kind, entity)
    shard = random.randrange(count)
    item = bound(CounterRecord)(keys.counter_shard_id(kind, entity, get_settings().region, shard))
    return item, [CounterRecord.n.add(delta)]


def applied(kind: str, entity: str, delta: int) -> None:
    """This container's write changed the counter by ``delta``: its cached total follows at once."""
    cache.shared.update("counter", (kind, entity), lambda total: total + delta)


def increment(kind: str, entity: str, delta: int = 1) -> None:
    item, actions = increment_action(kind, entity, delta)
    item.update(actions=actions)
    applied(kind, entity, delta)


def read(kind: str, entity: str) -> int:
    """The total of a counter (sum of every shard in every region; cached up to the ``counter`` TTL)."""
    return read_totals([(kind, entity)])[(kind, entity)]


def read_totals(counters: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Totals of several ``(kind, entity)`` counters: cached ones, and for the rest at most two
    BatchGetItem round trips (shard counts not cached yet, then the shards)."""
    return cache.shared.get_many("counter", counters, _load_totals)


def _load_totals(counters: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    default = get_settings().counter_default_shards
    meta_ids = {keys.counter_meta_id(kind, entity): (kind, entity) for kind, entity in counters}
    shard_counts = {meta_ids[m]: shards or default
                    for m, shards in cache.shared.get_many("shard_count", meta_ids, _load_shard_counts).items()}
    owners: dict[str, tuple[str, str]] = {}
    for (kind, entity), count in shard_counts.items():
        for shard_id in keys.counter_shard_ids(kind, entity, regions(), count):
            owners[shard_id] = (kind, entity)
    totals = {counter: 0 for counter in counters}
    for record in reading(CounterRecord).batch_get(list(owners), attributes_to_get=["counter_id", "n"]):
        totals[owners[record.counter_id]] += int(record.n or 0)
    return totals


def reshard(kind: str, entity: str, shards: int) -> int:
    """Spread a counter over more shards (never fewer); returns the shard count in force."""
    model = bound(CounterRecord)
    meta = model(keys.counter_meta_id(kind, entity))
    try:
        meta.update(
            actions=[CounterRecord.shards.set(shards)],
            condition=CounterRecord.shards.does_not_exist() | (CounterRecord.shards < shards),
        )
    except UpdateError as exc:
        if not ddb.condition_failed(exc):
            raise
    cache.shared.drop("shard_count", keys.counter_meta_id(kind, entity))
    return shard_count(kind, entity)
