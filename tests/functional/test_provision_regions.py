"""devstack.provision run once per region builds what the per-region stacks of infra/stateful.yaml build.

In AWS the primary region's stack creates the global resources with replicas in the other region;
moto replicates nothing, so the provisioner materialises each replica in its region (docs/multi-region.md).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.provision import REPLICATED_TYPES, SKIPPED_TYPES, provision
from infra.cfn import STATEFUL_TEMPLATE, global_table_names, load_template, regional_table_names

PRIMARY, REPLICA = "us-east-1", "eu-west-1"
STAGE = "local"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(STATEFUL_TEMPLATE)


@pytest.fixture
def regions(aws_credentials: None) -> Iterator[Any]:
    """``regions(region)(service)``: boto3 clients per region inside one fresh in-process moto."""
    with mock_aws():
        cache: dict[tuple[str, str], Any] = {}

        def in_region(region: str) -> Any:
            def make(service: str) -> Any:
                if (region, service) not in cache:
                    cache[region, service] = boto3.client(service, region_name=region)
                return cache[region, service]
            return make

        yield in_region


def test_every_region_holds_each_global_table_as_its_own_replica_with_stream_ttl_and_indexes(
    template: dict[str, Any], regions: Any
) -> None:
    # Given the template provisioned in the primary and then in the replica region
    for region in (PRIMARY, REPLICA):
        provision(template, stage=STAGE, clients=regions(region))
    expected = sorted(global_table_names(template) + regional_table_names(template))
    for region in (PRIMARY, REPLICA):
        ddb = regions(region)("dynamodb")
        # Then each region has every global table (one name everywhere) and its own regional tables
        assert sorted(ddb.list_tables()["TableNames"]) == expected
        photos = ddb.describe_table(TableName="photoscale-local-photos")["Table"]
        # And a replica has the global table's stream (the local replicator tails it), GSI and TTL
        assert photos["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        assert photos["LatestStreamArn"].startswith(f"arn:aws:dynamodb:{region}:")
        assert [g["IndexName"] for g in photos["GlobalSecondaryIndexes"]] == ["by_owner"]
        ttl = ddb.describe_time_to_live(TableName="photoscale-local-sessions")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_replica_region_outputs_the_same_table_names_and_its_own_queues_pool_and_secret(
    template: dict[str, Any], regions: Any
) -> None:
    # Given both regions provisioned
    primary = provision(template, stage=STAGE, clients=regions(PRIMARY))
    replica = provision(template, stage=STAGE, clients=regions(REPLICA))
    # Then both return every output the app reads
    assert list(replica) == list(primary) == list(template["Outputs"])
    # And global table names are the same, regional resources are the region's own
    assert replica["UsersTable"] == primary["UsersTable"] == "photoscale-local-users"
    assert replica["IdempotencyTable"] == primary["IdempotencyTable"]  # one name, one table per region
    assert f":{REPLICA}:" in replica["UploadsQueueArn"] and f":{PRIMARY}:" in primary["UploadsQueueArn"]
    assert replica["MediaBucket"].endswith(f"-{REPLICA}") and primary["MediaBucket"].endswith(f"-{PRIMARY}")
    # And the replicated pool is, locally, the replica region's own pool (devstack copies its users)
    assert replica["UserPoolId"].startswith(f"{REPLICA}_") and primary["UserPoolId"].startswith(f"{PRIMARY}_")
    pool = regions(REPLICA)("cognito-idp").describe_user_pool(UserPoolId=replica["UserPoolId"])["UserPool"]
    assert pool["Name"] == "photoscale-local-users"
    regions(REPLICA)("cognito-idp").describe_user_pool_client(
        UserPoolId=replica["UserPoolId"], ClientId=replica["UserPoolClientId"])
    # And the one issuer is named after the primary region
    assert primary["UserPoolIssuer"] == f"https://issuer-cognito-idp.{PRIMARY}.amazonaws.com/{primary['UserPoolId']}"
    # And the cursor secret's replica holds the primary's key, so a cursor signed in one region verifies in the other
    assert f":{REPLICA}:" in replica["CursorSecretArn"]
    values = {region: regions(region)("secretsmanager").get_secret_value(SecretId=outputs["CursorSecretArn"])["SecretString"]
              for region, outputs in ((PRIMARY, primary), (REPLICA, replica))}
    assert values[PRIMARY] == values[REPLICA] and len(values[PRIMARY]) == 64


def test_replica_region_provisioned_first_still_shares_the_primary_secret(template: dict[str, Any], regions: Any) -> None:
    # Given the replica region provisioned before the primary
    replica = provision(template, stage=STAGE, clients=regions(REPLICA))
    primary = provision(template, stage=STAGE, clients=regions(PRIMARY))
    # Then the primary's secret was created first and both regions hold the same key
    value = regions(REPLICA)("secretsmanager").get_secret_value(SecretId=replica["CursorSecretArn"])["SecretString"]
    assert regions(PRIMARY)("secretsmanager").get_secret_value(SecretId=primary["CursorSecretArn"])["SecretString"] == value
    # And provisioning the replica again changes nothing
    assert provision(template, stage=STAGE, clients=regions(REPLICA)) == replica


def test_region_outside_the_stage_gets_only_regional_resources(template: dict[str, Any], regions: Any) -> None:
    # Given a region that is neither the primary nor the replica
    outputs = provision(template, stage=STAGE, clients=regions("ap-south-1"))
    # Then no global resource is materialised there and its outputs are left out
    tables = regions("ap-south-1")("dynamodb").list_tables()["TableNames"]
    assert sorted(tables) == sorted(regional_table_names(template))
    assert not {"UserPoolId", "UserPoolClientId", "CursorSecretArn"} & set(outputs)
    assert regions("ap-south-1")("cognito-idp").list_user_pools(MaxResults=10)["UserPools"] == []


def test_single_region_stage_has_no_replica_anywhere(template: dict[str, Any], regions: Any) -> None:
    # Given a stage deployed to the primary region only (ReplicaRegion empty)
    outputs = provision(template, stage=STAGE, clients=regions(PRIMARY), parameters={"ReplicaRegion": ""})
    # Then the primary has everything and provisioning the other region materialises nothing global
    assert {"UserPoolId", "CursorSecretArn"} <= set(outputs)
    provision(template, stage=STAGE, clients=regions(REPLICA), parameters={"ReplicaRegion": ""})
    assert sorted(regions(REPLICA)("dynamodb").list_tables()["TableNames"]) == sorted(regional_table_names(template))


def test_each_regions_media_bucket_is_versioned_and_replicates_to_the_others_with_rtc(
    template: dict[str, Any], regions: Any
) -> None:
    # Given both regions provisioned
    buckets = {region: provision(template, stage=STAGE, clients=regions(region))["MediaBucket"]
               for region in (PRIMARY, REPLICA)}
    for here, there in ((PRIMARY, REPLICA), (REPLICA, PRIMARY)):
        s3 = regions(here)("s3")
        # Then each media bucket is versioned (CRR requires it on both sides)
        assert s3.get_bucket_versioning(Bucket=buckets[here])["Status"] == "Enabled"
        # And replicates originals and renditions into the other region's bucket (moto 5.2.5 keeps the
        # rules' ids, priorities and destinations but drops their prefix filters, delete-marker and RTC
        # settings: tests/unit/test_templates.py checks those in the template)
        config = s3.get_bucket_replication(Bucket=buckets[here])["ReplicationConfiguration"]
        assert [(r["ID"], r["Priority"]) for r in config["Rules"]] == [
            ("replicate-originals", 1), ("replicate-renditions", 2)]
        for rule in config["Rules"]:
            assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{buckets[there]}"
        # And through this region's own replication role
        role = config["Role"].rsplit("/", 1)[1]
        regions(here)("iam").get_role(RoleName=role)


def test_every_primary_only_resource_is_materialised_locally_or_skipped_for_a_stated_reason(
    template: dict[str, Any]
) -> None:
    # Given the resources only the primary region's stack creates
    primary_only = {k: v["Type"] for k, v in template["Resources"].items()
                    if v.get("Condition") in ("IsPrimaryRegion", "PrimaryWithReplica")}
    assert primary_only, "the template has global resources"
    # Then each is either replicated to the other region (so devstack creates its replica there) or
    # deliberately skipped locally, with the reason
    for logical_id, rtype in primary_only.items():
        assert rtype in REPLICATED_TYPES or rtype in SKIPPED_TYPES, logical_id
