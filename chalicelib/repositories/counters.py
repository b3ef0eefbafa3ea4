"""Sharded counters that stay exact under hot keys and multi-region replication, read in O(regions).

A counter is ``shards`` items per region (see :mod:`chalicelib.keys`). An increment ADDs to one
shard of the writer's own region (and ADDs 1 to the shard's ``version``). The stream aggregator
(:mod:`chalicelib.aggregator`) keeps one ``#total`` item per counter and region: the sum of that
region's shards, with the version of each part it has applied (``s{shard}``; above
``keys.COUNTER_DIRECT_SHARDS`` shards, blocks of shards are summed into group subtotal items first,
``g{group}``, each versioned like a shard), so a redelivered or reordered stream record never counts
twice. A read BatchGets the totals of every region: one item
per region, whatever the shard count. Resharding only ever raises the shard count, every shard ever
written stays in its region's total, and no count is lost.

Totals trail the shards by the aggregator's delay (stream + batching window, ``docs/caching.md``);
the writer's own container applies its delta to its cached total at once (:func:`applied`).
"""
from __future__ import annotations

import random

from pynamodb.exceptions import UpdateError

from chalicelib import aws, cache, ddb, keys
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
    return _load_metas_and_totals(meta_ids, [])[0]


def increment_action(kind: str, entity: str, delta: int = 1, shards: int | None = None):
    """A PynamoDB update on one random shard of the caller's region, for the repositories' transactions
    (``tx.update(item, actions=actions)``; call :func:`applied` once the transaction has committed)."""
    count = shards if shards is not None else shard_count(kind, entity)
    shard = random.randrange(count)
    item = bound(CounterRecord)(keys.counter_shard_id(kind, entity, get_settings().region, shard))
    return item, [CounterRecord.n.add(delta), CounterRecord.version.add(1)]


def applied(kind: str, entity: str, delta: int) -> None:
    """This container's write changed the counter by ``delta``: its cached total follows at once."""
    cache.shared.update("counter", (kind, entity), lambda total: total + delta)


def increment(kind: str, entity: str, delta: int = 1) -> None:
    item, actions = increment_action(kind, entity, delta)
    item.update(actions=actions)
    applied(kind, entity, delta)


def read(kind: str, entity: str) -> int:
    """The total of a counter (its regions' totals; cached up to the ``counter`` TTL)."""
    return read_totals([(kind, entity)])[(kind, entity)]


def read_totals(counters: list[tuple[str, str]], fresh: bool = False) -> dict[tuple[str, str], int]:
    """Totals of several ``(kind, entity)`` counters: cached ones, and for the rest one BatchGetItem
    of one ``#total`` item per counter and region (``fresh``: all of them read, none from the cache:
    a user's own counts)."""
    return cache.shared.get_many("counter", counters, _load_totals, fresh=fresh)


def prepare_write(kind: str, entity: str) -> int:
    """Before a counted write whose response shows the count: the shard count for the write, with the
    counter's total in the cache (so :func:`applied` turns it into the exact post-write value).
    Whatever of the two is not cached comes in one BatchGetItem (the ``#meta`` item and the totals)."""
    return prepare_writes([(kind, entity)])[(kind, entity)]


def prepare_writes(shown: list[tuple[str, str]],
                   written: list[tuple[str, str]] = ()) -> dict[tuple[str, str], int]:
    """Before one write that counts several counters: each counter's shard count (``shown`` and
    ``written``), and the totals of the ``shown`` ones in the cache (the response, or a policy, reads
    them after the write; :func:`applied` makes them exact). What is not cached of all of it comes in
    one BatchGetItem: the missing ``#meta`` items and the missing totals' ``#total`` items."""
    meta_ids = {counter: keys.counter_meta_id(*counter) for counter in dict.fromkeys((*shown, *written))}
    shards: dict[str, int | None] = {}

    def load_shards(missing_totals: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The shard counts, the missing ones read with ``missing_totals`` (one BatchGetItem)."""
        totals: dict[tuple[str, str], int] = {}

        def load(missing_meta: list[str]) -> dict[str, int | None]:
            found, found_totals = _load_metas_and_totals(missing_meta, missing_totals)
            totals.update(found_totals)
            return found

        shards.update(cache.shared.get_many("shard_count", list(meta_ids.values()), load))
        return totals

    def load_totals(missing_totals: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        totals = load_shards(missing_totals)
        # every shard count was cached: the totals alone
        return totals if len(totals) == len(missing_totals) else _load_totals(missing_totals)

    cache.shared.get_many("counter", list(dict.fromkeys(shown)), load_totals)
    if not shards:  # every total was cached
        load_shards([])
    default = get_settings().counter_default_shards
    return {counter: shards.get(meta_id) or default for counter, meta_id in meta_ids.items()}


def _load_metas_and_totals(meta_ids: list[str], counters: list[tuple[str, str]]
                           ) -> tuple[dict[str, int | None], dict[tuple[str, str], int]]:
    """Shard counts (None: no meta item) and totals, in one BatchGetItem."""
    owners: dict[str, tuple[str, str]] = {}
    for kind, entity in counters:
        for total_id in keys.counter_total_ids(kind, entity, regions()):
            owners[total_id] = (kind, entity)
    shards: dict[str, int | None] = dict.fromkeys(meta_ids)
    totals = {counter: 0 for counter in counters}
    ids = list(dict.fromkeys([*meta_ids, *owners]))
    for record in reading(CounterRecord).batch_get(ids, attributes_to_get=["counter_id", "shards", "n"]):
        if record.counter_id in shards:
            shards[record.counter_id] = int(record.shards) if record.shards else None
        else:
            totals[owners[record.counter_id]] += int(record.n or 0)
    return shards, totals


def _load_totals(counters: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Totals of ``counters`` (one ``#total`` item per counter and region) in one BatchGetItem."""
    return _load_metas_and_totals([], counters)[1]


# --- the aggregator's side: one region's totals from its shards' stream records -----------------

def apply_to_total(total_id: str, delta: int, versions: dict[str, tuple[int, int | None]]) -> bool:
    """Add ``delta`` to the parent ``total_id`` (a total or a group) and move each part's applied
    version ``old -> new`` (None: the part item was deleted), all or nothing; False (nothing changed)
    if any part's applied version is not ``old`` (0: none yet). One conditional UpdateItem; a group
    also ADDs 1 to its own ``version`` (its change is a versioned record for its total)."""
    names = {"#n": "n"}
    values: dict = {":d": {"N": str(delta)}}
    adds = ["#n :d"]
    if keys.is_counter_group_id(total_id):
        names["#version"] = "version"
        values[":one"] = {"N": "1"}
        adds.append("#version :one")
    sets, removes, conditions = [], [], []
    for part, (old, new) in sorted(versions.items()):
        names[f"#{part}"] = part
        if old:
            values[f":o{part}"] = {"N": str(old)}
            conditions.append(f"#{part} = :o{part}")
        else:
            conditions.append(f"attribute_not_exists(#{part})")
        if new is None:
            removes.append(f"#{part}")
        else:
            values[f":v{part}"] = {"N": str(new)}
            sets.append(f"#{part} = :v{part}")
    expression = f"ADD {', '.join(adds)}" + (f" SET {', '.join(sets)}" if sets else "") + \
        (f" REMOVE {', '.join(removes)}" if removes else "")
    try:
        aws.client("dynamodb").update_item(
            TableName=get_settings().counters_table, Key={"counter_id": {"S": total_id}},
            UpdateExpression=expression, ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names, ExpressionAttributeValues=values)
    except Exception as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True


def items_exist(counter_ids: list[str]) -> set[str]:
    """Which of ``counter_ids`` exist now (one strongly consistent read each; the aggregator's rare
    out-of-order path only)."""
    client = aws.client("dynamodb")
    return {counter_id for counter_id in counter_ids if client.get_item(
        TableName=get_settings().counters_table, Key={"counter_id": {"S": counter_id}}, ConsistentRead=True,
        ProjectionExpression="counter_id").get("Item")}


def drop_total_if_emptied(total_id: str) -> bool:
    """Delete the parent ``total_id`` (a total or a group) if its parts are all gone and it counts 0
    (an erased counter whose parts' deletions the aggregator has just applied); True if it was
    deleted (a group's deletion is in turn applied to its total)."""
    client = aws.client("dynamodb")
    item = client.get_item(TableName=get_settings().counters_table, Key={"counter_id": {"S": total_id}},
                           ConsistentRead=True).get("Item")
    if not item or int(item.get("n", {}).get("N", 0)) != 0 or any(_is_part_attribute(name) for name in item):
        return False
    try:
        client.delete_item(TableName=get_settings().counters_table, Key={"counter_id": {"S": total_id}},
                           ConditionExpression="#n = :zero", ExpressionAttributeNames={"#n": "n"},
                           ExpressionAttributeValues={":zero": {"N": "0"}})
    except Exception as exc:
        if ddb.condition_failed(exc):
            return False
        raise
    return True


def _is_part_attribute(name: str) -> bool:
    """A parent's attribute holding a part's applied version (``s{shard}``, ``g{group}``)."""
    return name[:1] in ("s", "g") and name[1:].isdigit()


def applied_version(total_id: str, part: str) -> int:
    """The version of ``part`` (``s{shard}`` | ``g{group}``) that the parent ``total_id`` has
    applied (0: none; consistent read)."""
    found = aws.client("dynamodb").get_item(
        TableName=get_settings().counters_table, Key={"counter_id": {"S": total_id}}, ConsistentRead=True,
        ProjectionExpression="#p", ExpressionAttributeNames={"#p": part}).get("Item", {})
    return int(found.get(part, {}).get("N", 0))


def reshard(kind: str, entity: str, shards: int) -> int:
    """Spread a counter over more shards (never fewer); returns the shard count in force.

    Only the primary region reshards: the ``#meta`` item is one item per counter, and a global
    table resolves concurrent writes by last writer wins, so two regions raising it at once could
    leave the lower count, and a read would then skip the shards above it. With one writer the
    count never goes down; elsewhere the counter keeps its current shards (still exact, just
    hotter) until the primary's next boundary check raises them."""
    if not get_settings().is_primary:
        return shard_count(kind, entity, fresh=True)
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
