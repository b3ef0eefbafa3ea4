"""Counter reconciliation: recount counters from their edges and repair the drift.

Counters are region-scoped G-counters (each region ADDs to its own shards). A follow or like
retried in a second region inside the replication window (a failover, or a write accepted away
from its home) can be counted twice: each region's conditional edge put succeeds against its own
replica, each region increments its own shard, and replication then merges one edge with two
increments. The job recounts a counter from its edges (followers shards, the following partition,
the photo's likers, the owner's ready photos) and adds the difference to **this region's** shard
through the counters repository, so the repair is itself a G-counter increment and never fights
last-writer-wins.

It runs only in the primary region (two regions repairing the same drift would repair it twice),
on a schedule (``app.py``: suspects first, then one bounded page of the counters table from a
checkpoint) and on demand (a ``reconcile_counters`` message on the fan-out queue, or :func:`run`).
A repair is ``edges - stored``: once applied the two agree, so running again changes nothing.
It assumes replication has caught up; a repair made against a replica still missing writes is
itself repaired by a later run (every run converges on the edges).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from chalicelib.observability import logger
from chalicelib.repositories import counters
from chalicelib.repositories import reconciliation as records
from chalicelib.settings import get_settings

#: Suspects handled per run, and counters-table items scanned per scheduled run.
SUSPECTS_PER_RUN = 200
PAGE_ITEMS = 500


def drift(expected: int, stored: int) -> int:
    """The increment that makes a counter storing ``stored`` read ``expected`` (pure)."""
    return expected - stored


def reconcile(counter_ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Recount each ``(kind, entity)`` from its edges and repair it; returns the repairs applied."""
    repaired: dict[tuple[str, str], int] = {}
    for kind, entity in counter_ids:
        delta = drift(records.edge_count(kind, entity), records.shard_sum(kind, entity))
        if delta:
            counters.increment(kind, entity, delta)
            repaired[(kind, entity)] = delta
    if repaired:
        logger.warning("counters repaired", extra={"repairs": len(repaired)})
    return repaired


def run(*, full: bool = False, page_items: int = PAGE_ITEMS) -> dict:
    """One reconciliation run in the primary region: every noted suspect (up to a bound), then one
    page of the counters table from the checkpoint (every page with ``full``). Elsewhere: nothing."""
    settings = get_settings()
    if not settings.is_primary:
        return {"skipped": f"runs in the primary region {settings.primary_region} only"}
    now = _now_iso()
    checked, repairs = 0, 0
    noted = records.suspects(SUSPECTS_PER_RUN)
    repairs += len(reconcile((kind, entity) for kind, entity, _ in noted))
    for kind, entity, noted_at in noted:
        records.clear_suspect(kind, entity, noted_at)
    checked += len(noted)
    position = None if full else records.checkpoint()
    while True:
        page, position = records.counter_page(position, page_items)
        repairs += len(reconcile(page))
        checked += len(page)
        if not full or position is None:
            break
    records.save_checkpoint(position, now)
    return {"suspects": len(noted), "checked": checked, "repaired": repairs, "complete": position is None}


def note_suspects(counter_ids: list[tuple[str, str]]) -> None:
    """Counters a write accepted away from its home may have double-counted: reconcile them first."""
    records.note_suspects(counter_ids, _now_iso())


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
