"""Media cleanup: removes a deleted photo's objects, then its record; batches CDN invalidations.

``DELETE /photos/{id}`` only marks the photo ``deleting`` and queues a ``purge_photo`` message
(which queues its own second pass, ``sweep_likes``, :data:`LIKES_SWEEP_DELAY_SECONDS` later);
an edit that replaces a version queues an ``invalidate`` message for the old version's URLs. Both
travel on the edits queue (the photo-change worker's queue; :func:`chalicelib.pipeline.handle_edits`
routes them here), so no extra queue, function or permission is needed.

Every step is idempotent, so a redelivered message is harmless: deleting absent S3 keys succeeds,
and the record is deleted only while it is still ``deleting``. The record goes last, so a purge
that fails half-way is finished by the redelivery (and a retried DELETE still finds the photo).

CloudFront allows a limited number of invalidations in flight per distribution, so one batch of
messages makes at most one ``CreateInvalidation`` with every exact path (no wildcards: those are
limited to 15 in flight). If CloudFront refuses (``TooManyInvalidationsInProgress``) or throttles,
the messages that contributed paths go back to the queue and are retried after the visibility
timeout; the user's DELETE never waits for or fails on the CDN.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from chalicelib import aws, ddb, keys
from chalicelib.observability import logger, metrics
from chalicelib.lifecycle import DELETING
from chalicelib.repositories import counters
from chalicelib.repositories import likes as like_edges
from chalicelib.repositories import photos as records
from chalicelib.repositories.counters import LIKES
from chalicelib.repositories.photos import Photo
from chalicelib.settings import get_settings

PURGE_PHOTO, INVALIDATE, SWEEP_LIKES = "purge_photo", "invalidate", "sweep_likes"
MESSAGE_TYPES = frozenset({PURGE_PHOTO, INVALIDATE, SWEEP_LIKES})
#: When a purge's second pass sweeps the likes that landed after its first. A like does not check the
#: photo when its container has it cached as ready (``likes``: no write on a viral photo's item), so
#: one may land until every such entry has expired and its request ended: the photo was marked
#: ``deleting`` before the purge, a cached entry is at most the ``photo`` TTL (30 s) old, loaded
#: through DAX at most its item TTL (60 s) older, and a request ends within API Gateway's 29 s;
#: 300 s is well past that sum (a unit test keeps it so). SQS delays a message up to 900 s.
LIKES_SWEEP_DELAY_SECONDS = 300


# --- pure rules -----------------------------------------------------------------------------------

def cdn_paths(renditions: dict | None) -> list[str]:
    """The exact CDN paths of a version's renditions (``renditions`` as stored on the record)."""
    paths = []
    for entry in (renditions or {}).values():
        for field in ("key", "webp_key"):
            if entry.get(field):
                paths.append("/" + entry[field])
    return sorted(paths)


def is_cleanup_message(body: str) -> bool:
    """Whether an edits-queue message body is a cleanup job (edit jobs carry no ``type``)."""
    try:
        job = json.loads(body)
    except ValueError:
        return False
    return isinstance(job, dict) and job.get("type") in MESSAGE_TYPES


# --- producers ------------------------------------------------------------------------------------

def queue_purge(record: Photo) -> None:
    """Ask the cleanup worker to remove a ``deleting`` photo's media, CDN copies and record."""
    _send({"type": PURGE_PHOTO, "photo_id": record.photo_id, "owner": record.owner,
           "paths": cdn_paths(record.renditions)})


def queue_invalidation(paths: list[str]) -> None:
    """Ask the cleanup worker to invalidate ``paths`` at the CDN (batched with others)."""
    if paths and get_settings().cdn_distribution_id:
        _send({"type": INVALIDATE, "paths": sorted(paths)})


def _send(job: dict, delay_seconds: int = 0) -> None:
    aws.client("sqs").send_message(QueueUrl=get_settings().edits_queue_url, MessageBody=json.dumps(job),
                                   DelaySeconds=delay_seconds)


# --- the worker -----------------------------------------------------------------------------------

def handle_batch(records: list[dict]) -> list[str]:
    """Run a batch of cleanup messages (raw SQS records); returns the ids of those to retry."""
    failed: list[str] = []
    paths_by_message: dict[str, list[str]] = {}
    for record in records:
        message_id = record["messageId"]
        try:
            paths_by_message[message_id] = run(json.loads(record["body"]))
        except Exception:
            logger.exception("cleanup failed; the message will be retried", extra={"message_id": message_id})
            failed.append(message_id)
    paths = sorted({path for paths in paths_by_message.values() for path in paths})
    if paths:
        try:
            invalidate(paths)
        except Exception as exc:
            logger.warning("CDN invalidation refused; retrying later",
                           extra={"error_code": ddb.error_code(exc), "paths": len(paths)})
            failed.extend(m for m, p in paths_by_message.items() if p)
    return failed


def run(job: dict) -> list[str]:
    """Do one cleanup job; returns the CDN paths it needs invalidated."""
    if job["type"] == PURGE_PHOTO:
        purge_photo(job["photo_id"], job["owner"])
    elif job["type"] == SWEEP_LIKES:
        sweep_likes(job["photo_id"])
    return list(job.get("paths") or [])


def purge_photo(photo_id: str, owner: str) -> None:
    """Remove the original and every rendition version, the likes of the photo (edges and likers
    mirror, uncounted), then the ``deleting`` record (idempotent: the record goes last)."""
    delete_objects(owner, photo_id)
    record = records.get(photo_id, consistent=True)
    if record is not None and record.status == DELETING:
        like_edges.drop_all_likers(photo_id, counters.shard_count(LIKES, photo_id, fresh=True))
    records.delete_if_deleting(photo_id)  # False: deleted already (a redelivery), or not ``deleting``: leave it
    _send({"type": SWEEP_LIKES, "photo_id": photo_id}, delay_seconds=LIKES_SWEEP_DELAY_SECONDS)
    metrics.add_metric(name="PhotosPurged", unit="Count", value=1)


def sweep_likes(photo_id: str) -> int:
    """A purge's second pass: the likes of a photo that is gone, which landed after the first pass
    (see :data:`LIKES_SWEEP_DELAY_SECONDS`); how many it removed. A photo that exists is left alone."""
    if records.get(photo_id, consistent=True) is not None:
        return 0
    removed = like_edges.drop_all_likers(photo_id, counters.shard_count(LIKES, photo_id, fresh=True))
    if removed:
        logger.info("likes swept after a purge", extra={"photo_id": photo_id, "removed": removed})
    return removed


def delete_objects(owner: str, photo_id: str) -> None:
    """Remove the original and all rendition versions of a photo from the media bucket."""
    s3 = aws.client("s3")
    bucket = get_settings().media_bucket
    doomed = [{"Key": keys.upload_key(owner, photo_id)}]
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=keys.rendition_prefix(photo_id)):
        doomed.extend({"Key": o["Key"]} for o in page.get("Contents", []))
    for start in range(0, len(doomed), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})


def invalidate(paths: list[str]) -> Any:
    """One CloudFront invalidation of ``paths`` (no distribution configured: nothing caches them)."""
    distribution = get_settings().cdn_distribution_id
    if not distribution:
        return None
    return aws.client("cloudfront").create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": uuid.uuid4().hex},
    )
