"""Photo records (``PhotosTable`` and its ``by_owner`` index) and their lifecycle writes.

Every state change is conditional on the state it moves from (see :mod:`chalicelib.lifecycle`), and
answers False when that state is gone (a concurrent delivery, edit or delete won) instead of raising.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib import cache, ddb
from chalicelib.lifecycle import DELETING, FAILED, PENDING, READY
from chalicelib.models import PhotoRecord, bound, pulled, reading
from chalicelib.repositories import _tx, counters
from chalicelib.repositories.counters import PHOTOS


@dataclass(frozen=True)
class Photo:
    photo_id: str
    owner: str
    owner_sort: str
    status: str
    content_type: str
    declared_size: int
    created_at: str
    caption: str | None = None
    error: str | None = None
    updated_at: str | None = None
    width: int | None = None
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    version: str | None = None
    original_etag: str | None = None
    renditions: dict | None = None
    expires_at: int | None = None
    correlation_id: str | None = None
    applied_edits: str | None = None  # JSON: the edits the current version was rendered with
    original_region: str | None = None  # where the original was uploaded (its home region)
    original_bucket: str | None = None  # and the bucket there (names embed the region)


_FIELDS = [f.name for f in fields(Photo)]


def _photo(record: PhotoRecord) -> Photo:
    values = {name: getattr(record, name) for name in _FIELDS}
    values["renditions"] = record.renditions.as_dict() if record.renditions else None
    for name in ("declared_size", "width", "height", "original_width", "original_height", "expires_at"):
        if values[name] is not None:
            values[name] = int(values[name])
    return Photo(**values)


def _key(photo_id: str) -> PhotoRecord:
    return bound(PhotoRecord)(photo_id)


def _conditional_update(photo_id: str, actions: list, condition) -> bool:
    try:
        return _tx.conditional(lambda: _key(photo_id).update(actions=actions, condition=condition))
    finally:
        cache.shared.drop("photo", photo_id)


def _changed(photo_id: str, owner: str) -> None:
    """This container changed what readers see of ``owner``'s photo: drop every cached view of it."""
    cache.shared.drop("photo", photo_id)
    cache.shared.drop_where("timeline", lambda key: key[0] == owner)
    cache.shared.drop_where("photos_page", lambda key: key[0] == owner)


# --- reads ----------------------------------------------------------------------------------------

def get(photo_id: str, consistent: bool = False, reader: str | None = None) -> Photo | None:
    """A photo; eventually consistent reads of ready photos are cached (kind ``photo``), other states
    are about to change (a worker finishing, a delete) and absent photos may appear: never cached.

    Its owner (``reader``) is never served the cached record: an edit the worker applied, a caption
    changed through another container, show to her at once."""
    if consistent:
        return _load(photo_id, consistent=True)
    return cache.shared.get("photo", photo_id, lambda: _load(photo_id),
                            keep=lambda photo: photo is not None and photo.status == READY,
                            bypass=None if reader is None else (lambda photo: photo.owner == reader))


def known_ready(photo_id: str) -> bool:
    """Whether this container has the photo cached (only ready photos are): it was ready within the
    ``photo`` TTL. No read."""
    return cache.shared.peek("photo", photo_id) is not None


def _load(photo_id: str, consistent: bool = False) -> Photo | None:
    model = bound(PhotoRecord) if consistent else reading(PhotoRecord)
    try:
        return _photo(model.get(photo_id, consistent_read=consistent))
    except model.DoesNotExist:
        return None


def batch_get(photo_ids: list[str]) -> dict[str, Photo]:
    """Several photos in one BatchGetItem, by id (missing ones left out)."""
    if not photo_ids:
        return {}
    return {r.photo_id: _photo(r) for r in reading(PhotoRecord).batch_get(photo_ids)}


def count_pending(owner: str, created_since: str, now: int) -> int:
    """How many of ``owner``'s photos created since ``created_since`` are pending and not expired
    (one COUNT query of the owner index; expired pending rows are filtered, TTL deletion is lazy)."""
    from pynamodb.expressions.operand import Path

    expires_at = Path("expires_at")
    return bound(PhotoRecord).by_owner.count(
        owner,
        range_key_condition=PhotoRecord.owner_sort >= created_since,
        filter_condition=(PhotoRecord.status == PENDING) & (expires_at.does_not_exist() | (expires_at > now)),
    )


def list_ready(owner: str, limit: int, start: dict | None, fresh: bool = False) -> tuple[list[Photo], dict | None]:
    """A page of ``owner``'s ready photos, newest first, and the position after it (None at the end).

    The first page is cached (kind ``photos_page``) unless ``fresh`` (a signed-in reader: the owner, or a
    member her feed sent here), who reads the table, so a photo the worker (another container) made
    ready shows at once, and refreshes the entry; anonymous readers see it within the TTL. Later pages
    are never cached."""
    if start is not None:
        return _ready_page(owner, limit, start)
    read = cache.shared.refresh if fresh else cache.shared.get
    items, next_key = read("photos_page", (owner, limit), lambda: _first_page(owner, limit))
    return list(items), json.loads(next_key) if next_key else None


def _first_page(owner: str, limit: int) -> tuple[tuple[Photo, ...], str | None]:
    """The first page as a cache value (immutable: the position as JSON text)."""
    items, next_key = _ready_page(owner, limit, None)
    return tuple(items), json.dumps(next_key, sort_keys=True) if next_key else None


def _ready_page(owner: str, limit: int, start: dict | None) -> tuple[list[Photo], dict | None]:
    results = reading(PhotoRecord).by_owner.query(
        owner, scan_index_forward=False, filter_condition=PhotoRecord.status == READY,
        last_evaluated_key=start, page_size=limit,
    )
    items, next_key = [], None
    for record in results:
        items.append(_photo(record))
        if len(items) == limit:
            next_key = {"photo_id": {"S": record.photo_id}, "owner": {"S": record.owner},
                        "owner_sort": {"S": record.owner_sort}}
            break
    return items, next_key


def ready_after(owner: str, since: str, limit: int) -> list[Photo]:
    """``owner``'s ready photos created after ``since`` (``created_at#photo_id``), newest first."""
    return [_photo(r) for r in reading(PhotoRecord).by_owner.query(
        owner, range_key_condition=PhotoRecord.owner_sort > since, scan_index_forward=False,
        filter_condition=PhotoRecord.status == READY, limit=limit)]


def ready_before(owner: str, frontier: str | None, limit: int, *, for_owner: bool) -> list[Photo]:
    """Up to ``limit`` of ``owner``'s ready photos sorting before ``frontier``, newest first.

    The newest page (no ``frontier``) pulled into another reader's feed (not ``for_owner``) is shared
    by every follower: cached in-process (kind ``timeline``) and read through :func:`pulled`'s twin
    (DAX's query cache where the stage has DAX, never invalidated by writes: a new photo shows within
    both TTLs). The owner's own page (``for_owner``) is read straight from DynamoDB, uncached, so the
    owner sees their own uploads, edits and deletions at once."""
    if frontier is None and not for_owner:
        return list(cache.shared.get("timeline", (owner, limit),
                                     lambda: tuple(_ready_before(owner, None, limit, pulled(PhotoRecord)))))
    return _ready_before(owner, frontier, limit, reading(PhotoRecord))


def _ready_before(owner: str, frontier: str | None, limit: int, model: type[PhotoRecord]) -> list[Photo]:
    condition = PhotoRecord.owner_sort < frontier if frontier else None
    return [_photo(r) for r in model.by_owner.query(
        owner, range_key_condition=condition, scan_index_forward=False,
        filter_condition=PhotoRecord.status == READY, limit=limit, page_size=limit)]


def recent_ids(owner: str, limit: int) -> list[str]:
    """Ids of ``owner``'s ``limit`` newest photos (any status)."""
    return [r.photo_id for r in reading(PhotoRecord).by_owner.query(
        owner, scan_index_forward=False, limit=limit, attributes_to_get=["photo_id"])]


# --- writes ---------------------------------------------------------------------------------------

def create(photo: Photo) -> None:
    """Write a new (pending) photo; its id is fresh, so an existing item is an error."""
    values = {name: getattr(photo, name) for name in _FIELDS if name != "photo_id" and getattr(photo, name) is not None}
    bound(PhotoRecord)(photo.photo_id, **values).save(condition=PhotoRecord.photo_id.does_not_exist())


def set_caption(photo_id: str, owner: str, caption: str, updated_at: str) -> bool:
    """Set the caption of ``owner``'s photo; False if it is gone or being deleted (never re-created)."""
    done = _conditional_update(
        photo_id, [PhotoRecord.caption.set(caption), PhotoRecord.updated_at.set(updated_at)],
        (PhotoRecord.owner == owner) & (PhotoRecord.status != DELETING))
    _changed(photo_id, owner)
    return done


def start_deleting(photo: Photo, updated_at: str) -> bool:
    """Move ``photo`` to ``deleting`` if its status is still ``photo.status``; False if it changed.

    A ready photo is uncounted from its owner's photos in the same transaction (exactly once).
    """
    actions = [PhotoRecord.status.set(DELETING), PhotoRecord.updated_at.set(updated_at)]
    model = bound(PhotoRecord)

    def uncount_and_mark() -> None:
        counter, counter_actions = counters.increment_action(PHOTOS, photo.owner, -1)
        with _tx.transaction(model) as tx:
            tx.update(model(photo.photo_id), actions=actions, condition=PhotoRecord.status == READY)
            tx.update(counter, actions=counter_actions)

    def mark() -> None:
        model(photo.photo_id).update(actions=actions, condition=PhotoRecord.status == photo.status)

    try:
        ddb.with_retries(uncount_and_mark if photo.status == READY else mark)
    except (TransactWriteError, UpdateError) as exc:
        if ddb.condition_failed(exc, 0):
            return False
        raise
    finally:
        _changed(photo.photo_id, photo.owner)
    if photo.status == READY:
        counters.applied(PHOTOS, photo.owner, -1)
    return True


def mark_ready(photo_id: str, owner: str, *, width: int, height: int, version: str, etag: str,
               renditions: dict, updated_at: str) -> bool:
    """Pending → ready with its renditions, counted in the owner's photos in the same transaction.

    False if the photo is no longer pending (finished by another delivery, deleted, expired).
    """
    model = bound(PhotoRecord)

    def write() -> bool:
        # A fresh counter shard per attempt: a conflict on one hot shard need not repeat.
        counter, counter_actions = counters.increment_action(PHOTOS, owner, 1)
        with _tx.transaction(model) as tx:
            tx.update(
                model(photo_id),
                actions=[
                    PhotoRecord.status.set(READY),
                    *_version_actions(width, height, version, renditions, updated_at),
                    PhotoRecord.original_width.set(width),
                    PhotoRecord.original_height.set(height),
                    PhotoRecord.original_etag.set(etag),
                    PhotoRecord.expires_at.remove(),
                ],
                condition=PhotoRecord.status == PENDING,
            )
            tx.update(counter, actions=counter_actions)
        return True

    ready = bool(_tx.run(write, already_done=0))
    _changed(photo_id, owner)
    if ready:
        counters.applied(PHOTOS, owner, 1)
    return ready


def apply_edit(photo_id: str, *, width: int, height: int, version: str, renditions: dict, applied_edits: str,
               updated_at: str, base_version: str | None) -> bool:
    """Point a ready photo (still at ``base_version`` when given) at a new version rendered with
    ``applied_edits`` (JSON); False if not."""
    condition = PhotoRecord.status == READY
    if base_version is not None:
        condition = condition & (PhotoRecord.version == base_version)
    return _conditional_update(photo_id, [*_version_actions(width, height, version, renditions, updated_at),
                                          PhotoRecord.applied_edits.set(applied_edits)], condition)


def _version_actions(width: int, height: int, version: str, renditions: dict, updated_at: str) -> list:
    """The updates that point a photo at a rendered version (first or edited) and clear its error."""
    return [PhotoRecord.width.set(width), PhotoRecord.height.set(height), PhotoRecord.version.set(version),
            PhotoRecord.renditions.set(renditions), PhotoRecord.updated_at.set(updated_at),
            PhotoRecord.error.remove()]


def record_edit_error(photo_id: str, message: str, updated_at: str) -> bool:
    """Show why an edit was not applied on a photo that is still ready; False if it is not (an
    unconditional update would re-create a deleted photo as a half item without an owner)."""
    return _conditional_update(photo_id, [PhotoRecord.error.set(message), PhotoRecord.updated_at.set(updated_at)],
                               PhotoRecord.status == READY)


def mark_failed(photo_id: str, message: str, updated_at: str) -> bool:
    """Pending → failed with the reason; False if no longer pending."""
    return _conditional_update(
        photo_id,
        [PhotoRecord.status.set(FAILED), PhotoRecord.error.set(message), PhotoRecord.updated_at.set(updated_at),
         PhotoRecord.expires_at.remove()],
        PhotoRecord.status == PENDING)


def _delete_if(photo_id: str, status: str) -> bool:
    return _tx.conditional(lambda: _key(photo_id).delete(condition=PhotoRecord.status == status))


def delete_if_pending(photo_id: str) -> bool:
    return _delete_if(photo_id, PENDING)


def delete_if_deleting(photo_id: str) -> bool:
    """Remove the record of a photo being deleted; False if gone already or not ``deleting``."""
    return _delete_if(photo_id, DELETING)

