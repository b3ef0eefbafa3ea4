"""The social graph's follow edges (``GraphTable``) and the celebrity registry.

- following edge: ``pk=following#{follower}``, ``sk=followee``, ``shard`` = the followers shard
  holding its mirror (so unfollow and resharding never lose the mirror);
- followers edge: ``pk=followers#{followee}#{shard}``, ``sk=follower``; the shard count is the
  ``followers`` counter's (:func:`chalicelib.repositories.counters.shard_count`), so the list and
  the counter grow together;
- celebrity registry copy: ``pk=celebrities#{copy}``, ``sk="registry"``, ``members`` = usernames.

An edge and its counter increments are one ``TransactWriteItems`` and the edge's put is
conditional, so a repeated (or concurrent duplicate) follow counts once.
"""
from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import TransactWriteError

from chalicelib import cache, ddb, keys
from chalicelib.errors import UserNotFound
from chalicelib.models import GraphEdgeRecord, UserRecord, bound, reading
from chalicelib.repositories import _tx, counters, quotas
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING
from chalicelib.settings import get_settings

REGISTRY_SK = "registry"
_TRANSACTION_ATTEMPTS = 4


def follow(follower: str, followee: str, created_at: str, quota: quotas.Take | None = None,
           check_followee: bool = False) -> int | None:
    """Write the edge, its mirror and both counts, counting ``quota`` in the same transaction; returns
    the followee's shard count in force, or None if ``follower`` already followed ``followee``
    (nothing written, nothing counted).

    One round trip for the shard counts (and the followee's follower total, which the resharding
    policy reads) if they are not cached, then the transaction. With ``check_followee`` (the caller
    has not seen her profile) the transaction also checks her profile exists: :class:`UserNotFound`
    if not. :class:`~chalicelib.repositories.quotas.QuotaRefused` if the
    quota is used up."""
    graph = bound(GraphEdgeRecord)
    followed, following = (FOLLOWERS, followee), (FOLLOWING, follower)
    shard_counts = counters.prepare_writes([followed], [following])

    def write() -> int | None:
        shards = shard_counts[followed]
        shard = keys.follower_shard(follower, shards)
        edge = graph(keys.following_pk(follower), followee, shard=shard, created_at=created_at)
        mirror = graph(keys.followers_pk(followee, shard), follower, created_at=created_at)
        followers_counter, followers_actions = counters.increment_action(FOLLOWERS, followee, 1, shards=shards)
        following_counter, following_actions = counters.increment_action(
            FOLLOWING, follower, 1, shards=shard_counts[following])
        tx = _tx.Transaction(graph)
        if check_followee:
            tx.condition_check("followee", bound(UserRecord), followee, condition=UserRecord.username.exists())
        tx.save("edge", edge, condition=GraphEdgeRecord.pk.does_not_exist())
        tx.save("mirror", mirror)
        tx.update("followers", followers_counter, actions=followers_actions)
        tx.update("following", following_counter, actions=following_actions)
        try:
            quotas.commit_counting(tx, quota)
        except TransactWriteError as exc:
            if tx.failed(exc, "followee"):
                raise UserNotFound(f"No user named {followee!r}.") from None
            if tx.failed(exc, "edge"):
                return None  # already following (or a concurrent duplicate won)
            raise
        return shards

    shards = ddb.with_retries(write, attempts=_TRANSACTION_ATTEMPTS)
    if shards is not None:
        _followed(follower, followee, 1)
    return shards


def _followed(follower: str, followee: str, delta: int) -> None:
    """This container's follow (+1) or unfollow (-1) committed: its cached counts and set follow."""
    counters.applied(FOLLOWERS, followee, delta)
    counters.applied(FOLLOWING, follower, delta)
    cache.shared.drop_where("followers_page", lambda key: key[0] == followee)
    cache.shared.update("following", follower,
                        lambda users: users | {followee} if delta > 0 else users - {followee})


def unfollow(follower: str, followee: str, quota: quotas.Take | None = None) -> bool:
    """Delete the edge, its mirror (wherever it was written) and both counts, counting ``quota`` in
    the same transaction; False if not following (nothing written, nothing counted).
    :class:`~chalicelib.repositories.quotas.QuotaRefused` if the quota is used up."""
    graph = bound(GraphEdgeRecord)

    def write() -> bool:
        try:
            edge = graph.get(keys.following_pk(follower), followee, consistent_read=True)
        except graph.DoesNotExist:
            return False
        shard = int(edge.shard or 0)  # the shard the mirror was written to, whatever the count is now
        mirror = graph(keys.followers_pk(followee, shard), follower)
        followers_counter, followers_actions = counters.increment_action(FOLLOWERS, followee, -1)
        following_counter, following_actions = counters.increment_action(FOLLOWING, follower, -1)
        tx = _tx.Transaction(graph)
        tx.delete("edge", edge, condition=GraphEdgeRecord.pk.exists())
        tx.delete("mirror", mirror)
        tx.update("followers", followers_counter, actions=followers_actions)
        tx.update("following", following_counter, actions=following_actions)
        try:
            quotas.commit_counting(tx, quota)
        except TransactWriteError as exc:
            if tx.failed(exc, "edge"):
                return False  # a concurrent unfollow won
            raise
        return True

    done = bool(ddb.with_retries(write, attempts=_TRANSACTION_ATTEMPTS))
    if done:
        _followed(follower, followee, -1)
    return done


def follows(reader: str, author: str) -> bool:
    """Whether ``reader`` follows ``author`` now (strongly consistent read of the edge)."""
    graph = bound(GraphEdgeRecord)
    try:
        graph.get(keys.following_pk(reader), author, consistent_read=True, attributes_to_get=["pk"])
    except graph.DoesNotExist:
        return False
    return True


def followers_page(user: str, shard: int, after: str | None, limit: int, fresh: bool = False) -> list[str]:
    """Up to ``limit`` followers in one followers shard, by username, after ``after``.

    The first page of each shard is cached (kind ``followers_page``) unless ``fresh`` (the fan-out
    worker: a follower missing from a stale page would miss the photo)."""
    if after is None and not fresh:
        return list(cache.shared.get("followers_page", (user, shard, limit),
                                     lambda: tuple(_followers_page(user, shard, None, limit))))
    return _followers_page(user, shard, after, limit)


def _followers_page(user: str, shard: int, after: str | None, limit: int) -> list[str]:
    condition = GraphEdgeRecord.sk > after if after is not None else None
    return [r.sk for r in reading(GraphEdgeRecord).query(
        keys.followers_pk(user, shard), range_key_condition=condition, limit=limit, attributes_to_get=["pk", "sk"])]


def following_page(user: str, after: str | None, limit: int | None = None) -> list[str]:
    """Up to ``limit`` (default all) of the users ``user`` follows, by username, after ``after``."""
    condition = GraphEdgeRecord.sk > after if after is not None else None
    return [r.sk for r in reading(GraphEdgeRecord).query(
        keys.following_pk(user), range_key_condition=condition, limit=limit, attributes_to_get=["pk", "sk"])]


def following(user: str) -> frozenset[str]:
    """Everyone ``user`` follows (one partition, keys only; cached, kind ``following``)."""
    return cache.shared.get("following", user, lambda: frozenset(following_page(user, None)))


def registry(choose_copy: Callable[[], int]) -> frozenset[str]:
    """The celebrity registry (cached, kind ``registry``); a miss reads the copy ``choose_copy()`` names."""
    return cache.shared.get("registry", REGISTRY_SK, lambda: _load_registry(choose_copy()))


def _load_registry(copy: int) -> frozenset[str]:
    graph = reading(GraphEdgeRecord)
    try:
        return frozenset(graph.get(keys.celebrity_registry_pk(copy), REGISTRY_SK).members or ())
    except graph.DoesNotExist:
        return frozenset()


def add_to_registry(username: str) -> None:
    """Add ``username`` to every copy of the registry in one transaction (idempotent set ADD).

    Only the primary region writes the registry: its items are replicated by last writer wins per
    item, so a set ADD in each of two regions at once would keep only one of them. Elsewhere this is
    a no-op: ``celebrities.is_celebrity`` still answers from the follower count, and the primary
    heals the registry the next time it sees the celebrity."""
    if not get_settings().is_primary:
        return
    graph = bound(GraphEdgeRecord)
    with _tx.transaction(graph) as tx:
        for copy in range(keys.CELEBRITY_REGISTRY_COPIES):
            tx.update(graph(keys.celebrity_registry_pk(copy), REGISTRY_SK),
                      actions=[GraphEdgeRecord.members.add({username})])
    cache.shared.update("registry", REGISTRY_SK, lambda members: members | {username})
