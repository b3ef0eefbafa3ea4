"""Like edges (``GraphTable``) and their counts.

- like edge: ``pk=liked#{user}``, ``sk=photo_id``, ``shard`` = the likers shard holding its mirror;
- likers mirror: ``pk=likers#{photo_id}#{shard}``, ``sk=user`` (the shard count is the photo's
  ``likes`` counter's), so the photo cleanup and an account erasure find every like of a photo that goes.

A like, its mirror and its counter increment are one ``TransactWriteItems`` that also checks the
photo is still ready, and the edge's put (delete) is conditional, so a repeated like (unlike) counts
once and the mirror exists exactly while the edge does.
"""
from __future__ import annotations

from collections.abc import Iterable

from pynamodb.exceptions import TransactWriteError

from chalicelib import cache, ddb, keys
from chalicelib.errors import PhotoNotFound
from chalicelib.lifecycle import READY
from chalicelib.models import GraphEdgeRecord, PhotoRecord, bound, reading
from chalicelib.repositories import _tx, counters, quotas
from chalicelib.repositories.counters import LIKES

_TRANSACTION_ATTEMPTS = 4


def set_like(user: str, photo_id: str, liked: bool, created_at: str,
             quota: quotas.Take | None = None, check_photo: bool = True) -> bool:
    """Record (or withdraw) ``user``'s like of a ready photo and its mirror, counting ``quota`` in the
    same transaction; False if it was already so (nothing written, nothing counted).

    One round trip for the count's shard count and total if they are not cached, then (to like) the
    transaction, or (to unlike) a consistent read of the edge and the transaction.
    With ``check_photo`` the transaction checks the photo is ready: :class:`PhotoNotFound` if not
    (absent, deleted or still processing: the caller tells which). Without it (the caller has the
    photo cached as ready) the photo's item is not touched: a check is a write on the photo's own
    partition, which a viral photo's likes would make its hottest key. A like that lands after a
    deletion this way is swept by the purge's second pass (:mod:`chalicelib.cleanup`).
    :class:`~chalicelib.repositories.quotas.QuotaRefused` if the quota is used up.
    """
    graph = bound(GraphEdgeRecord)
    photos_model = bound(PhotoRecord)

    # The count the response shows: cached before the write, so applied() makes it the exact
    # post-write value at once (the totals trail the shards by the aggregator's delay).
    shards = counters.prepare_write(LIKES, photo_id)

    def write() -> bool:
        if liked:
            mirror_shard = keys.liker_shard(user, shards)
            edge = graph(keys.liked_pk(user), photo_id, shard=mirror_shard, created_at=created_at)
        else:
            try:
                edge = graph.get(keys.liked_pk(user), photo_id, consistent_read=True)
            except graph.DoesNotExist:
                return False
            mirror_shard = int(edge.shard or 0)  # the mirror's shard, whatever the count is now
        mirror = graph(keys.likers_pk(photo_id, mirror_shard), user, created_at=created_at)
        counter, actions = counters.increment_action(LIKES, photo_id, 1 if liked else -1, shards=shards)
        tx = _tx.Transaction(graph)
        if check_photo:
            tx.condition_check("photo", photos_model, photo_id, condition=PhotoRecord.status == READY)
        if liked:
            tx.save("edge", edge, condition=GraphEdgeRecord.pk.does_not_exist())
            tx.save("mirror", mirror)
        else:
            tx.delete("edge", edge, condition=GraphEdgeRecord.pk.exists())
            tx.delete("mirror", mirror)
        tx.update("count", counter, actions=actions)
        try:
            quotas.commit_counting(tx, quota)
        except TransactWriteError as exc:
            if tx.failed(exc, "photo"):
                raise PhotoNotFound(f"No photo with id {photo_id!r}.") from None  # not ready, or gone
            if tx.failed(exc, "edge"):
                return False  # already so (or a concurrent duplicate won)
            raise
        return True

    changed = bool(ddb.with_retries(write, attempts=_TRANSACTION_ATTEMPTS))
    if changed:
        counters.applied(LIKES, photo_id, 1 if liked else -1)
    cache.shared.put("liked", (user, photo_id), liked)
    return changed


def drop_like(user: str, photo_id: str) -> bool:
    """Remove a like edge and its mirror without counting (the photo is gone or going, its counter
    with it); False if the edge was gone already."""
    graph = bound(GraphEdgeRecord)
    try:
        edge = graph.get(keys.liked_pk(user), photo_id, consistent_read=True)
    except graph.DoesNotExist:
        return False
    graph(keys.likers_pk(photo_id, int(edge.shard or 0)), user).delete()  # the mirror first: the edge finds it
    edge.delete()
    return True


def likers_page(photo_id: str, shard: int, limit: int) -> list[str]:
    """Up to ``limit`` users in one likers shard of ``photo_id`` (keys only, strongly consistent)."""
    return [r.sk for r in bound(GraphEdgeRecord).query(keys.likers_pk(photo_id, shard), limit=limit,
                                                        consistent_read=True, attributes_to_get=["pk", "sk"])]


def drop_likers(photo_id: str, shard: int, users: list[str]) -> None:
    """Remove these users' likes of ``photo_id`` (edge and mirror, uncounted: the photo is going).

    The edges go first and the mirrors (which find them) after, so a crash in between leaves
    mirrors that the next attempt finds again, never an edge nothing points to."""
    graph = bound(GraphEdgeRecord)
    for pk_of in (lambda user: (keys.liked_pk(user), photo_id), lambda user: (keys.likers_pk(photo_id, shard), user)):
        with graph.batch_write() as batch:
            for user in users:
                batch.delete(graph(*pk_of(user)))


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


def drop_all_likers(photo_id: str, shards: int, page: int = 100) -> int:
    """Every user's like of a photo that is ``deleting`` or gone (a like from a container that had the
    photo cached as ready may still land for a while: the purge runs this twice), page by page in each of its ``shards`` likers shards. Uncounted: the
    photo's counter goes with it. Returns how many were removed (a rerun finds only the rest)."""
    removed = 0
    for shard in range(shards):
        while users := likers_page(photo_id, shard, page):
            drop_likers(photo_id, shard, users)
            removed += len(users)
    return removed
