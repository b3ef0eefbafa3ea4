"""Likes: a user likes or unlikes a ready photo (once however often repeated), and whether they did."""
from __future__ import annotations

from collections.abc import Iterable

from chalicelib import photos, quotas
from chalicelib.errors import PhotoNotFound, PhotoNotReady
from chalicelib.observability import metrics
from chalicelib.repositories import counters
from chalicelib.repositories import likes as like_edges
from chalicelib.repositories import photos as photo_records
from chalicelib.repositories import users as profiles
from chalicelib.repositories.counters import LIKES
from chalicelib.users import now_iso


def like(user: str, photo_id: str) -> dict:
    """``user`` likes a ready photo (idempotent per user); returns the exact count."""
    return _set_like(user, photo_id, liked=True)


def unlike(user: str, photo_id: str) -> dict:
    """``user`` withdraws a like (idempotent); returns the exact count."""
    return _set_like(user, photo_id, liked=False)


def _set_like(user: str, photo_id: str, liked: bool) -> dict:
    # likes and unlikes share the one quota, counted in the like's own transaction
    with quotas.taken_in_transaction(quotas.LIKES, user) as quota:
        changed = _write(user, photo_id, liked, quota)
    if not changed and not liked:
        _ensure_ready(photos.get_record(photo_id))  # nothing to withdraw: a missing photo is still a 404
    if changed and liked:
        metrics.add_metric(name="Likes", unit="Count", value=1)
    return {"likes": counters.read(LIKES, photo_id), "liked": liked}


def _write(user: str, photo_id: str, liked: bool, quota) -> bool:
    """The like's write, which itself checks the photo is ready unless this container has it cached
    as ready (no read before it). A refusal is told apart by reading the photo consistently: 404 if it
    is not there, 409 if not ready yet; if it has just become ready, the write is tried once more."""
    for attempt in range(2):
        try:
            return like_edges.set_like(user, photo_id, liked, now_iso(), quota,
                                       check_photo=attempt > 0 or not photo_records.known_ready(photo_id))
        except PhotoNotFound:
            _ensure_ready(photos.get_record(photo_id, consistent=True))  # 404 if not there
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _ensure_ready(record) -> None:
    if record.status != photos.READY:
        raise PhotoNotReady("The photo is not ready yet.")


def liked_photos(user: str, photo_ids: Iterable[str]) -> set[str]:
    """Which of ``photo_ids`` ``user`` liked (one BatchGetItem on the user's liked partition)."""
    return like_edges.liked(user, photo_ids)


def photo_for_viewer(photo_id: str, viewer: str | None) -> dict:
    """A photo's view; for a signed-in viewer it also says whether they liked it (its owner reads it fresh)."""
    view = photos.get_photo(photo_id, viewer)
    if profiles.get(view["owner"]) is None:  # the owner's account is being erased: nothing of it is served
        raise PhotoNotFound(f"No photo with id {photo_id!r}.")
    if viewer:
        view["liked"] = photo_id in liked_photos(viewer, [photo_id])
    return view
