"""The DynamoDB replication stand-in's decisions (devstack.replicator.Replication): last writer wins
per item, deletes, the lag, and its own writes never echoed back. No I/O."""
from __future__ import annotations

from devstack.replicator import FALLBACK_REPLICATED_PREFIXES, Change, Replication, percentile, replicated_prefixes
from infra.cfn import STATEFUL_TEMPLATE, global_table_names, load_template

US, EU = "us-east-1", "eu-west-1"
KEY = {"pk": {"S": "photo#1"}}


def change(region: str, ts: float, value: str | None, key=KEY) -> Change:
    image = None if value is None else {**key, "v": {"S": value}}
    return Change(table="photos", region=region, keys=key, image=image, ts=ts)


def drain(replication: Replication, now: float) -> dict[str, list]:
    """Plan at ``now`` and pretend every outbox head was applied; returns what went where."""
    replication.plan(now)
    sent: dict[str, list] = {US: [], EU: []}
    for region, queue in replication.outbox.items():
        while queue:
            item = queue[0]
            replication.expect_echo(region, item)
            replication.applied(region, item, now)
            sent[region].append(item.image["v"]["S"] if item.image else None)
    return sent


def test_a_change_reaches_the_other_region_only_after_the_lag():
    replication = Replication([US, EU], lag_seconds=0.5)
    replication.observe(change(US, 100.0, "a"))
    assert drain(replication, 100.2) == {US: [], EU: []}
    assert drain(replication, 100.5) == {US: [], EU: ["a"]}


def test_concurrent_writes_of_one_item_converge_on_the_later_one_in_both_regions():
    replication = Replication([US, EU], lag_seconds=0.5)
    replication.observe(change(EU, 100.2, "later"))
    replication.observe(change(US, 100.1, "earlier"))
    # in time order: the earlier write is queued for EU, which would clobber EU's own later write,
    # so the later one goes to US and is put back into EU after it
    assert drain(replication, 101.0) == {US: ["later"], EU: ["earlier", "later"]}


def test_a_write_older_than_one_already_replicated_is_dropped():
    replication = Replication([US, EU], lag_seconds=0.5)
    replication.observe(change(EU, 100.2, "later"))
    assert drain(replication, 101.0) == {US: ["later"], EU: []}
    replication.observe(change(US, 100.1, "earlier"))  # read late from its stream
    assert drain(replication, 101.5) == {US: [], EU: []}


def test_a_local_write_clobbered_by_an_older_replicated_one_is_put_back():
    replication = Replication([US, EU], lag_seconds=0.5)
    replication.observe(change(US, 100.0, "old"))
    assert drain(replication, 101.0) == {US: [], EU: ["old"]}  # applied into EU at t=101.0
    replication.observe(change(EU, 100.9, "new"))  # EU's own write at 100.9, before that apply
    assert drain(replication, 102.0) == {US: ["new"], EU: ["new"]}


def test_deletes_replicate():
    replication = Replication([US, EU], lag_seconds=0.0)
    replication.observe(change(US, 100.0, "a"))
    replication.observe(change(US, 100.1, None))
    assert drain(replication, 101.0) == {US: [], EU: ["a", None]}


def test_the_replicators_own_writes_are_not_sent_back():
    replication = Replication([US, EU], lag_seconds=0.0)
    replication.observe(change(US, 100.0, "a"))
    assert drain(replication, 100.0) == {US: [], EU: ["a"]}
    replication.observe(change(EU, 100.01, "a"))  # EU's stream shows the replicated write
    assert drain(replication, 101.0) == {US: [], EU: []}
    assert replication.backlog == 0


def test_a_local_delete_after_a_replicated_delete_of_an_absent_item_still_replicates():
    # Given a delete replicated into EU where the item was never written (no stream record: no echo)
    replication = Replication([US, EU], lag_seconds=0.0)
    replication.observe(change(US, 100.0, None))
    replication.plan(100.0)
    replication.expect_echo(EU, replication.outbox[EU][0])
    replication.applied(EU, replication.outbox[EU][0], 100.0, echoed=False)
    # When EU later writes the item, US gets it, and then EU deletes it locally
    replication.observe(change(EU, 101.0, "b"))
    assert drain(replication, 101.0) == {US: ["b"], EU: []}
    replication.observe(change(US, 101.01, "b"))  # US's stream shows the replicated write
    replication.observe(change(EU, 102.0, None))
    # Then that delete reaches US (it was not taken for the first delete's echo)
    assert drain(replication, 103.0) == {US: [None], EU: []}


def test_an_unapplied_change_waits_in_order_and_nothing_is_lost():
    replication = Replication([US, EU], lag_seconds=0.0)
    for n, value in enumerate("abc"):
        replication.observe(change(US, 100.0 + n, value, key={"pk": {"S": f"k{n}"}}))
    replication.plan(103.0)
    assert [c.image["v"]["S"] for c in replication.outbox[EU]] == ["a", "b", "c"]
    assert replication.backlog == 3  # the region is down: the I/O layer leaves them queued
    assert drain(replication, 200.0) == {US: [], EU: ["a", "b", "c"]}
    assert replication.backlog == 0


def test_lag_is_measured_from_the_write_to_its_apply():
    replication = Replication([US, EU], lag_seconds=0.5)
    replication.observe(change(US, 100.0, "a"))
    drain(replication, 100.75)
    assert replication.lags_ms == [750.0]


def test_percentiles_use_nearest_rank():
    assert percentile([], 50) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 101)), 99) == 99


def test_the_replicated_tables_are_the_templates_global_tables_and_not_idempotency_or_jobs():
    template = load_template(STATEFUL_TEMPLATE)
    names = global_table_names(template, "local")
    assert "photoscale-local-users" in names
    assert not {"photoscale-local-idempotency", "photoscale-local-jobs"} & set(names)


def test_replicated_prefixes_follow_the_buckets_replication_rules_else_the_fallback():
    rules = {"Rules": [{"Status": "Enabled", "Filter": {"Prefix": "media/"}, "DeleteMarkerReplication": {"Status": "Enabled"}},
                       {"Status": "Enabled", "Prefix": "x/"}, {"Status": "Disabled", "Prefix": "off/"}]}
    template = {"Resources": {"MediaBucket": {"Properties": {"ReplicationConfiguration": {
        "Fn::If": ["ReplicatesMedia", rules, {"Ref": "AWS::NoValue"}]}}}}}
    assert replicated_prefixes(template) == (("media/", True), ("x/", False))
    assert replicated_prefixes({"Resources": {}}) == tuple((p, False) for p in FALLBACK_REPLICATED_PREFIXES)
