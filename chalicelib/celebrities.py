"""The celebrity registry: authors whose photos are pulled at read time instead of pushed.

The set is replicated in ``CELEBRITY_REGISTRY_COPIES`` identical items: writes go to every copy in
one transaction, reads pick one copy at random (spreading the read load) and are cached in-process.
"""
from __future__ import annotations

import random

from chalicelib import keys
from chalicelib.repositories import counters, graph
from chalicelib.repositories.counters import FOLLOWERS
from chalicelib.settings import get_settings


def celebrities() -> frozenset[str]:
    """Authors whose photos are pulled at read time instead of pushed (cached in-process, see
    ``docs/caching.md``). A miss reads one of the ``CELEBRITY_REGISTRY_COPIES`` identical registry
    items at random, so the registry's read load spreads over that many partitions.
    """
    return graph.registry(lambda: random.randrange(keys.CELEBRITY_REGISTRY_COPIES))


def add_celebrity(username: str) -> None:
    """Add ``username`` to every copy of the registry (idempotent)."""
    graph.add_to_registry(username)


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
    """Forget this container's cached reads, the registry included (tests switch tables between cases)."""
    from chalicelib import repositories

    repositories.forget_cached_reads()
