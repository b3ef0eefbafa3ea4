"""Benchmark: per-partition-key heat at peak, OUR key design vs a NAIVE unsharded design.

Run: ``.venv/bin/python bench/scale_sim.py [--users 1000000] [--peak-rps 50000] [--seed 7]
[--out artifacts/scale_sim_key_heat.png]``

What it answers: at peak traffic, how many read and write units per second does each DynamoDB
partition key take (on-demand: a partition serves at most 3,000 RCU/s and 1,000 WCU/s; a GSI
partition the same), for the key design of :mod:`chalicelib.keys` and for a straightforward
unsharded design? Goal: the hottest key of OUR design stays <= 50 % of both limits (PASS/MISS is
printed); the naive design is expected to overload. Nothing here asserts; it prints, saves a PNG of
the rank-ordered key heat (log-log, both designs, 100 % and 50 % limit lines) and exits 0.

Population (numpy, seeded, aggregated by key, never one Python object per user):
- ``--users`` enumerated users ``user0000000`` ... (index = popularity rank) plus 5 celebrities
  ``celebrity1..5`` with 40M, 25M, 18M, 12M, 10M followers (counted, not enumerated).
- Follows are Zipf twice over: each user's out-degree ~ Zipf(a=1.8) capped at 7,500; each follow
  picks its followee by Zipf rank (s=1.0) -> follower counts by multinomial draw, capped at
  users-1. Every enumerated user follows every celebrity whose follower count >= users (the
  fraction of readers following account u is ``phi_u = min(1, followers_u / users)``: worst case).
- Targets of photo views, likes, follows and profile views are drawn in proportion to
  ``followers + 1`` (attention follows audience, so they are Zipf too and the celebrities draw
  most of them); within an owner, photo views and likes go to the ``photos_window`` (20) most recent
  photos by Zipf over recency (s=1.0: the newest photo takes ~28 %). Actors (who sends a request)
  are uniform over the enumerated users. Celebrities upload 10 photos a day on top of the mix.
- Peak mix: feed reads 60 %, photo views 20 %, likes 10 %, profile views 5 %, follows 4 %,
  uploads 1 % of ``--peak-rps``.

Method (analytic, per key): rather than simulating requests one by one, the load on a key is
``sum over request kinds of rate(kind) x P(request of that kind touches the key) x units``, where
the units come from the operations listed below and the on-demand cost model (strongly consistent
read <= 4 KB = 1 RCU, eventually consistent 0.5 RCU, a Query sums item sizes before rounding up to
4 KB; write <= 1 KB = 1 WCU; transactional reads and writes cost 2x; a random choice among n
shards puts load/n on each, the expected value). Two paths compute it:
- the hottest ``hot_targets`` accounts (all celebrities and the most followed users) go through
  :func:`request_ops`, which builds every partition key a request touches by calling the REAL key
  functions of :mod:`chalicelib.keys` (``counter_shard_id(s)``, ``counter_meta_id``,
  ``followers_pk`` + ``follower_shard``, ``following_pk``, ``liked_pk``, ``likers_pk`` + ``liker_shard``,
  ``celebrity_registry_pk``
  x ``CELEBRITY_REGISTRY_COPIES``; ``new_id`` for photo ids, ``owner_sort_key`` /
  ``feed_sort_key`` for the sort keys a Query starts from) and accumulates the loads in a dict
  keyed by (table, partition key), so the shard structure is exactly what that code produces;
- every other account is computed in vectorised numpy "families" (one array per key family)
  with the same unit costs; labels for them are built with the same real functions on demand.
  ``tests/unit/test_scale_sim.py`` checks both paths give identical per-key loads, and that the
  per-key totals equal the sum of the per-request operation costs.
Followers shards are chosen by a stable hash of the follower (``keys.follower_shard``): the share of
follows each shard receives is measured by hashing every actor id with that real function.
Shard counts come from ``chalicelib.follows.shards_for(followers)`` if that module and function
exist at run time, else from a local fallback (1 below 1,000 followers, 8 below 100k, 32 below
1M, 128 above); which one was used is printed. The same count is used for an account's followers
partitions, its counters, and the likes counters of its photos. Counter increments follow
:mod:`chalicelib.repositories.counters`: one random shard among ``shards`` in the writer's region (modelled as
load/shards on each), after reading the ``#meta`` item (``shard_count``, cached); reads BatchGet one
``#total`` item per region (``keys.counter_total_ids``), never a shard. The stream aggregator
(:mod:`chalicelib.aggregator`) sums shards ``0 .. keys.COUNTER_DIRECT_SHARDS - 1`` into each region's
``#total`` and every further ``keys.COUNTER_GROUP_SHARDS`` into a group subtotal item, itself a part
of the total (``keys.parse_counter_part_id`` names each shard's parent); one UpdateItem per parent
per batch per 50 parts, its size growing with one version attribute per part:
:func:`total_writes` and :func:`group_writes`, worst case by default (each part on its own stream
shard), the one-stream-shard best case printed beside it. Nothing of ``counters.py`` (which does
I/O) is called.

Caches (OUR design only; the naive design has none): the in-process cache of each of
``containers`` containers with the TTL of each kind from ``chalicelib.cache.TTL_SECONDS`` (photo,
profile, counter, shard_count, timeline, registry); a key read at r/s (Poisson, spread evenly over
the containers) misses r / (1 + r x TTL / containers) times a second (one miss per renewal cycle).
DAX (record TTL, query TTL and node count from ``infra/dax.yaml``, each node its own cache) then
serves, by the same formula over its nodes, exactly the reads ``chalicelib.dax`` routes there: its
item cache the UsersTable items and counters' ``#meta`` items (``route``), its query cache the
newest page of a celebrity pulled into another reader's feed (``route_shared_timeline``: one
request, identical from every container, so one cache key per celebrity and page size). The LRU bound (``MAX_ENTRIES``) is checked, not modelled: the
report prints the live entries it implies per container. The ``liked`` cache (keyed by viewer and
photo: per-key rates far below one per TTL) is not credited.

Operations per request (units per request; x2 = transactional):
- OURS
  - feed read: Query own FeedsTable partition (20 x 1 KB, eventually consistent = 2.5 RCU)
    + one Query per followed celebrity (followers >= the settings' celebrity threshold) on
    PhotosTable ``by_owner`` (owner = celebrity: 2.5 RCU): the pull model makes a celebrity's GSI
    partition a read hot key; served by the per-container ``timeline`` cache, then DAX's query
    cache (the Query reaches DynamoDB once per query TTL per node at most); a celebrity reading
    their own feed reads their page straight from DynamoDB (not modelled: celebrities are not
    among the actors)
    + the celebrity registry (8 copies, one picked at random, cached 60 s per container:
    min(rate, containers / 60) reads/s spread over the copies).
  - photo view: GetItem photo (0.5, cache ``photo``) + GetItem ``liked#{viewer}`` edge (0.5) +
    BatchGet the likes counter's ``#total`` per region (0.5 each below 4 KB; cache ``counter`` + DAX).
  - like: ``prepare_write`` reads the likes ``#meta`` (``shard_count``) and ``#total`` items (cached),
    then TransactWrite(``liked#{user}`` edge + likers mirror + ADD to one random likes shard in the
    writer's region) = 3 x 2 WCU, plus a ConditionCheck of the photo's item (2 WCU on it) from the
    containers that do not have the photo cached (:func:`photo_uncached_share`); the aggregator's
    ``#total`` (and group subtotal) writes. (The quota item each like and follow also counts in its
    transaction, 2 WCU on the actor's own per-minute key, is not modelled: never hot, WCU is no goal.)
  - follow: TransactWrite(``following#{follower}`` edge + ``followers#{followee}#{shard}`` edge +
    ADD to a followers counter shard of the followee + a following counter shard of the
    follower) = 4 x 2 WCU.
  - profile view: GetItem user (0.5, cache ``profile`` + DAX) + BatchGet followers/following/photos
    counters: one ``#total`` per region each (cache ``counter`` + DAX).
  - upload: photo put + pipeline's "ready" update (2 x 1 WCU, each mirrored into ``by_owner``:
    2 GSI WCU) + ADD one photos counter shard (1 WCU); then, for non-celebrities only, the fan-out:
    Query the uploader's followers shards (100 B edges, summed, 0.5 RCU per 4 KB) and put one 1 KB
    item in each follower's own FeedsTable partition (spread evenly over the readers).
- NAIVE: the same requests with one item per counter (``likes#{photo}``, ``followers#{user}``,
  ``following#{user}``, ``photos#{user}``, no ``#meta``), one followers partition per user
  (``followers#{user}``), a single celebrity registry item read by every feed read without any
  cache, and push fan-out for everyone: a celebrity's upload writes one feed item per follower
  (the burst duration at a stated fan-out write rate is printed; steady-state it is in the model
  at the celebrities' upload rate).

Not modelled (stated, not hidden): physical partitions holding several keys (the model is per
partition key, the best case adaptive capacity gives), the reader's own following list lookup for
the pull (assumed cached with the registry), like counts shown in feeds (a per-feed-read counter
read of a celebrity's newest photo would need the same container cache), global-table replication
(one region by default: ``REGIONS``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib import keys  # noqa: E402  (after the sys.path fix, so the script runs from anywhere)
from chalicelib.settings import Settings  # noqa: E402

OURS = "ours"
NAIVE = "naive"
DESIGNS = (OURS, NAIVE)

# DynamoDB on-demand per-partition limits and the goal.
RCU_LIMIT = 3000.0
WCU_LIMIT = 1000.0
GOAL = 0.5

# Tables (a GSI is its own set of partitions).
USERS = "UsersTable"
PHOTOS = "PhotosTable"
OWNER_INDEX = "PhotosTable/by_owner"
COUNTERS = "CountersTable"
GRAPH = "GraphTable"
FEEDS = "FeedsTable"
NAIVE_REGISTRY_PK = "celebrities"

REGIONS: tuple[str, ...] = ("us-east-1",)
REQUEST_KINDS = ("feed", "photo_view", "like", "follow", "profile", "upload")
DEFAULT_MIX = {"feed": 0.60, "photo_view": 0.20, "like": 0.10, "follow": 0.04, "profile": 0.05, "upload": 0.01}
CELEBRITY_FOLLOWERS = (40_000_000, 25_000_000, 18_000_000, 12_000_000, 10_000_000)
COUNTER_KINDS = ("followers", "following", "photos")
CELEBRITY_THRESHOLD = Settings.__dataclass_fields__["celebrity_follower_threshold"].default
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: "now" for the synthetic photo ids

# Item sizes (bytes) behind the unit costs.
PHOTO_ITEM_BYTES = 1024
FEED_ITEM_BYTES = 1024
USER_ITEM_BYTES = 1024
EDGE_ITEM_BYTES = 100
COUNTER_ITEM_BYTES = 64  # a shard or #meta item
TOTAL_ITEM_BASE_BYTES = 64  # a #total item: id + n ...
TOTAL_ITEM_BYTES_PER_SHARD = 10  # ... + one applied version ``s{shard}`` per shard of its region
PAGE_ITEMS = 20
PHOTO_WRITES_PER_UPLOAD = 2  # the put (pending) and the pipeline's update to ready


def read_units(nbytes: float, *, consistent: bool = False, transactional: bool = False) -> float:
    """RCU of reading ``nbytes`` (one item, or a Query's summed items): 4 KB units, EC = 0.5, TX = 2."""
    units = max(1, math.ceil(nbytes / 4096))
    if transactional:
        return 2.0 * units
    return units * (1.0 if consistent else 0.5)


def write_units(nbytes: float, *, transactional: bool = False) -> float:
    """WCU of writing one item of ``nbytes``: 1 KB units, transactional = 2x."""
    return max(1, math.ceil(nbytes / 1024)) * (2.0 if transactional else 1.0)


R_PHOTO = read_units(PHOTO_ITEM_BYTES)
R_USER = read_units(USER_ITEM_BYTES)
R_EDGE = read_units(EDGE_ITEM_BYTES)
R_COUNTER = read_units(COUNTER_ITEM_BYTES)
R_FEED_PAGE = read_units(PAGE_ITEMS * FEED_ITEM_BYTES)
R_TIMELINE_PAGE = read_units(PAGE_ITEMS * PHOTO_ITEM_BYTES)
R_EDGE_SCAN = EDGE_ITEM_BYTES / 4096 * 0.5  # per follower edge of a fan-out Query (sizes summed)
W_PHOTO = write_units(PHOTO_ITEM_BYTES)
W_FEED = write_units(FEED_ITEM_BYTES)
W_COUNTER = write_units(COUNTER_ITEM_BYTES)
W_COUNTER_TXN = write_units(COUNTER_ITEM_BYTES, transactional=True)
W_EDGE_TXN = write_units(EDGE_ITEM_BYTES, transactional=True)
#: A like's transaction checks the photo is ready (``ConditionCheck``: charged as a transactional write
#: of the photo item, on the photo's own partition).
W_PHOTO_CHECK_TXN = write_units(PHOTO_ITEM_BYTES, transactional=True)


def counter_parts(shards):
    """Parts a region's ``#total`` sums (``keys.counter_parts``: direct shards + group subtotals);
    shards may be an array."""
    n = np.asarray(shards, dtype=np.float64)
    parts = np.minimum(n, keys.COUNTER_DIRECT_SHARDS) + counter_groups(n)
    return float(parts) if parts.ndim == 0 else parts


def counter_groups(shards):
    """Group subtotal items of a counter of ``shards`` shards per region (``keys.counter_groups``)."""
    n = np.asarray(shards, dtype=np.float64)
    groups = np.ceil(np.maximum(0.0, n - keys.COUNTER_DIRECT_SHARDS) / keys.COUNTER_GROUP_SHARDS)
    return float(groups) if groups.ndim == 0 else groups


def total_item_bytes(shards: int) -> int:
    """Size of one region's ``#total`` item of a counter over ``shards`` shards (one version per part)."""
    return int(TOTAL_ITEM_BASE_BYTES + TOTAL_ITEM_BYTES_PER_SHARD * counter_parts(shards))


def group_item_bytes() -> int:
    """Size of a (full) group subtotal item: ``n``, its own ``version``, one version per shard."""
    return TOTAL_ITEM_BASE_BYTES + TOTAL_ITEM_BYTES_PER_SHARD * (keys.COUNTER_GROUP_SHARDS + 1)


def r_total(shards):
    """RCU of reading one ``#total`` item (eventually consistent BatchGet); shards may be an array."""
    nbytes = TOTAL_ITEM_BASE_BYTES + TOTAL_ITEM_BYTES_PER_SHARD * np.asarray(counter_parts(shards))
    units = np.maximum(1.0, np.ceil(nbytes / 4096)) * 0.5
    return float(units) if units.ndim == 0 else units


def w_total(shards):
    """WCU of one aggregator UpdateItem of a ``#total`` item; shards may be an array."""
    nbytes = TOTAL_ITEM_BASE_BYTES + TOTAL_ITEM_BYTES_PER_SHARD * np.asarray(counter_parts(shards))
    units = np.maximum(1.0, np.ceil(nbytes / 1024))
    return float(units) if units.ndim == 0 else units


W_GROUP = write_units(group_item_bytes())


def parent_updates(child_writes, children, stream_shards: int | None = None):
    """Aggregator UpdateItems/s on one parent item (a total or a group), given its ``children``
    parts' writes/s (``child_writes`` in all, spread evenly).

    :mod:`chalicelib.aggregator` coalesces a batch into one conditional UpdateItem per parent per
    ``MAX_SHARDS_PER_UPDATE`` parts; a batch comes every ``BATCH_WINDOW_SECONDS`` per stream shard
    (modelled at that rate: a fuller stream shard fills ``BATCH_SIZE`` sooner, not modelled). The
    children spread over ``P = min(children, stream_shards)`` stream shards (None: one each, the
    worst case); each sees ``w / P`` of their records: below one per window each record is its own
    update."""
    from chalicelib import aggregator  # noqa: PLC0415

    window = float(aggregator.BATCH_WINDOW_SECONDS)
    w = np.asarray(child_writes, dtype=np.float64)
    n = np.maximum(np.asarray(children, dtype=np.float64), 1.0)
    spread = n if stream_shards is None else np.minimum(n, float(stream_shards))
    per_batch = w * window / spread
    chunks = np.ceil(np.minimum(per_batch, n / spread) / aggregator.MAX_SHARDS_PER_UPDATE)
    updates = np.where(per_batch >= 1.0, spread / window * chunks, w)
    return float(updates) if updates.ndim == 0 else updates


def _split(shard_writes, shards):
    """``(direct shards, their writes/s, groups, shards per group, each group's shard writes/s)``."""
    w = np.asarray(shard_writes, dtype=np.float64)
    n = np.asarray(shards, dtype=np.float64)
    direct = np.minimum(n, keys.COUNTER_DIRECT_SHARDS)
    groups = np.asarray(counter_groups(n))
    per_group = np.where(groups > 0, (n - direct) / np.maximum(groups, 1.0), 0.0)
    return direct, w * direct / n, groups, per_group, w * per_group / n


def group_writes(shard_writes, shards, stream_shards: int | None = None):
    """Aggregator UpdateItems/s on EACH group subtotal item of a counter (0 without groups), given its
    shards' writes/s: a group's shards are its children."""
    _, _, groups, per_group, group_in = _split(shard_writes, shards)
    updates = np.where(groups > 0, parent_updates(group_in, np.maximum(per_group, 1.0), stream_shards), 0.0)
    return float(updates) if updates.ndim == 0 else updates


def total_writes(shard_writes, shards, stream_shards: int | None = None):
    """Aggregator UpdateItems/s on one region's ``#total`` item, given its shards' writes/s: the
    direct shards' records, plus each group's (a group is one item: one stream shard)."""
    direct, direct_in, groups, _, _ = _split(shard_writes, shards)
    from_groups = groups * parent_updates(group_writes(shard_writes, shards, stream_shards), 1.0)
    updates = parent_updates(direct_in, direct, stream_shards) + from_groups
    return float(updates) if np.ndim(updates) == 0 else updates


@dataclass(frozen=True)
class Config:
    users: int = 1_000_000
    peak_rps: float = 50_000.0
    seed: int = 7
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    celebrity_followers: tuple[int, ...] = CELEBRITY_FOLLOWERS
    follows_zipf_a: float = 1.8
    max_follows: int = 7_500
    popularity_s: float = 1.0
    photos_window: int = 20
    photo_recency_s: float = 1.0
    hot_targets: int = 200
    containers: int = 1_000
    #: The in-process caches the code has (read from it: :func:`code_cache_ttls`); None: no such cache.
    timeline_ttl_s: float | None = field(default_factory=lambda: code_cache_ttls()[0])
    registry_ttl_s: float = field(default_factory=lambda: code_cache_ttls()[1])
    #: Every kind's TTL of the in-process cache (``chalicelib.cache.TTL_SECONDS``) and its bound.
    ttls: dict[str, float] = field(default_factory=lambda: code_ttl_table())
    max_entries: int = field(default_factory=lambda: code_max_entries())
    #: DAX's item cache (prod): record TTL and node count from infra/dax.yaml; None: no cache tier.
    dax_ttl_s: float | None = field(default_factory=lambda: dax_template_parameters()[0])
    dax_nodes: int = field(default_factory=lambda: dax_template_parameters()[2])
    #: DAX's query cache (prod): query TTL from infra/dax.yaml; None: not credited.
    dax_query_ttl_s: float | None = field(default_factory=lambda: dax_template_parameters()[1])
    #: Stream shards a counter's shard items may spread over (None: one per counter shard, worst case).
    stream_shards: int | None = None
    cache: bool = True
    celebrity_uploads_per_day: float = 10.0
    fanout_write_rate: float = 40_000.0  # the default per-table on-demand write quota (WCU/s)
    celebrity_threshold: int = CELEBRITY_THRESHOLD
    regions: tuple[str, ...] = REGIONS

    def rate(self, kind: str) -> float:
        return self.peak_rps * self.mix.get(kind, 0.0)


# --- shard policy -----------------------------------------------------------------------------

def fallback_shards_for(followers: int) -> int:
    """Local fallback policy: 1 below 1,000 followers, 8 below 100k, 32 below 1M, 128 above."""
    if followers < 1_000:
        return 1
    if followers < 100_000:
        return 8
    if followers < 1_000_000:
        return 32
    return 128


def resolve_shard_policy() -> tuple[Callable[[int], int], str]:
    """``chalicelib.follows.shards_for`` when importable, else the local fallback; and which one."""
    fallback = "local fallback (1 <1k followers, 8 <100k, 32 <1M, 128 above)"
    try:
        from chalicelib import follows as social  # noqa: PLC0415 (optional, written concurrently)
    except Exception as exc:  # absent or half-written: the benchmark still runs
        return fallback_shards_for, f"{fallback}: chalicelib.follows not importable ({type(exc).__name__}: {exc})"
    policy = getattr(social, "shards_for", None)
    if not callable(policy):
        return fallback_shards_for, f"{fallback}: chalicelib.follows has no shards_for"
    return policy, "chalicelib.follows.shards_for"


# --- population -------------------------------------------------------------------------------

def photo_id(seed: int, owner: str, k: int) -> str:
    """The id of ``owner``'s k-th most recent photo: a real ULID (``keys.new_id``), deterministic."""
    rand = hashlib.blake2b(f"{seed}:{owner}:{k}".encode(), digest_size=10).digest()
    return keys.new_id(now_ms=photo_created_ms(owner, k), randomness=rand)


def photo_created_ms(owner: str, k: int) -> int:
    return BASE_MS - k * 3_600_000 - (sum(owner.encode()) % 1000)


def iso_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@dataclass(frozen=True)
class Account:
    """One account as the key functions see it."""

    name: str
    followers: int
    shards: int
    pull: bool  # OUR design: a celebrity, pulled by its followers at read time, never fanned out
    photo_ids: tuple[str, ...]


@dataclass
class Population:
    cfg: Config
    n_celebs: int
    followers: np.ndarray  # per account: celebrities first, then users by popularity rank
    popularity: np.ndarray  # P(a targeted request targets the account), sums to 1
    shards: np.ndarray
    pull: np.ndarray  # followers >= celebrity threshold
    phi: np.ndarray  # fraction of feed readers following the account
    is_user: np.ndarray  # 1.0 for enumerated users (actors), 0.0 for celebrities
    upload_rate: np.ndarray  # uploads/s per account
    photo_weights: np.ndarray  # P(k-th most recent photo | owner)
    mean_out_degree: float
    policy_name: str

    @property
    def size(self) -> int:
        return len(self.followers)

    @property
    def users(self) -> int:
        return self.cfg.users

    def name(self, i: int) -> str:
        return f"celebrity{i + 1}" if i < self.n_celebs else f"user{i - self.n_celebs:07d}"

    def account(self, i: int) -> Account:
        name = self.name(i)
        return Account(
            name=name,
            followers=int(self.followers[i]),
            shards=int(self.shards[i]),
            pull=bool(self.pull[i]),
            photo_ids=tuple(photo_id(self.cfg.seed, name, k) for k in range(self.cfg.photos_window)),
        )


def zipf_weights(n: int, s: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    return w / w.sum()


def build_population(cfg: Config, shards_for: Callable[[int], int], policy_name: str = "") -> Population:
    """Synthetic population, vectorised (see the module docstring for the distributions)."""
    rng = np.random.default_rng(cfg.seed)
    n = cfg.users
    out_degree = np.minimum(rng.zipf(cfg.follows_zipf_a, size=n), cfg.max_follows)
    total_follows = int(out_degree.sum())
    in_degree = rng.multinomial(total_follows, zipf_weights(n, cfg.popularity_s))
    in_degree = np.minimum(np.sort(in_degree)[::-1], n - 1)
    celebs = np.asarray(cfg.celebrity_followers, dtype=np.int64)
    followers = np.concatenate([celebs, in_degree.astype(np.int64)])
    popularity = (followers + 1.0) / float((followers + 1.0).sum())
    values, inverse = np.unique(followers, return_inverse=True)
    shard_values = np.array([int(shards_for(int(v))) for v in values], dtype=np.int64)
    if (shard_values < 1).any():
        raise ValueError("shards_for returned a shard count < 1")
    shards = shard_values[inverse]
    is_user = np.concatenate([np.zeros(len(celebs)), np.ones(n)])
    upload_rate = np.concatenate([
        np.full(len(celebs), cfg.celebrity_uploads_per_day / 86_400.0),
        np.full(n, cfg.rate("upload") / n),
    ])
    return Population(
        cfg=cfg,
        n_celebs=len(celebs),
        followers=followers,
        popularity=popularity,
        shards=shards,
        pull=followers >= cfg.celebrity_threshold,
        phi=np.minimum(1.0, followers / n),
        is_user=is_user,
        upload_rate=upload_rate,
        photo_weights=zipf_weights(cfg.photos_window, cfg.photo_recency_s),
        mean_out_degree=float(out_degree.mean()),
        policy_name=policy_name,
    )


SHARE_SAMPLE = 250_000  # actor ids hashed to measure the followers-shard shares


class FollowerShares:
    """Share of follows landing on each followers shard, measured by hashing actor ids with the real
    ``keys.follower_shard`` (every actor up to ``SHARE_SAMPLE``, else an evenly spaced sample of
    that many: the hash, not the sample, is what is being measured). One call per actor at the lcm
    of the shard counts in use (the shard is a hash modulo the count, so ``h mod lcm mod s`` =
    ``h mod s``; checked on a sample, else one call per actor per count)."""

    def __init__(self, pop: Population, sample: int = SHARE_SAMPLE) -> None:
        counts = sorted({int(s) for s in np.unique(pop.shards)})
        step = max(1, pop.users // sample)
        names = [pop.name(i) for i in range(pop.n_celebs, pop.size, step)]
        lcm = math.lcm(*counts)
        base = np.fromiter((keys.follower_shard(a, lcm) for a in names), dtype=np.int64, count=len(names))
        probe = names[:: max(1, len(names) // 500)]
        consistent = all(keys.follower_shard(a, s) == keys.follower_shard(a, lcm) % s for a in probe for s in counts)
        self._shares: dict[int, np.ndarray] = {}
        for s in counts:
            if consistent:
                shard = base % s
            else:
                shard = np.fromiter((keys.follower_shard(a, s) for a in names), dtype=np.int64, count=len(names))
            self._shares[s] = np.bincount(shard, minlength=s) / len(names)
        self.actors_hashed = len(names)
        self.method = "one call at the lcm of the counts" if consistent else "one call per count"

    def __call__(self, shards: int) -> np.ndarray:
        return self._shares[shards]


# --- operations per request, with the real keys --------------------------------------------------

class Op(NamedTuple):
    """One item or partition a request touches, with the units of ONE request of its kind."""

    side: str  # "target" | "actor" | "global" | "fanout"
    table: str
    pk: str
    rcu: float
    wcu: float
    group: str = ""  # sibling shards of one counter (collapsed into one row when equally loaded)
    cached: str = ""  # a CACHED_READS tag (served by the caches), or AGGREGATE / AGGREGATE_GROUP (the aggregator's writes)
    sk: str = ""  # where a Query starts (informational)
    shards: int = 0  # AGGREGATE*: the counter's shards per region (bounds the aggregator's writes)


#: Op tags of the aggregator's writes: of a region's ``#total`` item, and of each group subtotal item.
AGGREGATE, AGGREGATE_GROUP = "aggregate", "aggregate group"
#: Op tag of a like's ConditionCheck on the photo's item: made only by a container that does not have
#: the photo cached as ready (``likes._write``), i.e. one whose ``photo`` entry (loaded by views) is absent.
PHOTO_CHECK = "photo check"


def photo_uncached_share(cfg: Config, view_rate, containers: float | None = None):
    """The share of time a container has no live ``photo`` entry for a photo viewed at ``view_rate``/s
    over the fleet (renewal cycle ``ttl + containers / rate``, live for ``ttl``): the share of that
    photo's likes whose transaction checks the photo's item."""
    if not cfg.cache:
        return 1.0
    containers = cfg.containers if containers is None else containers
    return 1.0 / (1.0 + np.asarray(view_rate, dtype=np.float64) * cfg.ttls["photo"] / containers)


@dataclass(frozen=True)
class KeyEnv:
    regions: tuple[str, ...]
    follower_shares: Callable[[int], np.ndarray]
    registry_rcu: float


def registry_units(members: Sequence[str]) -> float:
    """RCU of one GetItem of the registry item holding ``members`` (a string set)."""
    return read_units(100 + sum(len(m) + 3 for m in members))


def _counter_read_ops(side: str, kind: str, entity: str, account: Account, env: KeyEnv) -> list[Op]:
    """``counters.read_totals``: one BatchGet of the ``#total`` item of every region (no #meta, no shard)."""
    group = f"{keys.counter_meta_id(kind, entity)} totals"
    return [Op(side, COUNTERS, total_id, r_total(account.shards), 0.0, group=group, cached="counter")
            for total_id in keys.counter_total_ids(kind, entity, env.regions)]


def _meta_read_op(side: str, kind: str, entity: str, cached: str = "shard_count") -> Op:
    """``counters.shard_count`` before a counted write: the counter's ``#meta`` item."""
    return Op(side, COUNTERS, keys.counter_meta_id(kind, entity), R_COUNTER, 0.0, cached=cached)


def _counter_add_ops(side: str, kind: str, entity: str, shards: int, env: KeyEnv, units: float) -> list[Op]:
    """Expected load of ADD to one random shard of the writer's region: units/shards on each; and the
    stream aggregator's UpdateItems of that region's group subtotals (each takes the share of the
    shards it sums, ``keys.parse_counter_part_id``) and ``#total`` item (one shard write per request,
    below the batching bound)."""
    group = f"{keys.counter_meta_id(kind, entity)} shards"
    writer = env.regions[0]
    parents: dict[str, int] = {}
    for n in range(shards):
        parent = keys.parse_counter_part_id(keys.counter_shard_id(kind, entity, writer, n))[0]
        parents[parent] = parents.get(parent, 0) + 1
    total_id = keys.counter_total_id(kind, entity, writer)
    return [
        Op(side, COUNTERS, keys.counter_shard_id(kind, entity, writer, n), 0.0, units / shards, group=group)
        for n in range(shards)
    ] + [Op(side, COUNTERS, parent, 0.0, W_GROUP * count / shards, group=f"{keys.counter_meta_id(kind, entity)} groups",
            cached=AGGREGATE_GROUP, shards=shards) for parent, count in parents.items() if parent != total_id
    ] + [Op(side, COUNTERS, total_id, 0.0, w_total(shards),
            group=f"{keys.counter_meta_id(kind, entity)} totals", cached=AGGREGATE, shards=shards)]


def request_ops(
    design: str,
    kind: str,
    env: KeyEnv,
    *,
    actor: Account | None = None,
    target: Account | None = None,
    photo: int = 0,
) -> list[Op]:
    """Every key ONE request of ``kind`` touches, with its units (see the module docstring).

    ``actor`` None: only the target's keys; ``target`` None: only the actor's (and global) keys.
    A follow without a known actor spreads over the followee's followers shards by the measured
    hash shares. For a feed read, ``target`` is one followed celebrity whose timeline is pulled.
    """
    ours = design == OURS
    ops: list[Op] = []
    if kind == "feed":
        if actor is not None:
            newest = keys.feed_sort_key(iso_ms(BASE_MS), "~")
            ops.append(Op("actor", FEEDS, actor.name, R_FEED_PAGE, 0.0, sk=f"<= {newest}"))
            if ours:
                copies = keys.CELEBRITY_REGISTRY_COPIES
                ops += [
                    Op("global", GRAPH, keys.celebrity_registry_pk(c), env.registry_rcu / copies, 0.0,
                       group="celebrity registry copies", cached="registry")
                    for c in range(copies)
                ]
            else:
                ops.append(Op("global", GRAPH, NAIVE_REGISTRY_PK, env.registry_rcu, 0.0))
        if target is not None and ours and target.pull:
            sk = keys.owner_sort_key(iso_ms(photo_created_ms(target.name, 0)), target.photo_ids[0])
            ops.append(Op("target", OWNER_INDEX, target.name, R_TIMELINE_PAGE, 0.0, cached="timeline", sk=f"<= {sk}"))
    elif kind == "photo_view":
        if target is not None:
            pid = target.photo_ids[photo]
            ops.append(Op("target", PHOTOS, pid, R_PHOTO, 0.0, cached="photo" if ours else ""))
            if ours:
                ops += _counter_read_ops("target", "likes", pid, target, env)
            else:
                ops.append(Op("target", COUNTERS, f"likes#{pid}", R_COUNTER, 0.0))
        if actor is not None:
            ops.append(Op("actor", GRAPH, keys.liked_pk(actor.name), R_EDGE, 0.0))
    elif kind == "like":
        if target is not None:
            pid = target.photo_ids[photo]
            if ours:
                # the likers mirror, in the shard the liker's stable hash picks (same hash as followers)
                if actor is not None:
                    shares = {keys.liker_shard(actor.name, target.shards): 1.0}
                else:
                    measured = env.follower_shares(target.shards)
                    shares = {j: float(measured[j]) for j in range(target.shards)}
                ops += [Op("target", GRAPH, keys.likers_pk(pid, j), 0.0, W_EDGE_TXN * share, group=f"likers#{pid} shards")
                        for j, share in shares.items()]
                # the transaction's ConditionCheck that the photo is ready (a write on the photo's item),
                # made only where the liker's container has not the photo cached
                ops.append(Op("target", PHOTOS, pid, 0.0, W_PHOTO_CHECK_TXN, cached=PHOTO_CHECK))
                # counters.prepare_write: the shard count and the total (its response shows the count)
                ops.append(_meta_read_op("target", "likes", pid))
                ops += _counter_read_ops("target", "likes", pid, target, env)
                ops += _counter_add_ops("target", "likes", pid, target.shards, env, W_COUNTER_TXN)
            else:
                ops.append(Op("target", GRAPH, f"likers#{pid}", 0.0, W_EDGE_TXN))
                ops.append(Op("target", COUNTERS, f"likes#{pid}", 0.0, W_COUNTER_TXN))
        if actor is not None:
            ops.append(Op("actor", GRAPH, keys.liked_pk(actor.name), 0.0, W_EDGE_TXN))
    elif kind == "follow":
        if target is not None:
            if ours:
                if actor is not None:
                    shares = {keys.follower_shard(actor.name, target.shards): 1.0}
                else:
                    measured = env.follower_shares(target.shards)
                    shares = {j: float(measured[j]) for j in range(target.shards)}
                ops += [
                    Op("target", GRAPH, keys.followers_pk(target.name, j), 0.0, W_EDGE_TXN * share,
                       group=f"followers#{target.name} shards")
                    for j, share in shares.items()
                ]
                ops.append(_meta_read_op("target", "followers", target.name))
                ops += _counter_add_ops("target", "followers", target.name, target.shards, env, W_COUNTER_TXN)
            else:
                ops.append(Op("target", GRAPH, f"followers#{target.name}", 0.0, W_EDGE_TXN))
                ops.append(Op("target", COUNTERS, f"followers#{target.name}", 0.0, W_COUNTER_TXN))
        if actor is not None:
            ops.append(Op("actor", GRAPH, keys.following_pk(actor.name), 0.0, W_EDGE_TXN))
            if ours:
                ops.append(_meta_read_op("actor", "following", actor.name))
                ops += _counter_add_ops("actor", "following", actor.name, actor.shards, env, W_COUNTER_TXN)
            else:
                ops.append(Op("actor", COUNTERS, f"following#{actor.name}", 0.0, W_COUNTER_TXN))
    elif kind == "profile":
        if target is not None:
            ops.append(Op("target", USERS, target.name, R_USER, 0.0, cached="profile" if ours else ""))
            for counter in COUNTER_KINDS:
                if ours:
                    ops += _counter_read_ops("target", counter, target.name, target, env)
                else:
                    ops.append(Op("target", COUNTERS, f"{counter}#{target.name}", R_COUNTER, 0.0))
    elif kind == "upload":
        if actor is not None:
            pid = actor.photo_ids[0]
            ops.append(Op("actor", PHOTOS, pid, 0.0, PHOTO_WRITES_PER_UPLOAD * W_PHOTO))
            ops.append(Op("actor", OWNER_INDEX, actor.name, 0.0, PHOTO_WRITES_PER_UPLOAD * W_PHOTO))
            if ours:
                # the worker's shard_count (its own container's cache: not credited, per-key rate << 1/s)
                ops.append(_meta_read_op("actor", "photos", actor.name, cached=""))
                ops += _counter_add_ops("actor", "photos", actor.name, actor.shards, env, W_COUNTER)
            else:
                ops.append(Op("actor", COUNTERS, f"photos#{actor.name}", 0.0, W_COUNTER))
            if not (ours and actor.pull):
                scan = actor.followers * R_EDGE_SCAN
                if ours:
                    measured = env.follower_shares(actor.shards)
                    ops += [
                        Op("actor", GRAPH, keys.followers_pk(actor.name, j), scan * float(measured[j]), 0.0,
                           group=f"followers#{actor.name} shards")
                        for j in range(actor.shards)
                    ]
                else:
                    ops.append(Op("actor", GRAPH, f"followers#{actor.name}", scan, 0.0))
                ops.append(Op("fanout", FEEDS, "<each follower>", 0.0, actor.followers * W_FEED))
    else:
        raise ValueError(f"unknown request kind {kind!r}")
    return ops


# --- the key table ----------------------------------------------------------------------------

@dataclass
class Chunk:
    """Keys with loads ``rcu*rscale`` / ``wcu*wscale``; entry i stands for ``mult[i]`` equal keys."""

    family: str
    rcu: np.ndarray
    wcu: np.ndarray
    mult: np.ndarray
    label: Callable[[int], tuple[str, str, str]]  # entry -> (table, partition key, group)
    rscale: float = 1.0
    wscale: float = 1.0
    tables: np.ndarray | None = None  # per-entry table (explicit chunk); else label(0)'s table

    def r(self) -> np.ndarray:
        return self.rcu * self.rscale

    def w(self) -> np.ndarray:
        return self.wcu * self.wscale

    def util(self) -> np.ndarray:
        return np.maximum(self.r() / RCU_LIMIT, self.w() / WCU_LIMIT)


@dataclass
class Model:
    design: str
    chunks: list[Chunk]
    incoming_feed_wcu: float  # per enumerated reader's feed partition (push fan-out)
    cache_stats: CacheStats = field(default_factory=lambda: CacheStats())

    def totals(self) -> tuple[float, float]:
        rcu = sum(float((c.r() * c.mult).sum()) for c in self.chunks)
        wcu = sum(float((c.w() * c.mult).sum()) for c in self.chunks)
        return rcu, wcu

    def expanded(self) -> tuple[np.ndarray, np.ndarray]:
        """Every key's (rcu, wcu), sorted: for small populations and tests only."""
        pairs = []
        for c in self.chunks:
            reps = c.mult.astype(np.int64)
            pairs.append(np.stack([np.repeat(c.r(), reps), np.repeat(c.w(), reps)], axis=1))
        allp = np.concatenate(pairs)
        keep = (allp[:, 0] > 0) | (allp[:, 1] > 0)
        allp = allp[keep]
        # sorted on rounded loads: the two paths may differ in the last bits of equal loads
        order = np.lexsort((np.round(allp[:, 1], 13), np.round(allp[:, 0], 13)))
        return allp[order, 0], allp[order, 1]


def pushes(design: str, pop: Population) -> np.ndarray:
    """Accounts whose uploads are fanned out to their followers' feeds."""
    return np.ones(pop.size, dtype=bool) if design == NAIVE else ~pop.pull


def fanout_incoming(design: str, pop: Population) -> float:
    """WCU/s arriving in each enumerated reader's feed partition (followers spread evenly)."""
    push = pushes(design, pop)
    reach = np.minimum(pop.followers, pop.users)
    return float((pop.upload_rate * reach * push).sum() * W_FEED / pop.users)


def code_cache_ttls() -> tuple[float | None, float]:
    """``(celebrity timeline TTL or None, celebrity registry TTL)`` of the per-container caches that
    exist in ``chalicelib``: the TTL table of :mod:`chalicelib.cache` (a timeline cache only if that
    table has a ``timeline`` kind: the simulator credits no cache the code does not have)."""
    from chalicelib import cache

    timeline = cache.TTL_SECONDS.get("timeline")
    return (float(timeline) if timeline is not None else None), float(cache.TTL_SECONDS["registry"])


def aggregator_window() -> float:
    from chalicelib import aggregator  # noqa: PLC0415

    return float(aggregator.BATCH_WINDOW_SECONDS)


def code_ttl_table() -> dict[str, float]:
    from chalicelib import cache  # noqa: PLC0415

    return {kind: float(ttl) for kind, ttl in cache.TTL_SECONDS.items()}


def code_max_entries() -> int:
    from chalicelib import cache  # noqa: PLC0415

    return int(cache.MAX_ENTRIES)


DAX_TEMPLATE = ROOT / "infra" / "dax.yaml"


def dax_template_parameters(path: Path = DAX_TEMPLATE) -> tuple[float, float, int]:
    """``(item cache TTL s, query cache TTL s, nodes)``: the ``AWS::DAX::ParameterGroup``'s
    ``record-ttl-millis`` and ``query-ttl-millis`` and the ``ReplicationFactor`` parameter's default
    of ``infra/dax.yaml`` (the prod cache tier)."""
    from infra.cfn import load_template  # noqa: PLC0415

    template = load_template(path)
    values = next(r["Properties"]["ParameterNameValues"]
                  for r in template["Resources"].values() if r["Type"] == "AWS::DAX::ParameterGroup")
    return (int(values["record-ttl-millis"]) / 1000, int(values["query-ttl-millis"]) / 1000,
            int(template["Parameters"]["ReplicationFactor"]["Default"]))


#: Where a read goes after an in-process miss: DynamoDB, DAX's item cache, DAX's query cache.
NO_DAX, DAX_ITEM, DAX_QUERY = "", "item", "query"
#: Cached reads of OUR design: tag -> (in-process cache kind, DAX path). Which reads go through DAX
#: is :func:`chalicelib.dax.route`'s (UsersTable items; counters' ``#meta`` items) and, for the
#: pulled timelines, :func:`chalicelib.dax.route_shared_timeline`'s; tests/unit/test_scale_sim.py
#: checks each against them.
CACHED_READS: dict[str, tuple[str, str]] = {
    "timeline": ("timeline", DAX_QUERY),  # Query PhotosTable/by_owner, newest page, pulled into another reader's feed
    "registry": ("registry", NO_DAX),     # GetItem GraphTable celebrities#{copy}
    "photo": ("photo", NO_DAX),           # GetItem PhotosTable
    "profile": ("profile", DAX_ITEM),     # GetItem UsersTable
    "counter": ("counter", NO_DAX),       # BatchGet CountersTable #total items (straight to DynamoDB: the aggregator bypasses DAX)
    "shard_count": ("shard_count", NO_DAX),  # BatchGet #meta with the #total (a like/follow): straight to DynamoDB
}


def ttl_cache_misses(rate, ttl: float, caches: float):
    """Misses/s of one key read at ``rate``/s (Poisson) spread evenly over ``caches`` independent TTL
    caches that keep a loaded entry ``ttl`` s: each cache misses once per renewal cycle of mean
    ``ttl + caches / rate``, i.e. ``rate / (1 + rate * ttl / caches)`` in all (<= min(rate, caches/ttl))."""
    rate = np.asarray(rate, dtype=np.float64)
    return rate / (1.0 + rate * ttl / caches)


def cache_stages(cfg: Config, rate, cached: str):
    """``(after the in-process cache, after DAX)`` rates of a read tagged ``cached`` (what reaches
    DynamoDB is the second)."""
    if not cached or not cfg.cache:
        return rate, rate
    kind, path = CACHED_READS[cached]
    ttl = {"timeline": cfg.timeline_ttl_s, "registry": cfg.registry_ttl_s}.get(kind, cfg.ttls.get(kind))
    after = rate if ttl is None else ttl_cache_misses(rate, ttl, cfg.containers)
    dax_ttl = {DAX_ITEM: cfg.dax_ttl_s, DAX_QUERY: cfg.dax_query_ttl_s}.get(path)
    if dax_ttl:  # each node its own cache (worst case): the request, identical from every container, is its key
        return after, ttl_cache_misses(after, dax_ttl, cfg.dax_nodes)
    return after, after


def effective_rate(cfg: Config, rate: np.ndarray | float, cached: str) -> np.ndarray | float:
    """Request rate reaching DynamoDB for a read served by the per-container cache (and DAX)."""
    return cache_stages(cfg, rate, cached)[1]


class CacheStats:
    """Per cached entity (tag): item reads/s asked, left after the in-process cache, left after DAX."""

    def __init__(self) -> None:
        self.rates: dict[str, list[float]] = {}

    def add(self, tag: str, asked, after, reached, weight=1.0) -> None:
        slot = self.rates.setdefault(tag, [0.0, 0.0, 0.0])
        for n, value in enumerate((asked, after, reached)):
            slot[n] += float(np.sum(np.asarray(value, dtype=np.float64) * weight))

    def merge(self, other: CacheStats) -> None:
        for tag, (a, b, c) in other.rates.items():
            self.add(tag, a, b, c)


def explicit_chunk(design: str, pop: Population, env: KeyEnv, indices: Sequence[int], incoming: float,
                   stats: CacheStats | None = None) -> Chunk:
    """Loads of every key of the accounts ``indices`` (and the global keys), built by
    :func:`request_ops` with the real key functions, accumulated per (table, partition key)."""
    cfg = pop.cfg
    stats = CacheStats() if stats is None else stats
    acc: dict[tuple[str, str], list] = {}
    # Cached reads and #total writes depend on the key's whole request rate (not linear): summed
    # here per (table, key, tag), turned into loads at the end.
    per_key: dict[tuple[str, str, str], list] = {}

    def add(ops: list[Op], rate: float, sides: tuple[str, ...]) -> None:
        for op in ops:
            if op.side not in sides:
                continue
            slot = acc.setdefault((op.table, op.pk), [0.0, 0.0, op.group or op.pk])
            if op.cached:
                entry = per_key.setdefault((op.table, op.pk, op.cached), [0.0, op.rcu, op.wcu, op.shards])
                entry[0] += rate
            else:
                slot[0] += rate * op.rcu
                slot[1] += rate * op.wcu

    q = pop.photo_weights
    for i in indices:
        acct = pop.account(i)
        p = float(pop.popularity[i])
        for kind in ("photo_view", "like"):
            for k in range(cfg.photos_window):
                add(request_ops(design, kind, env, target=acct, photo=k), cfg.rate(kind) * p * q[k], ("target",))
        for kind in ("follow", "profile"):
            add(request_ops(design, kind, env, target=acct), cfg.rate(kind) * p, ("target",))
        add(request_ops(design, "feed", env, target=acct), cfg.rate("feed") * float(pop.phi[i]), ("target",))
        if pop.is_user[i]:
            for kind in ("feed", "photo_view", "like", "follow"):
                add(request_ops(design, kind, env, actor=acct), cfg.rate(kind) / pop.users, ("actor",))
            slot = acc.setdefault((FEEDS, acct.name), [0.0, 0.0, acct.name])
            slot[1] += incoming
        add(request_ops(design, "upload", env, actor=acct), float(pop.upload_rate[i]), ("actor",))
    anyone = Account("anyone", 0, 1, False, ("-",))
    add(request_ops(design, "feed", env, actor=anyone), cfg.rate("feed"), ("global",))
    for (table, pk, tag), (rate, rcu, wcu, shards) in per_key.items():
        slot = acc[(table, pk)]
        if tag == PHOTO_CHECK:
            views = per_key.get((table, pk, "photo"), [0.0])[0]
            slot[1] += rate * float(photo_uncached_share(cfg, views)) * wcu
        elif tag == AGGREGATE:
            slot[1] += float(total_writes(rate, shards, cfg.stream_shards)) * wcu
        elif tag == AGGREGATE_GROUP:
            slot[1] += float(group_writes(rate, shards, cfg.stream_shards)) * W_GROUP
        else:
            after, reached = cache_stages(cfg, rate, tag)
            slot[0] += float(reached) * rcu
            # the registry is one cache entry whose misses read one random copy: counted once
            share = 1.0 / keys.CELEBRITY_REGISTRY_COPIES if tag == "registry" else 1.0
            stats.add(tag, rate, after, reached, share)
    items = list(acc.items())
    rcu = np.array([v[0] for _, v in items])
    wcu = np.array([v[1] for _, v in items])
    return Chunk(
        family="explicit (real keys)",
        rcu=rcu,
        wcu=wcu,
        mult=np.ones(len(items), dtype=np.int64),
        label=lambda j: (items[j][0][0], items[j][0][1], items[j][1][2]),
        tables=np.array([table for (table, _), _ in items], dtype=object),
    )


def tail_chunks(design: str, pop: Population, env: KeyEnv, idx: np.ndarray, incoming: float,
                stats: CacheStats | None = None) -> list[Chunk]:
    """The same loads as :func:`explicit_chunk`, vectorised by key family for accounts ``idx``."""
    cfg = pop.cfg
    stats = CacheStats() if stats is None else stats

    def cached(rate, tag: str, weight=1.0):
        """Rate reaching DynamoDB of a read tagged ``tag`` at ``rate`` per key (``weight`` keys each)."""
        after, reached = cache_stages(cfg, rate, tag)
        stats.add(tag, rate, after, reached, weight)
        return reached

    ours = design == OURS
    nreg = len(cfg.regions)
    writer = cfg.regions[0]
    p = pop.popularity[idx]
    s = pop.shards[idx].astype(np.float64)
    act = pop.is_user[idx]
    up = pop.upload_rate[idx]
    fol = pop.followers[idx].astype(np.float64)
    q = pop.photo_weights
    seed = cfg.seed
    shard_mult = pop.shards[idx].astype(np.int64)
    group_mult = np.asarray(counter_groups(s)).astype(np.int64)  # group subtotal items per counter
    name = pop.name
    chunks: list[Chunk] = []

    def full(values, dtype=np.float64) -> np.ndarray:
        """``values`` as an array over ``idx``; scalars broadcast without copying."""
        arr = np.asarray(values, dtype=dtype)
        return arr if arr.shape == (len(idx),) else np.broadcast_to(arr, (len(idx),))

    def chunk(family, rcu, wcu, mult, label, rscale=1.0, wscale=1.0):
        chunks.append(Chunk(family, full(rcu), full(wcu), full(mult, np.int64), label, rscale, wscale))

    def pid(j: int, k: int) -> str:
        return photo_id(seed, name(int(idx[j])), k)

    # Photos, likes counters: one entry per account, scaled by the recency weight of photo k.
    view = cfg.rate("photo_view") * p
    like = cfg.rate("like") * p
    upload_photo_w = up * PHOTO_WRITES_PER_UPLOAD * W_PHOTO
    view_photo, view_counter = view * R_PHOTO, view * R_COUNTER
    like_shard = like * W_COUNTER_TXN / s if ours else like * W_COUNTER_TXN
    total_r, total_w = r_total(s), w_total(s)
    for k in range(cfg.photos_window):
        kk = k
        if ours:
            chunk("photo item", cached(view * q[k], "photo") * R_PHOTO,
                  (upload_photo_w if k == 0 else 0.0)
                  + like * q[k] * photo_uncached_share(cfg, view * q[k]) * W_PHOTO_CHECK_TXN, 1,
                  lambda j, kk=kk: (PHOTOS, pid(j, kk), ""))
            chunk("likes meta", cached(like * q[k], "shard_count") * R_COUNTER, 0.0, 1,
                  lambda j, kk=kk: (COUNTERS, keys.counter_meta_id("likes", pid(j, kk)), ""))
            chunk("likes shards (writer region)", 0.0, like_shard, shard_mult,
                  lambda j, kk=kk: (COUNTERS, keys.counter_shard_id("likes", pid(j, kk), writer, 0), ""),
                  wscale=q[k])
            # views and likes (prepare_write) read the totals; the aggregator writes the writer region's
            total_reads = cached((view + like) * q[k], "counter", nreg) * total_r
            chunk("likes total (writer region)", total_reads, total_writes(like * q[k], s, cfg.stream_shards) * total_w, 1,
                  lambda j, kk=kk: (COUNTERS, keys.counter_total_id("likes", pid(j, kk), writer), ""))
            chunk("likes groups (writer region)", 0.0, group_writes(like * q[k], s, cfg.stream_shards) * W_GROUP,
                  group_mult, lambda j, kk=kk: (COUNTERS, keys.counter_group_id("likes", pid(j, kk), writer, 1), ""))
            if nreg > 1:
                chunk("likes totals (other regions)", total_reads, 0.0, nreg - 1,
                      lambda j, kk=kk: (COUNTERS, keys.counter_total_id("likes", pid(j, kk), cfg.regions[1]), ""))
        else:
            chunk("photo item", view_photo, upload_photo_w if k == 0 else 0.0, 1,
                  lambda j, kk=kk: (PHOTOS, pid(j, kk), ""), rscale=q[k])
            chunk("likes item", view_counter, like_shard, 1,
                  lambda j, kk=kk: (COUNTERS, f"likes#{pid(j, kk)}", ""), rscale=q[k], wscale=q[k])
        # The likers mirror written in each like's transaction (read only by an account erasure).
        likers_w = full(like * W_EDGE_TXN)
        if ours:
            for count in np.unique(shard_mult):
                sel = np.nonzero(shard_mult == count)[0]
                cnt = int(count)
                w = np.outer(likers_w[sel], env.follower_shares(cnt)).ravel()
                chunks.append(Chunk(
                    f"likers shards ({cnt})", np.zeros(len(w)), w, np.ones(len(w), dtype=np.int64),
                    lambda e, sel=sel, cnt=cnt, kk=kk: (GRAPH, keys.likers_pk(pid(int(sel[e // cnt]), kk), e % cnt),
                                                        ""),
                    wscale=q[k]))
        else:
            chunk("likers partition", 0.0, likers_w, 1, lambda j, kk=kk: (GRAPH, f"likers#{pid(j, kk)}", ""),
                  wscale=q[k])

    profile = cfg.rate("profile") * p
    follow_in = cfg.rate("follow") * p
    follow_out = act * cfg.rate("follow") / pop.users
    chunk("user item", (cached(profile, "profile") if ours else profile) * R_USER, 0.0, 1,
          lambda j: (USERS, name(int(idx[j])), ""))
    counter_writes = {  # (shard writes/s = requests/s, units per write, #meta reads before the write)
        "followers": (follow_in, W_COUNTER_TXN, "shard_count"),
        "following": (follow_out, W_COUNTER_TXN, "shard_count"),
        "photos": (up, W_COUNTER, ""),  # the worker's shard_count: its cache not credited
    }
    for counter, (adds, units, meta_tag) in counter_writes.items():
        c = counter
        if ours:
            chunk(f"{c} shards (writer region)", 0.0, adds * units / s, shard_mult,
                  lambda j, c=c: (COUNTERS, keys.counter_shard_id(c, name(int(idx[j])), writer, 0), ""))
            total_reads = cached(profile, "counter", nreg) * total_r
            chunk(f"{c} total (writer region)", total_reads, total_writes(adds, s, cfg.stream_shards) * total_w, 1,
                  lambda j, c=c: (COUNTERS, keys.counter_total_id(c, name(int(idx[j])), writer), ""))
            chunk(f"{c} groups (writer region)", 0.0, group_writes(adds, s, cfg.stream_shards) * W_GROUP, group_mult,
                  lambda j, c=c: (COUNTERS, keys.counter_group_id(c, name(int(idx[j])), writer, 1), ""))
            if nreg > 1:
                chunk(f"{c} totals (other regions)", total_reads, 0.0, nreg - 1,
                      lambda j, c=c: (COUNTERS, keys.counter_total_id(c, name(int(idx[j])), cfg.regions[1]), ""))
            meta_reads = cached(adds, meta_tag) if meta_tag else adds
            chunk(f"{c} meta", meta_reads * R_COUNTER, 0.0, 1,
                  lambda j, c=c: (COUNTERS, keys.counter_meta_id(c, name(int(idx[j]))), ""))
        else:
            chunk(f"{c} item", profile * R_COUNTER, adds * units, 1,
                  lambda j, c=c: (COUNTERS, f"{c}#{name(int(idx[j]))}", ""))

    # Followers partitions: follow writes in, fan-out reads out.
    graph_w = follow_in * W_EDGE_TXN
    graph_r = up * fol * R_EDGE_SCAN * pushes(design, pop)[idx]
    if ours:
        for count in np.unique(shard_mult):
            sel = np.nonzero(shard_mult == count)[0]
            shares = env.follower_shares(int(count))
            r = np.outer(graph_r[sel], shares).ravel()
            w = np.outer(graph_w[sel], shares).ravel()
            cnt = int(count)
            chunks.append(Chunk(
                f"followers shards ({cnt})", r, w, np.ones(len(r), dtype=np.int64),
                lambda e, sel=sel, cnt=cnt: (GRAPH, keys.followers_pk(name(int(idx[sel[e // cnt]])), e % cnt), ""),
            ))
    else:
        chunk("followers partition", graph_r, graph_w, 1, lambda j: (GRAPH, f"followers#{name(int(idx[j]))}", ""))

    # by_owner GSI: celebrity pulls (ours) and the uploads' mirrored writes.
    pull_r = 0.0
    if ours:
        pull_r = pop.pull[idx] * cached(cfg.rate("feed") * pop.phi[idx], "timeline", pop.pull[idx]) * R_TIMELINE_PAGE
    chunk("by_owner partition", pull_r, up * PHOTO_WRITES_PER_UPLOAD * W_PHOTO, 1,
          lambda j: (OWNER_INDEX, name(int(idx[j])), ""))

    # The actor's own partitions (uniform over actors).
    chunk("feed partition", act * cfg.rate("feed") / pop.users * R_FEED_PAGE, act * incoming, 1,
          lambda j: (FEEDS, name(int(idx[j])), ""))
    chunk("liked partition", act * cfg.rate("photo_view") / pop.users * R_EDGE,
          act * cfg.rate("like") / pop.users * W_EDGE_TXN, 1, lambda j: (GRAPH, keys.liked_pk(name(int(idx[j]))), ""))
    chunk("following partition", 0.0, follow_out * W_EDGE_TXN, 1,
          lambda j: (GRAPH, keys.following_pk(name(int(idx[j]))), ""))
    return chunks


def outside_feeds_chunk(design: str, pop: Population) -> Chunk:
    """Feed partitions of celebrity followers beyond the enumerated users (pushed designs only)."""
    push = pushes(design, pop)
    extra = np.maximum(pop.followers - pop.users, 0) * push
    sel = np.nonzero(extra > 0)[0]
    return Chunk(
        "feeds of non-enumerated followers",
        np.zeros(len(sel)),
        pop.upload_rate[sel] * W_FEED,
        extra[sel].astype(np.int64),
        lambda j: (FEEDS, f"<a follower of {pop.name(int(sel[j]))}>", ""),
    )


def build_model(design: str, pop: Population, env: KeyEnv, hot: int | None = None) -> Model:
    """Per-key loads for ``design``: the ``hot`` most popular accounts through the real keys, the rest
    vectorised."""
    hot = pop.cfg.hot_targets if hot is None else hot
    order = np.argsort(-pop.popularity, kind="stable")
    hot_idx = order[: min(hot, pop.size)]
    tail_idx = np.sort(order[min(hot, pop.size):])
    incoming = fanout_incoming(design, pop)
    stats = CacheStats()
    chunks = [explicit_chunk(design, pop, env, [int(i) for i in hot_idx], incoming, stats)]
    if len(tail_idx):
        chunks += tail_chunks(design, pop, env, tail_idx, incoming, stats)
    chunks.append(outside_feeds_chunk(design, pop))
    return Model(design, chunks, incoming, stats)


def expected_totals(design: str, pop: Population, env: KeyEnv) -> tuple[float, float]:
    """Sum over request kinds of rate x units of ONE request (from :func:`request_ops`), without
    any per-key bookkeeping: what the per-key totals must add up to (cache off)."""
    cfg = pop.cfg
    rcu = wcu = 0.0

    def cost(ops: list[Op], sides: tuple[str, ...]) -> tuple[float, float]:
        return (sum(o.rcu for o in ops if o.side in sides), sum(o.wcu for o in ops if o.side in sides))

    anyone = Account("anyone", 0, 1, False, ("-",))
    for kind in ("feed", "photo_view", "like", "follow"):
        r, w = cost(request_ops(design, kind, env, actor=anyone), ("actor", "global"))
        rcu += cfg.rate(kind) * r
        wcu += cfg.rate(kind) * w
    for i in range(pop.size):
        acct = pop.account(i)
        p = float(pop.popularity[i])
        for kind in ("photo_view", "like"):
            for k in range(cfg.photos_window):
                r, w = cost(request_ops(design, kind, env, target=acct, photo=k), ("target",))
                share = cfg.rate(kind) * p * pop.photo_weights[k]
                rcu += share * r
                wcu += share * w
        for kind in ("follow", "profile"):
            r, w = cost(request_ops(design, kind, env, target=acct), ("target",))
            rcu += cfg.rate(kind) * p * r
            wcu += cfg.rate(kind) * p * w
        r, w = cost(request_ops(design, "feed", env, target=acct), ("target",))
        rcu += cfg.rate("feed") * float(pop.phi[i]) * r
        r, w = cost(request_ops(design, "upload", env, actor=acct), ("actor", "fanout"))
        rcu += float(pop.upload_rate[i]) * r
        wcu += float(pop.upload_rate[i]) * w
    return rcu, wcu


def make_env(pop: Population) -> KeyEnv:
    members = [pop.name(i) for i in np.nonzero(pop.pull)[0]]
    return KeyEnv(pop.cfg.regions, FollowerShares(pop), registry_units(members))


# --- report -----------------------------------------------------------------------------------

@dataclass
class Row:
    table: str
    pk: str
    rcu: float
    wcu: float
    count: int
    family: str

    @property
    def util(self) -> float:
        return max(self.rcu / RCU_LIMIT, self.wcu / WCU_LIMIT)


def _chunk_rows(c: Chunk, n: int, r: np.ndarray, w: np.ndarray, util: np.ndarray) -> list[Row]:
    """The ``n`` hottest rows of one chunk. Entries with equal loads merge into one row: sibling
    shards of one counter (explicit keys, same group) or keys of one family (vectorised chunks)."""
    if not len(util) or util.max() <= 0:
        return []
    explicit = c.family.startswith("explicit")
    if explicit:
        order = np.argsort(-util, kind="stable")
    else:
        take = min(len(util), 4 * n + 300)
        order = np.argpartition(-util, take - 1)[:take] if take < len(util) else np.arange(len(util))
        order = order[np.argsort(-util[order], kind="stable")]
    rows: dict[tuple, Row] = {}
    for j in order:
        j = int(j)
        if util[j] <= 0:
            break
        table, pk, group = c.label(j)
        merge_on = (group or pk) if explicit else c.family
        key = (table, merge_on, r[j], w[j])
        if key in rows:
            if explicit:
                rows[key].count += int(c.mult[j])
            continue
        if len(rows) == n + 1:
            break
        rows[key] = Row(table, pk, float(r[j]), float(w[j]), int(c.mult[j]), merge_on)
    return list(rows.values())[:n]


def _count_alike(row: Row, r: np.ndarray, w: np.ndarray, mult: np.ndarray) -> int:
    """Keys of a vectorised chunk with exactly ``row``'s load."""
    return int(mult[(r == row.rcu) & (w == row.wcu)].sum())


HEAT_EDGES = np.linspace(-9.0, 7.0, 3001)  # log10 bins of per-key load for the rank plot


@dataclass
class Summary:
    """Everything the report needs from one design, computed in one pass over the chunks."""

    design: str
    rcu: float
    wcu: float
    by_table: dict[str, tuple[float, float]]
    keys: int
    above_goal: int
    above_limit: int
    top: list[Row]
    hottest: dict[str, Row]  # "rcu" | "wcu" | "util"
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (rank, value)


def summarise(model: Model, n: int = 10) -> Summary:
    rcu_total = wcu_total = 0.0
    by_table: dict[str, list[float]] = {}
    keys_count = above_goal = above_limit = 0
    rows: list[tuple[Row, Chunk]] = []
    best: dict[str, tuple[float, Chunk, int]] = {}
    hist = {m: np.zeros(len(HEAT_EDGES) - 1) for m in ("util", "rcu", "wcu")}
    tops = {m: 0.0 for m in hist}
    for c in model.chunks:
        if not len(c.rcu):
            continue
        r, w = c.r(), c.w()
        util = np.maximum(r / RCU_LIMIT, w / WCU_LIMIT)
        mult = c.mult
        rm, wm = r * mult, w * mult
        rcu_total += float(rm.sum())
        wcu_total += float(wm.sum())
        if c.tables is not None:
            for table in set(c.tables):
                sel = c.tables == table
                slot = by_table.setdefault(table, [0.0, 0.0])
                slot[0] += float(rm[sel].sum())
                slot[1] += float(wm[sel].sum())
        else:
            slot = by_table.setdefault(c.label(0)[0], [0.0, 0.0])
            slot[0] += float(rm.sum())
            slot[1] += float(wm.sum())
        keys_count += int(mult[util > 0].sum())
        above_goal += int(mult[util > GOAL].sum())
        above_limit += int(mult[util > 1.0].sum())
        chunk_rows = _chunk_rows(c, n + 1, r, w, util)
        if chunk_rows and not c.family.startswith("explicit") and chunk_rows[0].util >= min_util(rows, n):
            for row in chunk_rows:
                row.count = _count_alike(row, r, w, mult)
        rows += [(row, c) for row in chunk_rows]
        for metric, values in (("rcu", r), ("wcu", w), ("util", util)):
            j = int(np.argmax(values))
            if metric not in best or values[j] > best[metric][0]:
                best[metric] = (float(values[j]), c, j)
            pos = values > 0
            if pos.any():
                scaled = values[pos] * (100.0 if metric == "util" else 1.0)
                tops[metric] = max(tops[metric], float(scaled.max()))
                hist[metric] += np.histogram(np.log10(scaled), bins=len(HEAT_EDGES) - 1,
                                             range=(HEAT_EDGES[0], HEAT_EDGES[-1]),
                                             weights=mult[pos].astype(np.float64))[0]
    rows.sort(key=lambda pair: -pair[0].util)
    hottest_rows = {}
    for metric, (_, c, j) in best.items():
        table, pk, group = c.label(j)
        hottest_rows[metric] = Row(table, pk, float(c.r()[j]), float(c.w()[j]), int(c.mult[j]), group)
    centers = 10 ** ((HEAT_EDGES[:-1] + HEAT_EDGES[1:]) / 2)
    curves = {}
    for metric, counts in hist.items():
        counts, values = counts[::-1], centers[::-1].copy()
        nz = counts > 0
        rank, values = (np.cumsum(counts) - counts + 1)[nz], values[nz]  # first rank of each bin
        if len(values):
            values[0] = tops[metric]
        curves[metric] = (rank, values)
    return Summary(model.design, rcu_total, wcu_total, {t: (v[0], v[1]) for t, v in by_table.items()},
                   keys_count, above_goal, above_limit, [row for row, _ in rows], hottest_rows, curves)


def min_util(rows: list[tuple[Row, Chunk]], n: int) -> float:
    """The n-th best utilisation among ``rows`` so far (0 while fewer): rows below it cannot show."""
    if len(rows) < n:
        return 0.0
    return sorted((row.util for row, _ in rows), reverse=True)[n - 1]


def fmt_key(row: Row, width: int = 72) -> str:
    text = row.pk if row.count == 1 else f"{row.pk}  (x{row.count:,} alike)"
    return text if len(text) <= width else text[: width - 1] + "…"


def print_top(summary: Summary, n: int = 10) -> None:
    print(f"\nTop {n} partition keys, {summary.design.upper()} design "
          "(equally loaded sibling shards / same-family keys shown once, xN)")
    print(f"  {'#':>2}  {'table':<21} {'partition key':<72} {'RCU/s':>9} {'WCU/s':>8} {'%RCU':>6} {'%WCU':>6}")
    for i, row in enumerate(summary.top[:n], 1):
        print(f"  {i:>2}  {row.table:<21} {fmt_key(row):<72} {row.rcu:>9,.1f} {row.wcu:>8,.1f} "
              f"{100 * row.rcu / RCU_LIMIT:>5.1f}% {100 * row.wcu / WCU_LIMIT:>5.1f}%")


def save_plot(summaries: Sequence[Summary], out: Path, title: str) -> None:
    """Rank-ordered per-key load (log-log) for each design, with the 100 % and 50 % lines."""
    import matplotlib  # noqa: PLC0415 (only the CLI plots)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 3, figsize=(18, 5.8))
    panels = (
        ("util", "load, % of the per-partition limit (max of RCU, WCU)", 100.0),
        ("rcu", "RCU/s per partition key", RCU_LIMIT),
        ("wcu", "WCU/s per partition key", WCU_LIMIT),
    )
    colours = {OURS: "tab:blue", NAIVE: "tab:red"}
    for ax, (metric, ylabel, limit) in zip(axes, panels):
        for summary in summaries:
            rank, values = summary.curves[metric]
            ax.step(rank, values, where="post", color=colours.get(summary.design), label=f"{summary.design} design")
        ax.axhline(limit, color="black", linestyle="-", linewidth=1, label="100 % limit")
        ax.axhline(limit * GOAL, color="grey", linestyle="--", linewidth=1, label="50 % goal")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("partition keys, hottest first (rank)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=1e-4)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.1, top=0.9, wspace=0.25)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def pct(value: float, limit: float) -> str:
    return f"{100 * value / limit:.1f} %"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=Config.users)
    parser.add_argument("--peak-rps", type=float, default=Config.peak_rps)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "scale_sim_key_heat.png")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cfg = Config(users=args.users, peak_rps=args.peak_rps, seed=args.seed)
    shards_for, policy = resolve_shard_policy()
    pop = build_population(cfg, shards_for, policy)
    env = make_env(pop)
    models = {design: build_model(design, pop, env) for design in DESIGNS}
    summaries = {design: summarise(model) for design, model in models.items()}
    best_case = dataclasses.replace(cfg, stream_shards=1)
    best_pop = dataclasses.replace(pop, cfg=best_case)
    best = summarise(build_model(OURS, best_pop, env))
    no_dax_pop = dataclasses.replace(pop, cfg=dataclasses.replace(cfg, dax_ttl_s=None, dax_query_ttl_s=None))
    no_dax = summarise(build_model(OURS, no_dax_pop, env))
    built = time.perf_counter() - started

    celeb_share = float(pop.popularity[: pop.n_celebs].sum())
    n_pull = int(pop.pull.sum())
    celebs = ", ".join(f"{f / 1e6:.0f}M" for f in cfg.celebrity_followers)
    print(f"Photoscale scale simulator: {cfg.users:,} users + {pop.n_celebs} celebrities ({celebs} followers), "
          f"peak {cfg.peak_rps:,.0f} req/s, seed {cfg.seed}")
    print(f"shard policy: {policy}")
    for label, followers in (("celebrity", cfg.celebrity_followers[0]), ("top user", int(pop.followers[pop.n_celebs])),
                             ("threshold", cfg.celebrity_threshold)):
        print(f"  {label:<9} {followers:>12,} followers -> {shards_for(followers)} shards")
    print(f"follows: out-degree Zipf(a={cfg.follows_zipf_a}) <= {cfg.max_follows:,}, mean {pop.mean_out_degree:.1f}; "
          f"followee Zipf(s={cfg.popularity_s}), capped at users-1; most followed user {int(pop.followers[pop.n_celebs]):,}; "
          f"{n_pull:,} accounts >= {cfg.celebrity_threshold:,} followers (settings' celebrity threshold) are pulled, "
          "not pushed")
    mix = ", ".join(f"{k} {100 * v:.0f} % ({cfg.rate(k):,.0f}/s)" for k, v in cfg.mix.items())
    print(f"mix: {mix}")
    print(f"targets ∝ followers+1: the celebrities draw {100 * celeb_share:.0f} % of targeted requests "
          f"(top one {100 * pop.popularity[0]:.0f} %); newest photo of an owner {100 * pop.photo_weights[0]:.0f} %")
    ttls = ", ".join(f"{tag} {cfg.ttls[kind]:g} s{f' +DAX {path}' if path else ''}"
                     for tag, (kind, path) in CACHED_READS.items())
    print(f"caches (read from the code): chalicelib.cache TTLs {ttls}; {cfg.containers:,} containers, at most "
          f"{cfg.max_entries:,} entries each; a key read at r/s reaches the next tier at r / (1 + r x TTL / caches)")
    print(f"  DAX (infra/dax.yaml): item cache record TTL {cfg.dax_ttl_s:g} s, query cache TTL {cfg.dax_query_ttl_s:g} s, "
          f"{cfg.dax_nodes} nodes (each its own cache: worst case), only for the reads chalicelib.dax routes there "
          "(item: UsersTable, counters' #meta; query: a celebrity's newest page pulled into another reader's feed)")
    print(f"  registry over {keys.CELEBRITY_REGISTRY_COPIES} copies ({env.registry_rcu:g} RCU each); naive: no cache")
    print(f"  counters: a view BatchGets {len(cfg.regions)} #total item(s) per counter (one per region: "
          f"{', '.join(cfg.regions)}); the aggregator sums shards 0-{keys.COUNTER_DIRECT_SHARDS - 1} into the total and "
          f"each further {keys.COUNTER_GROUP_SHARDS} into a group subtotal (a part of the total): a 512-shard total holds "
          f"{counter_parts(512):.0f} versions ({total_item_bytes(512):,} B, {w_total(512):g} WCU per write), a group "
          f"{keys.COUNTER_GROUP_SHARDS + 1} ({group_item_bytes():,} B, {W_GROUP:g} WCU); worst case one stream shard per "
          f"part, a batch per {aggregator_window():g} s window each")
    shares = env.follower_shares(int(pop.shards[0]))
    print(f"followers-shard shares measured with keys.follower_shard over {env.follower_shares.actors_hashed:,} actor ids "
          f"({env.follower_shares.method}): {len(shares)} shards, busiest {shares.max() * len(shares):.3f}x the mean")
    print(f"units: feed page {R_FEED_PAGE:g} RCU (20 x 1 KB, EC), celebrity timeline page {R_TIMELINE_PAGE:g} RCU, "
          f"GetItem {R_PHOTO:g} RCU, like {2 * W_EDGE_TXN:g} WCU, follow {4 * W_EDGE_TXN:g} WCU (transactions 2x)")
    print(f"model built and summarised in {built:.1f} s")

    stats = models[OURS].cache_stats.rates
    dax_asked = 0.0
    print("\nCache hit ratio per entity, OUR design (item reads/s asked -> after in-process -> after DAX -> DynamoDB)")
    print(f"  {'entity':<12} {'asked/s':>10} {'in-process hit':>15} {'DAX hit':>8} {'overall hit':>12} {'to DynamoDB/s':>14}")
    live = 0.0
    for tag, (asked, after, reached) in stats.items():
        kind, path = CACHED_READS[tag]
        live += after * cfg.ttls[kind] / cfg.containers  # entries stored per container within their TTL
        dax_hit = f"{100 * (1 - reached / after):.1f} %" if path and after else "-"
        if path:
            dax_asked += after
        print(f"  {tag:<12} {asked:>10,.1f} {100 * (1 - after / asked) if asked else 0:>13.1f} % {dax_hit:>8} "
              f"{100 * (1 - reached / asked) if asked else 0:>10.1f} % {reached:>14,.1f}")
    print(f"  live entries per container (modelled kinds): ~{live:,.0f} of {cfg.max_entries:,}: "
          f"{'the LRU bound evicts no live entry' if live < cfg.max_entries else 'the LRU bound BINDS (not modelled)'}")
    print(f"  DAX requests (in-process misses of the DAX-routed entities): {dax_asked:,.0f}/s, "
          f"{dax_asked / cfg.dax_nodes:,.0f}/s per node (node sizing is not modelled)")

    for summary in summaries.values():
        print_top(summary)

    ours, naive = summaries[OURS], summaries[NAIVE]
    print(f"\nSummary (per-partition limits {RCU_LIMIT:,.0f} RCU/s, {WCU_LIMIT:,.0f} WCU/s)")
    print(f"  {'':<34} {'ours':>30} {'naive':>30}")

    def both(fn: Callable[[Summary], str]) -> str:
        return f"{fn(ours):>30} {fn(naive):>30}"

    print(f"  {'hottest read key RCU/s':<34} "
          + both(lambda m: f"{m.hottest['rcu'].rcu:,.0f} ({pct(m.hottest['rcu'].rcu, RCU_LIMIT)})"))
    print(f"  {'hottest write key WCU/s':<34} "
          + both(lambda m: f"{m.hottest['wcu'].wcu:,.0f} ({pct(m.hottest['wcu'].wcu, WCU_LIMIT)})"))
    print(f"  {'hottest key, % of its limit':<34} " + both(lambda m: f"{100 * m.hottest['util'].util:.1f} %"))
    print(f"  {'  which':<34} " + both(lambda m: f"{m.hottest['util'].table.split('/')[-1]} {m.hottest['util'].pk}"[:30]))
    print(f"  {'keys > 50 % of a limit':<34} " + both(lambda m: f"{m.above_goal:,}"))
    print(f"  {'keys > 100 % (throttled)':<34} " + both(lambda m: f"{m.above_limit:,}"))
    print(f"  {'partition keys with load':<34} " + both(lambda m: f"{m.keys:,}"))
    print(f"  {'total RCU/s':<34} " + both(lambda m: f"{m.rcu:,.0f}"))
    print(f"  {'  of which CountersTable':<34} " + both(lambda m: f"{m.by_table.get(COUNTERS, (0, 0))[0]:,.0f}"))
    print(f"  {'total WCU/s':<34} " + both(lambda m: f"{m.wcu:,.0f}"))
    others = [row for row in naive.top if row.pk != NAIVE_REGISTRY_PK]
    if others:
        row = others[0]
        print(f"  naive hottest key besides the registry: {row.table} {row.pk}: "
              f"{row.rcu:,.0f} RCU/s, {row.wcu:,.0f} WCU/s ({100 * row.util:.0f} %)")

    hot_ours, hot_naive = ours.hottest["util"].util, naive.hottest["util"].util
    print(f"\ngoal: hottest key <= {100 * GOAL:.0f} % of the per-partition limits with our design: "
          f"{'PASS' if hot_ours <= GOAL else 'MISS'} ({100 * hot_ours:.1f} %)")
    print(f"naive design: {'OVERLOADED as expected' if hot_naive > 1.0 else 'NOT overloaded (unexpected)'} "
          f"({100 * hot_naive:.0f} %, {naive.above_limit:,} keys over a limit); "
          f"hottest key naive/ours: {hot_naive / hot_ours:.1f}x")
    print(f"read cost: ours reads {ours.rcu / naive.rcu:.2f}x the RCU of naive (goal <= 1x: "
          f"{'PASS' if ours.rcu <= naive.rcu else 'MISS'}); {100 * ours.by_table.get(COUNTERS, (0, 0))[0] / ours.rcu:.0f} % "
          f"of it is counter reads (one #total per region per counter, {len(cfg.regions)} item(s) whatever the shards)")
    print(f"aggregator: the goal above is its worst case (every part of a counter on its own stream shard); "
          f"best case (all of a counter's shard items on ONE stream shard): hottest key "
          f"{100 * best.hottest['util'].util:.1f} % ({best.hottest['util'].table.split('/')[-1]} {best.hottest['util'].pk}); "
          f"goal {'PASS' if best.hottest['util'].util <= GOAL else 'MISS'}; total RCU/s {best.rcu:,.0f}")

    print(f"\nCelebrity upload (naive push fan-out at {cfg.fanout_write_rate:,.0f} feed writes/s, the default per-table "
          "on-demand write quota, i.e. the whole table's write capacity):")
    scan_rate = cfg.fanout_write_rate * R_EDGE_SCAN
    for i in range(pop.n_celebs):
        f = int(pop.followers[i])
        print(f"  {pop.name(i)}: {f:,} feed items -> burst of {f / cfg.fanout_write_rate:,.0f} s "
              f"({f / cfg.fanout_write_rate / 60:.1f} min); followers#{pop.name(i)} read at {scan_rate:,.0f} RCU/s "
              f"({pct(scan_rate, RCU_LIMIT)}) meanwhile")
    pushed = pop.followers[~pop.pull]
    biggest_push = int(pushed.max()) if len(pushed) else 0
    print(f"  ours: celebrities are never fanned out (followers pull by_owner); the largest push is "
          f"{biggest_push:,} items ({biggest_push / cfg.fanout_write_rate:.2f} s at that rate)")
    uncached = cfg.rate("feed") * float(pop.phi[0]) * R_TIMELINE_PAGE
    print(f"sensitivity: without the container cache, {pop.name(0)}'s by_owner partition would take "
          f"{uncached:,.0f} RCU/s ({pct(uncached, RCU_LIMIT)} of the limit)")
    print(f"sensitivity: without DAX (a stage without a cache tier, e.g. dev at this load): hottest key "
          f"{100 * no_dax.hottest['util'].util:.1f} % ({no_dax.hottest['util'].table.split('/')[-1]} "
          f"{no_dax.hottest['util'].pk}); total RCU/s {no_dax.rcu:,.0f} ({no_dax.rcu / naive.rcu:.2f}x naive)")

    save_plot(list(summaries.values()), args.out,
              f"Photoscale key heat at {cfg.peak_rps:,.0f} req/s, {cfg.users:,} users: ours vs naive")
    print(f"\nPNG: {args.out}")
    print(f"run time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
