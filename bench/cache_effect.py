"""Benchmark: how many DynamoDB reads the in-process read cache alone removes.

Run: ``.venv/bin/python bench/cache_effect.py [--containers 20] [--requests 300000] [--rps 1000]
[--users 100000] [--seed 7]``

What it answers (issue 9): under a Zipf(1.0) read workload spread over 20 containers, what share of
the DynamoDB read round trips does the per-container cache remove? Goal: >= 60 %. It prints the
figure, the hit ratio per cache kind and PASS/MISS; nothing asserts, it exits 0.

What is real: the cache class (:class:`chalicelib.cache.ReadCache`), its TTL table
(:data:`chalicelib.cache.TTL_SECONDS`) and bound (:data:`chalicelib.cache.MAX_ENTRIES`), one
instance per container, driven through a simulated clock (requests arrive at ``--rps`` in total,
one every ``1/rps`` seconds, each to a uniformly chosen container, so each container sees
``rps/containers``). What is modelled: which cached reads each public route makes and what a miss
costs, as the repositories do it (``chalicelib/repositories``):

- ``GET /photos/{id}`` (40 %): the photo (``photo``: a GetItem on a miss) and its like count
  (``counter``; on a miss one BatchGetItem of the counter's ``#total`` items, one per region: no
  shard count is needed to read);
- ``GET /users/{u}`` (30 %): the profile (``profile``, GetItem) and three counts (followers,
  following, photos) as above, all missing ones in the same BatchGetItem;
- ``GET /users/{u}/photos`` (20 %): the profile, the page (one Query: never cached, a photo made
  ready elsewhere must show at once) and the like counts of its photos;
- ``GET /users/{u}/followers`` (10 %): the profile, the followers shard count, the first page of the
  (one) shard (``followers_page``, one Query) and the followers' display names (``display_name``,
  one BatchGetItem of the missing ones).

Popularity: the user of each request is drawn Zipf(1.0) over ``--users`` ranks; a photo request picks
that user's photo by Zipf(1.0) over their ``PHOTOS_PER_USER`` newest; a followers page lists 20
followers drawn Zipf(1.0) too (popular users follow each other; seeded per user, so a page is stable).
Without the cache every read is a round trip; the figure is ``1 - reads with cache / reads without``.
Writes are left out (a read workload); a container's own writes only refresh its entries.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.cache import MAX_ENTRIES, TTL_SECONDS, ReadCache  # noqa: E402

PHOTOS_PER_USER = 5
PAGE = 20
MIX = (("photo", 0.40), ("profile", 0.30), ("photos_page", 0.20), ("followers_page", 0.10))
GOAL = 0.60


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def zipf_ranks(rng: np.random.Generator, n: int, size: int, s: float = 1.0) -> np.ndarray:
    """``size`` draws of ranks 0..n-1 with P(rank k) proportional to 1/(k+1)**s."""
    weights = 1.0 / np.arange(1, n + 1) ** s
    cumulative = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(size)), n - 1)


class Container:
    """One container's cache, and the DynamoDB round trips its misses cost."""

    def __init__(self, clock: Clock) -> None:
        self.cache = ReadCache(TTL_SECONDS, MAX_ENTRIES, clock)
        self.reads = 0

    def _trip(self, value=None):
        self.reads += 1
        return value

    def counters(self, wanted: list[tuple[str, int]]) -> None:
        """``counters.read_totals``: missing totals cost one BatchGet of their ``#total`` items."""
        def load(missing):
            return self._trip({key: 0 for key in missing})

        self.cache.get_many("counter", wanted, load)

    def profile(self, user: int) -> None:
        self.cache.get("profile", user, lambda: self._trip(user))

    def view_photo(self, user: int, photo: int) -> None:
        self.cache.get("photo", (user, photo), lambda: self._trip(photo))
        self.counters([("likes", user * PHOTOS_PER_USER + photo)])

    def view_profile(self, user: int) -> None:
        self.profile(user)
        self.counters([("followers", user), ("following", user), ("photos", user)])

    def view_photos_page(self, user: int) -> None:
        self.profile(user)
        self._trip()  # the listing's Query: never cached
        self.counters([("likes", user * PHOTOS_PER_USER + p) for p in range(PHOTOS_PER_USER)])

    def view_followers(self, user: int, followers: list[int]) -> None:
        self.profile(user)
        self.cache.get("shard_count", ("followers", user), lambda: self._trip(None))
        self.cache.get("followers_page", (user, 0, PAGE), lambda: self._trip(()))
        self.cache.get_many("display_name", followers, lambda missing: self._trip({k: str(k) for k in missing}))


READS_WITHOUT_CACHE = {  # round trips of each route with no cache (the same reads, all misses)
    "photo": 1 + 1,
    "profile": 1 + 1,
    "photos_page": 1 + 1 + 1,
    "followers_page": 1 + 1 + 1 + 1,
}


def run(containers: int, requests: int, rps: float, users: int, seed: int, warmup: float = 0.0) -> dict:
    """Serve ``warmup`` seconds of the workload uncounted (containers live for hours: the steady
    state is what matters), then ``requests`` counted ones."""
    rng = np.random.default_rng(seed)
    clock = Clock()
    fleet = [Container(clock) for _ in range(containers)]
    skipped = int(warmup * rps)
    total = skipped + requests
    routes = rng.choice(len(MIX), size=total, p=[share for _, share in MIX])
    targets = zipf_ranks(rng, users, total)
    photos = zipf_ranks(rng, PHOTOS_PER_USER, total)
    chosen = rng.integers(0, containers, size=total)
    baseline = 0
    for i in range(total):
        clock.now = i / rps
        if i == skipped:  # the counted part starts
            for member in fleet:
                member.reads = 0
                member.cache.reset_stats()
        container = fleet[chosen[i]]
        route, user = MIX[routes[i]][0], int(targets[i])
        if i >= skipped:
            baseline += READS_WITHOUT_CACHE[route]
        if route == "photo":
            container.view_photo(user, int(photos[i]))
        elif route == "profile":
            container.view_profile(user)
        elif route == "photos_page":
            container.view_photos_page(user)
        else:
            followers = [int(f) for f in zipf_ranks(np.random.default_rng(seed * 1_000_003 + user), users, PAGE)]
            container.view_followers(user, followers)
    with_cache = sum(c.reads for c in fleet)
    return {"baseline": baseline, "with_cache": with_cache, "removed": 1 - with_cache / baseline,
            "fleet": fleet, "seconds": requests / rps}


def hit_ratios(fleet: list[Container]) -> dict[str, tuple[int, int]]:
    """Per kind: (hits, lookups), from the caches' own entries' history (re-run per kind)."""
    totals: Counter = Counter()
    for container in fleet:
        for kind, (hits, lookups) in container.cache.kind_stats().items():
            totals[(kind, "hits")] += hits
            totals[(kind, "lookups")] += lookups
    return {kind: (totals[(kind, "hits")], totals[(kind, "lookups")]) for kind in TTL_SECONDS
            if totals[(kind, "lookups")]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--rps", type=float, default=1_000.0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=float, default=max(TTL_SECONDS.values()),
                        help="seconds served before counting (default: the longest TTL)")
    args = parser.parse_args(argv)
    result = run(args.containers, args.requests, args.rps, args.users, args.seed, args.warmup)
    print(f"workload: {args.requests:,} public reads at {args.rps:,.0f} req/s over {args.containers} containers "
          f"({result['seconds']:,.0f} s counted after {args.warmup:g} s of warm-up), "
          f"Zipf(1.0) over {args.users:,} users, mix "
          + ", ".join(f"{name} {share:.0%}" for name, share in MIX))
    print(f"cache: real ReadCache, max {MAX_ENTRIES:,} entries per container, TTLs from chalicelib.cache.TTL_SECONDS")
    print(f"{'kind':<16} {'ttl':>6} {'lookups':>10} {'hit ratio':>10}")
    for kind, (hits, lookups) in hit_ratios(result["fleet"]).items():
        print(f"{kind:<16} {TTL_SECONDS[kind]:>5g}s {lookups:>10,} {hits / lookups:>10.1%}")
    verdict = "PASS" if result["removed"] >= GOAL else "MISS"
    print(f"DynamoDB read round trips: {result['baseline']:,} without the cache, {result['with_cache']:,} with it")
    print(f"in-process cache removes {result['removed']:.1%} of DynamoDB reads (goal >= {GOAL:.0%}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
