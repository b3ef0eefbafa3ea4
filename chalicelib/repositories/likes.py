"""Like edges (``GraphTable``, ``pk=liked#{user}``, ``sk=photo_id``) and their counts.

A like and its counter increment are one ``TransactWriteItems`` that also checks the photo is still
ready, and the edge's put (delete) is conditional, so a repeated like (unlike) counts once.
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

    # The count the response shows: cached before the write, so applied() makes it the exact
    # post-write value at once (the totals trail the shards by the aggregator's delay).
    shards = counters.prepare_write(LIKES, photo_id)

    def write() -> bool:
        edge = graph(keys.liked_pk(user), photo_id, created_at=created_at)
        counter, actions = counters.increment_action(LIKES, photo_id, 1 if liked else -1, shards=shards)
        try:
            with _tx.transaction(graph) as tx:
                tx.condition_check(photos_model, photo_id, condition=PhotoRecord.status == READY)
                if liked:
                    tx.save(edge, condition=GraphEdgeRecord.pk.does_not_exist())
                else:
                    tx.delete(edge, condition=GraphEdgeRecord.pk.exists())
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
