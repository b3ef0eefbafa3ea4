"""infra.deploy's stack plan: prod deploys the cache tier (infra/dax.yaml) in every region before Chalice,
its outputs place the API function (only) in the tier's VPC and name the cluster the observability stack
alarms on; dev deploys no stack at all. CloudFormation is moto's (no real AWS)."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra import deploy, package, policies, stage_env
from infra.cfn import INFRA_DIR, load_template

SETTINGS = package.deploy_settings()
REGIONS = list(SETTINGS["regions"])
DAX_TEMPLATE = INFRA_DIR / "dax.yaml"
CONFIG = json.loads((package.PROJECT_DIR / ".chalice" / "config.json").read_text())


def stand_in_for(template: Path, outputs: dict[str, str], where: Path) -> Path:
    """A template moto can create (it has no AWS::DAX::Cluster) with the real template's parameters
    and exactly its outputs, answering ``outputs``' values."""
    real = load_template(template)
    assert set(outputs) == set(real["Outputs"])
    body = {"Parameters": {name: {"Type": "String", **({"Default": str(spec["Default"])} if "Default" in spec else {})}
                           for name, spec in real["Parameters"].items()},
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stand-in-marker"}}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()}}
    where.write_text(json.dumps(body))
    return where


def dax_outputs(region: str) -> dict[str, str]:
    return {"DaxEndpoint": f"daxs://photoscale-prod.abc123.dax-clusters.{region}.amazonaws.com",
            "DaxClusterArn": f"arn:aws:dax:{region}:123456789012:cache/photoscale-prod",
            "DaxClusterName": "photoscale-prod", "ApiSubnetIds": "subnet-a,subnet-b", "ApiSecurityGroupId": "sg-api"}


def env_file(tmp_path: Path, stage: str, region: str) -> Path:
    """The region's environment as infra.stage_env writes it before the first deploy (no cache tier yet)."""
    path = stage_env.region_env_file(stage, region, tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"environment_variables": {"USERS_TABLE": f"photoscale-{stage}-users"}}))
    return path


@pytest.mark.parametrize("region", REGIONS)
def test_prod_deploys_the_cache_tier_stack_in_every_region_and_dev_deploys_none(region: str) -> None:
    # When the deploy plans prod and dev in a region of the stage
    prod, dev = deploy.stack_plan("prod", region), deploy.stack_plan("dev", region)
    # Then prod has exactly the cache tier, from infra/dax.yaml, named per stage, in that region
    assert prod == [deploy.StackStep(key=deploy.CACHE_TIER, stack_name="photoscale-prod-dax", template=DAX_TEMPLATE,
                                     region=region, parameters=(("Stage", "prod"),), capabilities=("CAPABILITY_IAM",))]
    # And dev (and local) has no stack: no VPC, no cluster
    assert dev == [] and deploy.stack_plan("local", region) == []


def test_the_planned_cache_tier_fits_its_template_and_the_stages_the_policies_grant_dax_to() -> None:
    (step,) = deploy.stack_plan("prod", REGIONS[0])
    template = load_template(step.template)
    # Every parameter passed is one of the template's, with a value it allows
    for name, value in step.parameters:
        assert value in template["Parameters"][name].get("AllowedValues", [value]), name
    # And the stages with a cache tier are the ones whose API function gets dax:* and ENI grants
    assert tuple(SETTINGS["stacks"][deploy.CACHE_TIER]["stages"]) == policies.DAX_STAGES
    # And the template outputs what the deploy reads from it
    assert {"DaxEndpoint", "ApiSubnetIds", "ApiSecurityGroupId", "DaxClusterName"} <= set(template["Outputs"])


def test_a_prod_deploy_creates_the_cache_tier_and_puts_only_the_api_function_in_its_vpc(
        aws_credentials: None, tmp_path: Path) -> None:
    region = REGIONS[-1]
    env = env_file(tmp_path, "prod", region)
    (step,) = deploy.stack_plan("prod", region)
    stand_in = stand_in_for(step.template, dax_outputs(region), tmp_path / "dax.json")
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=region)
        # When the deploy runs the region's plan (the stand-in template in place of the real one)
        steps = [deploy.StackStep(**{**step.__dict__, "template": stand_in})]
        outputs = deploy.deploy_stacks("prod", region, cloudformation, env_dir=tmp_path, steps=steps)
        # Then the stack exists, its outputs are recorded in the region's environment file
        assert cloudformation.describe_stacks(StackName="photoscale-prod-dax")["Stacks"][0]["StackStatus"] \
            == "CREATE_COMPLETE"
        assert outputs == {"cache_tier": dax_outputs(region)}
        recorded = json.loads(env.read_text())
        assert recorded["cache_tier"] == dax_outputs(region)
        assert recorded["environment_variables"] == {"USERS_TABLE": "photoscale-prod-users"}
        # And deploying again updates the same stack (no second one, same outputs)
        assert deploy.deploy_stacks("prod", region, cloudformation, env_dir=tmp_path, steps=steps) == outputs
        assert [s["StackName"] for s in cloudformation.describe_stacks()["Stacks"]] == ["photoscale-prod-dax"]
    # And the config Chalice deploys puts the API function, and no other, in the VPC, with its endpoint
    functions = deploy.region_config(CONFIG, "prod", region, env_dir=tmp_path)["stages"]["prod"]["lambda_functions"]
    api = functions["api_handler"]
    assert (api["subnet_ids"], api["security_group_ids"]) == (["subnet-a", "subnet-b"], ["sg-api"])
    assert api["environment_variables"]["DAX_ENDPOINT"] == dax_outputs(region)["DaxEndpoint"]
    assert [name for name, f in functions.items() if "subnet_ids" in f or "security_group_ids" in f] == ["api_handler"]
    # And the observability stack of that region alarms on that cluster
    parameters = deploy.observability_parameters("prod", region, REGIONS, recorded)
    assert parameters["DaxClusterName"] == "photoscale-prod"


def test_a_dev_deploy_creates_no_stack_and_no_function_joins_a_vpc(aws_credentials: None, tmp_path: Path) -> None:
    region = REGIONS[0]
    env_file(tmp_path, "dev", region)
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=region)
        assert deploy.deploy_stacks("dev", region, cloudformation, env_dir=tmp_path) == {}
        assert cloudformation.describe_stacks()["Stacks"] == []
    config = deploy.region_config(CONFIG, "dev", region, env_dir=tmp_path)
    functions = config["stages"]["dev"].get("lambda_functions", {})
    assert not any("subnet_ids" in f or "security_group_ids" in f for f in functions.values())
    assert "DAX_ENDPOINT" not in config["stages"]["dev"]["environment_variables"]
    # And its observability stack has no DAX alarms
    recorded = json.loads(stage_env.region_env_file("dev", region, tmp_path).read_text())
    assert deploy.observability_parameters("dev", region, REGIONS, recorded)["DaxClusterName"] == ""


def test_rewriting_a_regions_environment_keeps_the_recorded_cache_tier(aws_credentials: None, tmp_path: Path) -> None:
    # Given a prod region whose cache tier the deploy has recorded
    region = REGIONS[0]
    env = env_file(tmp_path, "prod", region)
    env.write_text(json.dumps({**json.loads(env.read_text()), "cache_tier": dax_outputs(region)}))
    stateful = {"UsersTable": "photoscale-prod-users", "MediaBucket": "media", "FanoutQueueUrl": "https://sqs.example/fanout", "UserPoolId": "pool",
                "UserPoolClientId": "client", "UserPoolIssuer": "https://issuer", "CursorSecretArn":
                f"arn:aws:secretsmanager:{region}:123456789012:secret:cursor"}
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name=region)
        cloudformation.create_stack(StackName="photoscale-prod-stateful", TemplateBody=json.dumps({
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "marker"}}},
            "Outputs": {k: {"Value": v} for k, v in stateful.items()}}))
        # When stage_env writes the region's variables again (say, once the edge stack exists)
        stage_env.write_region_envs("prod", [region], lambda r: cloudformation, env_dir=tmp_path)
    # Then the variables are new and the cache tier is still there
    rewritten = json.loads(env.read_text())
    assert rewritten["environment_variables"]["USERS_TABLE"] == "photoscale-prod-users"
    assert rewritten["cache_tier"] == dax_outputs(region)
