"""The in-process read-through cache the repositories read through (one per container).

Hot, rarely changing reads are kept for a short time per *kind* (:data:`TTL_SECONDS`, the one table;
``docs/caching.md`` says what each means for a reader). The cache is

- bounded: at most :data:`MAX_ENTRIES` entries; the least recently used goes first;
- thread-safe: one lock around every change (a Lambda container serves one request at a time,
  ``chalice local`` and the embedded stack serve several);
- on the wall clock (``time.time``): a frozen Lambda sandbox's monotonic clock may not advance while
  it is frozen, which would keep entries past their TTL; an entry stored "in the future" (the wall
  clock stepped back) counts as expired;
- written through by its own container: the repositories update or drop the entries a write
  changes, so the writer's next request sees its write (read-your-own-writes). Other containers
  see it when their entry expires, within the kind's TTL;
- bypassed by a user's reads of her own things (her profile and its counts, her photo): the
  repositories read those from the table whichever container serves her (:meth:`ReadCache.refresh`,
  ``fresh``, ``bypass``), so her changes show at once, also those another container or a worker
  made; the fresh value is stored for everyone else.

A load that overlaps an invalidation of its key is returned but not stored (it may have read the
value from before the write). Values are immutable (tuples, frozensets, frozen dataclasses).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

#: Seconds an entry of each kind may be served after it was read from the table.
TTL_SECONDS: dict[str, float] = {
    "profile": 60.0,        # a user's profile (username, display name, bio); absent users are not cached
    "display_name": 60.0,   # a user's display name, for listings and feed entries
    "shard_count": 120.0,   # a counter's shard count (#meta item), "no meta item" included
    "counter": 30.0,        # a counter's total (followers, following, photos, likes)
    "registry": 60.0,       # the celebrity registry
    "timeline": 5.0,        # a celebrity's newest ready photos (the pull side of the feed)
    "following": 30.0,      # the set of users a reader follows
    "photo": 30.0,          # a photo record (GET /photos/{id}); absent photos are not cached
    "liked": 30.0,          # whether a user liked a photo
    "followers_page": 30.0,  # the first page of each followers shard of a user
    "photos_page": 10.0,    # the first page of a user's ready photos (GET /users/{u}/photos), anonymous readers only
}
MAX_ENTRIES = 20_000

_MISSING = object()


class ReadCache:
    """A bounded LRU of ``(kind, key) -> value`` with each kind's TTL and an injectable clock."""

    def __init__(self, ttls: dict[str, float] | None = None, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttls = dict(TTL_SECONDS if ttls is None else ttls)
        self.max_entries = max_entries
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, Hashable], tuple[float, float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation: dict[tuple[str, Hashable], int] = {}
        self._epoch = 0
        self._kind_hits: dict[str, int] = {}
        self._kind_lookups: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, kind: str, key: Hashable, default: Any = None) -> Any:
        """The live value of ``(kind, key)``, or ``default`` (counts as a hit or a miss)."""
        now = self.clock()
        with self._lock:
            self._kind_lookups[kind] = self._kind_lookups.get(kind, 0) + 1
            entry = self._entries.get((kind, key))
            if entry is not None:
                stored_at, expires_at, value = entry
                if stored_at <= now < expires_at:
                    self._entries.move_to_end((kind, key))
                    self.hits += 1
                    self._kind_hits[kind] = self._kind_hits.get(kind, 0) + 1
                    return value
                del self._entries[(kind, key)]
            self.misses += 1
            return default

    def reset_stats(self) -> None:
        with self._lock:
            self.hits = self.misses = 0
            self._kind_hits.clear()
            self._kind_lookups.clear()

    def kind_stats(self) -> dict[str, tuple[int, int]]:
        """``kind -> (hits, lookups)`` since the cache was created or cleared."""
        with self._lock:
            return {kind: (self._kind_hits.get(kind, 0), n) for kind, n in self._kind_lookups.items()}

    def get(self, kind: str, key: Hashable, load: Callable[[], T], keep: Callable[[T], bool] | None = None,
            bypass: Callable[[T], bool] | None = None) -> T:
        """The cached value of ``(kind, key)``, else ``load()``'s: stored unless invalidated meanwhile
        or ``keep`` says not to (e.g. an absent user, a photo still being processed).

        A cached value ``bypass`` is true for is not served but loaded again (and the fresh value
        stored): e.g. a photo read by its own owner, who must see the workers' changes at once."""
        found = self.peek(kind, key, _MISSING)
        if found is not _MISSING and (bypass is None or not bypass(found)):
            return found
        return self._load_and_store(kind, key, load, keep)

    def refresh(self, kind: str, key: Hashable, load: Callable[[], T], keep: Callable[[T], bool] | None = None) -> T:
        """``load()``'s value, never the cached one, stored like :meth:`get` stores a miss."""
        return self._load_and_store(kind, key, load, keep)

    def _load_and_store(self, kind: str, key: Hashable, load: Callable[[], T], keep: Callable[[T], bool] | None) -> T:
        with self._lock:
            started = self._stamp(kind, key)
        value = load()
        with self._lock:
            if self._stamp(kind, key) == started and (keep is None or keep(value)):
                self._store(kind, key, value)
        return value

    def get_many(self, kind: str, keys: Iterable[Hashable],
                 load: Callable[[list[Hashable]], dict[Hashable, Any]], fresh: bool = False) -> dict[Hashable, Any]:
        """Values of several keys: the cached ones, and one ``load(missing)`` call for the rest
        (``fresh``: every key loaded, none served from the cache; the loaded values are stored).

        Keys ``load`` leaves out of its answer are not cached (and are left out of the result).
        """
        wanted = list(dict.fromkeys(keys))
        found: dict[Hashable, Any] = {}
        missing: list[Hashable] = []
        for key in wanted:
            value = _MISSING if fresh else self.peek(kind, key, _MISSING)
            if value is _MISSING:
                missing.append(key)
            else:
                found[key] = value
        if missing:
            with self._lock:
                started = {key: self._stamp(kind, key) for key in missing}
            loaded = load(missing)
            with self._lock:
                for key, value in loaded.items():
                    if key in started and self._stamp(kind, key) == started[key]:
                        self._store(kind, key, value)
            found.update(loaded)
        return {key: found[key] for key in wanted if key in found}

    def put(self, kind: str, key: Hashable, value: Any) -> None:
        """Store what this container just wrote (a load of the old value in flight is not stored)."""
        with self._lock:
            self._invalidate(kind, key)
            self._store(kind, key, value)

    def update(self, kind: str, key: Hashable, change: Callable[[Any], Any]) -> None:
        """Replace a live entry with ``change(value)`` (keeping its expiry); absent entries stay absent."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get((kind, key))
            self._invalidate(kind, key)
            if entry is not None and entry[0] <= now < entry[1]:
                self._entries[(kind, key)] = (entry[0], entry[1], change(entry[2]))

    def drop(self, kind: str, key: Hashable) -> None:
        with self._lock:
            self._invalidate(kind, key)

    def drop_where(self, kind: str, matches: Callable[[Hashable], bool]) -> None:
        """Drop every entry of ``kind`` whose key ``matches`` (e.g. all pages of one owner)."""
        with self._lock:
            self._epoch += 1  # also refuses loads of not-yet-stored keys that would match
            for cache_key in [k for k in self._entries if k[0] == kind and matches(k[1])]:
                self._invalidate(*cache_key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation.clear()
            self._epoch += 1
            self.hits = self.misses = 0
            self._kind_hits.clear()
            self._kind_lookups.clear()

    # --- under the lock ----------------------------------------------------------------------

    def _stamp(self, kind: str, key: Hashable) -> tuple[int, int]:
        return self._epoch, self._generation.get((kind, key), 0)

    def _invalidate(self, kind: str, key: Hashable) -> None:
        self._entries.pop((kind, key), None)
        if len(self._generation) >= self.max_entries:
            self._generation.clear()
            self._epoch += 1  # forgetting generations must not let an old load through
        self._generation[(kind, key)] = self._generation.get((kind, key), 0) + 1

    def _store(self, kind: str, key: Hashable, value: Any) -> None:
        now = self.clock()
        self._entries[(kind, key)] = (now, now + self.ttls[kind], value)
        self._entries.move_to_end((kind, key))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


#: This container's cache (the repositories' one instance).
shared = ReadCache()


def reset() -> None:
    """Forget every entry (tests start each case with a fresh container)."""
    shared.clear()
