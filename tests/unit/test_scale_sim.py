"""The scale simulator's pure parts: key structure from the real key functions, and unit bookkeeping."""
from __future__ import annotations

import dataclasses
import math
import uuid

import numpy as np
import pytest

from bench import scale_sim as sim
from chalicelib import keys
from chalicelib.cache import TTL_SECONDS

SMALL = sim.Config(users=2_000, peak_rps=500.0, photos_window=4, hot_targets=30)


def small_world(cfg: sim.Config = SMALL, shards_for=sim.fallback_shards_for):
    pop = sim.build_population(cfg, shards_for, "test policy")
    return pop, sim.make_env(pop)


def explicit_loads(design: str, pop: sim.Population, env: sim.KeyEnv) -> dict[str, tuple[float, float]]:
    """(rcu, wcu) per partition key of the hot accounts, as built from the real key functions."""
    model = sim.build_model(design, pop, env)
    chunk = model.chunks[0]
    assert chunk.family.startswith("explicit")
    return {chunk.label(j)[1]: (float(chunk.rcu[j]), float(chunk.wcu[j])) for j in range(len(chunk.rcu))}


def test_our_design_spreads_a_celebrity_like_counter_over_its_shards():
    # Given a 10,000-user world, low traffic, and the fallback shard policy
    cfg = dataclasses.replace(SMALL, users=10_000, seed=int(uuid.uuid4().int % 10_000))
    pop, env = small_world(cfg)
    celebrity = pop.account(0)
    newest = celebrity.photo_ids[0]
    # When both designs are modelled
    ours = explicit_loads(sim.OURS, pop, env)
    naive = explicit_loads(sim.NAIVE, pop, env)
    # Then ours writes likes of the celebrity's newest photo to exactly its shards, named by keys, evenly
    shard_keys = [keys.counter_shard_id("likes", newest, cfg.regions[0], n) for n in range(celebrity.shards)]
    assert celebrity.shards == sim.fallback_shards_for(cfg.celebrity_followers[0]) == 128
    like_writes = cfg.rate("like") * pop.popularity[0] * pop.photo_weights[0] * sim.W_COUNTER_TXN
    total = keys.counter_total_id("likes", newest, cfg.regions[0])
    groups = [keys.counter_group_id("likes", newest, cfg.regions[0], g) for g in range(1, 4)]
    written = [k for k, (_, w) in ours.items() if k.startswith(f"likes#{newest}#") and w > 0]
    assert sorted(written) == sorted([*shard_keys, *groups, total])
    for key in shard_keys:
        assert ours[key][1] == pytest.approx(like_writes / celebrity.shards)
        assert ours[key][0] == 0  # shards are never read
    # And the aggregator writes each of the 3 group subtotals (shards 32-127) once per write of one of
    # its 32 shards (each on its own stream shard: below one record per batching window), and the
    # region's #total once per write of a direct shard (0-31) plus, per group (one item: one stream
    # shard, its records coalesced per window), at most once per window
    from chalicelib import aggregator

    likes = like_writes / sim.W_COUNTER_TXN
    per_part = likes * keys.COUNTER_GROUP_SHARDS / celebrity.shards
    assert per_part * aggregator.BATCH_WINDOW_SECONDS / keys.COUNTER_GROUP_SHARDS < 1
    for key in groups:
        assert ours[key][1] == pytest.approx(per_part * sim.W_GROUP)
    from_groups = len(groups) * min(per_part, 1 / aggregator.BATCH_WINDOW_SECONDS)
    assert ours[total][1] == pytest.approx((per_part + from_groups) * sim.w_total(celebrity.shards))
    # And the naive design puts every like of that photo on one item
    assert naive[f"likes#{newest}"][1] == pytest.approx(like_writes)
    assert not any(k.startswith(f"likes#{newest}#") for k in naive)


def test_followers_shards_follow_the_real_stable_hash():
    # Given the shard shares measured over the actors
    pop, env = small_world()
    shares = env.follower_shares(8)
    # When the same actors are hashed directly with keys.follower_shard
    actors = [pop.name(i) for i in range(pop.n_celebs, pop.size)]
    direct = np.bincount([keys.follower_shard(a, 8) for a in actors], minlength=8) / len(actors)
    # Then the shares are exactly those of the real function, and they sum to one
    np.testing.assert_allclose(shares, direct)
    assert shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("design", sim.DESIGNS)
def test_vectorised_families_match_the_real_key_path(design):
    # Given one small world (celebrities small enough to list every key), modelled once with every
    # account through the real key functions and once with every account through the vectorised families
    pop, env = small_world(dataclasses.replace(SMALL, celebrity_followers=(200_000, 50_000, 20_000, 12_000, 10_000)))
    explicit = sim.build_model(design, pop, env, hot=pop.size)
    vectorised = sim.build_model(design, pop, env, hot=0)
    # When every key's load is listed
    er, ew = explicit.expanded()
    vr, vw = vectorised.expanded()
    # Then both paths give the same keys with the same loads
    assert len(er) == len(vr)
    np.testing.assert_allclose(er, vr, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ew, vw, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("design", sim.DESIGNS)
def test_per_key_totals_equal_the_sum_of_operation_costs(design):
    # Given a small world without the container cache (so every request reaches DynamoDB), at a rate
    # where no part of a counter sends its parent a record per batching window (nothing coalesces)
    cfg = dataclasses.replace(SMALL, cache=False, peak_rps=5.0)
    pop, env = small_world(cfg)
    # When the per-key loads are summed over all keys
    model = sim.build_model(design, pop, env)
    rcu, wcu = model.totals()
    # Then they equal rate x units of one request, summed over request kinds
    expected_rcu, expected_wcu = sim.expected_totals(design, pop, env)
    assert rcu == pytest.approx(expected_rcu, rel=1e-9)
    assert wcu == pytest.approx(expected_wcu, rel=1e-9)


def test_a_like_costs_three_transactional_writes_and_ours_also_reads_the_count_it_returns():
    # Given a mix of likes only, no caches
    cfg = dataclasses.replace(SMALL, mix={"like": 1.0}, celebrity_uploads_per_day=0.0, cache=False)
    pop, env = small_world(cfg)
    ours = sim.build_model(sim.OURS, pop, env).totals()
    naive = sim.build_model(sim.NAIVE, pop, env).totals()
    # Then naive is TransactWrite(edge + likers mirror + counter) = 3 items x 2 WCU, nothing read
    assert naive == pytest.approx((0.0, cfg.peak_rps * 6))
    # And ours (counters.prepare_write) reads the #meta item and one #total per region; without a
    # container cache every like's transaction also checks the photo (a 4th item, 2 WCU on the photo's
    # item); the aggregator adds one WCU (the #total) and, above 32 shards, up to one more (a group
    # subtotal) per like below its batching bound
    assert sim.r_total(128) == sim.R_COUNTER == 0.5
    assert ours[0] == pytest.approx(cfg.peak_rps * (sim.R_COUNTER + len(cfg.regions) * 0.5))
    assert sim.W_PHOTO_CHECK_TXN == 2
    assert cfg.peak_rps * 9 <= ours[1] <= cfg.peak_rps * 10


def test_a_likes_photo_check_is_made_only_by_containers_without_the_photo_cached():
    # Given the code's photo TTL and fleet / Then a photo nobody views is checked by every like, one
    # viewed at v/s by 1/(1 + v * ttl / containers) of them (the share of time an entry is absent)
    cfg = sim.Config()
    assert cfg.ttls["photo"] == TTL_SECONDS["photo"]
    assert sim.photo_uncached_share(cfg, 0.0) == 1.0
    views = 450.0
    assert sim.photo_uncached_share(cfg, views) == pytest.approx(1 / (1 + views * TTL_SECONDS["photo"] / cfg.containers))
    assert sim.photo_uncached_share(dataclasses.replace(cfg, cache=False), views) == 1.0


def test_the_in_process_timeline_cache_caps_a_celebrity_timeline_partition_at_containers_over_ttl():
    # Given a timeline cache (TTL 5 s x 1,000 containers), no DAX, and the same world without caches
    pop, env = small_world(dataclasses.replace(SMALL, peak_rps=50_000.0, timeline_ttl_s=5.0, dax_query_ttl_s=None))
    uncached_pop, uncached_env = small_world(dataclasses.replace(SMALL, peak_rps=50_000.0, cache=False))
    # When our design is modelled
    cached = explicit_loads(sim.OURS, pop, env)
    uncached = explicit_loads(sim.OURS, uncached_pop, uncached_env)
    # Then celebrity1's by_owner partition is read once per container per TTL renewal cycle
    # (rate / (1 + rate x ttl / containers)), below containers / ttl times a second
    cfg = pop.cfg
    rate = cfg.rate("feed")
    misses = rate / (1 + rate * cfg.timeline_ttl_s / cfg.containers)
    assert cached["celebrity1"][0] == pytest.approx(misses * sim.R_TIMELINE_PAGE)
    assert cached["celebrity1"][0] < cfg.containers / cfg.timeline_ttl_s * sim.R_TIMELINE_PAGE
    assert uncached["celebrity1"][0] == pytest.approx(cfg.rate("feed") * sim.R_TIMELINE_PAGE)


def test_daxs_query_cache_serves_the_in_process_misses_of_a_timeline_once_per_query_ttl_per_node():
    # Given the code's in-process timeline cache and DAX's query cache (the template's TTL, 3 nodes)
    cfg = dataclasses.replace(SMALL, peak_rps=50_000.0)
    pop, env = small_world(cfg)
    assert cfg.timeline_ttl_s and cfg.dax_query_ttl_s and cfg.dax_nodes
    # When our design is modelled
    loads = explicit_loads(sim.OURS, pop, env)
    # Then the in-process misses reach DAX, and DynamoDB sees one query per node per query-TTL cycle
    rate = cfg.rate("feed")
    to_dax = rate / (1 + rate * cfg.timeline_ttl_s / cfg.containers)
    to_dynamodb = to_dax / (1 + to_dax * cfg.dax_query_ttl_s / cfg.dax_nodes)
    assert loads["celebrity1"][0] == pytest.approx(to_dynamodb * sim.R_TIMELINE_PAGE)
    assert loads["celebrity1"][0] < cfg.dax_nodes / cfg.dax_query_ttl_s * sim.R_TIMELINE_PAGE
    # And without a cache tier (dev), only the in-process cache is credited
    no_dax = explicit_loads(sim.OURS, *small_world(dataclasses.replace(cfg, dax_query_ttl_s=None, dax_ttl_s=None)))
    assert no_dax["celebrity1"][0] == pytest.approx(to_dax * sim.R_TIMELINE_PAGE)


def test_summary_finds_the_naive_registry_hot_and_ours_at_a_celebrity_timeline_without_a_timeline_cache(tmp_path):
    # Given the default mix at 50,000 req/s on a small population, with no celebrity-timeline cache
    # in-process nor in DAX (a what-if: the code's own cache parameters are checked in
    # test_the_simulators_cache_parameters_are_the_codes)
    pop, env = small_world(dataclasses.replace(SMALL, peak_rps=50_000.0, timeline_ttl_s=None, dax_query_ttl_s=None))
    # When both designs are summarised and plotted
    summaries = [sim.summarise(sim.build_model(d, pop, env)) for d in sim.DESIGNS]
    out = tmp_path / "heat.png"
    sim.save_plot(summaries, out, "test")
    # Then the naive single registry item is the hottest key, overloaded; ours, crediting no timeline
    # cache, is hottest at the biggest celebrity's by_owner partition, overloaded
    ours, naive = summaries
    assert pop.cfg.timeline_ttl_s is None
    assert naive.hottest["util"].pk == sim.NAIVE_REGISTRY_PK
    assert naive.hottest["util"].util > 1.0
    assert ours.hottest["util"].pk == "celebrity1" and ours.hottest["util"].util > 1.0
    assert out.stat().st_size > 0


def test_shard_policy_falls_back_with_the_documented_steps():
    # Given the local fallback policy
    # Then it steps at 1,000 / 100k / 1M followers
    assert [sim.fallback_shards_for(f) for f in (0, 999, 1_000, 99_999, 100_000, 999_999, 1_000_000)] == [
        1, 1, 8, 8, 32, 32, 128,
    ]


def test_the_simulators_cache_parameters_are_the_codes():
    from chalicelib import aggregator, cache
    from devstack.dax_proxy import parameter_group_ttls

    cfg = sim.Config()
    # Only caches that exist in chalicelib are modelled, with the code's own TTLs and bound
    assert cfg.timeline_ttl_s == cache.TTL_SECONDS.get("timeline")
    assert cfg.registry_ttl_s == cache.TTL_SECONDS["registry"]
    assert cfg.ttls == cache.TTL_SECONDS and cfg.max_entries == cache.MAX_ENTRIES
    assert {kind for kind, _ in sim.CACHED_READS.values()} <= set(cache.TTL_SECONDS)
    # And DAX's item and query cache TTLs are the ones infra/dax.yaml deploys (the local stand-in
    # reads the same), over the template's nodes
    assert (cfg.dax_ttl_s, cfg.dax_query_ttl_s) == parameter_group_ttls()
    from infra.cfn import load_template
    assert cfg.dax_nodes == int(load_template(sim.DAX_TEMPLATE)["Parameters"]["ReplicationFactor"]["Default"])
    # And the aggregator's parts per parent are the key design's (direct shards + groups; a group's shards)
    for shards in (1, 8, 32, 33, 128, 512, 1000):
        assert sim.counter_parts(shards) == keys.counter_parts(shards)
        assert sim.counter_groups(shards) == keys.counter_groups(shards)
        assert sim.total_item_bytes(shards) == sim.TOTAL_ITEM_BASE_BYTES + sim.TOTAL_ITEM_BYTES_PER_SHARD * keys.counter_parts(shards)
    # And its writes are bounded by the batching window: worst case one update per part per window
    window = aggregator.BATCH_WINDOW_SECONDS
    parts = keys.COUNTER_DIRECT_SHARDS + keys.counter_groups(512)
    assert sim.total_writes(1e9, 512) == parts / window
    assert sim.group_writes(1e9, 512) == keys.COUNTER_GROUP_SHARDS / window
    assert sim.total_writes(1e9, 8) == 8 / window and sim.group_writes(1e9, 8) == 0
    # one stream shard: one batch per window, one UpdateItem per MAX_SHARDS_PER_UPDATE parts in it
    per_window = math.ceil(keys.COUNTER_DIRECT_SHARDS / aggregator.MAX_SHARDS_PER_UPDATE) / window
    assert sim.total_writes(1e9, 512, stream_shards=1) == per_window + keys.counter_groups(512) / window
    assert parts <= aggregator.MAX_SHARDS_PER_UPDATE  # a batch of every part is one UpdateItem
    # and a #total or group item carries one applied version per part (its size is what an update costs)
    assert sim.w_total(512) == math.ceil(sim.total_item_bytes(512) / 1024) == 1
    assert sim.W_GROUP == math.ceil(sim.group_item_bytes() / 1024) == 1


def _request(tag: str, settings) -> tuple[str, dict]:
    """The DynamoDB request the code makes for a read the simulator tags ``tag``."""
    total = {"counter_id": {"S": keys.counter_total_id("likes", "p1", "us-east-1")}}
    meta = {"counter_id": {"S": keys.counter_meta_id("likes", "p1")}}
    return {
        "profile": ("GetItem", {"TableName": settings.users_table, "Key": {"username": {"S": "u"}}}),
        "counter": ("BatchGetItem", {"RequestItems": {settings.counters_table: {"Keys": [total]}}}),
        "shard_count": ("BatchGetItem", {"RequestItems": {settings.counters_table: {"Keys": [meta, total]}}}),
        "photo": ("GetItem", {"TableName": settings.photos_table, "Key": {"photo_id": {"S": "p1"}}}),
        "registry": ("GetItem", {"TableName": settings.graph_table, "Key": {"pk": {"S": "celebrities#0"}}}),
        "timeline": ("Query", {"TableName": settings.photos_table, "IndexName": "by_owner", "Limit": 20,
                               "ScanIndexForward": False}),
    }[tag]


@pytest.mark.parametrize("tag", sorted(sim.CACHED_READS))
def test_the_simulator_credits_dax_exactly_where_the_code_reads_through_it(tag):
    from types import SimpleNamespace

    from chalicelib import dax

    settings = SimpleNamespace(users_table="users", counters_table="counters", photos_table="photos",
                               graph_table="graph")
    operation, params = _request(tag, settings)
    routed = dax.route(operation, params, users_table=settings.users_table, counters_table=settings.counters_table)
    if tag == "timeline":  # the pulled page goes through its own twin (chalicelib.models.pulled)
        assert routed == dax.DYNAMODB  # the same Query by any other path (the owner's own) never uses DAX
        routed = dax.route_shared_timeline(operation, params, photos_table=settings.photos_table)
    path = sim.CACHED_READS[tag][1]
    assert (routed == dax.DAX) == bool(path)
    # and DAX serves a Query from its query cache, a GetItem/BatchGetItem from its item cache
    if path:
        assert path == (sim.DAX_QUERY if operation == "Query" else sim.DAX_ITEM)


def test_a_counter_view_reads_one_total_item_per_region_whatever_the_shard_count():
    # Given two regions and a celebrity with 128 shards
    cfg = dataclasses.replace(SMALL, regions=("us-east-1", "eu-west-1"))
    pop, env = small_world(cfg)
    celebrity = pop.account(0)
    assert celebrity.shards == 128
    pid = celebrity.photo_ids[0]
    # When a profile view and a photo view are listed
    profile = sim.request_ops(sim.OURS, "profile", env, target=celebrity)
    view = sim.request_ops(sim.OURS, "photo_view", env, target=celebrity, photo=0)
    # Then the counter items read are exactly the real key functions' totals: len(regions) per counter
    read = [op.pk for op in profile + view if op.table == sim.COUNTERS and op.rcu > 0]
    expected = [*(t for kind in sim.COUNTER_KINDS for t in keys.counter_total_ids(kind, celebrity.name, cfg.regions)),
                *keys.counter_total_ids("likes", pid, cfg.regions)]
    assert sorted(read) == sorted(expected)
    assert len(read) == (len(sim.COUNTER_KINDS) + 1) * len(cfg.regions)
    # And every one of them goes through the counter cache
    assert {op.cached for op in profile + view if op.table == sim.COUNTERS} == {"counter"}
