"""The counter aggregator: one ``#total`` item per counter and region, kept from the shards' stream.

``@app.on_dynamodb_record`` on the counters table's stream (NEW_AND_OLD_IMAGES) hands this module
batches of shard changes. For each change of a *part* **of this function's own region** (a global
table's stream also carries the writes replicated from other regions: their own region's aggregator
counts them) its *parent* moves by ``NEW.n - OLD.n``, and the parent records the part's ``version``
it has applied (attribute ``s{shard}`` or ``g{group}``; every increment ADDs 1 to a shard's version,
every update of a group ADDs 1 to the group's). Parts and parents (:func:`keys.parse_counter_part_id`):

- shards ``0 .. keys.COUNTER_DIRECT_SHARDS - 1`` are summed straight into the region's total;
- each further block of ``keys.COUNTER_GROUP_SHARDS`` shards into a group subtotal item
  (``#g{k}``), itself a versioned part of the total: its stream records are summed the same way.

So a hot counter's total stays small (1 WCU per write: at most 32 shard and 15 group versions at
512 shards, not 512) and is written by at most that many stream shards per batching window, and a
group by at most 32, however the table's partitions spread the shards. The update is conditional
on the parent holding the record's OLD version, so

- a redelivered record (Lambda retries a batch from its first failure) finds its NEW version
  applied and is skipped: nothing is counted twice;
- a record whose predecessor is not applied yet (reordered) fails and is retried, so nothing is
  counted out of order or lost;
- a shard item written before versions existed (OLD without ``version``) adds its whole NEW value.

A batch is coalesced: one UpdateItem per parent (up to :data:`MAX_SHARDS_PER_UPDATE` parts' chains
of consecutive versions), so a celebrity's total takes a few writes per second however many
follows arrive. When a coalesced update's condition fails (part of the batch was applied before),
its records are applied one by one. Failures are reported per record (``ReportBatchItemFailures``,
the stream's rule: the first failed record's sequence number; Lambda retries from there).

Not Powertools' ``BatchProcessor``: it hands the handler one record at a time, and coalescing needs
the whole batch. The response has its ``PartialItemFailureResponse`` shape.

Exactness delay: a shard change reaches its total within the stream's propagation (typically well
under a second) plus the mapping's batching window (:data:`BATCH_WINDOW_SECONDS`); a shard of a
group (counters of more than ``keys.COUNTER_DIRECT_SHARDS`` shards) takes that twice.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import keys
from chalicelib.observability import logger, metrics
from chalicelib.repositories import counters
from chalicelib.settings import get_settings

#: The event source mapping's batch (records) and batching window (seconds), read by app.py.
BATCH_SIZE = 1000
BATCH_WINDOW_SECONDS = 1
#: Parts (shards, groups) per conditional UpdateItem (keeps the expression well inside DynamoDB's 4 KB limit).
MAX_SHARDS_PER_UPDATE = 50


class OutOfOrder(RuntimeError):
    """A record's predecessor (its OLD version) is not applied yet: retry it later."""


@dataclass(frozen=True)
class ShardChange:
    """One stream record of a part (shard or group) of this region: the parent it moves (a total or a
    group) and the version step."""

    index: int  # position in the batch
    total_id: str  # the parent item
    part: str  # the parent's attribute holding the part's applied version: s{shard} | g{group}
    old_version: int  # 0: no part item before, or a shard written before versions
    new_version: int | None  # None: the part item was deleted
    delta: int


# --- pure: stream records -> changes -> coalesced updates --------------------------------------

def _number(image: Mapping[str, Any] | None, name: str) -> int:
    value = (image or {}).get(name) or {}
    return int(value.get("N", 0)) if isinstance(value, Mapping) else 0


def shard_change(index: int, record: Mapping[str, Any], region: str) -> ShardChange | None:
    """The change a stream record makes to its parent (total or group), or None if it is not a part
    of this region (another region's replicated write, a ``#meta`` or ``#total`` item)."""
    data = record.get("dynamodb") or {}
    counter_id = ((data.get("Keys") or {}).get("counter_id") or {}).get("S", "")
    parsed = keys.parse_counter_part_id(counter_id)
    if parsed is None or parsed[1] != region:
        return None
    total_id, _, part = parsed
    old, new = data.get("OldImage"), data.get("NewImage")
    if new is not None and "version" not in new:
        return None  # not a counted write (moto's key-only INSERT before an UpdateItem's values)
    versioned_old = bool(old and "version" in old)
    old_n = _number(old, "n") if versioned_old else 0
    new_n = _number(new, "n") if new else 0
    return ShardChange(index=index, total_id=total_id, part=part,
                       old_version=_number(old, "version") if versioned_old else 0,
                       new_version=_number(new, "version") if new else None, delta=new_n - old_n)


def changes_of(records: list[Mapping[str, Any]], region: str) -> list[ShardChange]:
    return [c for i, r in enumerate(records) if (c := shard_change(i, r, region)) is not None]


@dataclass(frozen=True)
class TotalUpdate:
    """One conditional UpdateItem of a parent: ``delta`` and, per part, the version step ``(old, new)``."""

    total_id: str
    delta: int
    versions: dict[str, tuple[int, int | None]]
    changes: tuple[ShardChange, ...]  # in batch order: applied one by one if the update is refused


def coalesce(changes: Iterable[ShardChange]) -> list[TotalUpdate]:
    """Group a batch's changes per parent; each part's consecutive versions collapse into one step.

    A part whose records are not consecutive (a record's OLD version is not the previous NEW) is
    left to the one-by-one path: it gets an update of its own per record.
    """
    by_total: dict[str, list[ShardChange]] = {}
    for change in changes:
        by_total.setdefault(change.total_id, []).append(change)
    updates: list[TotalUpdate] = []
    for total_id, group in by_total.items():
        chains: dict[str, list[ShardChange]] = {}
        for change in group:
            chains.setdefault(change.part, []).append(change)
        steps: list[tuple[str, tuple[int, int | None], int, list[ShardChange]]] = []
        for shard, chain in chains.items():
            if all(later.old_version == (earlier.new_version or 0) for earlier, later in zip(chain, chain[1:])):
                steps.append((shard, (chain[0].old_version, chain[-1].new_version), sum(c.delta for c in chain), chain))
            else:
                updates += [TotalUpdate(total_id, c.delta, {shard: (c.old_version, c.new_version)}, (c,)) for c in chain]
        for start in range(0, len(steps), MAX_SHARDS_PER_UPDATE):
            part = steps[start:start + MAX_SHARDS_PER_UPDATE]
            updates.append(TotalUpdate(
                total_id, sum(delta for _, _, delta, _ in part), {shard: step for shard, step, _, _ in part},
                tuple(sorted((c for *_, chain in part for c in chain), key=lambda c: c.index))))
    return sorted(updates, key=lambda u: u.changes[0].index)


def already_applied(change: ShardChange, applied_version: int) -> bool:
    """Whether a refused record had been applied (redelivered); else it is out of order."""
    if change.new_version is None:
        return applied_version == 0
    return applied_version >= change.new_version


# --- I/O -------------------------------------------------------------------------------------------

def apply(update: TotalUpdate) -> int:
    """Apply one update (or, if refused, its records one by one); returns the records skipped as
    already applied. :class:`OutOfOrder` if a record's predecessor is missing."""
    if counters.apply_to_total(update.total_id, update.delta, update.versions):
        if any(new is None for _, new in update.versions.values()):
            counters.drop_total_if_emptied(update.total_id)  # the counter's shards were erased
        return 0
    skipped = 0
    for change in update.changes:
        step = {change.part: (change.old_version, change.new_version)}
        if counters.apply_to_total(change.total_id, change.delta, step):
            if change.new_version is None:
                counters.drop_total_if_emptied(change.total_id)
            continue
        if already_applied(change, counters.applied_version(change.total_id, change.part)):
            skipped += 1
            continue
        if erased(change):
            logger.info("counter erased: stream record dropped", extra={"total_id": change.total_id})
            skipped += 1
            continue
        raise OutOfOrder(f"{change.total_id} part {change.part}: version {change.old_version} not applied yet")
    return skipped


def erased(change: ShardChange) -> bool:
    """Whether the record's counter was erased (account or photo deleted): neither its parent nor its
    part item exists any more, so no later record can bring the parent back and the record is moot.
    (A reordered record of a live counter always finds its part item: it is retried instead.)"""
    part_id = keys.counter_part_id(change.total_id, change.part)
    return not counters.items_exist([change.total_id, part_id])


def handle_stream(event: Mapping[str, Any], context: Any = None, region: str | None = None) -> dict:
    """A DynamoDB stream batch of the counters table -> ``region``'s totals (default: this
    function's region); partial failures."""
    records = list(event.get("Records") or [])
    first_failed: int | None = None
    skipped = 0
    for update in coalesce(changes_of(records, region or get_settings().region)):
        if first_failed is not None and update.changes[0].index > first_failed:
            continue  # Lambda redelivers everything from the first failure on
        try:
            skipped += apply(update)
        except Exception:  # noqa: BLE001 - reported per record, retried by the mapping
            logger.exception("counter total not updated", extra={"total_id": update.total_id})
            index = update.changes[0].index
            first_failed = index if first_failed is None else min(first_failed, index)
    if skipped:
        metrics.add_metric(name="CounterRecordsRedelivered", unit="Count", value=skipped)
    if first_failed is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": records[first_failed]["dynamodb"]["SequenceNumber"]}]}
