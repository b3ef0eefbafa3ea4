"""Photos: upload authorisation, reads, owner-only changes, listings and edit requests.

The client uploads the original straight to S3 with a presigned POST; S3 tells the uploads queue,
and the worker in :mod:`chalicelib.pipeline` turns it into renditions. This module never touches
image bytes.
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone

from chalicelib import aws, cursors, ddb, keys, lifecycle, quotas, secrets
from chalicelib.errors import (
    BadRequest,
    InvalidCursor,
    NotPhotoOwner,
    PhotoNotFound,
    PhotoNotReady,
    ServiceUnavailable,
    StaleVersion,
    ValidationFailed,
)
from chalicelib.lifecycle import DELETING, FAILED, PENDING, READY
from chalicelib.observability import correlation_attributes, logger, metrics
from chalicelib.settings import get_settings
from chalicelib.repositories import counters
from chalicelib.repositories import photos as records
from chalicelib.repositories.counters import LIKES
from chalicelib.repositories.photos import Photo
from chalicelib.users import now_iso
from chalicelib.users import get_record as get_user_record

ALLOWED_CONTENT_TYPES = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "image/heif": "heif",
}
__all__ = ["DELETING", "FAILED", "LIKES", "PENDING", "READY", "Photo"]  # re-exported
#: A pending photo older than this is abandoned (its upload grant expired long ago): it no longer
#: counts against the pending-uploads quota, and the count reads at most this much of a listing.
PENDING_HORIZON_SECONDS = 3600
#: How often a delete re-reads a photo whose status changed under it before answering 503.
_DELETE_ATTEMPTS = 3


# --- views ----------------------------------------------------------------------------------

def photo_view(record: Photo, likes: int = 0) -> dict:
    """The API shape of a photo. Rendition URLs point at the site's ``/media`` (the CDN in AWS)."""
    base = get_settings().media_base_url
    renditions = record.renditions or {}
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
    if record.original_width and record.original_height:
        view["frame"] = {"width": int(record.original_width), "height": int(record.original_height)}
    if record.applied_edits:  # the current version's edits, in the frame's pixels (a new edit replaces them)
        view["edits"] = json.loads(record.applied_edits)
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
    record = Photo(
        photo_id,
        owner=owner,
        owner_sort=keys.owner_sort_key(created_at, photo_id),
        caption=caption or "",
        status=PENDING,
        content_type=content_type,
        declared_size=size,
        created_at=created_at,
        correlation_id=logger.get_correlation_id(),
        expires_at=lifecycle.pending_expires_at(time.time(), settings.upload_url_expiry_seconds),
        original_region=settings.region,
        original_bucket=settings.media_bucket,
    )
    records.create(record)
    region_field = f"x-amz-meta-{keys.UPLOAD_REGION_METADATA}"  # whose record the object belongs to
    upload = aws.client("s3").generate_presigned_post(
        Bucket=settings.media_bucket,
        Key=keys.upload_key(owner, photo_id),
        Fields={"Content-Type": content_type, region_field: settings.region},
        Conditions=[{"Content-Type": content_type}, {region_field: settings.region},
                    ["content-length-range", size, size]],
        ExpiresIn=settings.upload_url_expiry_seconds,
    )
    metrics.add_metric(name="UploadsStarted", unit="Count", value=1)
    return {"photo": photo_view(record), "upload": {"url": upload["url"], "fields": upload["fields"]}}


def pending_uploads(owner: str, now: float | None = None) -> int:
    """How many of ``owner``'s uploads are granted but not processed yet (exact, and cheap).

    One COUNT query of the owner index over the last :data:`PENDING_HORIZON_SECONDS` only (so it
    reads at most an hour of the user's photos, which the upload-grants quota bounds), filtered to
    ``status = pending`` and not expired (pending rows may carry a TTL ``expires_at``; DynamoDB
    deletes expired items lazily, so they are filtered here).
    """
    moment = time.time() if now is None else now
    cutoff = datetime.fromtimestamp(moment - PENDING_HORIZON_SECONDS, timezone.utc)
    cutoff_iso = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return records.count_pending(owner, cutoff_iso, int(moment))


def get_photo(photo_id: str, viewer: str | None = None) -> dict:
    """A photo's view; its owner (``viewer``) reads it and its like count from the table, not the cache."""
    record = get_record(photo_id, viewer)
    return photo_view(record, photo_likes([photo_id], fresh=record.owner == viewer)[photo_id])


def get_record(photo_id: str, viewer: str | None = None, consistent: bool = False) -> Photo:
    """A photo readers may see: being deleted, or pending past its expiry, reads as not found (its
    owner, ``viewer``, is never served a cached record; ``consistent``: read from the table, strongly
    consistent, for nobody's cache)."""
    record = records.get(photo_id, consistent=consistent, reader=viewer)
    if record is None or not lifecycle.is_visible(record.status, record.expires_at, time.time()):
        raise PhotoNotFound(f"No photo with id {photo_id!r}.")
    return record


def owned_record(photo_id: str, caller: str) -> Photo:
    record = get_record(photo_id)
    if record.owner != caller:
        raise NotPhotoOwner("Only the photo's owner can do that.")
    return record


def update_caption(photo_id: str, caller: str, caption: str) -> None:
    """Set the caption; a photo deleted (or being deleted) meanwhile is a 404, never a re-created row."""
    owned_record(photo_id, caller)
    if not records.set_caption(photo_id, caller, caption, now_iso()):
        raise PhotoNotFound(f"No photo with id {photo_id!r}.")


def delete_photo(photo_id: str, caller: str) -> None:
    """Start deleting a photo; safe to retry.

    The record turns ``deleting`` (gone from GET and listings at once; uncounted exactly once, in
    the same transaction) and stays until the cleanup worker (:mod:`chalicelib.cleanup`) has removed
    the original and every rendition and invalidated the CDN. A retry, e.g. after a failure to queue
    the cleanup, finds the photo ``deleting``, queues the cleanup again (it is idempotent) and
    answers like the first delete.
    """
    for _ in range(_DELETE_ATTEMPTS):
        record = records.get(photo_id, consistent=True)
        if record is None:
            raise PhotoNotFound(f"No photo with id {photo_id!r}.")
        if record.owner != caller:
            raise NotPhotoOwner("Only the photo's owner can do that.")
        if record.status == DELETING or records.start_deleting(record, now_iso()):
            break
    else:  # the status kept changing under us (the worker finishing): let the client retry
        raise ServiceUnavailable("The photo is changing; try again shortly.", retry_after=ddb.RETRY_AFTER_SECONDS)
    from chalicelib import cleanup

    cleanup.queue_purge(record)


def request_edit(photo_id: str, caller: str, edits_json: dict) -> dict:
    """Validate an edit against the photo and queue it; the worker renders a new version."""
    from chalicelib import imaging

    if not isinstance(edits_json, dict):
        raise BadRequest("Request body must be a JSON object.")
    edits_json = dict(edits_json)
    base_version = edits_json.pop("base_version", None)
    if base_version is not None and not isinstance(base_version, str):
        raise ValidationFailed("Invalid edits: base_version: must be a string",
                               details=[{"field": "base_version", "message": "must be a string"}])
    record = owned_record(photo_id, caller)
    if record.status != READY:
        raise PhotoNotReady("The photo is not ready yet; edit it once processing has finished.")
    if base_version is not None and base_version != record.version:
        raise StaleVersion("The photo has changed since that version; reload it and edit the current version.",
                           details={"current_version": record.version})
    try:
        edits = imaging.Edits.from_dict(edits_json)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid edits: {exc}", details=[{"field": "edits", "message": str(exc)}]) from None
    if edits.is_empty():
        raise BadRequest("Nothing to edit: give crop, rotate, blur or sharpen.")
    # Edits always apply to the original (see pipeline.process_edit), so the crop is checked
    # against the original's frame, not against the current (possibly already cropped) version.
    frame_width, frame_height = edit_frame(record)
    problems = imaging.validate_edits(edits, frame_width, frame_height)
    if problems:
        raise ValidationFailed("Invalid edits: " + "; ".join(problems),
                               details=[{"field": "edits", "message": p} for p in problems])
    edit_id = keys.new_id()
    aws.client("sqs").send_message(
        QueueUrl=get_settings().edits_queue_url,
        MessageBody=json.dumps({"photo_id": photo_id, "edit_id": edit_id, "edits": edits_json,
                                "base_version": record.version, "checked_base": base_version is not None}),
        MessageAttributes=correlation_attributes(),
    )
    return {"edit_id": edit_id, "photo": photo_view(record)}


def edit_frame(record: Photo) -> tuple[int, int]:
    """The (oriented) original's size: the frame a crop is applied to. Photos processed before the
    original's size was recorded fall back to their current size."""
    if record.original_width and record.original_height:
        return int(record.original_width), int(record.original_height)
    return int(record.width), int(record.height)


# --- listings -------------------------------------------------------------------------------

def list_user_photos(username: str, limit: int, cursor: str | None, viewer: str | None = None) -> dict:
    """A user's ready photos, newest first, ``limit`` per page, with a signed cursor to the next.

    Only anonymous readers are served the cached first page: a member (``viewer``) reads it from the
    table, so a photo her feed just showed is on its owner's page too, and the owner sees her own photo
    at once; her own page's profile and like counts are read fresh as well."""
    own = viewer is not None and viewer.lower() == username.lower()
    owner = get_user_record(username, fresh=own).username
    scope = f"photos:{owner}"
    start = _decode_cursor(cursor, scope) if cursor else None
    items, next_key = records.list_ready(owner, limit, start, fresh=viewer is not None)
    likes = photo_likes([r.photo_id for r in items], fresh=own)
    return {
        "items": [photo_view(r, likes.get(r.photo_id, 0)) for r in items],
        "next_cursor": _encode_cursor(next_key, scope) if next_key else None,
    }


def photo_likes(photo_ids: list[str], fresh: bool = False) -> dict[str, int]:
    """Like counts of several photos in one counter read (``fresh``: none from the cache)."""
    if not photo_ids:
        return {}
    totals = counters.read_totals([(LIKES, photo_id) for photo_id in photo_ids], fresh=fresh)
    return {photo_id: total for (_, photo_id), total in totals.items()}


def _encode_cursor(last_key: dict, scope: str) -> str:
    return cursors.encode({"k": last_key}, key=secrets.cursor_key(), scope=scope)


def _decode_cursor(cursor: str, scope: str) -> dict:
    try:
        return cursors.decode(cursor, key=secrets.cursor_key(), scope=scope)["k"]
    except (cursors.CursorError, KeyError, TypeError):
        raise InvalidCursor("The cursor is invalid for this listing.") from None


def content_version(*parts: str) -> str:
    """A short, deterministic version id: the same input always renders to the same keys."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
