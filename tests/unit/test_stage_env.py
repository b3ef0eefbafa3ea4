"""Stack outputs become a stage's environment: the edge's convention-named outputs win."""
from __future__ import annotations

from infra.stage_env import stage_variables


def test_media_base_url_comes_from_the_edge_templates_media_base_url_output():
    # Given edge outputs with a custom domain (MediaBaseUrl names it, not the cloudfront.net host)
    edge = {"DistributionId": "E123", "CdnDistributionId": "E123", "DistributionDomainName": "d1.cloudfront.net",
            "MediaBaseUrl": "https://photos.example.com/media"}
    # When the stage variables are built
    variables = stage_variables({"UsersTable": "t"}, edge)
    # Then MEDIA_BASE_URL is the MediaBaseUrl output (the site's own origin, which the CSP allows)
    assert variables["MEDIA_BASE_URL"] == "https://photos.example.com/media"
    assert variables["CDN_DISTRIBUTION_ID"] == "E123"
    assert variables["USERS_TABLE"] == "t"


def test_the_export_link_signing_settings_come_from_the_edge_outputs():
    edge = {"CdnDistributionId": "E123", "MediaBaseUrl": "https://photos.example.com/media",
            "ExportsKeyPairId": "K2JCJMDEHXQW5F", "ExportsBaseUrl": "https://photos.example.com"}
    variables = stage_variables({"UsersTable": "t"}, edge)
    assert variables["EXPORTS_KEY_PAIR_ID"] == "K2JCJMDEHXQW5F"
    assert variables["EXPORTS_BASE_URL"] == "https://photos.example.com"


def test_without_edge_outputs_the_stage_keeps_its_media_base_url():
    assert "MEDIA_BASE_URL" not in stage_variables({"UsersTable": "t"})


def test_only_the_api_function_joins_the_cache_tiers_vpc_and_gets_its_endpoint():
    from infra.stage_env import with_cache_tier

    config = {"stages": {"prod": {"lambda_functions": {"bearer_auth": {"lambda_timeout": 10}}}}}
    updated = with_cache_tier(config, "prod", {"ApiSubnetIds": "subnet-a,subnet-b", "ApiSecurityGroupId": "sg-1",
                                               "DaxEndpoint": "daxs://photoscale-prod.abc.dax-clusters.eu-west-1.amazonaws.com"})
    functions = updated["stages"]["prod"]["lambda_functions"]
    assert functions["api_handler"]["subnet_ids"] == ["subnet-a", "subnet-b"]
    assert functions["api_handler"]["security_group_ids"] == ["sg-1"]
    assert functions["api_handler"]["environment_variables"]["DAX_ENDPOINT"].startswith("daxs://")
    assert functions["bearer_auth"] == {"lambda_timeout": 10}
    assert "environment_variables" not in updated["stages"]["prod"]  # not a stage-wide setting
