"""Queue-driven photo workers: uploads become renditions, edits become new versions.

Each SQS record is one unit of work. Batches report partial failures (Powertools
``BatchProcessor``), so a poison message retries alone and lands in the DLQ after the queue's
``maxReceiveCount`` while its batch-mates succeed. Side effects run at most once per object version
(Powertools idempotency on DynamoDB), and every state change is a conditional write, so a
redelivered message or a duplicate S3 notification never counts a photo twice.

The worker trusts nothing the client said: :mod:`chalicelib.imaging` sniffs the real bytes,
enforces size and pixel limits, applies orientation, strips metadata and converts to sRGB.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import time
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import ClientError
from chalicelib import aws, imaging, keys, lifecycle
from chalicelib.observability import adopt_correlation_id, correlation_attributes, logger, metrics
from chalicelib.photos import DELETING, PENDING, READY, Photo, content_version
from chalicelib.repositories import photos as records
from chalicelib.settings import get_settings
from chalicelib.users import now_iso

IMMUTABLE = "public, max-age=31536000, immutable"


# --- Lambda entry points ----------------------------------------------------------------------

def handle_uploads(event: dict, context: Any) -> dict:
    """S3 ``ObjectCreated`` notifications (via the uploads queue) → renditions."""
    return _process_batch(event, context, _upload_record)


def handle_edits(event: dict, context: Any) -> dict:
    """Edit requests queued by the API → a new version of the renditions.

    The same queue carries media cleanup jobs (deleted photos, replaced versions), which
    :mod:`chalicelib.cleanup` runs as one batch so their CDN invalidations go out together.
    """
    from chalicelib import cleanup

    records = event.get("Records", [])
    cleanups = [r for r in records if cleanup.is_cleanup_message(r.get("body", ""))]
    edits = [r for r in records if not cleanup.is_cleanup_message(r.get("body", ""))]
    failed = cleanup.handle_batch(cleanups) if cleanups else []
    result = _process_batch({**event, "Records": edits}, context, _edit_record) if edits else {}
    failures = list(result.get("batchItemFailures") or []) + [{"itemIdentifier": m} for m in failed]
    return {"batchItemFailures": failures}


def _process_batch(event: dict, context: Any, record_handler) -> dict:
    _idempotency_config().register_lambda_context(context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=BatchProcessor(EventType.SQS), context=context
    )


# --- records ----------------------------------------------------------------------------------

def _upload_record(record: SQSRecord) -> None:
    body = json.loads(record.body)
    if body.get("Event") == "s3:TestEvent":  # sent once when the bucket notification is configured
        return
    for s3_record in body.get("Records", []):
        bucket = s3_record["s3"]["bucket"]["name"]
        obj = s3_record["s3"]["object"]
        key = unquote_plus(obj["key"])  # S3 URL-encodes keys in notifications
        if keys.parse_upload_key(key) is None:
            logger.warning("ignoring object outside the uploads prefix", extra={"key": key})
            continue
        _idempotent(process_upload)(
            upload={"bucket": bucket, "key": key, "etag": obj.get("eTag", ""), "sequencer": obj.get("sequencer", "")}
        )


def _edit_record(record: SQSRecord) -> None:
    adopt_correlation_id(record.raw_event)
    _idempotent(process_edit)(job=json.loads(record.body))


# --- the work ---------------------------------------------------------------------------------

def process_upload(upload: dict) -> str:
    """Turn one uploaded original into renditions and mark the photo ready (or failed)."""
    owner, photo_id = keys.parse_upload_key(upload["key"])
    record = records.get(photo_id, consistent=True)
    if record is None:
        return _orphan_upload(upload, photo_id)
    if record.correlation_id:
        logger.set_correlation_id(record.correlation_id)
    if record.owner != owner:
        logger.warning("upload key owner mismatch", extra={"photo_id": photo_id, "owner": owner})
        return "ignored"
    settings = get_settings()
    if record.original_region and record.original_region != settings.region:
        # a copy replicated from the region that granted the upload: that region processes it (once)
        return "processed-in-home-region"
    if record.status == DELETING:  # the cleanup may have run before this upload landed
        aws.client("s3").delete_object(Bucket=upload["bucket"], Key=upload["key"])
        return "photo-deleted"
    if lifecycle.is_expired_pending(record.status, record.expires_at, time.time()):
        return _discard_expired(record, upload)
    if record.status != PENDING:
        if record.status == READY:
            _announce_ready(record)  # the fan-out may not have been sent before a crash
        return "already-processed"
    s3 = aws.client("s3")
    head = s3.head_object(Bucket=upload["bucket"], Key=upload["key"])
    if head["ContentLength"] > settings.max_upload_bytes:
        return _mark_failed(record, "The file is larger than the upload limit.")
    if head["ContentLength"] != int(record.declared_size):
        # S3 enforces the presigned policy's content-length-range in AWS; check it here as well.
        return _mark_failed(record, "The uploaded file's size does not match the size declared for it.")
    etag = head.get("ETag", "")
    data = s3.get_object(Bucket=upload["bucket"], Key=upload["key"], IfMatch=etag)["Body"].read()
    try:
        processed = imaging.process_photo(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
        )
    except imaging.ImageRejected as exc:
        return _mark_failed(record, exc.message)
    version = content_version(etag, "original")
    renditions = _store_renditions(photo_id, version, processed)

    ready = records.mark_ready(photo_id, owner, width=processed.width, height=processed.height, version=version,
                               etag=etag, renditions=renditions, updated_at=now_iso())
    if not ready:  # the photo is no longer pending: see _lost_race
        return _lost_race(photo_id, version)
    metrics.add_metric(name="PhotosProcessed", unit="Count", value=1)
    logger.info("photo ready", extra={"photo_id": photo_id})
    _announce_ready(dataclasses.replace(record, status=READY))
    return "ready"


def process_edit(job: dict) -> str:
    """Render a new version of a ready photo with the requested edits applied to the original.

    Every write is conditional on the photo still being ready (and, for an edit whose base version
    the API checked, still at that version), so an edit racing a delete never re-creates the row.
    """
    record = records.get(job["photo_id"], consistent=True)
    if record is None:
        return "photo-deleted"
    if record.status != READY:
        return "not-ready"
    base = job.get("base_version") if job.get("checked_base") else None
    if base is not None and record.version != base:
        return _record_edit_error(record, "Edit discarded: the photo changed since the version it was based on.",
                                  "stale")
    settings = get_settings()
    try:
        original = _read_original(record)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("PreconditionFailed", "412", "NoSuchKey"):
            raise
        return _record_edit_error(record, "Edit failed: the original file was replaced after processing.",
                                  "original-replaced")
    version = content_version(original.get("ETag", ""), json.dumps(job["edits"], sort_keys=True), job["edit_id"])
    if record.version == version:
        return "already-applied"
    try:
        processed = imaging.process_photo(
            original["Body"].read(), max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels,
            edits=imaging.Edits.from_dict(job["edits"]),
        )
    except (imaging.ImageRejected, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        return _record_edit_error(record, f"Edit failed: {message}", "rejected")
    old_version = record.version
    old_renditions = record.renditions or {}
    renditions = _store_renditions(record.photo_id, version, processed)
    if not records.apply_edit(record.photo_id, width=processed.width, height=processed.height, version=version,
                              renditions=renditions, applied_edits=json.dumps(job["edits"], sort_keys=True),
                              updated_at=now_iso(), base_version=base):
        return _lost_race(record.photo_id, version)
    if old_version and old_version != version:
        _delete_version(record.photo_id, old_version)
        from chalicelib import cleanup

        cleanup.queue_invalidation(cleanup.cdn_paths(old_renditions))
    metrics.add_metric(name="PhotoEditsApplied", unit="Count", value=1)
    return "applied"


def _read_original(record: Photo) -> dict:
    """The photo's original as processed: from this region's bucket, or (not replicated here yet)
    from the bucket it was uploaded to, through a client of that region.

    Edits start from the exact original that was processed: a re-used upload authorisation could
    have replaced the object since, and those bytes were never checked (``IfMatch``).
    """
    settings = get_settings()
    key = keys.upload_key(record.owner, record.photo_id)
    locations = keys.original_locations(settings.region, settings.media_bucket, record.original_region,
                                        record.original_bucket)
    for n, (region, bucket) in enumerate(locations):
        try:
            return aws.client("s3", region=region).get_object(Bucket=bucket, Key=key,
                                                              IfMatch=record.original_etag or "*")
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchKey" or n == len(locations) - 1:
                raise
            logger.info("original not replicated here yet: reading it from its region",
                        extra={"photo_id": record.photo_id, "region": locations[-1][0]})
    raise AssertionError("unreachable")  # pragma: no cover


def _record_edit_error(record: Photo, message: str, outcome: str) -> str:
    """Show why an edit was not applied, on a photo that still exists and is ready (never re-create
    a deleted one)."""
    if not records.record_edit_error(record.photo_id, message, now_iso()):
        return "photo-deleted"
    return outcome


def _orphan_upload(upload: dict, photo_id: str) -> str:
    """An upload with no photo record here: removed only if this region granted it (its photo was
    deleted). A copy replicated from another region usually lands before the record replicates: it is
    that region's to process, and deleting it would replicate the delete and lose the original there."""
    s3 = aws.client("s3")
    try:
        head = s3.head_object(Bucket=upload["bucket"], Key=upload["key"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        return "gone"
    if keys.is_foreign_upload(head.get("Metadata"), head.get("ReplicationStatus"), get_settings().region):
        logger.info("replicated upload before its record: left to its home region", extra={"photo_id": photo_id})
        return "processed-in-home-region"
    logger.info("upload for a deleted photo: removing it", extra={"photo_id": photo_id})
    s3.delete_object(Bucket=upload["bucket"], Key=upload["key"])
    return "orphan"


def _discard_expired(record: Photo, upload: dict) -> str:
    """An upload that arrived after its photo expired: readers already treat the photo as gone, so
    it stays gone (the object and the record are removed; TTL would remove the record anyway)."""
    logger.info("upload for an expired pending photo: discarding it", extra={"photo_id": record.photo_id})
    aws.client("s3").delete_object(Bucket=upload["bucket"], Key=upload["key"])
    records.delete_if_pending(record.photo_id)
    return "expired"


def _lost_race(photo_id: str, version: str) -> str:
    """A conditional write of ``version`` failed: the photo changed while this delivery rendered it.

    If the photo now shows this very version (a concurrent delivery of the same work won), its
    renditions are these keys: keep them. Otherwise (deleted, being deleted, another edit won) the
    renditions just written are unreachable: remove them, since a cleanup may have listed the
    photo's objects before they existed.
    """
    current = records.get(photo_id, consistent=True)
    if current is not None and current.status != DELETING and current.version == version:
        return "already-processed"
    _delete_version(photo_id, version)
    return "superseded"


def _store_renditions(photo_id: str, version: str, processed: imaging.ProcessedPhoto) -> dict:
    """Write every rendition under its versioned key; returns the record's ``renditions`` map."""
    s3 = aws.client("s3")
    bucket = get_settings().media_bucket
    stored: dict[str, dict] = {}
    for rendition in processed.renditions:
        key = keys.rendition_key(photo_id, version, rendition.name, rendition.extension)
        s3.put_object(Bucket=bucket, Key=key, Body=rendition.body, ContentType=rendition.content_type,
                      CacheControl=IMMUTABLE)
        entry = stored.setdefault(rendition.name, {})
        if rendition.extension == "webp":
            entry["webp_key"] = key
        else:
            entry.update(key=key, width=rendition.width, height=rendition.height, content_type=rendition.content_type)
    return stored


def _delete_version(photo_id: str, version: str) -> None:
    s3 = aws.client("s3")
    bucket = get_settings().media_bucket
    prefix = f"{keys.rendition_prefix(photo_id)}{version}/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    if listed:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in listed], "Quiet": True})


def _mark_failed(record: Photo, message: str) -> str:
    logger.info("photo rejected", extra={"photo_id": record.photo_id, "reason": message})
    if not records.mark_failed(record.photo_id, message, now_iso()):
        return "already-processed"  # finished or deleted meanwhile
    metrics.add_metric(name="PhotosRejected", unit="Count", value=1)
    return "failed"


def _announce_ready(record: Photo) -> None:
    """Tell the feed fan-out worker that a photo is ready (idempotent downstream)."""
    aws.client("sqs").send_message(
        QueueUrl=get_settings().fanout_queue_url,
        MessageBody=json.dumps({"type": "photo_ready", "photo_id": record.photo_id, "owner": record.owner,
                                "created_at": record.created_at}),
        MessageAttributes=correlation_attributes(),  # the upload's request id, set from its record
    )


# --- idempotency ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(expires_after_seconds=24 * 3600)


@functools.lru_cache(maxsize=None)
def _idempotent(function):
    """``function`` wrapped so each distinct payload has its effect once (records in DynamoDB)."""
    persistence = DynamoDBPersistenceLayer(
        table_name=get_settings().idempotency_table, boto3_client=aws.client("dynamodb")
    )
    keyword = {process_upload: "upload", process_edit: "job"}[function]
    return idempotent_function(
        data_keyword_argument=keyword, config=_idempotency_config(), persistence_store=persistence
    )(function)
