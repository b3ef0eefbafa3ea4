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

from chalicelib import cache, keys
from chalicelib.models import GraphEdgeRecord, bound, reading
from chalicelib.repositories import _tx, counters
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING
from chalicelib.settings import get_settings

REGISTRY_SK = "registry"
_TRANSACTION_ATTEMPTS = 4


def follow(follower: str, followee: str, created_at: str) -> int | None:
    """Write the edge, its mirror and both counts; returns the followee's shard count in force,
    or None if ``follower`` already followed ``followee`` (nothing counted)."""
    graph = bound(GraphEdgeRecord)

    def write() -> int:
        shards = counters.shard_count(FOLLOWERS, followee)
        shard = keys.follower_shard(follower, shards)
        edge = graph(keys.following_pk(follower), followee, shard=shard, created_at=created_at)
        mirror = graph(keys.followers_pk(followee, shard), follower, created_at=created_at)
        followers_counter, followers_actions = counters.increment_action(FOLLOWERS, followee, 1, shards=shards)
        following_counter, following_actions = counters.increment_action(FOLLOWING, follower, 1)
        with _tx.transaction(graph) as tx:
            tx.save(edge, condition=GraphEdgeRecord.pk.does_not_exist())
            tx.save(mirror)
            tx.update(followers_counter, actions=followers_actions)
            tx.update(following_counter, actions=following_actions)
        return shards

    shards = _tx.run(write, already_done=0, attempts=_TRANSACTION_ATTEMPTS)
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


def unfollow(follower: str, followee: str) -> bool:
    """Delete the edge, its mirror (wherever it was written) and both counts; False if not following."""
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
        with _tx.transaction(graph) as tx:
            tx.delete(edge, condition=GraphEdgeRecord.pk.exists())
            tx.delete(mirror)
            tx.update(followers_counter, actions=followers_actions)
            tx.update(following_counter, actions=following_actions)
        return True

    done = bool(_tx.run(write, already_done=0, attempts=_TRANSACTION_ATTEMPTS))  # None: a concurrent unfollow won
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
