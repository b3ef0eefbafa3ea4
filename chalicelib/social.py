"""The social graph: follows, follower/following listings, likes and the celebrity registry.

Hot keys never concentrate on one partition:

- A user's followers are spread over ``shards`` partitions (``followers#{user}#{n}``). The shard
  count lives in the ``followers`` counter's meta item (:func:`chalicelib.counters.shard_count`),
  so the followers list and the followers counter always grow together. A follow computes its
  shard from the count in force, and the edge in the follower's ``following`` partition records
  which shard holds its mirror, so unfollow after a reshard deletes the right item.
- Counters (followers, following, likes) are sharded and region-scoped (:mod:`chalicelib.counters`).
- The set of celebrities is replicated in ``CELEBRITY_REGISTRY_COPIES`` identical items: writes go
  to every copy in one transaction, reads pick one copy at random and are cached for 60 s.

Counts stay exact: an edge and its counter increments are one ``TransactWriteItems``, and the
edge's put is conditional, so a repeated (or concurrent duplicate) follow or like counts once.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import counters, cursors, ddb, keys, quotas, secrets
from chalicelib.errors import BadRequest, InvalidCursor, PhotoNotFound, PhotoNotReady
from chalicelib.models import GraphEdgeRecord, PhotoRecord, UserRecord, bound
from chalicelib.observability import metrics
from chalicelib.settings import get_settings
from chalicelib.users import FOLLOWERS, FOLLOWING, get_record, now_iso

T = TypeVar("T")

#: (followers below this bound, shards) – a shard stays well under DynamoDB's 1,000 WCU/s per key
#: even if every follower of the user acted at once on a burst day.
SHARD_STEPS: tuple[tuple[int, int], ...] = ((1_000, 1), (10_000, 8), (100_000, 32), (1_000_000, 128))
MAX_SHARDS = 512
REGISTRY_SK = "registry"
REGISTRY_CACHE_SECONDS = 60.0
#: How many of a user's newest photos get their like counters resharded with the user.
RECENT_PHOTOS_TO_RESHARD = 50
_TRANSACTION_ATTEMPTS = 4


# --- pure rules ---------------------------------------------------------------------------------

def shards_for(followers: int) -> int:
    """Shards a user's followers list/counter (and like counters) should have at ``followers``.

    1 below 1,000 followers, 8 below 10,000, 32 below 100,000, 128 below 1,000,000, then 512.
    """
    for bound_, shards in SHARD_STEPS:
        if followers < bound_:
            return shards
    return MAX_SHARDS


def should_check_count(shards: int, draw: float) -> bool:
    """Whether a follow re-reads the followee's total (to apply the resharding policy).

    A read sums every shard, so it is sampled with probability ``1/shards``: the amortised cost per
    follow stays about one item read however big the user, and a boundary is noticed within about
    ``shards`` follows of being crossed. ``draw`` is a uniform number in ``[0, 1)``.
    """
    return shards <= 1 or draw < 1.0 / shards


def merge_page(
    sources: Sequence[Sequence[T]],
    truncated: Sequence[bool],
    limit: int,
    key: Callable[[T], str],
    descending: bool = False,
) -> tuple[list[T], str | None, bool]:
    """One page of a k-way merge of ``sources`` (each sorted by ``key``, all read after one frontier).

    Returns ``(items, frontier, more)``: at most ``limit`` items in order, equal keys emitted once
    (the first source's copy wins), ``frontier`` = key of the last item consumed, and whether more
    may follow. A truncated source (one that may hold more than was read) bounds the merge: once its
    buffer is used up the page stops, because its next unread item could come before anything else.
    Because every source shares the one sort order, the frontier is every source's position at once
    (which keeps cursors short however many sources — shards, celebrities — a listing merges).
    """
    heads = [0] * len(sources)
    items: list[T] = []
    frontier: str | None = None
    better = (lambda a, b: a > b) if descending else (lambda a, b: a < b)
    while len(items) < limit:
        if any(truncated[i] and heads[i] >= len(s) for i, s in enumerate(sources)):
            break
        best: str | None = None
        chosen: T | None = None
        for i, source in enumerate(sources):
            if heads[i] < len(source):
                candidate = key(source[heads[i]])
                if best is None or better(candidate, best):
                    best, chosen = candidate, source[heads[i]]
        if best is None:
            break
        for i, source in enumerate(sources):  # consume the key in every source (dedupe)
            while heads[i] < len(source) and key(source[heads[i]]) == best:
                heads[i] += 1
        items.append(chosen)  # type: ignore[arg-type]
        frontier = best
    more = any(truncated) or any(heads[i] < len(s) for i, s in enumerate(sources))
    return items, frontier, more


# --- cursors --------------------------------------------------------------------------------------

def encode_position(frontier: str, scope: str) -> str:
    return cursors.encode({"k": frontier}, key=secrets.cursor_key(), scope=scope)


def decode_position(cursor: str | None, scope: str) -> str | None:
    """The frontier a cursor holds; :class:`InvalidCursor` if we did not issue it for ``scope``."""
    if not cursor:
        return None
    try:
        frontier = cursors.decode(cursor, key=secrets.cursor_key(), scope=scope)["k"]
    except (cursors.CursorError, KeyError, TypeError):
        raise InvalidCursor("The cursor is invalid for this listing.") from None
    if not isinstance(frontier, str):
        raise InvalidCursor("The cursor is invalid for this listing.")
    return frontier


# --- follows --------------------------------------------------------------------------------------

def follow(follower: str, followee_name: str) -> None:
    """``follower`` follows ``followee_name`` (idempotent: following twice counts once)."""
    followee = _other_user(follower, followee_name)
    quotas.consume(quotas.FOLLOWS, follower)
    graph = bound(GraphEdgeRecord)

    def write() -> int | None:
        shards = counters.shard_count(FOLLOWERS, followee)
        shard = keys.follower_shard(follower, shards)
        created_at = now_iso()
        edge = graph(keys.following_pk(follower), followee, shard=shard, created_at=created_at)
        mirror = graph(keys.followers_pk(followee, shard), follower, created_at=created_at)
        followers_counter, followers_actions = counters.increment_action(FOLLOWERS, followee, 1, shards=shards)
        following_counter, following_actions = counters.increment_action(FOLLOWING, follower, 1)
        with TransactWrite(connection=graph._get_connection().connection) as tx:
            tx.save(edge, condition=GraphEdgeRecord.pk.does_not_exist())
            tx.save(mirror)
            tx.update(followers_counter, actions=followers_actions)
            tx.update(following_counter, actions=following_actions)
        return shards

    shards = _transact(write, already_done=0)
    if shards is None:
        return  # already following: nothing to count
    metrics.add_metric(name="Follows", unit="Count", value=1)
    _after_follow(followee, shards)


def unfollow(follower: str, followee_name: str) -> None:
    """``follower`` stops following ``followee_name`` (idempotent)."""
    followee = _other_user(follower, followee_name)
    quotas.consume(quotas.FOLLOWS, follower)  # follow/unfollow toggling shares the one quota
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
        with TransactWrite(connection=graph._get_connection().connection) as tx:
            tx.delete(edge, condition=GraphEdgeRecord.pk.exists())
            tx.delete(mirror)
            tx.update(followers_counter, actions=followers_actions)
            tx.update(following_counter, actions=following_actions)
        return True

    _transact(write, already_done=0)  # a condition failure: a concurrent unfollow won


def _transact(write: Callable[[], T], already_done: int) -> T | None:
    """Run a counted transaction with retries on conflicts and throttling (:func:`ddb.with_retries`).

    ``write`` rebuilds its items on every attempt (fresh counter shards, fresh reads). Returns its
    result, or None when item ``already_done``'s condition failed (the change had been made).
    """
    def attempt() -> T | None:
        try:
            return write()
        except TransactWriteError as exc:
            if ddb.condition_failed(exc, already_done):
                return None
            raise

    return ddb.with_retries(attempt, attempts=_TRANSACTION_ATTEMPTS)


def _other_user(caller: str, username: str) -> str:
    target = get_record(username).username  # 404 for an unknown user
    if target == caller.lower():
        raise BadRequest("You cannot follow yourself.")
    return target


def _after_follow(followee: str, shards: int, draw: float | None = None) -> None:
    """Apply the resharding policy and the celebrity threshold when a follow crosses a boundary."""
    if not should_check_count(shards, random.random() if draw is None else draw):
        return
    total = counters.read(FOLLOWERS, followee)
    target = shards_for(total)
    if target > shards:
        reshard_user(followee, target)
    if total >= get_settings().celebrity_follower_threshold and followee not in celebrities():
        add_celebrity(followee)


def reshard_user(username: str, shards: int) -> int:
    """Spread a user's followers list and counter, and their recent photos' like counters, over
    ``shards`` shards (never fewer). Returns the shard count in force.

    Existing edges stay where they are (their following edge remembers the shard); new follows
    hash over the larger count. Like counters follow the audience: a photo of a user with ``n``
    follower shards gets ``n`` like shards (new photos at fan-out, recent ones here).
    """
    in_force = counters.reshard(FOLLOWERS, username, shards)
    from chalicelib.photos import LIKES

    recent = bound(PhotoRecord).by_owner.query(
        username, scan_index_forward=False, limit=RECENT_PHOTOS_TO_RESHARD, attributes_to_get=["photo_id"]
    )
    for record in recent:
        counters.reshard(LIKES, record.photo_id, in_force)
    return in_force


def followers_shards(username: str) -> int:
    return counters.shard_count(FOLLOWERS, username)


# --- listings -------------------------------------------------------------------------------------

def list_followers(username: str, limit: int, cursor: str | None) -> dict:
    """A user's followers by username, merged across every followers shard, ``limit`` per page."""
    user = get_record(username).username
    scope = f"followers:{user}"
    frontier = decode_position(cursor, scope)
    graph = bound(GraphEdgeRecord)
    sources: list[list[str]] = []
    truncated: list[bool] = []
    for shard in range(followers_shards(user)):
        condition = GraphEdgeRecord.sk > frontier if frontier is not None else None
        rows = [r.sk for r in graph.query(keys.followers_pk(user, shard), range_key_condition=condition,
                                          limit=limit, attributes_to_get=["pk", "sk"])]
        sources.append(rows)
        truncated.append(len(rows) == limit)
    names, frontier, more = merge_page(sources, truncated, limit, key=lambda name: name)
    return _user_page(names, encode_position(frontier, scope) if more and frontier else None)


def list_following(username: str, limit: int, cursor: str | None) -> dict:
    """Everyone a user follows, by username, ``limit`` per page (one partition)."""
    user = get_record(username).username
    scope = f"following:{user}"
    frontier = decode_position(cursor, scope)
    condition = GraphEdgeRecord.sk > frontier if frontier is not None else None
    names = [r.sk for r in bound(GraphEdgeRecord).query(
        keys.following_pk(user), range_key_condition=condition, limit=limit, attributes_to_get=["pk", "sk"])]
    more = len(names) == limit
    return _user_page(names, encode_position(names[-1], scope) if more else None)


def following_set(username: str) -> set[str]:
    """Everyone ``username`` follows (one partition, keys only)."""
    rows = bound(GraphEdgeRecord).query(keys.following_pk(username), attributes_to_get=["pk", "sk"])
    return {row.sk for row in rows}


def display_names(usernames: Iterable[str]) -> dict[str, str]:
    """Display names of several users in one BatchGetItem (the username if none is set)."""
    wanted = sorted(set(usernames))
    if not wanted:
        return {}
    found = {r.username: r.display_name or r.username
             for r in bound(UserRecord).batch_get(wanted, attributes_to_get=["username", "display_name"])}
    return {name: found.get(name, name) for name in wanted}


def _user_page(names: list[str], next_cursor: str | None) -> dict:
    shown = display_names(names)
    return {"items": [{"username": n, "display_name": shown[n]} for n in names], "next_cursor": next_cursor}


# --- likes ----------------------------------------------------------------------------------------

def like(user: str, photo_id: str) -> dict:
    """``user`` likes a ready photo (idempotent per user); returns the exact count."""
    return _set_like(user, photo_id, liked=True)


def unlike(user: str, photo_id: str) -> dict:
    """``user`` withdraws a like (idempotent); returns the exact count."""
    return _set_like(user, photo_id, liked=False)


def _set_like(user: str, photo_id: str, liked: bool) -> dict:
    from chalicelib.photos import LIKES, READY, get_record as get_photo_record

    record = get_photo_record(photo_id)  # 404 for an unknown photo
    if record.status != READY:
        raise PhotoNotReady("The photo is not ready yet.")
    quotas.consume(quotas.LIKES, user)  # likes and unlikes share the one quota
    graph = bound(GraphEdgeRecord)
    photos_model = bound(PhotoRecord)

    def write() -> bool:
        edge = graph(keys.liked_pk(user), photo_id, created_at=now_iso())
        counter, actions = counters.increment_action(LIKES, photo_id, 1 if liked else -1)
        try:
            with TransactWrite(connection=graph._get_connection().connection) as tx:
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

    changed = _transact(write, already_done=1)  # None: already in the requested state
    if changed and liked:
        metrics.add_metric(name="Likes", unit="Count", value=1)
    return {"likes": counters.read(LIKES, photo_id), "liked": liked}


def liked_photos(user: str, photo_ids: Iterable[str]) -> set[str]:
    """Which of ``photo_ids`` ``user`` liked (one BatchGetItem on the user's liked partition)."""
    wanted = sorted(set(photo_ids))
    if not wanted:
        return set()
    pk = keys.liked_pk(user)
    return {r.sk for r in bound(GraphEdgeRecord).batch_get([(pk, p) for p in wanted], attributes_to_get=["pk", "sk"])}


def photo_for_viewer(photo_id: str, viewer: str | None) -> dict:
    """A photo's view; for a signed-in viewer it also says whether they liked it."""
    from chalicelib.photos import get_photo

    view = get_photo(photo_id)
    if viewer:
        view["liked"] = photo_id in liked_photos(viewer, [photo_id])
    return view


# --- celebrity registry ---------------------------------------------------------------------------

_registry_lock = threading.Lock()
_registry: dict[str, Any] = {"loaded_at": None, "members": frozenset()}


def celebrities(now: float | None = None) -> frozenset[str]:
    """Authors whose photos are pulled at read time instead of pushed (cached 60 s in-process).

    Reads one of the ``CELEBRITY_REGISTRY_COPIES`` identical registry items at random, so the
    registry's read load spreads over that many partitions.
    """
    clock = time.monotonic() if now is None else now
    loaded_at = _registry["loaded_at"]
    if loaded_at is not None and clock - loaded_at < REGISTRY_CACHE_SECONDS:
        return _registry["members"]
    graph = bound(GraphEdgeRecord)
    copy = random.randrange(keys.CELEBRITY_REGISTRY_COPIES)
    try:
        members = frozenset(graph.get(keys.celebrity_registry_pk(copy), REGISTRY_SK).members or ())
    except graph.DoesNotExist:
        members = frozenset()
    with _registry_lock:
        _registry.update(loaded_at=clock, members=members)
    return members


def add_celebrity(username: str) -> None:
    """Add ``username`` to every copy of the registry in one transaction (idempotent set ADD)."""
    graph = bound(GraphEdgeRecord)
    with TransactWrite(connection=graph._get_connection().connection) as tx:
        for copy in range(keys.CELEBRITY_REGISTRY_COPIES):
            tx.update(graph(keys.celebrity_registry_pk(copy), REGISTRY_SK),
                      actions=[GraphEdgeRecord.members.add({username})])
    with _registry_lock:
        _registry["members"] = _registry["members"] | {username}


def is_celebrity(username: str) -> bool:
    """Whether ``username``'s photos are pulled: in the registry, or over the threshold already
    (the registry is then healed, e.g. when the follow that crossed it skipped the sampled check)."""
    if username in celebrities():
        return True
    if counters.read(FOLLOWERS, username) >= get_settings().celebrity_follower_threshold:
        add_celebrity(username)
        return True
    return False


def reset_cache() -> None:
    """Forget the cached registry (tests switch tables between cases)."""
    with _registry_lock:
        _registry.update(loaded_at=None, members=frozenset())
