"""What an account erasure reads and removes across the tables, plus its job and the name reservation.

- erasure job: ``JobsTable`` item ``erase#{job_id}`` (the fan-out checkpoint's shape: ``status``,
  ``position`` JSON, ``written``); the username is kept on it only while the erasure runs.
- username reservation: ``SessionsTable`` item ``erased#{keyed hash}`` with a TTL; it keeps only the
  hash, never the name (the table's required ``username`` attribute holds the hash too).
"""
from __future__ import annotations

import json
from dataclasses import dataclass


from chalicelib import cache, keys
from chalicelib.models import (CounterRecord, FanoutJobRecord, FeedItemRecord, GraphEdgeRecord, PhotoRecord,
                               QuotaRecord, RevokedTokenRecord, UserRecord, bound)
from chalicelib.repositories import _tx
from chalicelib.repositories.photos import Photo, _photo
from chalicelib.repositories.sessions import user_key

PAGE = 100


def erasure_job_id(job_id: str) -> str:
    return f"erase#{job_id}"


def reservation_key(name_hash: str) -> str:
    return f"erased#{name_hash}"


@dataclass(frozen=True)
class ErasureJob:
    job_id: str
    status: str
    username: str | None
    position: dict
    updated_at: str | None


# --- the job ----------------------------------------------------------------------------------------

def create_job(job_id: str, username: str, status: str, created_at: str, expires_at: int) -> None:
    record = bound(FanoutJobRecord)(erasure_job_id(job_id), status=status, position=json.dumps({"username": username}),
                                    written=0, updated_at=created_at, expires_at=expires_at)
    record.save(condition=FanoutJobRecord.job_id.does_not_exist())


def load_job(job_id: str) -> ErasureJob | None:
    model = bound(FanoutJobRecord)
    try:
        record = model.get(erasure_job_id(job_id), consistent_read=True)
    except model.DoesNotExist:
        return None
    position = json.loads(record.position) if record.position else {}
    return ErasureJob(job_id, record.status, position.pop("username", None), position, record.updated_at)


def save_job(job_id: str, status: str, username: str | None, position: dict, updated_at: str, written: int = 0) -> None:
    """Checkpoint the job; ``username=None`` forgets the name (the job is finished)."""
    stored = dict(position, **({"username": username} if username else {}))
    bound(FanoutJobRecord)(erasure_job_id(job_id)).update(actions=[
        FanoutJobRecord.status.set(status),
        FanoutJobRecord.position.set(json.dumps(stored, sort_keys=True)),
        FanoutJobRecord.written.add(written),
        FanoutJobRecord.updated_at.set(updated_at),
    ])


# --- the username reservation -----------------------------------------------------------------------

def reserve(name_hash: str, expires_at: int) -> None:
    bound(RevokedTokenRecord)(reservation_key(name_hash), username=name_hash, expires_at=expires_at).save()


def reserved(name_hashes: list[str], now: float) -> bool:
    """Whether any of the hashes (one per key in force) holds a live reservation (expiry checked on read)."""
    model = bound(RevokedTokenRecord)
    found = model.batch_get([reservation_key(h) for h in name_hashes], consistent_read=True)
    return any(record.expires_at > now for record in found)


# --- what belongs to the user -----------------------------------------------------------------------

def delete_profile(username: str) -> None:
    """Delete the profile and forget it in this container's cache (other containers within the
    profile TTL of ``chalicelib.cache``; see docs/caching.md)."""
    bound(UserRecord)(username).delete()
    cache.shared.drop("profile", username)
    cache.shared.drop("display_name", username)


def photos_page(owner: str, limit: int = PAGE) -> list[Photo]:
    """Up to ``limit`` of the owner's photos in any state (the owner index holds every state)."""
    return [_photo(r) for r in bound(PhotoRecord).by_owner.query(owner, limit=limit)]


def delete_photo_record(photo_id: str) -> None:
    """The photo's record and its fan-out checkpoint."""
    bound(FanoutJobRecord)(keys.fanout_job_id(photo_id)).delete()
    bound(PhotoRecord)(photo_id).delete()


def liked_page(user: str, limit: int = PAGE) -> list[str]:
    """Photo ids ``user`` liked (the first ``limit``)."""
    return [r.sk for r in bound(GraphEdgeRecord).query(keys.liked_pk(user), limit=limit,
                                                        attributes_to_get=["pk", "sk"])]


def delete_feed_partition(reader: str) -> int:
    model = bound(FeedItemRecord)
    items = list(model.query(reader, attributes_to_get=["feed_owner", "feed_sort"]))
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
    return len(items)


def delete_counters(kind: str, entity: str, regions: tuple[str, ...], shards: int) -> None:
    """Every shard, group subtotal and total (every region) and the meta item of one counter."""
    model = bound(CounterRecord)
    ids = (keys.counter_shard_ids(kind, entity, regions, shards) + keys.counter_group_ids(kind, entity, regions, shards)
           + keys.counter_total_ids(kind, entity, regions) + [keys.counter_meta_id(kind, entity)])
    with model.batch_write() as batch:
        for counter_id in ids:
            batch.delete(model(counter_id))


def remove_from_registry(username: str) -> None:
    """Take ``username`` out of every copy of the celebrity registry (idempotent set DELETE)."""
    graph = bound(GraphEdgeRecord)
    with _tx.transaction(graph) as tx:
        for copy in range(keys.CELEBRITY_REGISTRY_COPIES):
            tx.update(graph(keys.celebrity_registry_pk(copy), "registry"),
                      actions=[GraphEdgeRecord.members.delete({username})])


def delete_quota_windows(quota_keys: list[str]) -> None:
    model = bound(QuotaRecord)
    with model.batch_write() as batch:
        for key in quota_keys:
            batch.delete(model(key))


def shorten_cutoff(username: str, expires_at: int) -> None:
    """Let the user's sign-out cut-off expire at ``expires_at`` (it refuses tokens until then)."""
    model = bound(RevokedTokenRecord)
    model(user_key(username)).update(actions=[model.expires_at.set(expires_at)])


# --- data export ------------------------------------------------------------------------------------

def export_job_id(username: str) -> str:
    """One export record per user (``JobsTable``): at most one export in flight by construction."""
    return f"export#{username}"


@dataclass(frozen=True)
class ExportJob:
    job_id: str
    status: str
    key: str | None
    expires_at: int


def start_export(username: str, job_id: str, status: str, busy: tuple[str, ...], now: int, expires_at: int) -> bool:
    """Begin a new export unless one is in flight (status in ``busy`` and not yet expired); False then."""
    model = bound(FanoutJobRecord)
    record = model(export_job_id(username), status=status, position=json.dumps({"job": job_id}),
                   written=0, expires_at=expires_at)
    not_in_flight = (model.job_id.does_not_exist() | model.status.is_in("ready", "failed")
                     | (model.expires_at < now))
    return _tx.conditional(lambda: record.save(condition=not_in_flight))


def load_export(username: str) -> ExportJob | None:
    model = bound(FanoutJobRecord)
    try:
        record = model.get(export_job_id(username), consistent_read=True)
    except model.DoesNotExist:
        return None
    position = json.loads(record.position or "{}")
    return ExportJob(position.get("job", ""), record.status, position.get("key"), int(record.expires_at or 0))


def finish_export(username: str, job_id: str, status: str, key: str | None, expires_at: int) -> bool:
    """Record the export's outcome if it is still job ``job_id``; False if another replaced it."""
    model = bound(FanoutJobRecord)
    return _tx.conditional(lambda: model(export_job_id(username)).update(actions=[
        model.status.set(status), model.position.set(json.dumps({"job": job_id, "key": key})),
        model.expires_at.set(expires_at),
    ], condition=model.position.contains(job_id)))


def delete_export(username: str) -> None:
    bound(FanoutJobRecord)(export_job_id(username)).delete()


def all_photos(owner: str) -> list[Photo]:
    """Every photo of ``owner``, oldest first (the export reads them all, page by page)."""
    return [_photo(r) for r in bound(PhotoRecord).by_owner.query(owner, page_size=PAGE)]


def all_liked(user: str) -> list[str]:
    return [r.sk for r in bound(GraphEdgeRecord).query(keys.liked_pk(user), page_size=PAGE,
                                                        attributes_to_get=["pk", "sk"])]
