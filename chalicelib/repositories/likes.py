"""Like edges (``GraphTable``, ``pk=liked#{user}``, ``sk=photo_id``) and their counts.

A like and its counter increment are one ``TransactWriteItems`` that also checks the photo is still
ready, and the edge's put (delete) is conditional, so a repeated like (unlike) counts once. Each
edge has a mirror ``pk=likers#{photo_id}``, ``sk=user`` in the same transaction: the photo's likers,
which the reconciliation job recounts the likes counter from (``chalicelib.reconcile``).
"""
from __future__ import annotations

from collections.abc import Iterable

from pynamodb.exceptions import TransactWriteError

from chalicelib import cache, ddb, keys
from chalicelib.errors import PhotoNotFound
from chalicelib.lifecycle import READY
from chalicelib.models import GraphEdgeRecord, PhotoRecord, bound, reading
from chalicelib.repositories import _tx, counters
from chalicelib.repositories.counters import LIKES

_TRANSACTION_ATTEMPTS = 4


def set_like(user: str, photo_id: str, liked: bool, created_at: str) -> bool:
    """Record (or withdraw) ``user``'s like of a ready photo; False if it was already so.

    :class:`PhotoNotFound` if the photo stopped being ready (deleted) meanwhile.
    """
    graph = bound(GraphEdgeRecord)
    photos_model = bound(PhotoRecord)

    def write() -> bool:
        edge = graph(keys.liked_pk(user), photo_id, created_at=created_at)
        mirror = graph(keys.likers_pk(photo_id), user, created_at=created_at)
        counter, actions = counters.increment_action(LIKES, photo_id, 1 if liked else -1)
        try:
            with _tx.transaction(graph) as tx:
                tx.condition_check(photos_model, photo_id, condition=PhotoRecord.status == READY)
                if liked:
                    tx.save(edge, condition=GraphEdgeRecord.pk.does_not_exist())
                    tx.save(mirror)
                else:
                    tx.delete(edge, condition=GraphEdgeRecord.pk.exists())
                    tx.delete(mirror)
                tx.update(counter, actions=actions)
        except TransactWriteError as exc:
            if ddb.condition_failed(exc, 0):
                raise PhotoNotFound(f"No photo with id {photo_id!r}.") from None  # deleted meanwhile
            raise
        return True

    changed = bool(_tx.run(write, already_done=1, attempts=_TRANSACTION_ATTEMPTS))
    if changed:
        counters.applied(LIKES, photo_id, 1 if liked else -1)
    cache.shared.put("liked", (user, photo_id), liked)
    return changed


def liked(user: str, photo_ids: Iterable[str]) -> set[str]:
    """Which of ``photo_ids`` ``user`` liked (one BatchGetItem on the user's liked partition)."""
    wanted = sorted(set(photo_ids))
    if not wanted:
        return set()
    found = cache.shared.get_many("liked", [(user, p) for p in wanted], _load_liked)
    return {photo_id for (_, photo_id), is_liked in found.items() if is_liked}


def _load_liked(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """Whether each ``(user, photo_id)`` like exists (one BatchGetItem; absent ones are cached too)."""
    edges = {(keys.liked_pk(user), photo_id): (user, photo_id) for user, photo_id in pairs}
    found = {(r.pk, r.sk) for r in reading(GraphEdgeRecord).batch_get(list(edges), attributes_to_get=["pk", "sk"])}
    return {pair: edge in found for edge, pair in edges.items()}


def forget_photo(photo_id: str, page: int = 100) -> None:
    """Delete every like of a photo that is going away: each liker's edge and its mirror (the
    photo's likers partition), a page at a time; idempotent (a redelivery finds fewer or none)."""
    graph = bound(GraphEdgeRecord)
    while True:
        likers = [r.sk for r in graph.query(keys.likers_pk(photo_id), limit=page, consistent_read=True,
                                            attributes_to_get=["pk", "sk"])]
        if not likers:
            return
        with graph.batch_write() as batch:
            for user in likers:
                batch.delete(graph(keys.liked_pk(user), photo_id))
                batch.delete(graph(keys.likers_pk(photo_id), user))
        for user in likers:
            cache.shared.drop("liked", (user, photo_id))
