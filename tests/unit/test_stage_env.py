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


def test_without_edge_outputs_the_stage_keeps_its_media_base_url():
    assert "MEDIA_BASE_URL" not in stage_variables({"UsersTable": "t"})
