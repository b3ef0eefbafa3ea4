"""Invariants of the CloudFormation templates in infra/, the output->env rule and the post-deploy plan."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.cfn import (
    GLOBAL_TABLE,
    INFRA_DIR,
    REGIONAL_TABLE,
    STATEFUL_TEMPLATE,
    global_table_names,
    load_template,
    output_env_name,
    regional_table_names,
    table_name,
)
from infra.post_deploy import (
    REPORT_BATCH_ITEM_FAILURES,
    EnableBatchItemFailures,
    PutGatewayResponse,
    RedeployStage,
    load_gateway_responses,
    plan_post_deploy,
)

TEMPLATES = sorted(INFRA_DIR.glob("*.yaml"))
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(STATEFUL_TEMPLATE)


def resources_of(template: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == rtype}


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_every_infra_template_passes_cfn_lint_without_errors_or_warnings(path: Path) -> None:
    # Given a template under infra/
    # When cfn-lint (the venv's console script) checks it
    result = subprocess.run([str(CFN_LINT), str(path)], capture_output=True, text=True, check=False)
    # Then it reports nothing at all
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# --------------------------------------------------------------------------- tables


GLOBAL_TABLES = {"UsersTable", "SessionsTable", "PhotosTable", "CountersTable", "GraphTable", "FeedsTable"}
REGIONAL_TABLES = {"IdempotencyTable", "JobsTable", "QuotasTable"}


def tables_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**resources_of(template, GLOBAL_TABLE), **resources_of(template, REGIONAL_TABLE)}


def test_user_data_tables_are_global_and_per_region_work_tables_regional(template: dict[str, Any]) -> None:
    # Given the stateful template's DynamoDB tables
    # Then the user data the other region must serve is in global tables (docs/multi-region.md "Tables")
    assert set(resources_of(template, GLOBAL_TABLE)) == GLOBAL_TABLES
    # And idempotency locks, fan-out checkpoints and quota windows stay in their own region
    assert set(resources_of(template, REGIONAL_TABLE)) == REGIONAL_TABLES
    # And the helper the local replicator uses reads the same decision from the template
    assert global_table_names(template, "prod") == [
        f"photoscale-prod-{name}" for name in ("users", "sessions", "photos", "counters", "graph", "feeds")]
    assert regional_table_names(template) == ["photoscale-local-idempotency", "photoscale-local-jobs",
                                              "photoscale-local-quotas"]


def test_every_table_is_on_demand_encrypted_recoverable_streamed_and_retained(template: dict[str, Any]) -> None:
    # Given the stateful template's DynamoDB tables, global and regional
    for logical_id, table in tables_of(template).items():
        props = table["Properties"]
        # Then each one has the production-safety settings
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}, logical_id
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain", logical_id
        assert props["TableName"]["Fn::Sub"] == "photoscale-${Stage}-" + table_name(table, "x").removeprefix("photoscale-x-")
        if table["Type"] == REGIONAL_TABLE:
            assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, logical_id


def test_global_tables_are_created_once_by_the_primary_with_a_recoverable_replica_per_region(
    template: dict[str, Any]
) -> None:
    # Given the global tables
    for logical_id, table in resources_of(template, GLOBAL_TABLE).items():
        # Then only the primary region's stack creates them (the other region's stack would collide)
        assert table["Condition"] == "IsPrimaryRegion", logical_id
        assert template["Conditions"]["IsPrimaryRegion"] == {
            "Fn::Equals": [{"Ref": "AWS::Region"}, {"Ref": "PrimaryRegion"}]}
        # And they replicate to the stack's own region and to ReplicaRegion when there is one
        here, there = table["Properties"]["Replicas"]
        assert here == {"Region": {"Ref": "AWS::Region"},
                        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}
        assert there == {"Fn::If": ["HasReplicaRegion",
                                    {"Region": {"Ref": "ReplicaRegion"},
                                     "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}},
                                    {"Ref": "AWS::NoValue"}]}
        # And (MREC) stream NEW_AND_OLD_IMAGES, no strong consistency mode
        assert "MultiRegionConsistency" not in table["Properties"]
        # And their output is the name itself, so the replica region's stack outputs it too
        assert template["Outputs"][logical_id] == {"Value": table["Properties"]["TableName"]}
    assert template["Parameters"]["PrimaryRegion"]["Default"] == "us-east-1"
    assert template["Parameters"]["ReplicaRegion"]["Default"] == "eu-west-1"


@pytest.mark.parametrize(("logical_id", "keys", "ttl"), [
    ("UsersTable", [("username", "HASH")], None),
    ("SessionsTable", [("token_id", "HASH")], "expires_at"),
    ("PhotosTable", [("photo_id", "HASH")], "expires_at"),
    ("CountersTable", [("counter_id", "HASH")], None),
    ("GraphTable", [("pk", "HASH"), ("sk", "RANGE")], None),
    ("FeedsTable", [("feed_owner", "HASH"), ("feed_sort", "RANGE")], "expires_at"),
    ("IdempotencyTable", [("id", "HASH")], "expiration"),
    ("JobsTable", [("job_id", "HASH")], "expires_at"),
    ("QuotasTable", [("quota_id", "HASH")], "expires_at"),
])
def test_table_has_the_documented_key_schema_and_ttl_attribute(
    template: dict[str, Any], logical_id: str, keys: list[tuple[str, str]], ttl: str | None
) -> None:
    # Given one table of the template
    props = template["Resources"][logical_id]["Properties"]
    # Then its keys are the documented string attributes
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == keys
    defined = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert all(defined[name] == "S" for name, _ in keys)
    # And its TTL attribute is the documented one (or none)
    if ttl is None:
        assert "TimeToLiveSpecification" not in props
    else:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}


def test_photos_table_has_by_owner_index_projecting_all(template: dict[str, Any]) -> None:
    # Given the photos table
    props = template["Resources"]["PhotosTable"]["Properties"]
    # Then its only GSI is by_owner(owner, owner_sort) with ALL projected
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "by_owner"
    assert [(k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]] == [("owner", "HASH"), ("owner_sort", "RANGE")]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}


# --------------------------------------------------------------------------- queues


def test_every_work_queue_redrives_to_its_own_dlq_after_bounded_receives(template: dict[str, Any]) -> None:
    # Given the template's SQS queues, split into work queues and DLQs
    queues = resources_of(template, "AWS::SQS::Queue")
    work = {k: v for k, v in queues.items() if k.endswith("Queue")}
    dlqs = {k: v for k, v in queues.items() if k.endswith("DLQ")}
    assert set(work) == {"UploadsQueue", "EditsQueue", "FanoutQueue"}
    assert set(dlqs) == {"UploadsDLQ", "EditsDLQ", "FanoutDLQ"}
    for logical_id, queue in work.items():
        props = queue["Properties"]
        # Then each work queue redrives to the matching DLQ with a maxReceiveCount
        redrive = props["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [logical_id.replace("Queue", "DLQ"), "Arn"]}
        assert isinstance(redrive["maxReceiveCount"], int) and 1 <= redrive["maxReceiveCount"] <= 10
        # And its visibility timeout is 6 x the 30 s function timeout
        assert props["VisibilityTimeout"] == 180
        assert props["SqsManagedSseEnabled"] is True
    for logical_id, queue in dlqs.items():
        # And each DLQ keeps messages for the 14-day maximum, encrypted, and has no DLQ itself
        props = queue["Properties"]
        assert props["MessageRetentionPeriod"] == 1209600
        assert props["SqsManagedSseEnabled"] is True
        assert "RedrivePolicy" not in props
        assert props["QueueName"]["Fn::Sub"].endswith("-dlq")


def test_uploads_queue_policy_only_admits_s3_from_the_media_bucket(template: dict[str, Any]) -> None:
    # Given the uploads queue policy and the media bucket
    policy = template["Resources"]["UploadsQueuePolicy"]["Properties"]
    bucket_name = template["Resources"]["MediaBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    # Then only s3.amazonaws.com may SendMessage, from our bucket ARN (built by Sub: no cycle) and account
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:s3:::" + bucket_name}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert policy["Queues"] == [{"Ref": "UploadsQueue"}]
    assert template["Resources"]["MediaBucket"]["DependsOn"] == "UploadsQueuePolicy"


# --------------------------------------------------------------------------- buckets


def test_every_bucket_blocks_public_access_is_encrypted_and_owner_enforced(template: dict[str, Any]) -> None:
    # Given the template's buckets
    buckets = resources_of(template, "AWS::S3::Bucket")
    assert set(buckets) == {"MediaBucket", "WebBucket"}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        # Then all four public-access blocks are on
        block = props["PublicAccessBlockConfiguration"]
        assert set(block) == {"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"}
        assert all(v is True for v in block.values()), logical_id
        # And objects are encrypted by default (with a bucket key)
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert rule["BucketKeyEnabled"] is True
        # And ACLs are disabled
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_media_bucket_notifies_uploads_queue_only_for_the_uploads_prefix(template: dict[str, Any]) -> None:
    # Given the media bucket's notification configuration
    notification = template["Resources"]["MediaBucket"]["Properties"]["NotificationConfiguration"]
    # Then there is exactly one queue notification: object created under uploads/ -> UploadsQueue
    assert set(notification) == {"QueueConfigurations"}
    (config,) = notification["QueueConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Queue"] == {"Fn::GetAtt": ["UploadsQueue", "Arn"]}
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]


def test_media_bucket_cors_allows_browser_uploads_from_the_site_origin(template: dict[str, Any]) -> None:
    # Given the media bucket CORS rules
    (rule,) = template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    # Then presigned POST/PUT and GET are allowed from the SiteOrigin parameter
    assert set(rule["AllowedMethods"]) == {"POST", "PUT", "GET"}
    assert rule["AllowedOrigins"] == [{"Ref": "SiteOrigin"}]
    assert template["Parameters"]["SiteOrigin"]["Default"] == "*"


def _evaluate(expression: Any, parameters: dict[str, str]) -> Any:
    """The few intrinsic functions a rule uses (Ref, Fn::Equals, Fn::Not), evaluated over parameters."""
    if isinstance(expression, dict):
        ((function, argument),) = expression.items()
        if function == "Ref":
            return parameters[argument]
        values = [_evaluate(a, parameters) for a in argument]
        if function == "Fn::Equals":
            return values[0] == values[1]
        if function == "Fn::Not":
            return not values[0]
        raise AssertionError(f"unexpected function {function}")
    return expression


def _rules_pass(template: dict[str, Any], given: dict[str, str]) -> bool:
    defaults = {name: spec["Default"] for name, spec in template["Parameters"].items() if "Default" in spec}
    parameters = {**defaults, **given}
    for rule in template.get("Rules", {}).values():
        if _evaluate(rule.get("RuleCondition", True), parameters):
            if not all(_evaluate(a["Assert"], parameters) for a in rule["Assertions"]):
                return False
    return True


@pytest.mark.parametrize(("stage", "origin", "accepted"), [
    ("local", "*", True),
    ("dev", "*", False),
    ("prod", "*", False),
    ("prod", "https://photos.example.com", True),
    ("dev", "https://d111111abcdef8.cloudfront.net", True),
])
def test_cors_from_any_origin_is_refused_outside_the_local_stage(template: dict[str, Any], stage, origin, accepted):
    # Given the stack's parameters / When its rules are evaluated / Then '*' is accepted only locally
    assert _rules_pass(template, {"Stage": stage, "SiteOrigin": origin}) is accepted
    assert re.fullmatch(template["Parameters"]["SiteOrigin"]["AllowedPattern"], origin)


@pytest.mark.parametrize(("primary", "replica", "accepted"), [
    ("us-east-1", "eu-west-1", True), ("us-east-1", "", True), ("eu-west-1", "eu-west-1", False)])
def test_the_replica_region_must_differ_from_the_primary(template: dict[str, Any], primary, replica, accepted):
    parameters = {"Stage": "prod", "SiteOrigin": "https://photos.example.com",
                  "PrimaryRegion": primary, "ReplicaRegion": replica}
    assert _rules_pass(template, parameters) is accepted
    assert re.fullmatch(template["Parameters"]["ReplicaRegion"]["AllowedPattern"], replica)


@pytest.mark.parametrize("origin", ["https://photos.example.com/", "https://*.example.com", "photos.example.com",
                                    "https://photos.example.com/path", ""])
def test_site_origin_must_be_a_bare_origin(template: dict[str, Any], origin: str):
    assert not re.fullmatch(template["Parameters"]["SiteOrigin"]["AllowedPattern"], origin)


# --------------------------------------------------------------------------- identity


def test_user_pool_deletion_protection_is_active_only_in_prod(template: dict[str, Any]) -> None:
    # Given the user pool
    pool = template["Resources"]["UserPool"]["Properties"]
    # Then deletion protection depends on the IsProd condition, which tests Stage == prod
    assert pool["DeletionProtection"] == {"Fn::If": ["IsProd", "ACTIVE", "INACTIVE"]}
    assert template["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["local", "dev", "prod"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}


def test_user_pool_client_is_public_with_password_and_refresh_flows(template: dict[str, Any]) -> None:
    # Given the user pool client
    client = template["Resources"]["UserPoolClient"]["Properties"]
    # Then it has no secret (browser client), only the two flows, and revocable tokens
    assert client["GenerateSecret"] is False
    assert client["ExplicitAuthFlows"] == ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert client["EnableTokenRevocation"] is True
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"}


# --------------------------------------------------------------------------- outputs / env names


CONVENTIONS_ENV = {  # docs/conventions.md "Environment variables" that come from stack outputs
    "USERS_TABLE", "SESSIONS_TABLE", "PHOTOS_TABLE", "COUNTERS_TABLE", "GRAPH_TABLE", "FEEDS_TABLE",
    "IDEMPOTENCY_TABLE", "JOBS_TABLE", "QUOTAS_TABLE", "MEDIA_BUCKET", "WEB_BUCKET",
    "UPLOADS_QUEUE_NAME", "UPLOADS_QUEUE_URL", "UPLOADS_DLQ_URL", "EDITS_QUEUE_NAME", "EDITS_QUEUE_URL",
    "EDITS_DLQ_URL", "FANOUT_QUEUE_NAME", "FANOUT_QUEUE_URL", "FANOUT_DLQ_URL",
    "USER_POOL_ID", "USER_POOL_CLIENT_ID", "CURSOR_SECRET_ARN",
}


def test_outputs_provide_every_env_var_of_the_conventions(template: dict[str, Any]) -> None:
    # Given the template outputs mapped to env names
    env_names = [output_env_name(name) for name in template["Outputs"]]
    # Then they are unique and cover every output-backed env var of docs/conventions.md
    assert len(env_names) == len(set(env_names))
    assert CONVENTIONS_ENV <= set(env_names)
    assert {"UPLOADS_QUEUE_ARN", "EDITS_QUEUE_ARN", "FANOUT_QUEUE_ARN", "USER_POOL_ARN"} <= set(env_names)


@pytest.mark.parametrize(("output", "env"), [
    ("UploadsQueueUrl", "UPLOADS_QUEUE_URL"),
    ("UserPoolClientId", "USER_POOL_CLIENT_ID"),
    ("UploadsDlqUrl", "UPLOADS_DLQ_URL"),
    ("UsersTable", "USERS_TABLE"),
    ("CursorSecretArn", "CURSOR_SECRET_ARN"),
    ("UploadsDLQUrl", "UPLOADS_DLQ_URL"),
    ("S3Bucket", "S3_BUCKET"),
    ("Table", "TABLE"),
])
def test_output_env_name_upper_snakes_camel_case(output: str, env: str) -> None:
    # Given an output name / When mapped / Then it is the UPPER_SNAKE env var
    assert output_env_name(output) == env


def test_load_template_turns_short_tags_into_long_forms(tmp_path: Path) -> None:
    # Given a template using every supported short tag
    path = tmp_path / "t.yaml"
    path.write_text(
        "A: !Ref X\nB: !Sub 'a-${X}'\nC: !GetAtt R.Arn\nD: !GetAtt [R, Arn]\n"
        "E: !Join ['-', [a, !Ref X]]\nF: !If [C1, a, b]\nG: !Equals [a, b]\nH: !Not [!Condition C1]\n"
        "I: !Select [0, !Split [',', 'a,b']]\nJ: !FindInMap [M, k, v]\nK: !Base64 x\nL: !GetAZs ''\n"
        "M: !ImportValue other\n",
        encoding="utf-8",
    )
    # When loaded
    data = load_template(path)
    # Then each short tag became its JSON long form
    assert data == {
        "A": {"Ref": "X"}, "B": {"Fn::Sub": "a-${X}"},
        "C": {"Fn::GetAtt": ["R", "Arn"]}, "D": {"Fn::GetAtt": ["R", "Arn"]},
        "E": {"Fn::Join": ["-", ["a", {"Ref": "X"}]]}, "F": {"Fn::If": ["C1", "a", "b"]},
        "G": {"Fn::Equals": ["a", "b"]}, "H": {"Fn::Not": [{"Condition": "C1"}]},
        "I": {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}, "J": {"Fn::FindInMap": ["M", "k", "v"]},
        "K": {"Fn::Base64": "x"}, "L": {"Fn::GetAZs": ""}, "M": {"Fn::ImportValue": "other"},
    }


# --------------------------------------------------------------------------- post-deploy plan


def test_gateway_responses_file_maps_api_gateway_errors_to_our_error_codes() -> None:
    # Given the shared gateway responses file
    responses = load_gateway_responses()
    # Then the auth / unknown-route responses have fixed statuses and our codes
    assert {t: (r.status_code, r.code) for t, r in responses.items() if r.status_code} == {
        "UNAUTHORIZED": (401, "unauthorized"),
        "ACCESS_DENIED": (403, "forbidden"),
        "MISSING_AUTHENTICATION_TOKEN": (404, "not_found"),
        "AUTHORIZER_FAILURE": (503, "service_unavailable"),
        "AUTHORIZER_CONFIGURATION_ERROR": (503, "service_unavailable"),
    }
    # And the generic defaults keep API Gateway's own status (e.g. 429 stays 429): no statusCode in the file
    raw = json.loads((INFRA_DIR / "gateway_responses.json").read_text())
    assert "statusCode" not in raw["DEFAULT_4XX"] and "statusCode" not in raw["DEFAULT_5XX"]
    assert responses["DEFAULT_4XX"].status_code is None
    assert responses["DEFAULT_5XX"].status_code is None
    assert responses["UNAUTHORIZED"].body() == {"error": {"code": "unauthorized", "message": responses["UNAUTHORIZED"].message}}


def test_an_authorizer_that_cannot_decide_answers_503_with_retry_after_on_both_deploy_paths() -> None:
    # Given the shared file: a Lambda authorizer that raises is AUTHORIZER_CONFIGURATION_ERROR in
    # API Gateway (x-amzn-ErrorType AuthorizerConfigurationException), AUTHORIZER_FAILURE its sibling
    responses = load_gateway_responses()
    for response_type in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
        response = responses[response_type]
        # Then it is a 503 that says when to retry, in our error format
        assert (response.status_code, response.code) == (503, "service_unavailable")
        assert int(dict(response.headers)["Retry-After"]) > 0
        # And post_deploy (chalice deploy path) puts the header as a quoted static value
        put = next(a for a in plan_post_deploy(SAMPLE_DEPLOYED)
                   if isinstance(a, PutGatewayResponse) and a.response_type == response_type)
        assert put.status_code == "503"
        assert put.response_parameters == {"gatewayresponse.header.Content-Type": "'application/json'",
                                           "gatewayresponse.header.Retry-After": f"'{dict(response.headers)['Retry-After']}'"}
    # And responses without extra headers only set Content-Type
    assert responses["UNAUTHORIZED"].header_values() == {"Content-Type": "'application/json'"}


def test_gateway_responses_loader_rejects_headers_that_are_not_plain_values(tmp_path: Path) -> None:
    # Given a header value that would end API Gateway's quoted literal early
    path = tmp_path / "gr.json"
    path.write_text(json.dumps({"AUTHORIZER_FAILURE": {"code": "x", "message": "m", "headers": {"Retry-After": "1'"}}}))
    # When / Then loading fails
    with pytest.raises(ValueError, match="headers"):
        load_gateway_responses(path)


def test_gateway_responses_loader_rejects_vtl_special_characters(tmp_path: Path) -> None:
    # Given a file whose message would be interpreted by API Gateway's template engine
    path = tmp_path / "gr.json"
    path.write_text(json.dumps({"DEFAULT_4XX": {"code": "x", "message": "costs $5"}}))
    # When / Then loading fails
    with pytest.raises(ValueError, match="message"):
        load_gateway_responses(path)


SAMPLE_DEPLOYED = {  # shape written by chalice 1.34 `chalice deploy` (chalice/deploy/executor.py + planner.py)
    "resources": [
        {"name": "default-role", "resource_type": "iam_role", "role_name": "photoscale-prod",
         "role_arn": "arn:aws:iam::123456789012:role/photoscale-prod"},
        {"name": "process_upload", "resource_type": "lambda_function",
         "lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:photoscale-prod-process_upload"},
        {"name": "process_upload-sqs-event-source", "resource_type": "sqs_event",
         "queue_arn": "arn:aws:sqs:us-east-1:123456789012:photoscale-prod-uploads",
         "event_uuid": "11111111-1111-1111-1111-111111111111", "queue": "photoscale-prod-uploads",
         "lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:photoscale-prod-process_upload"},
        {"name": "fanout-sqs-event-source", "resource_type": "sqs_event",
         "queue_arn": "arn:aws:sqs:us-east-1:123456789012:photoscale-prod-fanout",
         "event_uuid": "22222222-2222-2222-2222-222222222222", "queue": "photoscale-prod-fanout",
         "lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:photoscale-prod-fanout"},
        {"name": "api_handler", "resource_type": "lambda_function",
         "lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:photoscale-prod"},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "abc123",
         "rest_api_url": "https://abc123.execute-api.us-east-1.amazonaws.com/v1/"},
    ],
    "schema_version": "2.0",
    "backend": "api",
}


def test_plan_enables_batch_item_failures_for_every_sqs_event_source() -> None:
    # Given a deployed.json with two SQS event sources
    # When planned
    actions = plan_post_deploy(SAMPLE_DEPLOYED)
    # Then each mapping gets exactly one EnableBatchItemFailures action, first
    assert actions[:2] == [
        EnableBatchItemFailures("process_upload-sqs-event-source", "11111111-1111-1111-1111-111111111111"),
        EnableBatchItemFailures("fanout-sqs-event-source", "22222222-2222-2222-2222-222222222222"),
    ]
    assert REPORT_BATCH_ITEM_FAILURES == "ReportBatchItemFailures"


def test_plan_puts_every_gateway_response_then_redeploys_the_recorded_stage() -> None:
    # Given a deployed.json with a rest api on stage "v1"
    # When planned
    actions = plan_post_deploy(SAMPLE_DEPLOYED)
    puts = [a for a in actions if isinstance(a, PutGatewayResponse)]
    # Then every gateway response of the shared file is put on that API with our JSON body
    responses = load_gateway_responses()
    assert {p.response_type for p in puts} == set(responses)
    for put in puts:
        expected = responses[put.response_type]
        assert put.rest_api_id == "abc123"
        assert json.loads(put.response_templates["application/json"]) == expected.body()
        assert put.status_code == (None if expected.status_code is None else str(expected.status_code))
    # And the last action redeploys the stage parsed from rest_api_url
    assert actions[-1] == RedeployStage("abc123", "v1")


def test_plan_for_a_deployment_without_api_or_queues_is_empty() -> None:
    # Given a deployed.json with only a function / When planned / Then nothing is to be done
    deployed = {"resources": [SAMPLE_DEPLOYED["resources"][1]], "schema_version": "2.0"}
    assert plan_post_deploy(deployed) == []


# --------------------------------------------------------------------------- multi-region media


def test_media_replication_role_reads_only_this_bucket_and_writes_only_replicas_to_the_other(
    template: dict[str, Any]
) -> None:
    # Given the media replication role
    role = template["Resources"]["MediaReplicationRole"]
    assert role["Condition"] == "ReplicatesMedia"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    (policy,) = role["Properties"]["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    here = "arn:${AWS::Partition}:s3:::photoscale-${Stage}-media-${AWS::AccountId}-${AWS::Region}"
    there = "arn:${AWS::Partition}:s3:::photoscale-${Stage}-media-${AWS::AccountId}-${Other}"
    # Then it reads the replication configuration and object versions of this region's bucket only
    assert statements["ReadReplicationConfiguration"]["Resource"] == {"Fn::Sub": here}
    assert [r["Fn::Sub"] for r in statements["ReadSourceVersions"]["Resource"]] == [f"{here}/uploads/*", f"{here}/media/*"]
    # And writes replicas (objects, deletes, tags) into the other region's bucket, replicated prefixes only
    assert set(statements["WriteReplicas"]["Action"]) == {"s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"}
    assert [r["Fn::Sub"][0] for r in statements["WriteReplicas"]["Resource"]] == [f"{there}/uploads/*", f"{there}/media/*"]
    for statement in statements.values():
        assert statement["Effect"] == "Allow" and "*" not in statement["Action"]


def test_media_bucket_replicates_to_the_other_regions_bucket_only_when_there_is_one(template: dict[str, Any]) -> None:
    props = template["Resources"]["MediaBucket"]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    condition, config, otherwise = props["ReplicationConfiguration"]["Fn::If"]
    assert (condition, otherwise) == ("ReplicatesMedia", {"Ref": "AWS::NoValue"})
    assert template["Conditions"]["ReplicatesMedia"] == {
        "Fn::And": [{"Condition": "HasReplicaRegion"}, {"Fn::Equals": [{"Ref": "ReplicateMedia"}, "true"]}]}
    for rule in config["Rules"]:
        destination = rule["Destination"]
        # The other region: the replica seen from the primary, the primary seen from the replica
        assert destination["Bucket"]["Fn::Sub"][1] == {
            "Other": {"Fn::If": ["IsPrimaryRegion", {"Ref": "ReplicaRegion"}, {"Ref": "PrimaryRegion"}]}}
        assert destination["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
        assert destination["Metrics"] == {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    # And old versions do not outlive an erasure by more than a day
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}


def test_global_identity_and_secret_are_created_by_the_primary_and_replicated(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    # The cursor key: one secret replicated to the other region (same name and value)
    secret = resources["CursorSecret"]
    assert secret["Condition"] == "IsPrimaryRegion"
    assert secret["Properties"]["ReplicaRegions"] == {
        "Fn::If": ["HasReplicaRegion", [{"Region": {"Ref": "ReplicaRegion"}}], {"Ref": "AWS::NoValue"}]}
    # The user pool: multi-region issuer, a replica in the other region, one app client
    assert resources["UserPool"]["Condition"] == resources["UserPoolClient"]["Condition"] == "IsPrimaryRegion"
    assert resources["UserPool"]["Properties"]["IssuerConfiguration"] == {"Type": "UPDATED"}
    replica = resources["UserPoolReplica"]
    assert replica["Condition"] == "PrimaryWithReplica"
    assert replica["Properties"] == {"UserPoolId": {"Ref": "UserPool"}, "RegionName": {"Ref": "ReplicaRegion"}}
    # And the trusted issuer is the multi-region one, named after the primary region
    assert template["Outputs"]["UserPoolIssuer"]["Value"] == {
        "Fn::Sub": "https://issuer-cognito-idp.${PrimaryRegion}.amazonaws.com/${UserPool}"}
