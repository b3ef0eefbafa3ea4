"""The celebrity registry: authors whose photos are pulled at read time instead of pushed.

The set is replicated in ``CELEBRITY_REGISTRY_COPIES`` identical items: writes go to every copy in
one transaction, reads pick one copy at random (spreading the read load) and are cached 60 s.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Any

from chalicelib import keys
from chalicelib.repositories import counters, graph
from chalicelib.repositories.counters import FOLLOWERS
from chalicelib.settings import get_settings

REGISTRY_CACHE_SECONDS = 60.0

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
    members = graph.registry(random.randrange(keys.CELEBRITY_REGISTRY_COPIES))
    with _registry_lock:
        _registry.update(loaded_at=clock, members=members)
    return members


def add_celebrity(username: str) -> None:
    """Add ``username`` to every copy of the registry (idempotent)."""
    graph.add_to_registry(username)
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
