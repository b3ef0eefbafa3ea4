"""The stream aggregator against moto: totals stay exact under redelivery, reordering and resharding."""
from __future__ import annotations

import uuid

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from chalicelib import aggregator, aws, keys
from chalicelib.repositories import counters

REGION = "us-east-1"


def new_entity() -> str:
    return f"photo_{uuid.uuid4().hex[:12]}"


def stream_records(table: str, entity: str) -> list[dict]:
    """The stream records (Lambda's shape) of ``entity``'s counter items, in stream order."""
    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table).stream_shard
    ids = [(r.to_json(), r.to_json()["dynamodb"]["Keys"]["counter_id"]["S"]) for r in shard.items]
    # moto streams an UpdateItem of a new item as two INSERTs (the key, then the values): the first is
    # not a counted write (DynamoDB streams one)
    return [r for r, counter_id in ids if f"#{entity}#" in counter_id and keys.parse_counter_part_id(counter_id)
            and "version" in r["dynamodb"].get("NewImage", {"version": None})]


def bump(entity: str) -> None:
    """One like on shard 0 of ``entity``'s counter (as a like's transaction writes it)."""
    item, actions = counters.increment_action("likes", entity, 1, shards=1)
    item.update(actions=actions)


def total_item(table: str, entity: str) -> int:
    item = aws.client("dynamodb").get_item(TableName=table, ConsistentRead=True, Key={
        "counter_id": {"S": keys.counter_total_id("likes", entity, REGION)}}).get("Item", {})
    return int(item.get("n", {}).get("N", 0))


def test_a_redelivered_batch_counts_once(api_env):
    # GIVEN five likes on a counter spread over 4 shards, aggregated once
    entity = new_entity()
    counters.reshard("likes", entity, 4)
    for _ in range(5):
        counters.increment("likes", entity, 1)
    records = stream_records(api_env["CountersTable"], entity)
    assert aggregator.handle_stream({"Records": records}) == {"batchItemFailures": []}
    # WHEN Lambda delivers the same batch again, and then each record alone
    assert aggregator.handle_stream({"Records": records}) == {"batchItemFailures": []}
    for one in records:
        aggregator.handle_stream({"Records": [one]})
    # THEN the total counts each like once, and the read (one total item) agrees
    assert total_item(api_env["CountersTable"], entity) == 5
    assert counters.read("likes", entity) == 5


def test_a_record_delivered_before_its_predecessor_is_retried_and_then_counts_once(api_env):
    # GIVEN two increments of one shard (versions 1 and 2)
    entity = new_entity()
    bump(entity)
    bump(entity)
    first, second = stream_records(api_env["CountersTable"], entity)
    # WHEN the second arrives first: it is reported failed (nothing counted) ...
    answer = aggregator.handle_stream({"Records": [second]})
    assert answer == {"batchItemFailures": [{"itemIdentifier": second["dynamodb"]["SequenceNumber"]}]}
    assert total_item(api_env["CountersTable"], entity) == 0
    # ... and after the first, its retry counts
    aggregator.handle_stream({"Records": [first]})
    assert aggregator.handle_stream({"Records": [second]}) == {"batchItemFailures": []}
    assert total_item(api_env["CountersTable"], entity) == 2


def test_a_batch_reports_its_first_unapplied_record_and_applies_the_rest_idempotently(api_env):
    # GIVEN a batch whose middle record's predecessor is missing (another counter's records around it)
    entity, other = new_entity(), new_entity()
    bump(other)
    bump(entity)
    bump(entity)
    bump(other)
    table = api_env["CountersTable"]
    other_records, (first, second) = stream_records(table, other), stream_records(table, entity)
    batch = [other_records[0], second, other_records[1]]
    # WHEN it is delivered, THEN the failure names the unapplied record (Lambda retries from there)
    answer = aggregator.handle_stream({"Records": batch})
    assert answer == {"batchItemFailures": [{"itemIdentifier": second["dynamodb"]["SequenceNumber"]}]}
    # AND the retry from there (after its predecessor) leaves both counters exact
    aggregator.handle_stream({"Records": [first]})
    assert aggregator.handle_stream({"Records": batch[1:]}) == {"batchItemFailures": []}
    assert (total_item(table, entity), total_item(table, other)) == (2, 2)


def test_resharding_keeps_every_count_and_the_read_costs_one_item_per_region(api_env):
    # GIVEN likes before and after resharding from 1 to 64 shards
    entity = new_entity()
    for _ in range(3):
        counters.increment("likes", entity, 1)
    counters.reshard("likes", entity, 64)
    for _ in range(20):
        counters.increment("likes", entity, 1)
    counters.increment("likes", entity, -1)
    # WHEN another container reads it (the stream delivered first, as Lambda does within a second)
    from chalicelib import cache
    cache.reset()
    requested: list[int] = []
    dynamodb = aws.client("dynamodb")
    dynamodb.meta.events.register("provide-client-params.dynamodb.BatchGetItem",
                                  lambda params, **_: requested.append(
                                      sum(len(t["Keys"]) for t in params["RequestItems"].values())))
    # THEN every count is there, read from one total item (one region)
    assert counters.read("likes", entity) == 22
    assert requested == [1]


def test_a_late_record_of_an_erased_counter_is_dropped_and_does_not_hold_up_the_batch(api_env):
    # GIVEN two likes on an erased photo's counter (its shard and total deleted, as erasure does)
    # whose second record reaches the aggregator after the erasure, alone, before a live counter's record
    table = api_env["CountersTable"]
    erased, live = new_entity(), new_entity()
    bump(erased)
    bump(erased)
    bump(live)
    first, second = stream_records(table, erased)
    assert aggregator.handle_stream({"Records": [first]}) == {"batchItemFailures": []}
    client = aws.client("dynamodb")
    for counter_id in (keys.counter_total_id("likes", erased, REGION), keys.counter_shard_id("likes", erased, REGION, 0)):
        client.delete_item(TableName=table, Key={"counter_id": {"S": counter_id}})
    # WHEN the late record and the live counter's record arrive in one batch
    result = aggregator.handle_stream({"Records": [second, *stream_records(table, live)]})
    # THEN the erased counter's record is dropped (nothing recreated), and the live counter is counted
    assert result == {"batchItemFailures": []}
    assert client.get_item(TableName=table, Key={"counter_id": {"S": keys.counter_total_id("likes", erased, REGION)}},
                           ConsistentRead=True).get("Item") is None
    assert total_item(table, live) == 1


def test_a_reordered_record_of_a_live_counter_is_still_retried(api_env):
    # GIVEN a live counter's second record delivered before its first (its shard item exists)
    entity = new_entity()
    bump(entity)
    bump(entity)
    _, second = stream_records(api_env["CountersTable"], entity)
    # THEN it is reported failed (retried later), not dropped as erased
    result = aggregator.handle_stream({"Records": [second]})
    assert result == {"batchItemFailures": [{"itemIdentifier": second["dynamodb"]["SequenceNumber"]}]}


def test_an_erased_counters_late_records_leave_no_total_behind(api_env):
    # GIVEN a counter whose shard and total were deleted (erasure) before the aggregator saw any record
    table = api_env["CountersTable"]
    entity = new_entity()
    bump(entity)
    client = aws.client("dynamodb")
    shard_id = keys.counter_shard_id("likes", entity, REGION, 0)
    client.delete_item(TableName=table, Key={"counter_id": {"S": shard_id}})
    # WHEN its records (the increment, then the shard's removal) arrive late
    shard = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table).stream_shard
    records = [r.to_json() for r in shard.items if r.to_json()["dynamodb"]["Keys"]["counter_id"]["S"] == shard_id]
    records = [r for r in records if r["eventName"] == "REMOVE" or "version" in r["dynamodb"].get("NewImage", {})]
    assert aggregator.handle_stream({"Records": records}) == {"batchItemFailures": []}
    # THEN no total item is left for the erased counter
    assert client.get_item(TableName=table, Key={"counter_id": {"S": keys.counter_total_id("likes", entity, REGION)}},
                           ConsistentRead=True).get("Item") is None


def deliver_until_settled(table: str, entity: str, batches: int = 3) -> list[list[dict]]:
    """Deliver ``entity``'s stream records round by round (the aggregator's group writes are records
    in turn), each round twice (a redelivery); the rounds delivered."""
    delivered: set[str] = set()
    rounds = []
    for _ in range(batches):
        fresh = [r for r in stream_records(table, entity) if r["dynamodb"]["SequenceNumber"] not in delivered]
        if not fresh:
            break
        for _ in range(2):
            assert aggregator.handle_stream({"Records": fresh}) == {"batchItemFailures": []}
        delivered |= {r["dynamodb"]["SequenceNumber"] for r in fresh}
        rounds.append(fresh)
    return rounds


def grouped_shard(n: int) -> int:
    """The ``n``-th shard number beyond the direct ones (summed through a group)."""
    return keys.COUNTER_DIRECT_SHARDS + n


def test_a_counter_beyond_the_direct_shards_counts_exactly_once_through_its_group_subtotals(api_env):
    # GIVEN likes on a 128-shard counter: on direct shards and on shards of two groups
    table = api_env["CountersTable"]
    entity = new_entity()
    counters.reshard("likes", entity, 128)
    shards = [0, 5, grouped_shard(0), grouped_shard(1), grouped_shard(keys.COUNTER_GROUP_SHARDS), grouped_shard(0)]
    for shard in shards:
        item, actions = counters.increment_action("likes", entity, 1, shards=128)
        item = type(item)(keys.counter_shard_id("likes", entity, REGION, shard))
        item.update(actions=actions)
    # WHEN the stream is delivered (each batch twice), shards first, then the groups' own records
    rounds = deliver_until_settled(table, entity)
    # THEN the groups' changes were a second round, and the total counts every like once
    assert len(rounds) == 2
    assert {keys.parse_counter_part_id(r["dynamodb"]["Keys"]["counter_id"]["S"])[2] for r in rounds[1]} == {"g1", "g2"}
    assert total_item(table, entity) == len(shards)
    total = aws.client("dynamodb").get_item(TableName=table, ConsistentRead=True, Key={
        "counter_id": {"S": keys.counter_total_id("likes", entity, REGION)}})["Item"]
    assert sorted(name for name in total if name[:1] in "sg" and name[1:].isdigit()) == ["g1", "g2", "s0", "s5"]
    group1 = aws.client("dynamodb").get_item(TableName=table, ConsistentRead=True, Key={
        "counter_id": {"S": keys.counter_group_id("likes", entity, REGION, 1)}})["Item"]
    assert int(group1["n"]["N"]) == 3  # grouped_shard(0) twice, grouped_shard(1) once
    # AND a read (one total item) agrees
    from chalicelib import cache
    cache.reset()
    assert counters.read("likes", entity) == len(shards)


def test_an_erased_grouped_counter_leaves_no_group_or_total_behind(api_env):
    # GIVEN a like on a grouped shard whose shard item was deleted (erasure) before any record was seen
    table = api_env["CountersTable"]
    entity = new_entity()
    client = aws.client("dynamodb")
    shard_id = keys.counter_shard_id("likes", entity, REGION, grouped_shard(3))
    item, actions = counters.increment_action("likes", entity, 1, shards=128)
    type(item)(shard_id).update(actions=actions)
    client.delete_item(TableName=table, Key={"counter_id": {"S": shard_id}})
    # WHEN its late records (the increment, the removal) and then the group's own are delivered
    deliver_until_settled(table, entity)
    # THEN neither the group subtotal nor the total is left behind
    for counter_id in (keys.counter_group_id("likes", entity, REGION, 1), keys.counter_total_id("likes", entity, REGION)):
        assert client.get_item(TableName=table, Key={"counter_id": {"S": counter_id}}, ConsistentRead=True).get("Item") is None
