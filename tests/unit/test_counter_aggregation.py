"""The aggregator's pure core: which stream records move which region's total, and how a batch coalesces."""
from __future__ import annotations

from chalicelib import aggregator, keys
from chalicelib.aggregator import ShardChange

HOME, OTHER = "us-east-1", "eu-west-1"


def record(counter_id: str, old: tuple[int, int] | None, new: tuple[int, int] | None, seq: str = "1",
           versioned_old: bool = True) -> dict:
    def image(value: tuple[int, int] | None, versioned: bool = True) -> dict | None:
        if value is None:
            return None
        n, version = value
        found = {"counter_id": {"S": counter_id}, "n": {"N": str(n)}}
        if versioned:
            found["version"] = {"N": str(version)}
        return found

    data = {"Keys": {"counter_id": {"S": counter_id}}, "SequenceNumber": seq}
    if old is not None:
        data["OldImage"] = image(old, versioned_old)
    if new is not None:
        data["NewImage"] = image(new)
    return {"eventName": "MODIFY", "dynamodb": data}


def test_a_shard_change_moves_its_regions_total_by_new_minus_old():
    shard = keys.counter_shard_id("likes", "p1", HOME, 3)
    change = aggregator.shard_change(0, record(shard, (5, 7), (4, 8)), HOME)
    assert change == ShardChange(0, keys.counter_total_id("likes", "p1", HOME), "s3", 7, 8, -1)


def test_a_new_shard_adds_its_whole_value_and_a_deleted_one_takes_it_away():
    shard = keys.counter_shard_id("likes", "p1", HOME, 0)
    assert aggregator.shard_change(0, record(shard, None, (1, 1)), HOME).delta == 1
    removed = aggregator.shard_change(0, record(shard, (6, 9), None), HOME)
    assert (removed.delta, removed.old_version, removed.new_version) == (-6, 9, None)


def test_a_shard_written_before_versions_existed_adds_its_whole_new_value():
    shard = keys.counter_shard_id("followers", "u", HOME, 0)
    change = aggregator.shard_change(0, record(shard, (41, 0), (42, 1), versioned_old=False), HOME)
    assert (change.delta, change.old_version, change.new_version) == (42, 0, 1)


def test_other_regions_shards_and_meta_and_total_items_are_ignored():
    for counter_id in (keys.counter_shard_id("likes", "p1", OTHER, 0), keys.counter_meta_id("likes", "p1"),
                       keys.counter_total_id("likes", "p1", HOME)):
        assert aggregator.shard_change(0, record(counter_id, (1, 1), (2, 2)), HOME) is None


def test_entities_with_hashes_parse_to_their_own_total():
    assert keys.parse_counter_part_id("likes#a#b#us-east-1#12") == ("likes#a#b#us-east-1#total", "us-east-1", "s12")
    assert keys.parse_counter_part_id("likes#p1#meta") is None
    assert keys.parse_counter_part_id("likes#p1#us-east-1#total") is None


def test_shards_beyond_the_direct_ones_are_summed_into_group_subtotals_and_groups_into_the_total():
    # Given a 512-shard counter: shards below COUNTER_DIRECT_SHARDS go to the total, the rest by blocks
    direct, block = keys.COUNTER_DIRECT_SHARDS, keys.COUNTER_GROUP_SHARDS
    total = keys.counter_total_id("likes", "p1", HOME)
    last = keys.counter_shard_id("likes", "p1", HOME, direct - 1)
    first_grouped = keys.counter_shard_id("likes", "p1", HOME, direct)
    assert keys.parse_counter_part_id(last) == (total, HOME, f"s{direct - 1}")
    group1 = keys.counter_group_id("likes", "p1", HOME, 1)
    assert keys.parse_counter_part_id(first_grouped) == (group1, HOME, f"s{direct}")
    assert keys.parse_counter_part_id(keys.counter_shard_id("likes", "p1", HOME, direct + block))[0] == \
        keys.counter_group_id("likes", "p1", HOME, 2)
    # And a group is a part of the total, the inverse maps each part back to its item
    assert keys.parse_counter_part_id(group1) == (total, HOME, "g1")
    assert keys.counter_part_id(group1, f"s{direct}") == first_grouped
    assert keys.counter_part_id(total, "g1") == group1 and keys.counter_part_id(total, "s3").endswith("#3")
    # And no parent has more parts than the direct shards plus the groups (47 at 512 shards, not 512)
    assert keys.counter_groups(512) == (512 - direct) // block == 15
    assert keys.counter_parts(512) == direct + 15 and keys.counter_parts(8) == 8
    assert len({keys.parse_counter_part_id(keys.counter_shard_id("likes", "p1", HOME, n))[0]
                for n in range(512)}) == 1 + keys.counter_groups(512)
    assert keys.counter_group_ids("likes", "p1", (HOME,), 32) == []


def test_a_group_subtotal_change_moves_its_total_like_a_shard_change():
    group = keys.counter_group_id("followers", "celebrity1", HOME, 4)
    change = aggregator.shard_change(0, record(group, (120, 17), (131, 18)), HOME)
    assert change == ShardChange(0, keys.counter_total_id("followers", "celebrity1", HOME), "g4", 17, 18, 11)
    # another region's group is that region's aggregator's
    assert aggregator.shard_change(0, record(keys.counter_group_id("likes", "p", OTHER, 1), (1, 1), (2, 2)), HOME) is None


def change(index: int, shard: int | str, old: int, new: int | None, delta: int, total: str = "t") -> ShardChange:
    return ShardChange(index, total, shard if isinstance(shard, str) else f"s{shard}", old, new, delta)


def test_a_batch_coalesces_into_one_update_per_total_with_each_shards_version_span():
    changes = [change(0, 1, 0, 1, 1), change(1, 2, 4, 5, 1), change(2, 1, 1, 2, 1), change(3, 1, 2, 3, -1),
               change(4, 0, 0, 1, 1, total="u")]
    updates = aggregator.coalesce(changes)
    assert [(u.total_id, u.delta, u.versions) for u in updates] == [
        ("t", 2, {"s1": (0, 3), "s2": (4, 5)}), ("u", 1, {"s0": (0, 1)})]
    assert [c.index for c in updates[0].changes] == [0, 1, 2, 3]


def test_a_shard_whose_versions_are_not_consecutive_gets_one_update_per_record():
    updates = aggregator.coalesce([change(0, 1, 1, 2, 1), change(1, 1, 5, 6, 1)])
    assert [u.versions for u in updates] == [{"s1": (1, 2)}, {"s1": (5, 6)}]


def test_big_batches_split_into_updates_of_at_most_the_shard_limit():
    many = [change(i, i, 0, 1, 1) for i in range(aggregator.MAX_SHARDS_PER_UPDATE + 3)]
    updates = aggregator.coalesce(many)
    assert [len(u.versions) for u in updates] == [aggregator.MAX_SHARDS_PER_UPDATE, 3]
    assert sum(u.delta for u in updates) == len(many)


def test_a_refused_record_was_applied_only_if_its_new_version_is_already_there():
    assert aggregator.already_applied(change(0, 1, 3, 4, 1), applied_version=4)
    assert aggregator.already_applied(change(0, 1, 3, 4, 1), applied_version=9)
    assert not aggregator.already_applied(change(0, 1, 3, 4, 1), applied_version=2)  # out of order: retry
    assert aggregator.already_applied(change(0, 1, 3, None, -5), applied_version=0)  # deletion applied
    assert not aggregator.already_applied(change(0, 1, 3, None, -5), applied_version=2)


def test_the_app_maps_the_stream_with_the_aggregators_batch_and_window(monkeypatch):
    import importlib

    from chalice.app import DynamoDBEventConfig
    for variable in ("UPLOADS_QUEUE_NAME", "EDITS_QUEUE_NAME", "FANOUT_QUEUE_NAME"):
        monkeypatch.setenv(variable, "unit-test-queue")
    monkeypatch.setenv("COUNTERS_STREAM_ARN", "arn:aws:dynamodb:us-east-1:1:table/t/stream/x")
    app = importlib.import_module("app").app
    (source,) = [s for s in app.event_sources if isinstance(s, DynamoDBEventConfig)]
    assert (source.name, source.batch_size, source.maximum_batching_window_in_seconds) == (
        "aggregate_counters", aggregator.BATCH_SIZE, aggregator.BATCH_WINDOW_SECONDS)
