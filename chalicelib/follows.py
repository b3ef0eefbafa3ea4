"""Follows: following and unfollowing, follower/following listings and the resharding policy.

Hot keys never concentrate on one partition: a user's followers are spread over ``shards``
partitions, the count in force being the ``followers`` counter's, so the followers list and the
followers counter always grow together (:mod:`chalicelib.repositories.graph`). A follow counts
once however often it is repeated: the edge and both counters are one conditional transaction.
Feeds are told by :mod:`chalicelib.feed`, which wraps :func:`follow`/:func:`unfollow`.
"""
from __future__ import annotations

import random

from chalicelib import celebrities, listings, quotas
from chalicelib.observability import metrics
from chalicelib.errors import BadRequest
from chalicelib.repositories import counters, graph
from chalicelib.repositories import users as profiles
from chalicelib.repositories import photos as photo_records
from chalicelib.repositories.counters import FOLLOWERS, LIKES
from chalicelib.settings import get_settings
from chalicelib.users import display_names, get_record, now_iso

#: (followers below this bound, shards) – a shard stays well under DynamoDB's 1,000 WCU/s per key
#: even if every follower of the user acted at once on a burst day.
SHARD_STEPS: tuple[tuple[int, int], ...] = ((1_000, 1), (10_000, 8), (100_000, 32), (1_000_000, 128))
MAX_SHARDS = 512
#: How many of a user's newest photos get their like counters resharded with the user.
RECENT_PHOTOS_TO_RESHARD = 50


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


# --- follows --------------------------------------------------------------------------------------

def follow(follower: str, followee_name: str) -> None:
    """``follower`` follows ``followee_name`` (idempotent: following twice counts once).

    The follow, both counts and the quota are one transaction, which also checks the followee
    exists unless this container has her profile cached (no read before it)."""
    followee = _other_user(follower, followee_name)
    with quotas.taken_in_transaction(quotas.FOLLOWS, follower) as quota:
        shards = graph.follow(follower, followee, now_iso(), quota, check_followee=not profiles.known(followee))
    if shards is None:
        return  # already following: nothing to count
    metrics.add_metric(name="Follows", unit="Count", value=1)
    _after_follow(followee, shards)


def unfollow(follower: str, followee_name: str) -> None:
    """``follower`` stops following ``followee_name`` (idempotent)."""
    followee = _other_user(follower, followee_name)
    # follow/unfollow toggling shares the one quota
    with quotas.taken_in_transaction(quotas.FOLLOWS, follower) as quota:
        done = graph.unfollow(follower, followee, quota)
    if not done:  # not following (or a concurrent unfollow won); an unknown user is still a 404
        get_record(followee)


def _other_user(caller: str, username: str) -> str:
    target = username.lower()
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
    if total >= get_settings().celebrity_follower_threshold and followee not in celebrities.celebrities():
        celebrities.add_celebrity(followee)


def reshard_user(username: str, shards: int) -> int:
    """Spread a user's followers list and counter, and their recent photos' like counters, over
    ``shards`` shards (never fewer). Returns the shard count in force.

    Existing edges stay where they are (their following edge remembers the shard); new follows
    hash over the larger count. Like counters follow the audience: a photo of a user with ``n``
    follower shards gets ``n`` like shards (new photos at fan-out, recent ones here).
    """
    in_force = counters.reshard(FOLLOWERS, username, shards)
    for photo_id in photo_records.recent_ids(username, RECENT_PHOTOS_TO_RESHARD):
        counters.reshard(LIKES, photo_id, in_force)
    return in_force


def followers_shards(username: str) -> int:
    return counters.shard_count(FOLLOWERS, username)


# --- listings -------------------------------------------------------------------------------------

def list_followers(username: str, limit: int, cursor: str | None) -> dict:
    """A user's followers by username, merged across every followers shard, ``limit`` per page."""
    user = get_record(username).username
    scope = f"followers:{user}"
    frontier = listings.decode_position(cursor, scope)
    sources: list[list[str]] = []
    truncated: list[bool] = []
    for shard in range(followers_shards(user)):
        rows = graph.followers_page(user, shard, frontier, limit)
        sources.append(rows)
        truncated.append(len(rows) == limit)
    names, frontier, more = listings.merge_page(sources, truncated, limit, key=lambda name: name)
    return _user_page(names, listings.encode_position(frontier, scope) if more and frontier else None)


def list_following(username: str, limit: int, cursor: str | None) -> dict:
    """Everyone a user follows, by username, ``limit`` per page (one partition)."""
    user = get_record(username).username
    scope = f"following:{user}"
    frontier = listings.decode_position(cursor, scope)
    names = graph.following_page(user, frontier, limit)
    more = len(names) == limit
    return _user_page(names, listings.encode_position(names[-1], scope) if more else None)


def following_set(username: str) -> set[str]:
    """Everyone ``username`` follows (one partition, keys only; cached in-process)."""
    return set(graph.following(username))


def _user_page(names: list[str], next_cursor: str | None) -> dict:
    shown = display_names(names)
    return {"items": [{"username": n, "display_name": shown[n]} for n in names], "next_cursor": next_cursor}
