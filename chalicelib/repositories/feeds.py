"""Pushed feed entries (``FeedsTable``): one item per reader and photo, newest first by
``feed_sort`` = ``created_at#photo_id``. Writes are idempotent puts (same key, same item)."""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib.models import FeedItemRecord, bound, reading


@dataclass(frozen=True)
class FeedEntry:
    """A photo pushed into a reader's feed, with the owner's display name denormalised."""

    feed_sort: str
    photo_id: str
    owner: str
    owner_display_name: str | None
    created_at: str


def write(readers: list[str], fields: dict) -> None:
    """Put one photo's entry (``fields``: the item's attributes but ``feed_owner``) into each reader's
    feed (BatchWriteItem, 25 per call)."""
    if not readers:
        return
    model = bound(FeedItemRecord)
    with model.batch_write() as batch:
        for reader in readers:
            batch.save(model(reader, **fields))


def write_entries(reader: str, entries: list[dict]) -> None:
    """Put several photos' entries into one reader's feed."""
    model = bound(FeedItemRecord)
    with model.batch_write() as batch:
        for fields in entries:
            batch.save(model(reader, **fields))


def entries_before(reader: str, frontier: str | None, limit: int) -> list[FeedEntry]:
    """Up to ``limit`` of ``reader``'s entries sorting before ``frontier``, newest first."""
    condition = FeedItemRecord.feed_sort < frontier if frontier else None
    return [FeedEntry(r.feed_sort, r.photo_id, r.owner, r.owner_display_name, r.created_at)
            for r in reading(FeedItemRecord).query(reader, range_key_condition=condition, scan_index_forward=False,
                                                 limit=limit, page_size=limit)]


def remove_author(reader: str, author: str) -> int:
    """Delete every entry of ``author`` from ``reader``'s feed; returns how many there were."""
    model = bound(FeedItemRecord)
    stale = list(model.query(reader, filter_condition=FeedItemRecord.owner == author,
                             attributes_to_get=["feed_owner", "feed_sort", "owner"]))
    with model.batch_write() as batch:
        for item in stale:
            batch.delete(item)
    return len(stale)
