"""Invariants of the CloudFront edge (infra/edge.yaml), its SPA routing rule and the web publish plan."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.edge_server import headers_from_policy
from infra.cfn import INFRA_DIR, load_template
from infra.publish_web import (IMMUTABLE, NO_CACHE, SHORT, Upload, invalidate, plan_publish, plan_uploads,
                               publish, upload)

EDGE_TEMPLATE = INFRA_DIR / "edge.yaml"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

APP_ROUTES = ["/", "/feed", "/users/alice", "/users/alice/", "/photos/p_01HZX3", "/settings/profile"]
FILES = ["/app.3f9c1a2b.js", "/media/x.jpg", "/favicon.svg", "/index.html", "/assets/style.0a1b2c3d4e.css"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(EDGE_TEMPLATE)


@pytest.fixture(scope="module")
def dist_config(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["Distribution"]["Properties"]["DistributionConfig"]


def behaviours(dist_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path pattern -> behaviour, the default behaviour under ``/*``."""
    found = {b["PathPattern"]: b for b in dist_config["CacheBehaviors"]}
    found["/*"] = dist_config["DefaultCacheBehavior"]
    return found


def origins_of(dist_config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Origin id -> origin; a conditional origin (``!If [cond, origin, NoValue]``) by its id too."""
    found = [o["Fn::If"][1] if "Fn::If" in o else o for o in dist_config["Origins"]]
    return {o["Id"]: o for o in found}


def policy_config(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["SecurityHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]


def csp_with(template: dict[str, Any], upload_origin: str) -> str:
    """The CSP with ``${UploadOrigin}`` substituted (what CloudFormation / the local edge do)."""
    text, variables = policy_config(template)["SecurityHeadersConfig"]["ContentSecurityPolicy"][
        "ContentSecurityPolicy"]["Fn::Sub"]
    assert set(re.findall(r"\$\{([^}]+)\}", text)) == {"UploadOrigin"} == set(variables)
    return text.replace("${UploadOrigin}", upload_origin)


def deployed_upload_origin(template: dict[str, Any], media_bucket: str, failover_bucket: str = "") -> str:
    """``UploadOrigin`` as CloudFormation resolves it for the media bucket names (failover: the other region's)."""
    _, variables = policy_config(template)["SecurityHeadersConfig"]["ContentSecurityPolicy"][
        "ContentSecurityPolicy"]["Fn::Sub"]
    condition, both, one = variables["UploadOrigin"]["Fn::If"]
    assert condition == "HasMediaFailover"
    chosen = both if failover_bucket else one
    return (chosen["Fn::Sub"].replace("${MediaBucketName}", media_bucket)
            .replace("${FailoverMediaBucketName}", failover_bucket))


def spa_function_code(template: dict[str, Any]) -> str:
    return template["Resources"]["SpaRoutingFunction"]["Properties"]["FunctionCode"]


def app_route_regex(template: dict[str, Any]) -> re.Pattern[str]:
    """APP_ROUTE of the CloudFront Function, as a Python regex (the JS literal uses only portable syntax)."""
    match = re.search(r"var APP_ROUTE = /(.+)/;\n", spa_function_code(template))
    assert match, "the function must define APP_ROUTE as a regex literal"
    return re.compile(match.group(1).replace(r"\/", "/"))


# --------------------------------------------------------------------------- lint


def test_edge_template_passes_cfn_lint_without_errors_or_warnings() -> None:
    # Given infra/edge.yaml / When cfn-lint (the venv's console script) checks it
    result = subprocess.run([str(CFN_LINT), str(EDGE_TEMPLATE)], capture_output=True, text=True, check=False)
    # Then it reports nothing at all
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# --------------------------------------------------------------------------- behaviours


def test_api_behaviour_goes_to_the_api_origin_uncached_with_every_method(dist_config: dict[str, Any]) -> None:
    # Given the /api/* behaviour and the api origin
    api = behaviours(dist_config)["/api/*"]
    origins = origins_of(dist_config)
    # Then it targets the API Gateway custom origin over HTTPS/TLS 1.2 only, with no origin path
    # (the API Gateway stage is named "api", so /api/... is forwarded unchanged)
    assert api["TargetOriginId"] == "api"
    origin = origins["api"]
    assert origin["DomainName"] == {"Ref": "ApiDomainName"}
    assert "OriginPath" not in origin
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    # And it is never cached, forwards every viewer value but Host, and allows every method
    assert api["CachePolicyId"] == CACHING_DISABLED
    assert api["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert "FunctionAssociations" not in api


def test_media_and_default_behaviours_go_to_their_buckets_through_origin_access_control(
    template: dict[str, Any], dist_config: dict[str, Any],
) -> None:
    # Given the behaviours and origins
    by_path = behaviours(dist_config)
    origins = origins_of(dist_config)
    # Then (in one region; the origin groups with two) /media/* reads the media bucket, the default and
    # /index.html the web bucket
    assert by_path["/media/*"]["TargetOriginId"]["Fn::If"][2] == "media"
    assert by_path["/*"]["TargetOriginId"]["Fn::If"][2] == "web"
    assert by_path["/index.html"]["TargetOriginId"]["Fn::If"][2] == "web"
    assert origins["media"]["DomainName"] == {"Fn::Sub": "${MediaBucketName}.s3.${AWS::Region}.amazonaws.com"}
    assert origins["web"]["DomainName"] == {"Fn::Sub": "${WebBucketName}.s3.${AWS::Region}.amazonaws.com"}
    # And both bucket origins are signed by the SigV4 S3 origin access control (no legacy OAI)
    oac = template["Resources"]["S3OriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == ("s3", "always", "sigv4")
    for origin_id in ("media", "media-failover", "web", "web-failover"):
        assert origins[origin_id]["OriginAccessControlId"] == {"Fn::GetAtt": ["S3OriginAccessControl", "Id"]}
        assert origins[origin_id]["S3OriginConfig"] == {"OriginAccessIdentity": ""}
        assert "OriginPath" not in origins[origin_id]  # /media/x.jpg -> key media/x.jpg


def test_cache_policies_keep_assets_and_renditions_long_and_revalidate_index_html(
    template: dict[str, Any], dist_config: dict[str, Any],
) -> None:
    # Given the behaviours' cache policies
    by_path = behaviours(dist_config)
    media = template["Resources"]["MediaCachePolicy"]["Properties"]["CachePolicyConfig"]
    index = template["Resources"]["IndexCachePolicy"]["Properties"]["CachePolicyConfig"]
    # Then hashed assets use the managed CachingOptimized policy
    assert by_path["/*"]["CachePolicyId"] == CACHING_OPTIMIZED
    # And renditions are cached for a year on the path alone (no cookies, headers, query strings)
    assert by_path["/media/*"]["CachePolicyId"] == {"Ref": "MediaCachePolicy"}
    assert media["DefaultTTL"] == media["MaxTTL"] == 31536000
    keyed = media["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keyed["CookiesConfig"] == {"CookieBehavior": "none"}
    assert keyed["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert keyed["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    # And index.html is not cached by default and for at most a minute
    assert by_path["/index.html"]["CachePolicyId"] == {"Ref": "IndexCachePolicy"}
    assert index["MinTTL"] == index["DefaultTTL"] == 0
    assert index["MaxTTL"] <= 60


def test_distribution_is_http3_compressed_https_only_and_priced_by_parameter(dist_config: dict[str, Any]) -> None:
    # Given the distribution config
    # Then HTTP/2 + HTTP/3 are on, the price class is a parameter, and every behaviour compresses
    # and redirects HTTP to HTTPS
    assert dist_config["HttpVersion"] == "http2and3"
    assert dist_config["PriceClass"] == {"Ref": "PriceClass"}
    assert dist_config["Enabled"] is True
    for path, behaviour in behaviours(dist_config).items():
        assert behaviour["Compress"] is True, path
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https", path


def test_custom_domain_is_used_only_with_both_aliases_and_a_certificate(
    template: dict[str, Any], dist_config: dict[str, Any],
) -> None:
    # Given the aliases / certificate parameters, condition and viewer certificate
    condition = template["Conditions"]["HasCustomDomain"]
    # Then the custom domain needs both parameters set, else the default *.cloudfront.net certificate
    assert condition == {"Fn::And": [
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "Aliases"}, ""]}]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "AcmCertificateArn"}, ""]}]},
    ]}
    assert dist_config["Aliases"]["Fn::If"][0] == "HasCustomDomain"
    custom, default = dist_config["ViewerCertificate"]["Fn::If"][1:]
    assert custom["SslSupportMethod"] == "sni-only"
    assert custom["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert default == {"CloudFrontDefaultCertificate": True}
    # And a rule rejects aliases without a certificate at deploy time
    assert "AliasesNeedCertificate" in template["Rules"]


# --------------------------------------------------------------------------- security headers


def test_every_behaviour_has_the_security_headers_policy(dist_config: dict[str, Any]) -> None:
    # Given every behaviour / Then each one attaches the same response headers policy
    for path, behaviour in behaviours(dist_config).items():
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "SecurityHeadersPolicy"}, path


def test_security_headers_policy_is_strict_and_overrides_the_origin(template: dict[str, Any]) -> None:
    # Given the response headers policy
    security = policy_config(template)["SecurityHeadersConfig"]
    # Then every header overrides what the origin sent
    assert all(header["Override"] is True for header in security.values())
    # And the framing, referrer and HSTS settings are the strict ones
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin"
    assert security["StrictTransportSecurity"] == {
        "AccessControlMaxAgeSec": 63072000, "IncludeSubdomains": True, "Preload": True, "Override": True}
    assert "ContentTypeOptions" in security


def test_csp_allows_nothing_inline_and_uploads_only_to_the_media_buckets_endpoint(template: dict[str, Any]) -> None:
    # Given the CSP as deployed for a media bucket
    origin = deployed_upload_origin(template, "photoscale-prod-media-123")
    assert origin == "https://photoscale-prod-media-123.s3.amazonaws.com"
    csp = csp_with(template, origin)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    # Then nothing inline or eval'd is allowed anywhere
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # And the directives are exactly the strict set, connect-src adding only the bucket's own endpoint
    assert directives == {
        "default-src": "'self'", "img-src": "'self' data: blob:", "media-src": "'self'",
        "connect-src": "'self' https://photoscale-prod-media-123.s3.amazonaws.com", "style-src": "'self'",
        "script-src": "'self'", "object-src": "'none'", "frame-ancestors": "'none'", "base-uri": "'self'",
        "form-action": "'self'",
    }
    assert "*" not in csp
    # And locally the embedded S3 origin takes its place
    assert "connect-src 'self' http://127.0.0.1:4566;" in csp_with(template, "http://127.0.0.1:4566")


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_the_csp_allows_the_url_the_api_presigns_uploads_to(template: dict[str, Any], region: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the S3 client the API presigns uploads with (chalicelib.aws, no endpoint override)
    from urllib.parse import urlsplit

    from chalicelib import aws, settings

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("PHOTOSCALE_AWS_ENDPOINT", raising=False)
    environ = {name: "x" for name in settings._REQUIRED.values()} | {"AWS_REGION": region}
    monkeypatch.setattr(settings, "get_settings", lambda: settings.load_settings(environ))
    monkeypatch.setattr(aws, "get_settings", settings.get_settings)
    aws.reset()
    try:
        url = aws.client("s3").generate_presigned_post("photoscale-prod-media-123", "uploads/ann/01H")["url"]
    finally:
        aws.reset()
    # Then the upload URL's origin is exactly the one connect-src allows
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == deployed_upload_origin(template, "photoscale-prod-media-123")


def test_local_edge_turns_the_policy_into_the_expected_headers(template: dict[str, Any]) -> None:
    # Given the template's policy with the CSP substituted as the local edge does for its moto endpoint
    config = copy.deepcopy(policy_config(template))
    csp = csp_with(template, "http://127.0.0.1:4566")
    config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"] = csp
    # When devstack's translation runs
    headers = headers_from_policy(config)
    # Then it yields the five security headers with their values
    assert headers == {
        "Content-Security-Policy": csp,
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


def test_local_edge_reads_the_header_names_from_the_raw_template_policy(template: dict[str, Any]) -> None:
    # Given the policy exactly as loaded (the CSP still a Fn::Sub) / When translated
    headers = headers_from_policy(policy_config(template))
    # Then the header names are the five security headers
    assert set(headers) == {"Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options",
                            "X-Frame-Options", "Referrer-Policy"}


# --------------------------------------------------------------------------- bucket policies


def test_media_bucket_policy_exposes_only_renditions_and_exports_to_this_distribution(template: dict[str, Any]) -> None:
    # Given the media bucket policy
    policy = template["Resources"]["MediaBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "MediaBucketName"}
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    # Then the only Allow is CloudFront GetObject on media/* and exports/* (never uploads/), from our
    # distribution only
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:s3:::${MediaBucketName}/media/*"},
                                 {"Fn::Sub": "arn:${AWS::Partition}:s3:::${MediaBucketName}/exports/*"}]
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": {
        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Distribution}"}}}


def test_exports_are_served_only_with_signed_urls_of_the_exports_key_group_and_never_cached(
    template: dict[str, Any], dist_config: dict[str, Any],
) -> None:
    # Given the /exports/* behaviour and the key group
    exports = behaviours(dist_config)["/exports/*"]
    resources = template["Resources"]
    # Then it goes to the media bucket, trusts only the exports key group, and caches nothing
    # (through the media origin group: a zip lives in the bucket of the region whose worker built it)
    assert exports["TargetOriginId"] == {"Fn::If": ["HasMediaFailover", "media-group", "media"]}
    assert exports["TrustedKeyGroups"] == [{"Ref": "ExportsKeyGroup"}]
    assert exports["CachePolicyId"] == CACHING_DISABLED
    assert exports["AllowedMethods"] == ["GET", "HEAD"]
    assert resources["ExportsKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"] == [{"Ref": "ExportsPublicKey"}]
    assert resources["ExportsPublicKey"]["Properties"]["PublicKeyConfig"]["EncodedKey"] == {"Ref": "ExportsPublicKeyPem"}
    # And no other behaviour reaches the exports (the media behaviour serves media/* only)
    assert [p for p, b in behaviours(dist_config).items() if "TrustedKeyGroups" in b] == ["/exports/*"]
    # And the app learns the key's id and the base URL from the outputs (-> EXPORTS_KEY_PAIR_ID, EXPORTS_BASE_URL)
    assert template["Outputs"]["ExportsKeyPairId"]["Value"] == {"Ref": "ExportsPublicKey"}
    assert template["Outputs"]["ExportsBaseUrl"]["Value"]["Fn::If"][2] == {"Fn::Sub": "https://${Distribution.DomainName}"}


def test_web_bucket_policy_lets_only_this_distribution_read_the_site(template: dict[str, Any]) -> None:
    # Given the web bucket policy
    policy = template["Resources"]["WebBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "WebBucketName"}
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    # Then CloudFront may GetObject anything in it, from our distribution only
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${WebBucketName}/*"}
    assert allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"].endswith(":distribution/${Distribution}")


def test_both_bucket_policies_deny_plain_http(template: dict[str, Any]) -> None:
    # Given both bucket policies / Then each denies any request not made over TLS
    for logical_id in ("MediaBucketPolicy", "WebBucketPolicy"):
        statements = template["Resources"][logical_id]["Properties"]["PolicyDocument"]["Statement"]
        (deny,) = [s for s in statements if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, logical_id
        assert deny["Action"] == "s3:*"


# --------------------------------------------------------------------------- outputs


# --------------------------------------------------------------------------- several regions


def test_media_fails_over_to_the_other_regions_bucket_on_errors_only_with_two_regions(
    template: dict[str, Any], dist_config: dict[str, Any]
) -> None:
    # Given the distribution's origin group for /media/*
    condition, groups, otherwise = dist_config["OriginGroups"]["Fn::If"]
    assert (condition, otherwise) == ("HasMediaFailover", {"Ref": "AWS::NoValue"})
    assert groups["Quantity"] == len(groups["Items"]) == 2
    (group,) = [g for g in groups["Items"] if g["Id"] == "media-group"]
    # Then it tries the primary region's bucket, then the other region's replica, on 403/404/5xx
    assert [m["OriginId"] for m in group["Members"]["Items"]] == ["media", "media-failover"]
    assert group["FailoverCriteria"]["StatusCodes"]["Items"] == [403, 404, 500, 502, 503, 504]
    assert group["FailoverCriteria"]["StatusCodes"]["Quantity"] == 6
    # And the /media/* behaviour targets the group only when there is a second bucket, GET/HEAD only
    media = behaviours(dist_config)["/media/*"]
    assert media["TargetOriginId"] == {"Fn::If": ["HasMediaFailover", "media-group", "media"]}
    assert media["AllowedMethods"] == ["GET", "HEAD"]
    # And the failover origin is the other bucket in its own region, signed by the same OAC
    failover = origins_of(dist_config)["media-failover"]
    assert failover["DomainName"] == {"Fn::Sub": "${FailoverMediaBucketName}.s3.${FailoverRegion}.amazonaws.com"}
    assert failover["OriginAccessControlId"] == {"Fn::GetAtt": ["S3OriginAccessControl", "Id"]}


def test_the_web_client_fails_over_to_the_other_regions_web_bucket_on_errors_only_with_two_regions(
    dist_config: dict[str, Any]
) -> None:
    # Given the distribution's origin groups (present only with a second region)
    condition, groups, _ = dist_config["OriginGroups"]["Fn::If"]
    assert condition == "HasMediaFailover"
    (group,) = [g for g in groups["Items"] if g["Id"] == "web-group"]
    # Then the web client is read from the primary region's web bucket, then the other region's, on
    # 403/404/5xx (the same criteria as the media)
    assert [m["OriginId"] for m in group["Members"]["Items"]] == ["web", "web-failover"]
    assert group["Members"]["Quantity"] == 2
    assert group["FailoverCriteria"]["StatusCodes"] == {"Quantity": 6, "Items": [403, 404, 500, 502, 503, 504]}
    # And the default behaviour (assets, deep links) and /index.html target it with two regions, GET/HEAD only
    for path in ("/*", "/index.html"):
        behaviour = behaviours(dist_config)[path]
        assert behaviour["TargetOriginId"] == {"Fn::If": ["HasMediaFailover", "web-group", "web"]}, path
        assert behaviour["AllowedMethods"] == ["GET", "HEAD"], path
    # And the failover origin is the other region's web bucket in its own region, signed by the same OAC
    failover = origins_of(dist_config)["web-failover"]
    assert failover["DomainName"] == {"Fn::Sub": "${FailoverWebBucketName}.s3.${FailoverRegion}.amazonaws.com"}
    assert failover["OriginAccessControlId"] == {"Fn::GetAtt": ["S3OriginAccessControl", "Id"]}
    assert [o["Fn::If"][0] for o in dist_config["Origins"] if "Fn::If" in o] == ["HasMediaFailover"] * 2


def test_a_second_region_comes_with_both_its_buckets_and_its_region(template: dict[str, Any]) -> None:
    # Given the rules on the failover parameters
    rules = template["Rules"]
    set_ = lambda name: {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}  # noqa: E731
    # Then either failover bucket needs the region, and the region needs both buckets (so the one
    # condition, HasMediaFailover, stands for "a second region" in both origin groups)
    assert rules["FailoverBucketNeedsItsRegion"]["RuleCondition"] == set_("FailoverMediaBucketName")
    assert rules["FailoverWebBucketNeedsItsRegion"]["RuleCondition"] == set_("FailoverWebBucketName")
    for name in ("FailoverBucketNeedsItsRegion", "FailoverWebBucketNeedsItsRegion"):
        assert [a["Assert"] for a in rules[name]["Assertions"]] == [set_("FailoverRegion")], name
    together = rules["FailoverBucketsComeTogether"]
    assert together["RuleCondition"] == set_("FailoverRegion")
    assert [a["Assert"] for a in together["Assertions"]] == [
        {"Fn::And": [set_("FailoverMediaBucketName"), set_("FailoverWebBucketName")]}]
    assert template["Conditions"]["HasMediaFailover"] == set_("FailoverMediaBucketName")


def test_media_access_template_passes_cfn_lint_without_errors_or_warnings() -> None:
    result = subprocess.run([str(CFN_LINT), str(INFRA_DIR / "media-access.yaml")], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_uploads_may_go_to_either_regions_bucket_with_two_regions(template: dict[str, Any]) -> None:
    origin = deployed_upload_origin(template, "photoscale-prod-media-1-us-east-1", "photoscale-prod-media-1-eu-west-1")
    assert origin == ("https://photoscale-prod-media-1-us-east-1.s3.amazonaws.com "
                      "https://photoscale-prod-media-1-eu-west-1.s3.amazonaws.com")


@pytest.mark.parametrize("resource, kind, parameter", [
    ("MediaBucketPolicy", "media", "MediaBucketName"), ("WebBucketPolicy", "web", "WebBucketName")])
def test_the_failover_buckets_policy_is_the_edge_policy_for_its_own_bucket(resource, kind, parameter) -> None:
    # Given a bucket policy of the edge (primary's bucket) and of media-access.yaml (the other's)
    edge = load_template(EDGE_TEMPLATE)["Resources"][resource]["Properties"]
    replica = load_template(INFRA_DIR / "media-access.yaml")["Resources"][resource]["Properties"]
    bucket = f"photoscale-${{Stage}}-{kind}-${{AWS::AccountId}}-${{AWS::Region}}"
    assert replica["Bucket"] == {"Fn::Sub": bucket}
    # Then, bucket and distribution names aside, they grant and deny exactly the same
    text = json.dumps(replica["PolicyDocument"]).replace(bucket, f"${{{parameter}}}").replace(
        "${DistributionId}", "${Distribution}")
    assert json.loads(text) == edge["PolicyDocument"]


def test_each_region_routes_the_shared_api_name_by_latency_while_its_health_check_passes() -> None:
    # Given the per-region routing template
    routing = load_template(INFRA_DIR / "routing.yaml")
    resources = routing["Resources"]
    record = resources["ApiLatencyRecord"]["Properties"]
    # Then the region's latency record for the shared name is answered only while its health check passes
    assert record["Region"] == record["SetIdentifier"] == {"Ref": "AWS::Region"}
    assert record["Name"] == {"Ref": "ApiDomainName"}
    assert record["HealthCheckId"] == {"Ref": "ApiHealthCheck"}
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["ApiCustomDomain", "RegionalDomainName"]}
    # And the health check probes this region's own API at /api/health (not the shared name)
    check = resources["ApiHealthCheck"]["Properties"]["HealthCheckConfig"]
    assert check["FullyQualifiedDomainName"] == {"Fn::Sub": "${RestApiId}.execute-api.${AWS::Region}.amazonaws.com"}
    assert check["ResourcePath"] == {"Fn::Sub": "/${RestApiStage}/health"}
    assert routing["Parameters"]["RestApiStage"]["Default"] == "api"
    assert check["Type"] == "HTTPS" and check["EnableSNI"] is True
    # And the shared name maps /api/* to the same stage, so the edge forwards /api/* unchanged
    assert resources["ApiBasePathMapping"]["Properties"]["BasePath"] == "api"
    # And about a minute to fail over: interval x threshold, then the alias's DNS TTL
    params = routing["Parameters"]
    assert params["HealthCheckIntervalSeconds"]["Default"] * params["HealthCheckFailureThreshold"]["Default"] == 30


def test_outputs_give_the_distribution_id_domain_and_media_base_url(template: dict[str, Any]) -> None:
    # Given the outputs
    outputs = template["Outputs"]
    # Then the distribution id and domain are exported, plus the convention-named env outputs
    assert outputs["DistributionId"]["Value"] == {"Ref": "Distribution"}
    assert outputs["DistributionDomainName"]["Value"] == {"Fn::GetAtt": ["Distribution", "DomainName"]}
    assert outputs["CdnDistributionId"]["Value"] == {"Ref": "Distribution"}  # -> CDN_DISTRIBUTION_ID
    assert outputs["MediaBaseUrl"]["Value"]["Fn::If"][2] == {"Fn::Sub": "https://${Distribution.DomainName}/media"}


# --------------------------------------------------------------------------- SPA routing


def test_spa_function_runs_on_viewer_request_of_the_default_behaviour_only(
    template: dict[str, Any], dist_config: dict[str, Any],
) -> None:
    # Given the function and the behaviours
    function = template["Resources"]["SpaRoutingFunction"]["Properties"]
    # Then it is published on the JS 2.0 runtime and associated with the default behaviour alone
    assert function["AutoPublish"] is True
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert dist_config["DefaultCacheBehavior"]["FunctionAssociations"] == [{
        "EventType": "viewer-request",
        "FunctionARN": {"Fn::GetAtt": ["SpaRoutingFunction", "FunctionMetadata.FunctionARN"]},
    }]
    for behaviour in dist_config["CacheBehaviors"]:
        assert "FunctionAssociations" not in behaviour


@pytest.mark.parametrize("path", APP_ROUTES)
def test_spa_rule_sends_app_routes_to_index_html(template: dict[str, Any], path: str) -> None:
    # Given an app route (no file extension) / When matched against APP_ROUTE / Then it is rewritten
    assert app_route_regex(template).search(path)


@pytest.mark.parametrize("path", FILES)
def test_spa_rule_leaves_files_alone(template: dict[str, Any], path: str) -> None:
    # Given a path naming a file / When matched against APP_ROUTE / Then it is left as is
    assert not app_route_regex(template).search(path)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_spa_function_code_itself_rewrites_only_app_routes(template: dict[str, Any]) -> None:
    # Given the function code run by node (a local process, no network) on sample viewer requests
    script = spa_function_code(template) + (
        "\nconst paths = JSON.parse(process.argv[1]);"
        "\nconsole.log(JSON.stringify(paths.map(uri => handler({request: {uri: uri}}).uri)));\n"
    )
    paths = APP_ROUTES + FILES
    result = subprocess.run(["node", "-e", script, json.dumps(paths)], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    # Then app routes become /index.html and files keep their path
    assert json.loads(result.stdout) == ["/index.html"] * len(APP_ROUTES) + FILES


# --------------------------------------------------------------------------- publish plan


DIST_FILES = [
    "index.html", "assets/app.3f9c1a2b.js", "assets/app.3f9c1a2b.js.map", "assets/style.0a1b2c3d4e5f.css",
    "favicon.svg", "fonts/inter.deadbeef.woff2", "robots.txt", "legal/index.html", ".DS_Store",
]


def test_plan_uploads_index_html_last_with_no_cache() -> None:
    # Given the files of a build / When planned
    plan = plan_uploads(DIST_FILES)
    # Then the root index.html is the very last upload, text/html, no-cache
    assert plan[-1] == Upload("index.html", "text/html; charset=utf-8", NO_CACHE)
    # And every other index.html comes after all assets, also no-cache
    kinds = [item.cache_control for item in plan]
    assert kinds == sorted(kinds, key=[IMMUTABLE, SHORT, NO_CACHE].index)
    assert {item.key: item.cache_control for item in plan}["legal/index.html"] == NO_CACHE


def test_plan_uploads_marks_hashed_assets_immutable_and_others_short() -> None:
    # Given the files of a build / When planned
    by_key = {item.key: item for item in plan_uploads(DIST_FILES)}
    # Then names with .<8+ hex>. before the extension are immutable, with the right content types
    assert by_key["assets/app.3f9c1a2b.js"] == Upload(
        "assets/app.3f9c1a2b.js", "text/javascript; charset=utf-8", IMMUTABLE)
    assert by_key["assets/style.0a1b2c3d4e5f.css"] == Upload(
        "assets/style.0a1b2c3d4e5f.css", "text/css; charset=utf-8", IMMUTABLE)
    assert by_key["fonts/inter.deadbeef.woff2"] == Upload("fonts/inter.deadbeef.woff2", "font/woff2", IMMUTABLE)
    assert by_key["assets/app.3f9c1a2b.js.map"].cache_control == IMMUTABLE
    # And unhashed files get a short max-age; hidden files are not published
    assert by_key["favicon.svg"] == Upload("favicon.svg", "image/svg+xml", SHORT)
    assert by_key["robots.txt"].cache_control == SHORT
    assert ".DS_Store" not in by_key
    # And a short hex run or an upper-case one is not a content hash
    assert plan_uploads(["app.3f9c1a2.js"])[0].cache_control == SHORT


def test_plan_uploads_rejects_paths_outside_the_dist_directory() -> None:
    # Given absolute or parent-relative paths / When planned / Then they are refused
    for bad in ("/etc/passwd", "../secrets.txt", "a/../../b.js"):
        with pytest.raises(ValueError):
            plan_uploads([bad])


class FakeS3:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, str]]] = []

    def upload_file(self, filename: str, bucket: str, key: str, ExtraArgs: dict[str, str]) -> None:  # noqa: N803
        self.calls.append((filename, bucket, key, ExtraArgs))


class FakeCloudFront:
    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []

    def create_invalidation(self, DistributionId: str, InvalidationBatch: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.batches.append({"DistributionId": DistributionId, **InvalidationBatch})
        return {"Invalidation": {"Id": "I123"}}


def test_publish_uploads_in_plan_order_then_invalidates_only_index_html(tmp_path: Path) -> None:
    # Given a plan and fake S3 / CloudFront clients
    plan = plan_uploads(["index.html", "app.3f9c1a2b.js"])
    s3, cloudfront = FakeS3(), FakeCloudFront()
    # When uploaded and invalidated
    upload(plan, tmp_path, "web-bucket", s3)
    invalidation_id = invalidate(cloudfront, "E1", caller_reference="ref-1")
    # Then objects were put in plan order with their headers, index.html last
    assert [(c[2], c[3]["CacheControl"]) for c in s3.calls] == [("app.3f9c1a2b.js", IMMUTABLE), ("index.html", NO_CACHE)]
    assert s3.calls[-1][0] == str(tmp_path / "index.html")
    assert s3.calls[-1][3]["ContentType"] == "text/html; charset=utf-8"
    # And one invalidation of /index.html only was created
    assert invalidation_id == "I123"
    assert cloudfront.batches == [{"DistributionId": "E1", "Paths": {"Quantity": 1, "Items": ["/index.html"]},
                                   "CallerReference": "ref-1"}]


def test_publishing_to_two_buckets_puts_every_asset_in_both_before_either_index() -> None:
    # Given a build and the primary's and the other region's web buckets
    plan = plan_uploads(DIST_FILES)
    # When the publish steps are planned
    steps = plan_publish(plan, ["web-us", "web-eu", "web-us"])
    # Then each bucket gets the whole plan exactly once (a repeated bucket is one target)
    for bucket in ("web-us", "web-eu"):
        assert sorted(item.key for b, item in steps if b == bucket) == sorted(item.key for item in plan)
    assert len(steps) == 2 * len(plan)
    # And every non-index file is in both buckets before any index.html is put anywhere
    first_index = next(i for i, (_, item) in enumerate(steps) if item.cache_control == NO_CACHE)
    assert all(item.cache_control != NO_CACHE for _, item in steps[:first_index])
    assert all(item.cache_control == NO_CACHE for _, item in steps[first_index:])
    # And in each bucket the root index.html is the last object put
    for bucket in ("web-us", "web-eu"):
        assert [item.key for b, item in steps if b == bucket][-1] == "index.html"
    # And the plan's own order holds within each bucket's phase
    assert [item for b, item in steps if b == "web-eu"] == (
        [i for i in plan if i.cache_control != NO_CACHE] + [i for i in plan if i.cache_control == NO_CACHE])


def test_publishing_needs_a_bucket() -> None:
    with pytest.raises(ValueError):
        plan_publish(plan_uploads(["index.html"]), [])


def test_publish_uploads_to_every_bucket_in_the_planned_order(tmp_path: Path) -> None:
    # Given a plan, two buckets and a fake S3 client
    plan = plan_uploads(["index.html", "app.3f9c1a2b.js"])
    s3 = FakeS3()
    # When published
    publish(plan, tmp_path, ["web-us", "web-eu"], s3)
    # Then the asset went into both buckets, then the index into both, with their headers
    assert [(c[1], c[2], c[3]["CacheControl"]) for c in s3.calls] == [
        ("web-us", "app.3f9c1a2b.js", IMMUTABLE), ("web-eu", "app.3f9c1a2b.js", IMMUTABLE),
        ("web-us", "index.html", NO_CACHE), ("web-eu", "index.html", NO_CACHE)]
