"""devstack.provision builds, from infra/stateful.yaml itself, what CloudFormation would build.

Every expectation is read from the template, so the template and the local stack cannot drift.
"""
from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from devstack.provision import SKIPPED_TYPES, ProvisionError, provision
from infra.cfn import STATEFUL_TEMPLATE, load_template, output_env_name

REGION = "us-east-1"
STAGE = "local"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(STATEFUL_TEMPLATE)


@pytest.fixture(scope="module")
def client_cache() -> dict[str, Any]:
    """boto3 clients are reused across tests (creating them dominates the runtime); moto state is not."""
    return {}


@pytest.fixture
def clients(aws_credentials: None, client_cache: dict[str, Any]) -> Iterator[Any]:
    """A boto3 client factory inside a fresh in-process moto (fake credentials, us-east-1)."""
    with mock_aws():

        def make(service: str) -> Any:
            if service not in client_cache:
                client_cache[service] = boto3.client(
                    service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
            return client_cache[service]

        yield make


@pytest.fixture
def outputs(template: dict[str, Any], clients: Any) -> dict[str, str]:
    return provision(template, stage=STAGE, clients=clients)


def of_type(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


def physical(sub: dict[str, str]) -> str:
    """Resolve the !Sub names used in the template for stage local in moto's account/region."""
    return (sub["Fn::Sub"].replace("${Stage}", STAGE).replace("${AWS::AccountId}", "123456789012")
            .replace("${AWS::Region}", REGION))


def test_outputs_are_exactly_the_template_outputs_with_physical_values(
    template: dict[str, Any], outputs: dict[str, str]
) -> None:
    # Given a provisioned stack / Then every template output has a value, named as CloudFormation would
    assert list(outputs) == list(template["Outputs"])
    assert outputs["UsersTable"] == "photoscale-local-users"
    assert outputs["MediaBucket"] == "photoscale-local-media-123456789012-us-east-1"
    assert outputs["UploadsQueueName"] == "photoscale-local-uploads"
    assert outputs["UploadsQueueUrl"].endswith("/123456789012/photoscale-local-uploads")
    assert outputs["UploadsQueueArn"] == "arn:aws:sqs:us-east-1:123456789012:photoscale-local-uploads"
    assert outputs["UserPoolArn"].endswith(f"userpool/{outputs['UserPoolId']}")
    assert ":secret:photoscale/local/cursor-signing-key" in outputs["CursorSecretArn"]
    assert all(output_env_name(n).isupper() for n in outputs)


def test_tables_have_exactly_the_template_keys_indexes_streams_and_ttl(
    template: dict[str, Any], outputs: dict[str, str], clients: Any
) -> None:
    # Given a provisioned stack
    ddb = clients("dynamodb")
    tables = {**of_type(template, "AWS::DynamoDB::Table"), **of_type(template, "AWS::DynamoDB::GlobalTable")}
    # Then exactly the template's tables exist, global and regional ones alike
    assert sorted(ddb.list_tables()["TableNames"]) == sorted(physical(t["Properties"]["TableName"]) for t in tables.values())
    for logical_id, table in tables.items():
        props = table["Properties"]
        name = outputs[logical_id]
        desc = ddb.describe_table(TableName=name)["Table"]
        # And each has the template's keys, attribute types, billing mode and stream view
        assert desc["KeySchema"] == props["KeySchema"]
        assert sorted(desc["AttributeDefinitions"], key=str) == sorted(props["AttributeDefinitions"], key=str)
        assert desc["BillingModeSummary"]["BillingMode"] == props["BillingMode"]
        assert desc["StreamSpecification"] == {
            "StreamEnabled": True, "StreamViewType": props["StreamSpecification"]["StreamViewType"]}
        # And the template's GSIs
        gsis = {g["IndexName"]: g for g in desc.get("GlobalSecondaryIndexes", [])}
        assert set(gsis) == {g["IndexName"] for g in props.get("GlobalSecondaryIndexes", [])}
        for gsi in props.get("GlobalSecondaryIndexes", []):
            assert gsis[gsi["IndexName"]]["KeySchema"] == gsi["KeySchema"]
            assert gsis[gsi["IndexName"]]["Projection"] == gsi["Projection"]
        # And the template's TTL attribute (or none)
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if "TimeToLiveSpecification" in props:
            assert ttl == {"TimeToLiveStatus": "ENABLED",
                           "AttributeName": props["TimeToLiveSpecification"]["AttributeName"]}
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"
        # And point-in-time recovery (a global table's is set per replica: this region's)
        if "Replicas" in props:
            replica = props["Replicas"][0]
            assert replica["Region"] == {"Ref": "AWS::Region"}
            assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_queues_have_the_template_visibility_timeout_and_redrive_to_their_dlq(
    template: dict[str, Any], outputs: dict[str, str], clients: Any
) -> None:
    # Given a provisioned stack
    sqs = clients("sqs")
    queues = of_type(template, "AWS::SQS::Queue")
    # Then exactly the template's queues exist
    urls = sqs.list_queues()["QueueUrls"]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == sorted(physical(q["Properties"]["QueueName"]) for q in queues.values())
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        url = sqs.get_queue_url(QueueName=physical(props["QueueName"]))["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        # And the template's scalar attributes are set
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in props:
                assert attrs[key] == str(props[key]), (logical_id, key)
        assert attrs["SqsManagedSseEnabled"] == "true"
        # And work queues redrive to the DLQ named in the template after maxReceiveCount receives
        if "RedrivePolicy" in props:
            dlq_logical_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            redrive = json.loads(attrs["RedrivePolicy"])
            assert redrive["maxReceiveCount"] == props["RedrivePolicy"]["maxReceiveCount"]
            dlq_url = outputs[f"{logical_id.removesuffix('Queue')}DlqUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            assert redrive["deadLetterTargetArn"] == dlq_arn
            assert dlq_arn.endswith(":" + physical(template["Resources"][dlq_logical_id]["Properties"]["QueueName"]))
            assert outputs[f"{logical_id}Url"] == url


def test_media_bucket_notifies_the_uploads_queue_with_the_template_prefix_filter(
    template: dict[str, Any], outputs: dict[str, str], clients: Any
) -> None:
    # Given a provisioned stack
    s3 = clients("s3")
    (expected,) = template["Resources"]["MediaBucket"]["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    # When reading the media bucket's notification configuration
    config = s3.get_bucket_notification_configuration(Bucket=outputs["MediaBucket"])
    # Then it targets the uploads queue for the template's event and key filter
    (queue_config,) = config["QueueConfigurations"]
    assert queue_config["QueueArn"] == outputs["UploadsQueueArn"]
    assert queue_config["Events"] == [expected["Event"]]
    assert queue_config["Filter"]["Key"]["FilterRules"] == expected["Filter"]["S3Key"]["Rules"]
    # And both buckets exist, block public access and are encrypted
    assert {b["Name"] for b in s3.list_buckets()["Buckets"]} == {outputs["MediaBucket"], outputs["WebBucket"]}
    for bucket in (outputs["MediaBucket"], outputs["WebBucket"]):
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    cors = s3.get_bucket_cors(Bucket=outputs["MediaBucket"])["CORSRules"]
    assert set(cors[0]["AllowedMethods"]) == {"POST", "PUT", "GET"}


def test_object_put_under_uploads_prefix_reaches_the_uploads_queue(outputs: dict[str, str], clients: Any) -> None:
    # Given a provisioned stack whose uploads queue holds only S3's s3:TestEvent
    s3, sqs = clients("s3"), clients("sqs")
    queue_url = outputs["UploadsQueueUrl"]
    drained = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]).get("Event") for m in drained] == ["s3:TestEvent"]
    key = f"uploads/{uuid.uuid4().hex}.jpg"
    # When one object is put under uploads/ and one elsewhere
    s3.put_object(Bucket=outputs["MediaBucket"], Key=key, Body=b"jpeg")
    s3.put_object(Bucket=outputs["MediaBucket"], Key=f"photos/{uuid.uuid4().hex}.jpg", Body=b"jpeg")
    # Then exactly one ObjectCreated record for the uploads/ key arrives on the uploads queue
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    records = [r for m in messages for r in json.loads(m["Body"])["Records"]]
    # (S3 URL-encodes keys in events - moto even encodes "/" - so consumers must unquote_plus them)
    assert [(r["eventName"].split(":")[0], unquote_plus(r["s3"]["object"]["key"])) for r in records] == [
        ("ObjectCreated", key)]
    assert records[0]["s3"]["bucket"]["name"] == outputs["MediaBucket"]


def test_user_pool_and_client_follow_the_template(template: dict[str, Any], outputs: dict[str, str], clients: Any) -> None:
    # Given a provisioned stack
    idp = clients("cognito-idp")
    pool_props = template["Resources"]["UserPool"]["Properties"]
    client_props = template["Resources"]["UserPoolClient"]["Properties"]
    # When describing the user pool and its client
    pool = idp.describe_user_pool(UserPoolId=outputs["UserPoolId"])["UserPool"]
    client = idp.describe_user_pool_client(UserPoolId=outputs["UserPoolId"], ClientId=outputs["UserPoolClientId"])["UserPoolClient"]
    # Then the pool has the template's name, password policy, username config and verified attributes
    assert pool["Name"] == physical(pool_props["UserPoolName"])
    for key, value in pool_props["Policies"]["PasswordPolicy"].items():
        assert pool["Policies"]["PasswordPolicy"][key] == value
    assert pool["UsernameConfiguration"] == pool_props["UsernameConfiguration"]
    assert pool["AutoVerifiedAttributes"] == pool_props["AutoVerifiedAttributes"]
    email = next(a for a in pool["SchemaAttributes"] if a["Name"] == "email")
    assert (email["Required"], email["Mutable"]) == (True, True)
    # And the client has the template's auth flows, no secret, and the token validity settings
    assert client["ExplicitAuthFlows"] == client_props["ExplicitAuthFlows"]
    assert "ClientSecret" not in client
    for key in ("AccessTokenValidity", "IdTokenValidity", "RefreshTokenValidity", "TokenValidityUnits",
                "PreventUserExistenceErrors", "EnableTokenRevocation"):
        assert client[key] == client_props[key], key


def test_cursor_secret_holds_a_generated_key_of_the_template_length(
    template: dict[str, Any], outputs: dict[str, str], clients: Any
) -> None:
    # Given a provisioned stack
    generate = template["Resources"]["CursorSecret"]["Properties"]["GenerateSecretString"]
    # When reading the cursor secret
    value = clients("secretsmanager").get_secret_value(SecretId=outputs["CursorSecretArn"])["SecretString"]
    # Then it is a random alphanumeric value of the template's length
    assert len(value) == generate["PasswordLength"]
    assert value.isalnum()


def test_provisioning_twice_is_a_no_op_returning_the_same_outputs(
    template: dict[str, Any], outputs: dict[str, str], clients: Any
) -> None:
    # Given a provisioned stack and the secret value it generated
    secret = clients("secretsmanager").get_secret_value(SecretId=outputs["CursorSecretArn"])["SecretString"]
    # When provisioning again against the same server
    again = provision(template, stage=STAGE, clients=clients)
    # Then the outputs are identical and nothing was duplicated or regenerated
    assert again == outputs
    assert len(clients("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]) == 1
    assert len(clients("cognito-idp").list_user_pool_clients(UserPoolId=outputs["UserPoolId"])["UserPoolClients"]) == 1
    assert clients("secretsmanager").get_secret_value(SecretId=outputs["CursorSecretArn"])["SecretString"] == secret
    # And S3 did not send a second s3:TestEvent (notification left untouched)
    messages = clients("sqs").receive_message(QueueUrl=outputs["UploadsQueueUrl"], MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 1


def test_unknown_resource_type_raises_instead_of_being_ignored(template: dict[str, Any], clients: Any) -> None:
    # Given the template plus a resource type the provisioner has no handler for
    changed = copy.deepcopy(template)
    changed["Resources"]["Alerts"] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alerts"}}
    assert "AWS::SNS::Topic" not in SKIPPED_TYPES
    # When provisioning / Then it fails naming the resource and type, before creating anything
    with pytest.raises(ProvisionError, match="Alerts.*AWS::SNS::Topic"):
        provision(changed, stage=STAGE, clients=clients)
    assert clients("dynamodb").list_tables()["TableNames"] == []


def test_unknown_property_of_a_known_type_raises(template: dict[str, Any], clients: Any) -> None:
    # Given the template with a table property the provisioner does not understand
    changed = copy.deepcopy(template)
    changed["Resources"]["UsersTable"]["Properties"]["ContributorInsightsSpecification"] = {"Enabled": True}
    # When provisioning / Then it fails instead of silently dropping the property
    with pytest.raises(ProvisionError, match="UsersTable.*ContributorInsightsSpecification"):
        provision(changed, stage=STAGE, clients=clients)


def test_stage_outside_allowed_values_is_rejected(template: dict[str, Any], clients: Any) -> None:
    # Given a stage the template does not allow / When provisioning / Then it fails before creating anything
    with pytest.raises(ProvisionError, match="Stage"):
        provision(template, stage="staging", clients=clients)
    assert clients("dynamodb").list_tables()["TableNames"] == []


def test_prod_condition_enables_user_pool_deletion_protection(template: dict[str, Any], clients: Any) -> None:
    # Given the template provisioned as prod (conditions evaluated like CloudFormation)
    outputs = provision(template, stage="prod", clients=clients)
    # When describing the pool / Then deletion protection is ACTIVE
    pool = clients("cognito-idp").describe_user_pool(UserPoolId=outputs["UserPoolId"])["UserPool"]
    assert pool.get("DeletionProtection") == "ACTIVE"
    assert outputs["UsersTable"] == "photoscale-prod-users"
