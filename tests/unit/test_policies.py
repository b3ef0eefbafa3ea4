"""Per-function IAM policies (infra/policies.py): least privilege, one stage/region/account each."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import policies
from infra.policies import ALLOWED_WILDCARDS, FUNCTIONS, GRANTS, Target, policy, policy_file, write_policies

CONFIG = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"
SAMPLE = Target(stage="prod", region="eu-west-1", account="123456789012",
                user_pool_id="eu-west-1_AbCdEf123", distribution_id="E2EXAMPLE123")


def _resources(document: dict) -> list[str]:
    found = []
    for statement in document["Statement"]:
        resources = statement["Resource"]
        found.extend([resources] if isinstance(resources, str) else resources)
    return found


def _allowed(resource: str) -> bool:
    return any(re.match(pattern, resource) for pattern, _reason in ALLOWED_WILDCARDS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_policy_has_a_wildcard_resource_outside_the_allow_list(function: str) -> None:
    # Given a function's policy for a stage whose pool and distribution exist
    document = policy(function, SAMPLE)
    # Then every resource with a wildcard is one the allow-list names (with its reason)
    wild = [r for r in _resources(document) if "*" in r or "?" in r]
    assert [r for r in wild if not _allowed(r)] == []
    # And the pool/distribution fallbacks are not used once the ids are known
    assert not any(r.endswith(("userpool/*", "distribution/*")) for r in _resources(document))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_resource_is_in_the_target_stage_region_and_account(function: str) -> None:
    # Given a function's policy for prod in eu-west-1
    for resource in _resources(policy(function, SAMPLE)):
        if resource == "*":  # X-Ray (allow-listed)
            continue
        # Then each ARN names this account, and (regional services) this region and stage
        assert ":123456789012:" in resource or "-123456789012-eu-west-1" in resource, resource
        assert "prod" in resource or resource.endswith(("/E2EXAMPLE123", "/eu-west-1_AbCdEf123")), resource
        service = resource.split(":")[2]
        if service not in ("s3", "cloudfront"):
            assert ":eu-west-1:" in resource, resource


def test_the_authorizer_can_only_read_the_sessions_table() -> None:
    # Given the authorizer's policy
    document = policy("bearer_auth", SAMPLE)
    statements = {s["Sid"]: s for s in document["Statement"]}
    # Then apart from its logs and tracing it may only read the sessions table (one BatchGetItem per check)
    assert set(statements) == {"Logs", "Sessions", "Tracing"}
    assert statements["Sessions"]["Action"] == ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
    assert statements["Sessions"]["Resource"] == [
        "arn:aws:dynamodb:eu-west-1:123456789012:table/photoscale-prod-sessions"]


def test_only_the_workers_consume_their_own_queue() -> None:
    # Given every function's policy
    consumers = {
        function: [r.rsplit(":", 1)[1] for s in policy(function, SAMPLE)["Statement"]
                   if "sqs:ReceiveMessage" in s["Action"] for r in s["Resource"]]
        for function in FUNCTIONS
    }
    # Then each worker receives from exactly its queue, and the API and authorizer from none
    assert consumers == {"api_handler": [], "bearer_auth": [], "aggregate_counters": [], "process_uploads": ["photoscale-prod-uploads"],
                         "process_edits": ["photoscale-prod-edits"], "fan_out_feed": ["photoscale-prod-fanout"],
                         "reconcile_counters": []}


def test_each_function_writes_only_its_own_log_group() -> None:
    # Given the API handler's and a worker's policies
    api = next(s for s in policy("api_handler", SAMPLE)["Statement"] if s["Sid"] == "Logs")
    worker = next(s for s in policy("process_uploads", SAMPLE)["Statement"] if s["Sid"] == "Logs")
    # Then each names its own function's log group (Chalice's names: the API handler has no suffix)
    assert api["Resource"][0].endswith(":log-group:/aws/lambda/photoscale-prod")
    assert worker["Resource"][0].endswith(":log-group:/aws/lambda/photoscale-prod-process_uploads")


def test_config_names_a_generated_policy_for_every_function_of_every_aws_stage() -> None:
    # Given .chalice/config.json
    config = json.loads(CONFIG.read_text())
    # Then no stage falls back to one shared policy, and every deployable stage names one file per function
    assert "iam_policy_file" not in config
    for stage in ("dev", "prod"):
        functions = config["stages"][stage]["lambda_functions"]
        assert {f: functions[f]["iam_policy_file"] for f in FUNCTIONS} == {f: policy_file(stage, f) for f in FUNCTIONS}
    assert set(GRANTS) == set(FUNCTIONS)


def test_write_policies_writes_one_valid_document_per_function(tmp_path: Path) -> None:
    # When the policies for a sample target are written
    paths = write_policies(SAMPLE, tmp_path)
    # Then there is one JSON document per function where config.json expects it
    assert sorted(p.relative_to(tmp_path / ".chalice").as_posix() for p in paths) == sorted(
        policy_file("prod", f) for f in FUNCTIONS)
    for path in paths:
        assert json.loads(path.read_text())["Version"] == "2012-10-17"


def test_unknown_pool_falls_back_to_this_region_and_account_only() -> None:
    # Given a stage before infra.stage_env (no USER_POOL_ID yet)
    early = Target(stage="prod", region="eu-west-1", account="123456789012")
    identity = next(s for s in policy("api_handler", early)["Statement"] if s["Sid"] == "Identity")
    # Then the grant is still confined to this region and account (an allow-listed fallback)
    assert identity["Resource"] == ["arn:aws:cognito-idp:eu-west-1:123456789012:userpool/*"]
    assert all(_allowed(r) for r in identity["Resource"])


def test_only_prods_api_function_may_use_the_dax_cluster_and_only_its_own():
    from infra import policies

    def dax_statement(stage, function):
        document = policies.policy(function, policies.Target(stage=stage, region="eu-west-1", account="123456789012"))
        return [s for s in document["Statement"] if any(a.startswith("dax:") for a in s["Action"])]

    [grant] = dax_statement("prod", "api_handler")
    assert grant["Resource"] == ["arn:aws:dax:eu-west-1:123456789012:cache/photoscale-prod"]
    assert "dax:Query" in grant["Action"]  # the pulled celebrity timelines (chalicelib.dax.route_shared_timeline)
    assert "dax:Scan" not in grant["Action"]  # no access pattern scans
    assert dax_statement("dev", "api_handler") == []
    assert all(dax_statement("prod", f) == [] for f in policies.FUNCTIONS if f != "api_handler")


def test_a_multi_region_stage_grants_each_regions_own_resources_and_the_other_regions_originals():
    # Given a stage serving two regions (one IAM role per function, shared by both regions' copies)
    target = Target(stage="prod", region="us-east-1", account="123456789012", user_pool_id="us-east-1_AbC",
                    regions=("us-east-1", "eu-west-1"))
    document = policies.policy("process_edits", target)
    by_sid = {s["Sid"]: s["Resource"] for s in document["Statement"]}
    # Then every global table's replica and every regional copy is granted in both regions
    assert set(by_sid["Tables"]) == {f"arn:aws:dynamodb:{r}:123456789012:table/photoscale-prod-{name}"
                                     for r in ("us-east-1", "eu-west-1") for name in ("photos", "counters", "graph")}
    # And the originals of both regions' buckets are readable (an edit here of a photo uploaded there)
    assert "arn:aws:s3:::photoscale-prod-media-123456789012-eu-west-1/uploads/*" in by_sid["MediaObjects"]
    assert "arn:aws:s3:::photoscale-prod-media-123456789012-us-east-1/uploads/*" in by_sid["MediaObjects"]
    # And each region's queue and log group
    assert by_sid["Consume"] == [f"arn:aws:sqs:{r}:123456789012:photoscale-prod-edits" for r in ("us-east-1", "eu-west-1")]
    assert len(by_sid["Logs"]) == 4
    # And the api's identity writes reach the replicated pool in the primary region (same id in both)
    api = {s["Sid"]: s["Resource"] for s in policies.policy("api_handler", target)["Statement"]}
    assert api["Identity"] == [f"arn:aws:cognito-idp:{r}:123456789012:userpool/us-east-1_AbC"
                               for r in ("us-east-1", "eu-west-1")]
    assert [r.split(":")[3] for r in api["CursorKey"]] == ["us-east-1", "eu-west-1"]


def test_one_region_stage_policy_is_unchanged_by_the_regions_list():
    one = Target(stage="prod", region="eu-west-1", account="123456789012")
    listed = policies.target_from_config("prod", "eu-west-1", "123456789012", {}, regions=("eu-west-1",))
    assert policies.policy("api_handler", one) == policies.policy("api_handler", listed)
