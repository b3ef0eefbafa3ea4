"""Sharded counters stay exact across regions and resharding (PynamoDB against in-process moto)."""
from __future__ import annotations

import uuid

import boto3
import pytest

from chalicelib import aws, cache, keys, settings
from chalicelib.repositories import counters

HOME, OTHER = "us-east-1", "eu-west-1"


def new_entity() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def in_region(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """Run as the function deployed in ``region`` (fresh settings and clients, as a cold start)."""
    monkeypatch.setenv("AWS_REGION", region)
    settings.reset_settings()
    aws.reset()


@pytest.fixture
def two_regions(api_env: dict[str, str], deployed, monkeypatch: pytest.MonkeyPatch):
    """The counters table in both regions (a global table), and a ``replicate()`` that copies every item
    between them with last-writer-wins, as DynamoDB global tables do."""
    monkeypatch.setenv("ACTIVE_REGIONS", f"{HOME},{OTHER}")
    table = api_env["CountersTable"]
    home = deployed["clients"]("dynamodb")
    other = boto3.client("dynamodb", region_name=OTHER)
    description = home.describe_table(TableName=table)["Table"]
    try:
        other.describe_table(TableName=table)
    except other.exceptions.ResourceNotFoundException:
        other.create_table(TableName=table, KeySchema=description["KeySchema"],
                           AttributeDefinitions=description["AttributeDefinitions"], BillingMode="PAY_PER_REQUEST",
                           StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})

    def replicate() -> None:
        replicas = (home, other)
        snapshots = [r.scan(TableName=table, ConsistentRead=True)["Items"] for r in replicas]
        for source, items in enumerate(snapshots):
            for item in items:
                replicas[1 - source].put_item(TableName=table, Item=item)  # last writer wins, whole item

    in_region(monkeypatch, HOME)
    return replicate


def test_an_increment_is_counted(api_env):
    # Given a fresh counter
    entity = new_entity()
    assert counters.read("followers", entity) == 0
    # When it is incremented three times, once by two
    for delta in (1, 1, 2):
        counters.increment("followers", entity, delta)
    # Then the total is exact, and decrements count too
    assert counters.read("followers", entity) == 4
    counters.increment("followers", entity, -1)
    assert counters.read("followers", entity) == 3


def test_increments_in_two_regions_both_count(two_regions, api_env, monkeypatch):
    # Given a counter incremented once in each region, before replication catches up
    entity = new_entity()
    counters.increment("followers", entity)
    cache.reset()
    assert counters.read("followers", entity) == 1  # the home region's aggregator has run (about 1 s in AWS)
    in_region(monkeypatch, OTHER)
    counters.increment("followers", entity)
    # When the global table replicates both writes (whole items, last writer wins)
    two_regions()
    # Then each region's shards are separate items, so neither write overwrote the other
    assert counters.read("followers", entity) == 2
    in_region(monkeypatch, HOME)
    assert counters.read("followers", entity) == 2
    # And the two writes landed on two region-scoped shard items, one per region
    table = api_env["CountersTable"]
    ids = [keys.counter_shard_id("followers", entity, region, 0) for region in (HOME, OTHER)]
    found = boto3.client("dynamodb", region_name=HOME).batch_get_item(
        RequestItems={table: {"Keys": [{"counter_id": {"S": i}} for i in ids], "ConsistentRead": True}}
    )["Responses"][table]
    assert sorted(int(item["n"]["N"]) for item in found) == [1, 1]


def test_resharding_keeps_the_exact_total_and_later_increments_keep_counting(api_env):
    # Given a counter with a total on the default single shard
    entity = new_entity()
    for _ in range(5):
        counters.increment("photos", entity)
    # When it is spread over 8 shards
    assert counters.reshard("photos", entity, 8) == 8
    # Then the total is unchanged
    assert counters.shard_count("photos", entity) == 8
    assert counters.read("photos", entity) == 5
    # And further increments (on random shards of the 8) all count
    for _ in range(40):
        counters.increment("photos", entity)
    assert counters.read("photos", entity) == 45


def test_resharding_never_lowers_the_shard_count(api_env):
    # Given a counter over 8 shards with increments spread across them
    entity = new_entity()
    counters.reshard("following", entity, 8)
    for _ in range(30):
        counters.increment("following", entity)
    # When asked to go down to 2 shards
    in_force = counters.reshard("following", entity, 2)
    # Then it stays at 8 and nothing written to shards 2..7 is lost
    assert in_force == 8
    assert counters.shard_count("following", entity) == 8
    assert counters.read("following", entity) == 30
    # And resharding to the same count is a no-op, while going up still works
    assert counters.reshard("following", entity, 8) == 8
    assert counters.reshard("following", entity, 16) == 16
    assert counters.read("following", entity) == 30


def test_read_totals_reads_several_counters_at_once(api_env):
    # Given two users with different counts, one resharded, and a counter never written
    alice, bob, nobody = new_entity(), new_entity(), new_entity()
    counters.reshard("followers", alice, 4)
    for _ in range(7):
        counters.increment("followers", alice)
    for _ in range(3):
        counters.increment("following", alice)
    counters.increment("followers", bob)
    counters.increment("photos", bob, 9)
    # When reading all of them together
    wanted = [("followers", alice), ("following", alice), ("photos", alice),
              ("followers", bob), ("photos", bob), ("followers", nobody)]
    totals = counters.read_totals(wanted)
    # Then each total is exact and unknown counters are zero
    assert totals == {
        ("followers", alice): 7, ("following", alice): 3, ("photos", alice): 0,
        ("followers", bob): 1, ("photos", bob): 9, ("followers", nobody): 0,
    }


def test_the_default_shard_count_comes_from_settings(api_env, monkeypatch):
    # Given a stage configured for 4 shards per counter
    monkeypatch.setenv("COUNTER_DEFAULT_SHARDS", "4")
    settings.reset_settings()
    entity = new_entity()
    # When a counter is incremented many times without resharding
    for _ in range(40):
        counters.increment("photos", entity)
    # Then the increments spread over (at most) 4 shards and all count
    assert counters.shard_count("photos", entity) == 4
    assert counters.read("photos", entity) == 40
