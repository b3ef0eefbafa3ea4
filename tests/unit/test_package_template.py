"""infra.package's pure parts: finishing Chalice's SAM template, and refusing the wrong interpreter."""
from __future__ import annotations

import json
import re

import pytest

from infra.package import finalize_template, require_runtime


def _chalice_template() -> dict:
    """The shape `chalice package` 1.34 emits for an API handler and one SQS worker."""
    return {"Resources": {
        "ApiHandlerLogGroup": {"Type": "AWS::Logs::LogGroup",
                               "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${ApiHandler}"}}},
        "APIHandler": {"Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.12"}},
        **{name: {"Type": "AWS::Serverless::Function", "Properties": {}} for name in ("BearerAuth", "FanOutFeed",
                                                                                       "ReconcileCounters")},
        "ProcessEdits": {"Type": "AWS::Serverless::Function", "Properties": {}},
        "AggregateCounters": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
            "AggregateCountersDynamodbEventSource": {"Type": "DynamoDB", "Properties": {"Stream": "s"}}}}},
        "ProcessUploads": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
            "ProcessUploadsSqsEventSource": {"Type": "SQS", "Properties": {"Queue": "q", "BatchSize": 10}}}}},
        "ProcessUploadsRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
            "Statement": [{"Resource": ["arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:q"]}]}}]}},
        "RestAPI": {"Type": "AWS::Serverless::Api", "Properties": {}},
    }}


def _finish(template: dict) -> dict:
    return finalize_template(template, stage="prod", runtime="python3.12", architecture="arm64",
                             throttle={"rate_limit": 10, "burst_limit": 20}, layer_uri="./imaging-layer.zip")


def test_api_log_group_names_the_api_function_instead_of_a_missing_resource() -> None:
    # Given Chalice's template, whose API log group references ${ApiHandler} (the function is APIHandler)
    # When it is finished
    resources = _finish(_chalice_template())["Resources"]
    # Then the log group has the literal name of the function, which now has that explicit name
    assert resources["ApiHandlerLogGroup"]["Properties"]["LogGroupName"] == "/aws/lambda/photoscale-prod"
    assert resources["APIHandler"]["Properties"]["FunctionName"] == "photoscale-prod"


def test_sqs_event_sources_get_report_batch_item_failures_once() -> None:
    # When a template is finished twice
    twice = _finish(_finish(_chalice_template()))
    event = twice["Resources"]["ProcessUploads"]["Properties"]["Events"]["ProcessUploadsSqsEventSource"]
    # Then the event source reports item failures (once)
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_packaged_api_answers_an_authorizer_outage_with_503_and_retry_after() -> None:
    # When Chalice's template is finished (the SAM path; post_deploy does the same on chalice deploy)
    responses = _finish(_chalice_template())["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    # Then an authorizer that cannot decide (key set or sessions table down) is a 503 saying when to retry
    for response_type in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"):
        response = responses[response_type]
        assert response["StatusCode"] == 503
        assert response["ResponseParameters"]["Headers"]["Content-Type"] == "'application/json'"
        assert re.fullmatch(r"'[1-9][0-9]*'", response["ResponseParameters"]["Headers"]["Retry-After"])
        assert json.loads(response["ResponseTemplates"]["application/json"])["error"]["code"] == "service_unavailable"
    # And a 401 carries no Retry-After
    assert "Retry-After" not in responses["UNAUTHORIZED"]["ResponseParameters"]["Headers"]


def test_layer_goes_to_the_image_workers_and_pseudo_parameters_are_substituted() -> None:
    resources = _finish(_chalice_template())["Resources"]
    assert resources["ProcessUploads"]["Properties"]["Layers"] == [{"Ref": "ImagingLayer"}]
    assert resources["ProcessEdits"]["Properties"]["Layers"] == [{"Ref": "ImagingLayer"}]
    assert "Layers" not in resources["APIHandler"]["Properties"]
    statement = resources["ProcessUploadsRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:q"}]
    assert resources["RestAPI"]["Properties"]["MethodSettings"][0]["ThrottlingBurstLimit"] == 20


def test_packaging_refuses_an_interpreter_other_than_the_runtime() -> None:
    # Given the declared runtime python3.12 / When packaging runs on 3.11 / Then it says what is needed
    with pytest.raises(SystemExit, match=r"runtime is python3\.12 .* this is python3\.11.*make package"):
        require_runtime("python3.12", (3, 11))
    require_runtime("python3.12", (3, 12))  # the right one passes


def test_a_dependency_chalice_cannot_install_fails_the_package(tmp_path) -> None:
    # Given Chalice's packager made strict, and a dependency builder that finds no Lambda wheel for pyvips-binary
    from chalice.deploy.packager import BaseLambdaDeploymentPackager, MissingDependencyError, Package
    from chalice.utils import OSUtils

    from infra.strict_chalice import MissingLambdaDependencies, make_chalice_strict

    (tmp_path / "pyvips_binary-8.18.7-cp37-abi3-manylinux_2_28_aarch64.whl").write_bytes(b"")

    class NoWheel:
        def build_site_packages(self, abi, requirements, target):
            raise MissingDependencyError({Package(str(tmp_path), "pyvips_binary-8.18.7-cp37-abi3-manylinux_2_28_aarch64.whl")})

    make_chalice_strict()
    packager = BaseLambdaDeploymentPackager(OSUtils(), NoWheel(), ui=None, architecture="arm64")
    # When it installs the requirements / Then the build stops, naming the package (no "deployment will continue")
    with pytest.raises(MissingLambdaDependencies, match=r"python3\.11/arm64: pyvips-binary==8\.18\.7"):
        packager._build_python_dependencies("python3.11", "requirements.txt", str(tmp_path / "site"))


def _project(tmp_path, region_envs: dict[str, dict]) -> "Path":
    from pathlib import Path

    from infra.package import INPUTS

    root = Path(tmp_path) / "project"
    (root / "chalicelib").mkdir(parents=True)
    (root / "chalicelib" / "__init__.py").write_text("")
    for name in INPUTS:  # every other input: an empty file
        if name != "chalicelib":
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("")
    (root / ".chalice" / "config.json").write_text(json.dumps({"stages": {"prod": {"environment_variables": {
        "STAGE": "prod"}}}}))
    for region, document in region_envs.items():
        env = root / ".chalice" / "env" / "prod"
        env.mkdir(parents=True, exist_ok=True)
        (env / f"{region}.json").write_text(json.dumps(document))
    return root


def test_packaging_for_a_region_stages_that_regions_environment_and_hashes_it(tmp_path) -> None:
    from infra.package import _stage_project, inputs_digest, region_env

    stream = "arn:aws:dynamodb:eu-west-1:123456789012:table/photoscale-prod-counters/stream/2026-12-01T00:00:00.000"
    project = _project(tmp_path, {
        "eu-west-1": {"environment_variables": {"COUNTERS_STREAM_ARN": stream}},
        "us-east-1": {"environment_variables": {"COUNTERS_STREAM_ARN": stream.replace("eu-west-1", "us-east-1")}}})
    staging = tmp_path / "staging"
    staging.mkdir()

    environment = region_env("prod", "eu-west-1", project)
    _stage_project(staging, "prod", None, project, environment)

    staged = json.loads((staging / ".chalice" / "config.json").read_text())
    assert staged["stages"]["prod"]["environment_variables"] == {"STAGE": "prod", "COUNTERS_STREAM_ARN": stream}
    digests = {inputs_digest("prod", "arm64", "python3.12", project, region_env("prod", r, project))
               for r in ("eu-west-1", "us-east-1")} | {inputs_digest("prod", "arm64", "python3.12", project)}
    assert len(digests) == 3  # each region's artifact is its own build, and so is the unregioned check build


def test_packaging_for_a_region_without_its_environment_file_refuses(tmp_path) -> None:
    from infra.package import region_env

    project = _project(tmp_path, {})
    with pytest.raises(SystemExit, match="infra.stage_env --stage prod"):
        region_env("prod", "eu-west-1", project)
    assert region_env("prod", None, project) is None
