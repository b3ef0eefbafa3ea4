"""Local stand-in for Cognito's multi-region replication (primary pool + read-only replica pools).

moto keeps one user pool per region and replicates nothing. In AWS a replica pool holds the
primary's users, passwords and refresh tokens within the replication delay, so users sign in and
refresh in either region, while sign-up, confirmation and password changes are made in the primary
only. This stand-in runs inside the embedded AWS process (it reads and writes moto's Cognito models
directly, under the embedded AWS's request lock, since moto is not thread-safe) and, every tick:

- copies each primary user (same ``sub``, username, password, status, attributes) into every replica
  pool once the change has been pending for ``lag_seconds``;
- copies refresh tokens both ways (a token minted in either pool refreshes in the other, bound to that
  pool's app client) and makes a revocation in either pool a revocation in both.

Tokens each pool mints carry that pool's own ``iss`` (the API trusts every region's pool by the
``TRUSTED_ISSUERS`` allow-list). Nothing is copied while replication is paused or while the source
region is down (``devstack.chaos``); pending changes are applied once it is back. Dev-only.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ACCOUNT_ID = "123456789012"
_MISSING = object()


@dataclass(frozen=True)
class PoolRef:
    region: str
    pool_id: str
    client_id: str


def user_signature(user: Any) -> tuple:
    """What replication must carry over for one user (pure)."""
    attributes = tuple(sorted((a["Name"], a["Value"]) for a in user.attributes))
    return (user.id, user.password, user.status, user.enabled, attributes)


def copy_user(user: Any, pool_id: str) -> Any:
    """The replica pool's copy of ``user``: same id (the ``sub`` claim), password, status and attributes."""
    replica = copy.copy(user)
    replica.user_pool_id = pool_id
    replica.attributes = [dict(a) for a in user.attributes]
    replica.attribute_lookup = dict(user.attribute_lookup)
    replica.groups = set()
    return replica


@dataclass
class CognitoReplicator:
    """Applies the primary pool's changes to the replica pools after ``lag_seconds`` (see module docstring)."""

    primary: PoolRef
    replicas: list[PoolRef]
    lag_seconds: float = 0.5
    #: change key -> when it was first seen pending (a change is applied ``lag_seconds`` later).
    _pending: dict[tuple, float] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)

    def tick(self, pools: dict[str, Any], now: float, down: frozenset[str] = frozenset()) -> int:
        """One pass over the pools (``region -> moto pool``); returns how many changes were applied."""
        if self.primary.region in down:
            return 0
        applied = 0
        seen: set[tuple] = set()
        source = pools[self.primary.region]
        for replica in self.replicas:
            if replica.region in down:
                continue
            target = pools[replica.region]
            for username, user in list(source.users.items()):
                signature = user_signature(user)
                existing = target.users.get(username)
                if existing is not None and user_signature(existing) == signature:
                    continue
                if self._due(("user", replica.region, username, signature), now, seen):
                    target.users[username] = copy_user(user, target.id)
                    applied += 1
            applied += self._tokens(source, self.primary, target, replica, now, seen)
            applied += self._tokens(target, replica, source, self.primary, now, seen)
        for key in [k for k in self._pending if k not in seen]:  # superseded or applied
            del self._pending[key]
        return applied

    def _tokens(self, source: Any, source_ref: PoolRef, target: Any, target_ref: PoolRef, now: float,
                seen: set[tuple]) -> int:
        applied = 0
        for token, entry in list(source.refresh_tokens.items()):
            current = target.refresh_tokens.get(token, _MISSING)
            if entry is None:  # revoked here: revoked there too
                wanted = None
                if current is None:
                    continue
            else:
                if current is not _MISSING:  # already there (or revoked there, which wins)
                    continue
                client_id, username, origin_jti = entry
                if client_id != source_ref.client_id:
                    continue
                wanted = (target_ref.client_id, username, origin_jti)
            if self._due(("token", target_ref.region, token, wanted is None), now, seen):
                target.refresh_tokens[token] = wanted
                applied += 1
        return applied

    def _due(self, key: tuple, now: float, seen: set[tuple]) -> bool:
        seen.add(key)
        first = self._pending.setdefault(key, now)
        if now - first < self.lag_seconds:
            return False
        self.lags_ms.append((now - first) * 1000)
        del self._pending[key]
        seen.discard(key)
        return True

    @property
    def backlog(self) -> int:
        return len(self._pending)


def moto_pools(refs: list[PoolRef]) -> dict[str, Any]:
    """moto's pool objects for ``refs`` (call under the embedded AWS's lock)."""
    from moto.cognitoidp.models import cognitoidp_backends

    return {ref.region: cognitoidp_backends[ACCOUNT_ID][ref.region].user_pools[ref.pool_id] for ref in refs}


class CognitoReplicaThread:
    """Runs a :class:`CognitoReplicator` against moto every ``interval`` seconds under ``lock``."""

    def __init__(self, replicator: CognitoReplicator, lock: threading.Lock, flags: Any = None,
                 interval: float = 0.1) -> None:
        self.replicator = replicator
        self.lock = lock
        self.flags = flags
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cognito-replica", daemon=True)

    def start(self) -> CognitoReplicaThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict:
        lags = sorted(self.replicator.lags_ms)
        return {"applied": len(lags), "backlog": self.replicator.backlog}

    def _run(self) -> None:
        refs = [self.replicator.primary, *self.replicator.replicas]
        while not self._stop.wait(self.interval):
            if self.flags is not None and self.flags.replication_paused():
                continue
            down = self.flags.down_regions() if self.flags is not None else frozenset()
            with self.lock:
                try:
                    self.replicator.tick(moto_pools(refs), time.monotonic(), down)
                except KeyError:  # a pool not created yet
                    continue
