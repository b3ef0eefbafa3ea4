"""Invariants of the edge firewall (infra/waf.yaml) and its association with the distribution."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.cfn import INFRA_DIR, load_template

WAF_TEMPLATE = INFRA_DIR / "waf.yaml"
EDGE_TEMPLATE = INFRA_DIR / "edge.yaml"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(WAF_TEMPLATE)


@pytest.fixture(scope="module")
def web_acl(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["WebAcl"]["Properties"]


def rules_by_name(web_acl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in web_acl["Rules"]}


def scope_prefix(rule: dict[str, Any]) -> str | None:
    """The URI path prefix a rate-based rule is scoped down to (None: every request)."""
    scope = rule["Statement"]["RateBasedStatement"].get("ScopeDownStatement")
    if scope is None:
        return None
    match = scope["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}}
    assert match["PositionalConstraint"] == "STARTS_WITH"
    return match["SearchString"]


def test_waf_template_passes_cfn_lint_without_errors_or_warnings() -> None:
    # Given infra/waf.yaml / When cfn-lint checks it / Then it reports nothing at all
    result = subprocess.run([str(CFN_LINT), str(WAF_TEMPLATE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_web_acl_is_for_cloudfront_and_the_stack_refuses_any_region_but_us_east_1(
        template: dict[str, Any], web_acl: dict[str, Any]) -> None:
    # Given the web ACL / Then it is CLOUDFRONT-scoped, allows by default, and is per stage
    assert web_acl["Scope"] == "CLOUDFRONT"
    assert web_acl["DefaultAction"] == {"Allow": {}}
    assert "${Stage}" in web_acl["Name"]["Fn::Sub"]
    # And a template rule stops a deployment outside us-east-1 before anything is created
    (assertion,) = template["Rules"]["CloudFrontWebAclsLiveInUsEast1"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    # And its ARN is the one output
    assert template["Outputs"] == {"WebAclArn": {"Value": {"Fn::GetAtt": ["WebAcl", "Arn"]}}}


def test_rate_limits_are_per_client_ip_and_strictest_for_auth_then_api_then_everything(
        template: dict[str, Any], web_acl: dict[str, Any]) -> None:
    # Given the rate-based rules in priority order
    rate_rules = sorted((r for r in web_acl["Rules"] if "RateBasedStatement" in r["Statement"]),
                        key=lambda r: r["Priority"])
    # Then they cover /api/auth/, /api/ and everything, in that order, each counting per IP over 5 minutes
    assert [scope_prefix(r) for r in rate_rules] == ["/api/auth/", "/api/", None]
    defaults = []
    for rule in rate_rules:
        statement = rule["Statement"]["RateBasedStatement"]
        assert statement["AggregateKeyType"] == "IP"
        assert statement["EvaluationWindowSec"] == 300
        parameter = statement["Limit"]["Ref"]
        defaults.append(template["Parameters"][parameter]["Default"])
    # And the narrower the scope, the lower the limit
    assert defaults == sorted(defaults) and len(set(defaults)) == 3
    # And rate rules run before the managed rule groups
    managed = [r for r in web_acl["Rules"] if "ManagedRuleGroupStatement" in r["Statement"]]
    assert max(r["Priority"] for r in rate_rules) < min(r["Priority"] for r in managed)
    assert len({r["Priority"] for r in web_acl["Rules"]}) == len(web_acl["Rules"])


def test_the_auth_scope_matches_the_api_routes_case_insensitively(web_acl: dict[str, Any]) -> None:
    # Given the auth rule's scope-down statement
    match = rules_by_name(web_acl)["auth-per-ip"]["Statement"]["RateBasedStatement"]["ScopeDownStatement"]
    # Then it lower-cases the path first (/API/Auth/login is the same route to an attacker)
    assert match["ByteMatchStatement"]["TextTransformations"] == [{"Priority": 0, "Type": "LOWERCASE"}]


def test_a_blocked_request_gets_429_with_the_api_error_body(web_acl: dict[str, Any]) -> None:
    # Given every blocking rule
    bodies = web_acl["CustomResponseBodies"]
    for rule in web_acl["Rules"]:
        if "Action" not in rule:
            continue
        response = rule["Action"]["Block"]["CustomResponse"]
        # Then it answers 429 with a JSON body in the API's error shape
        assert response["ResponseCode"] == 429, rule["Name"]
        body = bodies[response["CustomResponseBodyKey"]]
        assert body["ContentType"] == "APPLICATION_JSON"
        error = json.loads(body["Content"])["error"]
        assert error["code"] == "too_many_requests" and error["message"]


def test_managed_rule_groups_are_the_free_aws_ones_and_enforce_their_own_actions(web_acl: dict[str, Any]) -> None:
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r for r in web_acl["Rules"]
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert set(managed) == {"AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesKnownBadInputsRuleSet"}
    for rule in managed.values():
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        assert rule["OverrideAction"] == {"None": {}}  # not count-only


def test_every_rule_and_the_acl_publish_metrics_and_samples(web_acl: dict[str, Any]) -> None:
    configs = [web_acl["VisibilityConfig"], *(r["VisibilityConfig"] for r in web_acl["Rules"])]
    for config in configs:
        assert config["SampledRequestsEnabled"] is True
        assert config["CloudWatchMetricsEnabled"] is True
    names = [c["MetricName"]["Fn::Sub"] for c in configs]
    assert len(set(names)) == len(names)


def test_the_distribution_is_always_behind_the_web_acl() -> None:
    # Given the edge template
    edge = load_template(EDGE_TEMPLATE)
    config = edge["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    # Then the distribution names the web ACL by the required WebAclArn parameter (no default)
    assert config["WebACLId"] == {"Ref": "WebAclArn"}
    parameter = edge["Parameters"]["WebAclArn"]
    assert "Default" not in parameter
    # And the parameter only accepts a global (CloudFront) WAFv2 web ACL in us-east-1
    pattern = re.compile(parameter["AllowedPattern"])
    good = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/photoscale-prod-edge/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
    assert pattern.fullmatch(good)
    assert not pattern.fullmatch(good.replace("global/", "regional/"))
    assert not pattern.fullmatch(good.replace("us-east-1", "eu-west-1"))
