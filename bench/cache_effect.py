"""Benchmark: how many DynamoDB reads the in-process read cache alone removes, and how many it could.

Run: ``.venv/bin/python bench/cache_effect.py [--containers 20] [--requests 300000] [--rps 1000]
[--users 100000] [--regions N] [--seed 7] [--sensitivity]``

What it answers (issue 9): under a Zipf(1.0) public-read workload spread over 20 containers, what share
of the DynamoDB reads does the per-container cache remove? Goal: >= 60 %. It prints, for the same
request stream, two fleets of caches beside the uncached baseline:

- **the code**: :class:`chalicelib.cache.ReadCache` with the code's TTL table
  (:data:`chalicelib.cache.TTL_SECONDS`) and bound (:data:`chalicelib.cache.MAX_ENTRIES`), caching
  exactly the reads the repositories cache (the listing's first page only if the table has its kind);
- **ceiling**: every read of the stream cached, unbounded and never expiring, so only a container's
  first touch of a key misses: the most any per-container cache could remove from this stream, whatever
  its TTLs or bound (it grows with the counted window: a longer run has fewer first touches per read).

Each is counted two ways: **round trips** (GetItem, BatchGetItem, Query calls) and **items** (the items
those calls read: a BatchGetItem of 3 counters in 2 regions reads 6, a followers page Query 20). The
goal line uses **items**: DynamoDB counts (and bills) reads per item read, and an item the cache serves is
a read DynamoDB never sees; round trips (what latency feels) are printed beside it. Nothing asserts; it
exits 0 and says MISS when the goal is out of reach (and by how much the ceiling allows).
``--sensitivity`` adds a table (users 10k / 100k / 1M x the TTL table as in the code / x3), a few minutes.

What is real: the cache class, its TTLs and bound, one instance per container, driven through a simulated
clock (requests arrive at ``--rps`` in total, one every ``1/rps`` seconds, each to a uniformly chosen
container); the regions a counter read spans (``infra/deploy.json`` ``regions``). What is modelled:
which cached reads each public route makes and what a miss costs, as the repositories do it
(``chalicelib/repositories``), for an anonymous reader:

- ``GET /photos/{id}`` (40 %): the photo (``photo``: GetItem), its like count (``counter``: on a miss
  one BatchGetItem of the counter's ``#total`` items, one per region) and the owner's profile
  (``profile``, GetItem: ``likes.photo_for_viewer`` refuses photos of an account being erased);
- ``GET /users/{u}`` (30 %): the profile and three counts (followers, following, photos), all missing
  counts in one BatchGetItem;
- ``GET /users/{u}/photos`` (20 %): the profile, the first page (``photos_page``: on a miss one Query
  of the owner index reading the user's ``PHOTOS_PER_USER`` photos; anonymous readers are never the
  owner, whose reads bypass the cache) and the like counts of its photos;
- ``GET /users/{u}/followers`` (10 %): the profile, the followers shard count (``shard_count``,
  BatchGetItem of the ``#meta`` item), the first page of the (one) shard (``followers_page``, one Query
  of ``PAGE`` keys) and the followers' display names (``display_name``, one BatchGetItem of the missing).

Popularity: the user of each request is drawn Zipf(1.0) over ``--users`` ranks; a photo request picks
that user's photo by Zipf(1.0) over their ``PHOTOS_PER_USER`` newest; a followers page lists ``PAGE``
followers drawn Zipf(1.0) too (popular users follow each other; seeded per user, so a page is stable).
The baseline is the same stream with nothing cached. Writes are left out (a read workload).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
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
#: The listing's first page (a Query); modelled as cached only if the code's TTL table has the kind.
LISTING = "photos_page"


def deploy_regions() -> int:
    """How many regions a counter read spans in prod (one ``#total`` item each): infra/deploy.json."""
    return len(json.loads((ROOT / "infra" / "deploy.json").read_text(encoding="utf-8"))["regions"])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def zipf_cdf(n: int, s: float = 1.0) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(weights / weights.sum())


def zipf_ranks(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws of ranks 0..len(cdf)-1 with P(rank k) proportional to 1/(k+1)**s."""
    return np.minimum(np.searchsorted(cdf, rng.random(size)), len(cdf) - 1)


class NoCache:
    """The baseline: every lookup is a load."""

    def get(self, kind, key, load):
        return load()

    def get_many(self, kind, keys, load):
        return load(list(dict.fromkeys(keys)))

    def kind_stats(self) -> dict:
        return {}

    def reset_stats(self) -> None:
        pass


@dataclass(frozen=True)
class Variant:
    """One fleet's caches: ``ttls`` None is no cache at all; a kind missing from ``ttls`` is not cached."""

    name: str
    ttls: dict[str, float] | None
    max_entries: int = MAX_ENTRIES

    @property
    def cache_listing(self) -> bool:
        return self.ttls is not None and LISTING in self.ttls

    def cache(self, clock: Clock):
        if self.ttls is None:
            return NoCache()
        return ReadCache(self.ttls, self.max_entries, clock)


def code_variant(scale: float = 1.0) -> Variant:
    name = "code" if scale == 1 else f"code TTLs x{scale:g}"
    return Variant(name, {kind: ttl * scale for kind, ttl in TTL_SECONDS.items()})


def ceiling_variant() -> Variant:
    """Every read the bench models cached forever, unbounded (the listing's first page included)."""
    return Variant("ceiling", {kind: math.inf for kind in (*TTL_SECONDS, LISTING)}, max_entries=sys.maxsize)


BASELINE = Variant("no cache", None)


class Container:
    """One container's cache, and the DynamoDB round trips and items its misses cost."""

    def __init__(self, cache, regions: int, cache_listing: bool) -> None:
        self.cache = cache
        self.regions = regions
        self.cache_listing = cache_listing
        self.trips = 0
        self.items = 0

    def _read(self, items: int, value=None):
        self.trips += 1
        self.items += items
        return value

    def counters(self, wanted: list[tuple[str, int]]) -> None:
        """``counters.read_totals``: missing totals cost one BatchGet of their ``#total`` items."""
        self.cache.get_many("counter", wanted,
                            lambda missing: self._read(len(missing) * self.regions, {key: 0 for key in missing}))

    def profile(self, user: int) -> None:
        self.cache.get("profile", user, lambda: self._read(1, user))

    def view_photo(self, user: int, photo: int) -> None:
        self.cache.get("photo", (user, photo), lambda: self._read(1, photo))
        self.counters([("likes", user * PHOTOS_PER_USER + photo)])
        self.profile(user)  # the owner's

    def view_profile(self, user: int) -> None:
        self.profile(user)
        self.counters([("followers", user), ("following", user), ("photos", user)])

    def view_photos_page(self, user: int) -> None:
        self.profile(user)
        if self.cache_listing:
            self.cache.get(LISTING, user, lambda: self._read(PHOTOS_PER_USER, ()))
        else:
            self._read(PHOTOS_PER_USER)  # the listing's Query, where the code does not cache it
        self.counters([("likes", user * PHOTOS_PER_USER + p) for p in range(PHOTOS_PER_USER)])

    def view_followers(self, user: int, followers: list[int]) -> None:
        self.profile(user)
        self.cache.get("shard_count", ("followers", user), lambda: self._read(1, None))
        self.cache.get("followers_page", (user, 0, PAGE), lambda: self._read(PAGE, ()))
        self.cache.get_many("display_name", followers,
                            lambda missing: self._read(len(missing), {k: str(k) for k in missing}))


@dataclass
class Outcome:
    variant: Variant
    fleet: list[Container]
    trips: int = 0
    items: int = 0
    removed: dict[str, float] = field(default_factory=dict)  # "trips" / "items" -> share removed


def run(variants: list[Variant], *, containers: int, requests: int, rps: float, users: int, seed: int,
        regions: int, warmup: float = 0.0) -> dict[str, Outcome]:
    """Serve one request stream to a fleet of each variant (and the uncached baseline): ``warmup``
    seconds uncounted (containers live for hours: the steady state is what matters), then ``requests``
    counted ones."""
    rng = np.random.default_rng(seed)
    clock = Clock()
    everyone = [BASELINE, *variants]
    fleets = {v.name: [Container(v.cache(clock), regions, v.cache_listing) for _ in range(containers)]
              for v in everyone}
    skipped = int(warmup * rps)
    total = skipped + requests
    routes = rng.choice(len(MIX), size=total, p=[share for _, share in MIX])
    user_cdf = zipf_cdf(users)
    targets = zipf_ranks(rng, user_cdf, total)
    photos = zipf_ranks(rng, zipf_cdf(PHOTOS_PER_USER), total)
    chosen = rng.integers(0, containers, size=total)
    followers_of: dict[int, list[int]] = {}
    for i in range(total):
        clock.now = i / rps
        if i == skipped:  # the counted part starts
            for fleet in fleets.values():
                for member in fleet:
                    member.trips = member.items = 0
                    member.cache.reset_stats()
        route, user, at = MIX[routes[i]][0], int(targets[i]), int(chosen[i])
        if route == "followers_page" and user not in followers_of:
            followers_of[user] = [int(f) for f in zipf_ranks(np.random.default_rng(seed * 1_000_003 + user),
                                                             user_cdf, PAGE)]
        for fleet in fleets.values():
            container = fleet[at]
            if route == "photo":
                container.view_photo(user, int(photos[i]))
            elif route == "profile":
                container.view_profile(user)
            elif route == "photos_page":
                container.view_photos_page(user)
            else:
                container.view_followers(user, followers_of[user])
    outcomes = {}
    for variant in everyone:
        fleet = fleets[variant.name]
        outcomes[variant.name] = Outcome(variant, fleet, sum(c.trips for c in fleet), sum(c.items for c in fleet))
    base = outcomes[BASELINE.name]
    for outcome in outcomes.values():
        outcome.removed = {"trips": 1 - outcome.trips / base.trips, "items": 1 - outcome.items / base.items}
    return outcomes


def hit_ratios(fleet: list[Container]) -> dict[str, tuple[int, int]]:
    """Per kind: (hits, lookups) over the fleet's caches, counted part only."""
    totals: Counter = Counter()
    for container in fleet:
        for kind, (hits, lookups) in container.cache.kind_stats().items():
            totals[(kind, "hits")] += hits
            totals[(kind, "lookups")] += lookups
    return {kind: (totals[(kind, "hits")], totals[(kind, "lookups")]) for kind in TTL_SECONDS
            if totals[(kind, "lookups")]}


def verdict(share: float) -> str:
    return "PASS" if share >= GOAL else "MISS"


def report(outcomes: dict[str, Outcome], warmup: float) -> list[str]:
    code, ceiling = outcomes["code"], outcomes["ceiling"]
    base = outcomes[BASELINE.name]
    lines = [f"{'kind':<16} {'ttl':>6} {'lookups':>10} {'hit ratio':>10}   (the code's fleet)"]
    for kind, (hits, lookups) in hit_ratios(code.fleet).items():
        lines.append(f"{kind:<16} {TTL_SECONDS[kind]:>5g}s {lookups:>10,} {hits / lookups:>10.1%}")
    lines.append(f"{'fleet':<30} {'round trips':>12} {'removed':>8} {'items read':>12} {'removed':>8}")
    for outcome in (base, code, ceiling):
        lines.append(f"{outcome.variant.name:<30} {outcome.trips:>12,} {outcome.removed['trips']:>8.1%} "
                     f"{outcome.items:>12,} {outcome.removed['items']:>8.1%}")
    lines.append(f"in-process cache removes {code.removed['items']:.1%} of DynamoDB reads (items; "
                 f"{code.removed['trips']:.1%} of round trips), goal >= {GOAL:.0%}: {verdict(code.removed['items'])}; "
                 f"ceiling for this stream {ceiling.removed['items']:.1%} "
                 f"({ceiling.removed['trips']:.1%} of round trips): "
                 + ("the goal is within what a per-container cache can reach on this stream"
                    if ceiling.removed["items"] >= GOAL else
                    "the goal is out of reach of any per-container cache on this stream"))
    return lines


def sensitivity(args, regions: int) -> list[str]:
    """users 10k / 100k / 1M x TTLs as in the code / x3, with each stream's ceiling (items; trips)."""
    lines = [f"{'users':>10} {'code':>15} {'code TTLs x3':>15} {'ceiling':>15}   removed: items (round trips)"]
    for users in (10_000, 100_000, 1_000_000):
        variants = [code_variant(1), code_variant(3), ceiling_variant()]
        out = run(variants, containers=args.containers, requests=args.requests, rps=args.rps, users=users,
                  seed=args.seed, regions=regions, warmup=3 * max(TTL_SECONDS.values()))
        cells = [f"{o.removed['items']:.1%} ({o.removed['trips']:.1%})" for o in (out[v.name] for v in variants)]
        lines.append(f"{users:>10,} " + " ".join(f"{c:>15}" for c in cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--rps", type=float, default=1_000.0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--regions", type=int, default=deploy_regions(),
                        help="regions a counter read spans (default: infra/deploy.json)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=float, default=max(TTL_SECONDS.values()),
                        help="seconds served before counting (default: the longest TTL)")
    parser.add_argument("--sensitivity", action="store_true",
                        help="also the users x TTL table (warm-up 3 x the longest TTL; a few minutes)")
    args = parser.parse_args(argv)
    outcomes = run([code_variant(), ceiling_variant()], containers=args.containers,
                   requests=args.requests, rps=args.rps, users=args.users, seed=args.seed, regions=args.regions,
                   warmup=args.warmup)
    print(f"workload: {args.requests:,} public reads at {args.rps:,.0f} req/s over {args.containers} containers "
          f"({args.requests / args.rps:,.0f} s counted after {args.warmup:g} s of warm-up), "
          f"Zipf(1.0) over {args.users:,} users, counters over {args.regions} region(s), mix "
          + ", ".join(f"{name} {share:.0%}" for name, share in MIX))
    print(f"cache: real ReadCache, max {MAX_ENTRIES:,} entries per container, TTLs from chalicelib.cache.TTL_SECONDS")
    print("\n".join(report(outcomes, args.warmup)))
    if args.sensitivity:
        print("\n".join(sensitivity(args, args.regions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
