"""bench/cache_effect.py measures the code as it is: the real cache with the code's TTLs and bound, and
a ceiling that is what its name says (only a container's first touch of a key misses)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from bench import cache_effect as bench
from chalicelib.cache import MAX_ENTRIES, TTL_SECONDS, ReadCache

SMALL = {"containers": 3, "requests": 3_000, "rps": 100.0, "users": 500, "seed": 3, "regions": 2}


def test_the_benchmarked_fleet_is_the_real_cache_with_the_codes_ttls_and_bound():
    variant = bench.code_variant()
    cache = variant.cache(bench.Clock())
    assert isinstance(cache, ReadCache)
    assert variant.ttls == TTL_SECONDS and cache.max_entries == MAX_ENTRIES
    # And the listing's first page is modelled as cached exactly when the code caches its kind
    assert variant.cache_listing is (bench.LISTING in TTL_SECONDS)
    assert not bench.Variant("uncached listing", {k: v for k, v in TTL_SECONDS.items() if k != bench.LISTING}).cache_listing
    # And the counter reads span the regions the stage deploys
    deployed = json.loads((Path(bench.ROOT) / "infra" / "deploy.json").read_text())["regions"]
    assert bench.deploy_regions() == len(deployed)


def test_the_ceiling_misses_only_a_containers_first_touch_of_each_key():
    out = bench.run([bench.ceiling_variant()], **{**SMALL, "containers": 1})
    ceiling = out["ceiling"]
    cache = ceiling.fleet[0].cache
    assert all(math.isinf(ttl) for ttl in cache.ttls.values())
    # every miss stored its key and none was evicted: misses == distinct keys looked up
    assert cache.misses == len(cache)
    assert 0 < ceiling.trips <= cache.misses  # a batch of missing keys is one round trip


def test_the_figures_are_ordered_no_cache_code_ceiling_and_items_outnumber_round_trips():
    out = bench.run([bench.code_variant(), bench.ceiling_variant()], **SMALL)
    base, code, ceiling = out[bench.BASELINE.name], out["code"], out["ceiling"]
    for measure in ("trips", "items"):
        assert 0 < code.removed[measure] <= ceiling.removed[measure] < 1
    assert base.items > base.trips  # a BatchGetItem of several counters in 2 regions is one trip, many items
    # And the verdict line names the measure the goal uses and the ceiling beside it
    line = bench.report(out, 0)[-1]
    assert f"removes {code.removed['items']:.1%} of DynamoDB reads (items;" in line
    assert f"ceiling for this stream {ceiling.removed['items']:.1%}" in line
