"""Likes: a user likes or unlikes a ready photo (once however often repeated), and whether they did."""
from __future__ import annotations

from collections.abc import Iterable

from chalicelib import photos, quotas
from chalicelib.errors import PhotoNotFound, PhotoNotReady
from chalicelib.observability import metrics
from chalicelib.repositories import counters
from chalicelib.repositories import likes as like_edges
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
    record = photos.get_record(photo_id)  # 404 for an unknown photo
    if record.status != photos.READY:
        raise PhotoNotReady("The photo is not ready yet.")
    quotas.consume(quotas.LIKES, user)  # likes and unlikes share the one quota
    changed = like_edges.set_like(user, photo_id, liked, now_iso())  # False: already in the requested state
    if changed and liked:
        metrics.add_metric(name="Likes", unit="Count", value=1)
    return {"likes": counters.read(LIKES, photo_id), "liked": liked}


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
