"""infra.post_deploy against moto: batch-item failures on SQS mappings and gateway responses."""
from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.post_deploy import load_gateway_responses, main, run

REGION = "us-east-1"
STAGE = "prod"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return {}\n")
    return buf.getvalue()


@pytest.fixture
def session(aws_credentials: None) -> Iterator[boto3.session.Session]:
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


@pytest.fixture
def deployed(session: boto3.session.Session, tmp_path: Path) -> dict[str, Any]:
    """What `chalice deploy --stage prod` leaves behind: a function with an SQS mapping, a REST API,
    and .chalice/deployed/prod.json describing them (fields as written by chalice 1.34)."""
    suffix = uuid.uuid4().hex[:8]
    iam, lam, sqs, apigw = (session.client(s) for s in ("iam", "lambda", "sqs", "apigateway"))
    role_arn = iam.create_role(
        RoleName=f"photoscale-{suffix}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    function_arn = lam.create_function(
        FunctionName=f"photoscale-{suffix}-process_upload", Runtime="python3.11", Role=role_arn,
        Handler="app.handler", Code={"ZipFile": _zip()},
    )["FunctionArn"]
    queue_url = sqs.create_queue(QueueName=f"photoscale-{suffix}-uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    mapping = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=function_arn, BatchSize=10)
    api_id = apigw.create_rest_api(name=f"photoscale-{suffix}")["id"]
    root_id = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    apigw.put_method(restApiId=api_id, resourceId=root_id, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api_id, resourceId=root_id, httpMethod="GET", type="MOCK")
    apigw.create_deployment(restApiId=api_id, stageName="api")
    doc = {
        "resources": [
            {"name": "process_upload", "resource_type": "lambda_function", "lambda_arn": function_arn},
            {"name": "process_upload-sqs-event-source", "resource_type": "sqs_event", "queue_arn": queue_arn,
             "event_uuid": mapping["UUID"], "queue": queue_url.rsplit("/", 1)[1], "lambda_arn": function_arn},
            {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api_id,
             "rest_api_url": f"https://{api_id}.execute-api.{REGION}.amazonaws.com/api/"},
        ],
        "schema_version": "2.0",
        "backend": "api",
    }
    path = tmp_path / ".chalice" / "deployed" / f"{STAGE}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return {"project_dir": tmp_path, "uuid": mapping["UUID"], "api_id": api_id}


def test_post_deploy_enables_report_batch_item_failures_on_sqs_mappings(
    session: boto3.session.Session, deployed: dict[str, Any]
) -> None:
    # Given a chalice deployment whose SQS mapping reports whole-batch failures (chalice's default)
    lam = session.client("lambda")
    assert not lam.get_event_source_mapping(UUID=deployed["uuid"]).get("FunctionResponseTypes")
    # When the post-deploy step runs
    run(STAGE, project_dir=deployed["project_dir"], session=session)
    # Then the mapping reports individual item failures
    assert lam.get_event_source_mapping(UUID=deployed["uuid"])["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_post_deploy_puts_our_json_error_body_on_every_gateway_response(
    session: boto3.session.Session, deployed: dict[str, Any]
) -> None:
    # Given a deployed REST API without custom gateway responses
    apigw = session.client("apigateway")
    # When the post-deploy step runs
    run(STAGE, project_dir=deployed["project_dir"], session=session)
    # Then every response type from infra/gateway_responses.json is set with our error body and status
    for response_type, expected in load_gateway_responses().items():
        got = apigw.get_gateway_response(restApiId=deployed["api_id"], responseType=response_type)
        assert json.loads(got["responseTemplates"]["application/json"]) == {
            "error": {"code": expected.code, "message": expected.message}}
        assert got.get("statusCode") == (None if expected.status_code is None else str(expected.status_code))
        assert got["responseParameters"] == {f"gatewayresponse.header.{name}": value
                                             for name, value in expected.header_values().items()}
    # And the stage was redeployed so they take effect
    assert len(apigw.get_deployments(restApiId=deployed["api_id"])["items"]) == 2


def test_post_deploy_twice_changes_nothing_the_second_time(
    session: boto3.session.Session, deployed: dict[str, Any]
) -> None:
    # Given the post-deploy step already ran
    first = run(STAGE, project_dir=deployed["project_dir"], session=session)
    assert first
    # When it runs again
    second = run(STAGE, project_dir=deployed["project_dir"], session=session)
    # Then nothing is changed, and no extra deployment is created
    assert second == []
    assert len(session.client("apigateway").get_deployments(restApiId=deployed["api_id"])["items"]) == 2
    mapping = session.client("lambda").get_event_source_mapping(UUID=deployed["uuid"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_dry_run_cli_prints_the_plan_without_changing_anything(
    session: boto3.session.Session, deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployment / When the CLI runs with --dry-run
    main(["--stage", STAGE, "--project-dir", str(deployed["project_dir"]), "--dry-run"])
    # Then it lists the planned actions but leaves the mapping untouched
    out = capsys.readouterr().out
    assert "EnableBatchItemFailures" in out and "PutGatewayResponse" in out and "RedeployStage" in out
    assert not session.client("lambda").get_event_source_mapping(UUID=deployed["uuid"]).get("FunctionResponseTypes")


def test_missing_deployed_json_is_reported_clearly(tmp_path: Path) -> None:
    # Given a project that was never deployed / When the step runs / Then it says what to do
    with pytest.raises(FileNotFoundError, match="chalice deploy --stage prod"):
        run(STAGE, project_dir=tmp_path, session=object())


def test_post_deploy_sets_the_stage_throttling_declared_for_the_stage(
    session: boto3.session.Session, deployed: dict[str, Any]
) -> None:
    # Given a deployed REST API stage without throttling, and the prod limits in infra/deploy.json
    from infra.package import throttling

    limits = throttling(STAGE)
    assert limits, "infra/deploy.json declares throttling for prod"
    # When the post-deploy step runs
    run(STAGE, project_dir=deployed["project_dir"], session=session)
    # Then the stage's default method settings carry that rate and burst
    stage = session.client("apigateway").get_stage(restApiId=deployed["api_id"], stageName="api")
    settings = stage["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == limits["rate_limit"]
    assert settings["throttlingBurstLimit"] == limits["burst_limit"]
