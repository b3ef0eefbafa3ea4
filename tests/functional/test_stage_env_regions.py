"""infra.stage_env against moto CloudFormation: each region gets its own environment from its own stacks."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.deploy import region_config
from infra.stage_env import region_env_file, write_region_envs

PRIMARY, REPLICA = "us-east-1", "eu-west-1"
ACCOUNT = "123456789012"


def _outputs_stack(cloudformation, name: str, outputs: dict[str, str]) -> None:
    """A stack whose outputs are ``outputs`` (what describe_stacks returns for the real template's stack)."""
    template = {"Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-marker"}}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def _stateful(region: str, *, primary: bool) -> dict[str, str]:
    outputs = {
        "UsersTable": "photoscale-prod-users",
        "IdempotencyTable": "photoscale-prod-idempotency",
        "MediaBucket": f"photoscale-prod-media-{ACCOUNT}-{region}",
        "UploadsQueueUrl": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/photoscale-prod-uploads",
        "UploadsQueueName": "photoscale-prod-uploads",
        "FanoutQueueUrl": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/photoscale-prod-fanout",
    }
    if primary:  # the global resources' outputs: primary stack only (infra/stateful.yaml)
        outputs.update({
            "UserPoolId": f"{region}_AbC123",
            "UserPoolClientId": "client123",
            "UserPoolArn": f"arn:aws:cognito-idp:{region}:{ACCOUNT}:userpool/{region}_AbC123",
            "UserPoolIssuer": f"https://issuer-cognito-idp.{region}.amazonaws.com/{region}_AbC123",
            "CursorSecretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:photoscale/prod/cursor-signing-key-a1B2c3",
        })
    return outputs


@pytest.fixture
def stacks(aws_credentials: None):
    """Both regions' stateful stacks, the edge in the primary and a routing stack per region, in moto."""
    with mock_aws():
        clients = {r: boto3.client("cloudformation", region_name=r) for r in (PRIMARY, REPLICA)}
        for region in (PRIMARY, REPLICA):
            _outputs_stack(clients[region], "photoscale-prod-stateful", _stateful(region, primary=region == PRIMARY))
            _outputs_stack(clients[region], "photoscale-prod-routing",
                           {"RegionApiUrl": f"https://api{region[:2]}.execute-api.{region}.amazonaws.com"})
        _outputs_stack(clients[PRIMARY], "photoscale-prod-edge",
                       {"CdnDistributionId": "E123", "MediaBaseUrl": "https://photos.example.com/media"})
        yield clients.__getitem__


def test_each_region_gets_its_own_queues_and_bucket_and_the_primarys_identity(stacks, tmp_path: Path) -> None:
    # Given both regions' stacks / When stage_env writes the stage's environments
    written = write_region_envs("prod", [PRIMARY, REPLICA], stacks, edge_stack="photoscale-prod-edge",
                                routing_stack="photoscale-prod-routing", env_dir=tmp_path)
    assert written == [region_env_file("prod", r, tmp_path) for r in (PRIMARY, REPLICA)]
    env = {r: json.loads(region_env_file("prod", r, tmp_path).read_text())["environment_variables"]
           for r in (PRIMARY, REPLICA)}
    # Then each region's queue URLs and media bucket are its own; table names are shared
    assert env[REPLICA]["UPLOADS_QUEUE_URL"].startswith(f"https://sqs.{REPLICA}.")
    assert env[PRIMARY]["UPLOADS_QUEUE_URL"].startswith(f"https://sqs.{PRIMARY}.")
    assert env[REPLICA]["MEDIA_BUCKET"].endswith(REPLICA) and env[PRIMARY]["MEDIA_BUCKET"].endswith(PRIMARY)
    assert env[REPLICA]["USERS_TABLE"] == env[PRIMARY]["USERS_TABLE"]
    # And the replica uses the replicated pool (same id and client) and its own secret replica
    assert env[REPLICA]["USER_POOL_ID"] == env[PRIMARY]["USER_POOL_ID"] == f"{PRIMARY}_AbC123"
    assert env[REPLICA]["USER_POOL_CLIENT_ID"] == "client123"
    assert env[REPLICA]["CURSOR_SECRET_ARN"] == (
        f"arn:aws:secretsmanager:{REPLICA}:{ACCOUNT}:secret:photoscale/prod/cursor-signing-key-a1B2c3")
    assert env[REPLICA]["USER_POOL_ARN"].startswith(f"arn:aws:cognito-idp:{REPLICA}:")
    # And every region has the same multi-region contract variables
    for region in (PRIMARY, REPLICA):
        assert env[region]["ACTIVE_REGIONS"] == f"{PRIMARY},{REPLICA}"
        assert env[region]["PRIMARY_REGION"] == PRIMARY
        assert env[region]["PRIMARY_USER_POOL_ID"] == f"{PRIMARY}_AbC123"
        # (the multi-region issuer, and the original one of tokens issued before the pool switched to it)
        assert json.loads(env[region]["TRUSTED_ISSUERS"]) == {
            f"https://issuer-cognito-idp.{PRIMARY}.amazonaws.com/{PRIMARY}_AbC123": "client123",
            f"https://cognito-idp.{PRIMARY}.amazonaws.com/{PRIMARY}_AbC123": "client123"}
        assert json.loads(env[region]["MEDIA_BUCKETS"]) == {
            r: f"photoscale-prod-media-{ACCOUNT}-{r}" for r in (PRIMARY, REPLICA)}
        assert json.loads(env[region]["REGION_API_URLS"])[REPLICA].endswith(f".{REPLICA}.amazonaws.com")
        # (each region's fan-out queue: an erasure asks the other region to sweep its regional data)
        assert json.loads(env[region]["FANOUT_QUEUE_URLS"]) == {
            r: f"https://sqs.{r}.amazonaws.com/{ACCOUNT}/photoscale-prod-fanout" for r in (PRIMARY, REPLICA)}
        assert env[region]["CDN_DISTRIBUTION_ID"] == "E123"


def test_deploying_a_region_applies_its_environment_and_leaves_the_shared_stage_config_alone(
    stacks, tmp_path: Path
) -> None:
    # Given the environments written and a stage config with its own settings
    write_region_envs("prod", [PRIMARY, REPLICA], stacks, env_dir=tmp_path)
    config = {"stages": {"prod": {"lambda_memory_size": 1024, "environment_variables": {"PHOTOSCALE_STAGE": "prod"}}}}
    # When each region's deploy config is built
    per_region = {r: region_config(config, "prod", r, env_dir=tmp_path) for r in (PRIMARY, REPLICA)}
    # Then each carries its own region's queue, the stage's settings, and the input is untouched
    for region, built in per_region.items():
        stage = built["stages"]["prod"]
        assert f"sqs.{region}." in stage["environment_variables"]["UPLOADS_QUEUE_URL"]
        assert stage["environment_variables"]["PHOTOSCALE_STAGE"] == "prod"
        assert stage["lambda_memory_size"] == 1024
    assert "UPLOADS_QUEUE_URL" not in config["stages"]["prod"]["environment_variables"]


def test_a_region_without_an_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="infra.stage_env"):
        region_config({}, "prod", REPLICA, env_dir=tmp_path)


def test_a_replica_region_gets_its_own_replicas_counter_stream_from_describe_table(stacks, tmp_path: Path) -> None:
    # Given the counters table's replica in the replica region (its stack does not own the GlobalTable,
    # so it has no CountersStreamArn output)
    dynamodb = boto3.client("dynamodb", region_name=REPLICA)
    dynamodb.create_table(TableName="photoscale-prod-counters", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "counter_id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "counter_id", "KeyType": "HASH"}],
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    stream = dynamodb.describe_table(TableName="photoscale-prod-counters")["Table"]["LatestStreamArn"]

    def table_stream(region: str, table: str) -> str:
        return boto3.client("dynamodb", region_name=region).describe_table(TableName=table)["Table"]["LatestStreamArn"]

    # When stage_env writes the environments with the primary's outputs naming the table
    primary_cfn = stacks(PRIMARY)
    _outputs_stack(primary_cfn, "photoscale-prod-stateful2",
                   {**_stateful(PRIMARY, primary=True), "CountersTable": "photoscale-prod-counters",
                    "CountersStreamArn": "arn:aws:dynamodb:us-east-1:1:table/photoscale-prod-counters/stream/p"})
    _outputs_stack(stacks(REPLICA), "photoscale-prod-stateful2", _stateful(REPLICA, primary=False))
    write_region_envs("prod", [PRIMARY, REPLICA], stacks, stack="photoscale-prod-stateful2", env_dir=tmp_path,
                      table_stream=table_stream)
    env = {r: json.loads(region_env_file("prod", r, tmp_path).read_text())["environment_variables"]
           for r in (PRIMARY, REPLICA)}
    # Then each region's aggregator reads its own replica's stream
    assert env[REPLICA]["COUNTERS_STREAM_ARN"] == stream
    assert env[PRIMARY]["COUNTERS_STREAM_ARN"].endswith("/stream/p")
