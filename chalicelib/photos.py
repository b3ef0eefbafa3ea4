"""Photos: upload authorisation, reads, owner-only changes, listings and edit requests.

The client uploads the original straight to S3 with a presigned POST; S3 tells the uploads queue,
and the worker in :mod:`chalicelib.pipeline` turns it into renditions. This module never touches
image bytes.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import datetime, timezone

from botocore.exceptions import ClientError
from pynamodb.transactions import TransactWrite

from chalicelib import aws, counters, cursors, keys, quotas, secrets
from chalicelib.errors import (
    BadRequest,
    InvalidCursor,
    NotPhotoOwner,
    PhotoNotFound,
    PhotoNotReady,
    ValidationFailed,
)
from chalicelib.models import PhotoRecord, bound
from chalicelib.observability import correlation_attributes, logger
from chalicelib.settings import get_settings
from chalicelib.users import PHOTOS, now_iso
from chalicelib.users import get_record as get_user_record

ALLOWED_CONTENT_TYPES = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
}
PENDING, READY, FAILED = "pending", "ready", "failed"
#: A pending photo older than this is abandoned (its upload grant expired long ago): it no longer
#: counts against the pending-uploads quota, and the count reads at most this much of a listing.
PENDING_HORIZON_SECONDS = 3600
LIKES = "likes"


# --- views ----------------------------------------------------------------------------------

def photo_view(record: PhotoRecord, likes: int = 0) -> dict:
    """The API shape of a photo. Rendition URLs point at the site's ``/media`` (the CDN in AWS)."""
    base = get_settings().media_base_url
    renditions = record.renditions.as_dict() if record.renditions else {}
    view = {
        "id": record.photo_id,
        "owner": record.owner,
        "caption": record.caption or "",
        "status": record.status,
        "width": int(record.width) if record.width else None,
        "height": int(record.height) if record.height else None,
        "renditions": {},
        "likes": likes,
        "created_at": record.created_at,
    }
    if record.error:
        view["error"] = record.error
    if renditions:
        view["renditions"] = {n: keys.media_url(base, r["key"]) for n, r in renditions.items() if "key" in r}
        view["rendition_sizes"] = {n: {"width": int(r["width"]), "height": int(r["height"])}
                                   for n, r in renditions.items() if "key" in r}
        webp = {n: keys.media_url(base, r["webp_key"]) for n, r in renditions.items() if r.get("webp_key")}
        if webp:
            view["webp"] = webp
        view["version"] = record.version
    return view


# --- commands -------------------------------------------------------------------------------

def create_photo(owner: str, content_type: str, size: int, caption: str | None) -> dict:
    """Reserve a photo and authorise one direct upload of exactly ``size`` bytes of ``content_type``."""
    settings = get_settings()
    problems = []
    if content_type not in ALLOWED_CONTENT_TYPES:
        problems.append({"field": "content_type",
                         "message": "must be one of " + ", ".join(sorted(ALLOWED_CONTENT_TYPES))})
    if not 0 < size <= settings.max_upload_bytes:
        problems.append({"field": "size", "message": f"must be from 1 to {settings.max_upload_bytes} bytes"})
    if problems:
        raise ValidationFailed(
            "Invalid request: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems
        )
    quotas.ensure_fewer_than_limit(quotas.PENDING_UPLOADS, pending_uploads(owner))
    quotas.consume(quotas.UPLOAD_GRANTS, owner)
    created_at = now_iso()
    photo_id = keys.new_id()
    record = bound(PhotoRecord)(
        photo_id,
        owner=owner,
        owner_sort=keys.owner_sort_key(created_at, photo_id),
        caption=caption or "",
        status=PENDING,
        content_type=content_type,
        declared_size=size,
        created_at=created_at,
        correlation_id=logger.get_correlation_id(),
    )
    record.save(condition=PhotoRecord.photo_id.does_not_exist())
    upload = aws.client("s3").generate_presigned_post(
        Bucket=settings.media_bucket,
        Key=keys.upload_key(owner, photo_id),
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
        ExpiresIn=settings.upload_url_expiry_seconds,
    )
    return {"photo": photo_view(record), "upload": {"url": upload["url"], "fields": upload["fields"]}}


def pending_uploads(owner: str, now: float | None = None) -> int:
    """How many of ``owner``'s uploads are granted but not processed yet (exact, and cheap).

    One COUNT query of the owner index over the last :data:`PENDING_HORIZON_SECONDS` only (so it
    reads at most an hour of the user's photos, which the upload-grants quota bounds), filtered to
    ``status = pending`` and not expired (pending rows may carry a TTL ``expires_at``; DynamoDB
    deletes expired items lazily, so they are filtered here).
    """
    from pynamodb.expressions.operand import Path

    moment = time.time() if now is None else now
    cutoff = datetime.fromtimestamp(moment - PENDING_HORIZON_SECONDS, timezone.utc)
    cutoff_iso = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    expires_at = Path("expires_at")
    return bound(PhotoRecord).by_owner.count(
        owner,
        range_key_condition=PhotoRecord.owner_sort >= cutoff_iso,
        filter_condition=(PhotoRecord.status == PENDING)
        & (expires_at.does_not_exist() | (expires_at > int(moment))),
    )


def get_photo(photo_id: str) -> dict:
    record = get_record(photo_id)
    return photo_view(record, photo_likes([photo_id])[photo_id])


def get_record(photo_id: str) -> PhotoRecord:
    model = bound(PhotoRecord)
    try:
        return model.get(photo_id)
    except model.DoesNotExist:
        raise PhotoNotFound(f"No photo with id {photo_id!r}.") from None


def owned_record(photo_id: str, caller: str) -> PhotoRecord:
    record = get_record(photo_id)
    if record.owner != caller:
        raise NotPhotoOwner("Only the photo's owner can do that.")
    return record


def update_caption(photo_id: str, caller: str, caption: str) -> PhotoRecord:
    record = owned_record(photo_id, caller)
    record.update(
        actions=[PhotoRecord.caption.set(caption), PhotoRecord.updated_at.set(now_iso())],
        condition=PhotoRecord.owner == caller,
    )
    return record


def delete_photo(photo_id: str, caller: str, _retried: bool = False) -> None:
    """Delete the record (and the photo count if it was counted), the original and every rendition."""
    record = owned_record(photo_id, caller)
    model = bound(PhotoRecord)
    was_counted = record.status == READY
    try:
        if was_counted:
            counter, actions = counters.increment_action(PHOTOS, record.owner, -1)
            with TransactWrite(connection=model._get_connection().connection) as tx:
                tx.delete(record, condition=PhotoRecord.status == READY)
                tx.update(counter, actions=actions)
        else:
            record.delete(condition=PhotoRecord.status != READY)
    except Exception as exc:  # the status changed under us (the worker finished): re-read, retry once
        if _retried or not _is_condition_failure(exc):
            raise
        return delete_photo(photo_id, caller, _retried=True)
    delete_objects(record.owner, photo_id)
    invalidate_cdn([f"/media/renditions/{photo_id}/*"])


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


def invalidate_cdn(paths: list[str]) -> None:
    """Ask CloudFront to forget ``paths`` (no distribution configured: nothing caches them)."""
    distribution = get_settings().cdn_distribution_id
    if not distribution:
        return
    aws.client("cloudfront").create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": uuid.uuid4().hex},
    )


def request_edit(photo_id: str, caller: str, edits_json: dict) -> dict:
    """Validate an edit against the photo and queue it; the worker renders a new version."""
    from chalicelib import imaging

    record = owned_record(photo_id, caller)
    if record.status != READY:
        raise PhotoNotReady("The photo is not ready yet; edit it once processing has finished.")
    try:
        edits = imaging.Edits.from_dict(edits_json)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid edits: {exc}", details=[{"field": "edits", "message": str(exc)}]) from None
    if edits.is_empty():
        raise BadRequest("Nothing to edit: give crop, rotate, blur or sharpen.")
    problems = imaging.validate_edits(edits, int(record.width), int(record.height))
    if problems:
        raise ValidationFailed("Invalid edits: " + "; ".join(problems),
                               details=[{"field": "edits", "message": p} for p in problems])
    edit_id = keys.new_id()
    aws.client("sqs").send_message(
        QueueUrl=get_settings().edits_queue_url,
        MessageBody=json.dumps({"photo_id": photo_id, "edit_id": edit_id, "edits": edits_json,
                                "base_version": record.version}),
        MessageAttributes=correlation_attributes(),
    )
    return {"edit_id": edit_id, "photo": photo_view(record)}


# --- listings -------------------------------------------------------------------------------

def list_user_photos(username: str, limit: int, cursor: str | None) -> dict:
    """A user's ready photos, newest first, ``limit`` per page, with a signed cursor to the next."""
    owner = get_user_record(username).username
    scope = f"photos:{owner}"
    start = _decode_cursor(cursor, scope) if cursor else None
    results = bound(PhotoRecord).by_owner.query(
        owner, scan_index_forward=False, filter_condition=PhotoRecord.status == READY,
        last_evaluated_key=start, page_size=limit,
    )
    items, next_key = [], None
    for record in results:
        items.append(record)
        if len(items) == limit:
            next_key = {"photo_id": {"S": record.photo_id}, "owner": {"S": record.owner},
                        "owner_sort": {"S": record.owner_sort}}
            break
    likes = photo_likes([r.photo_id for r in items])
    return {
        "items": [photo_view(r, likes.get(r.photo_id, 0)) for r in items],
        "next_cursor": _encode_cursor(next_key, scope) if next_key else None,
    }


def photo_likes(photo_ids: list[str]) -> dict[str, int]:
    """Exact like counts of several photos in one counter read."""
    if not photo_ids:
        return {}
    totals = counters.read_totals([(LIKES, photo_id) for photo_id in photo_ids])
    return {photo_id: total for (_, photo_id), total in totals.items()}


def _encode_cursor(last_key: dict, scope: str) -> str:
    return cursors.encode({"k": last_key}, key=secrets.cursor_key(), scope=scope)


def _decode_cursor(cursor: str, scope: str) -> dict:
    try:
        return cursors.decode(cursor, key=secrets.cursor_key(), scope=scope)["k"]
    except (cursors.CursorError, KeyError, TypeError):
        raise InvalidCursor("The cursor is invalid for this listing.") from None


def _is_condition_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    if cause in ("ConditionalCheckFailedException", "TransactionCanceledException"):
        return True
    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] in (
        "ConditionalCheckFailedException", "TransactionCanceledException")


def content_version(*parts: str) -> str:
    """A short, deterministic version id: the same input always renders to the same keys."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
