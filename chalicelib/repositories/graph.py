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

from chalicelib import keys
from chalicelib.models import GraphEdgeRecord, bound, reading
from chalicelib.repositories import _tx, counters
from chalicelib.repositories.counters import FOLLOWERS, FOLLOWING

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

    return _tx.run(write, already_done=0, attempts=_TRANSACTION_ATTEMPTS)


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

    return bool(_tx.run(write, already_done=0, attempts=_TRANSACTION_ATTEMPTS))  # None: a concurrent unfollow won


def follows(reader: str, author: str) -> bool:
    """Whether ``reader`` follows ``author`` now (strongly consistent read of the edge)."""
    graph = bound(GraphEdgeRecord)
    try:
        graph.get(keys.following_pk(reader), author, consistent_read=True, attributes_to_get=["pk"])
    except graph.DoesNotExist:
        return False
    return True


def followers_page(user: str, shard: int, after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` followers in one followers shard, by username, after ``after``."""
    condition = GraphEdgeRecord.sk > after if after is not None else None
    return [r.sk for r in reading(GraphEdgeRecord).query(
        keys.followers_pk(user, shard), range_key_condition=condition, limit=limit, attributes_to_get=["pk", "sk"])]


def following_page(user: str, after: str | None, limit: int | None = None) -> list[str]:
    """Up to ``limit`` (default all) of the users ``user`` follows, by username, after ``after``."""
    condition = GraphEdgeRecord.sk > after if after is not None else None
    return [r.sk for r in reading(GraphEdgeRecord).query(
        keys.following_pk(user), range_key_condition=condition, limit=limit, attributes_to_get=["pk", "sk"])]


def registry(copy: int) -> frozenset[str]:
    """The members of one copy of the celebrity registry."""
    graph = reading(GraphEdgeRecord)
    try:
        return frozenset(graph.get(keys.celebrity_registry_pk(copy), REGISTRY_SK).members or ())
    except graph.DoesNotExist:
        return frozenset()


def add_to_registry(username: str) -> None:
    """Add ``username`` to every copy of the registry in one transaction (idempotent set ADD)."""
    graph = bound(GraphEdgeRecord)
    with _tx.transaction(graph) as tx:
        for copy in range(keys.CELEBRITY_REGISTRY_COPIES):
            tx.update(graph(keys.celebrity_registry_pk(copy), REGISTRY_SK),
                      actions=[GraphEdgeRecord.members.add({username})])
