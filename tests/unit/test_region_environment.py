"""Each local region's environment follows the multi-region contract (devstack.stack.region_environment)."""
from __future__ import annotations

import json

from devstack.stack import RegionPorts, RegionRuntime, StackConfig, region_environment


def runtime(name: str, port: int) -> RegionRuntime:
    return RegionRuntime(name, "127.0.0.1", RegionPorts(port, port + 1, port + 2), outputs={
        "UserPoolId": f"{name}_pool", "UserPoolClientId": f"{name}-client", "MediaBucket": f"media-{name}",
        "FanoutQueueUrl": f"http://127.0.0.1:4566/123456789012/fanout-{name}"})


def test_each_region_gets_its_own_region_and_the_primarys_pool_for_identity_writes():
    us, eu = runtime("us-east-1", 8001), runtime("eu-west-1", 8011)
    env = region_environment(eu, [us, eu])
    assert (env["AWS_REGION"], env["PRIMARY_REGION"], env["ACTIVE_REGIONS"]) == ("eu-west-1", "us-east-1",
                                                                                 "us-east-1,eu-west-1")
    assert (env["PRIMARY_USER_POOL_ID"], env["PRIMARY_USER_POOL_CLIENT_ID"]) == ("us-east-1_pool", "us-east-1-client")


def test_every_regions_pool_is_a_trusted_issuer_with_its_own_app_client():
    us, eu = runtime("us-east-1", 8001), runtime("eu-west-1", 8011)
    issuers = json.loads(region_environment(us, [us, eu])["TRUSTED_ISSUERS"])
    assert issuers == {"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool": "us-east-1-client",
                       "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_pool": "eu-west-1-client"}


def test_api_urls_media_buckets_and_fanout_queues_are_named_per_region():
    us, eu = runtime("us-east-1", 8001), runtime("eu-west-1", 8011)
    env = region_environment(us, [us, eu])
    assert json.loads(env["REGION_API_URLS"]) == {"us-east-1": "http://127.0.0.1:8001", "eu-west-1": "http://127.0.0.1:8011"}
    assert json.loads(env["MEDIA_BUCKETS"]) == {"us-east-1": "media-us-east-1", "eu-west-1": "media-eu-west-1"}
    assert json.loads(env["FANOUT_QUEUE_URLS"]) == {"us-east-1": "http://127.0.0.1:4566/123456789012/fanout-us-east-1",
                                                    "eu-west-1": "http://127.0.0.1:4566/123456789012/fanout-eu-west-1"}


def test_two_regions_by_default_and_one_when_photoscale_regions_names_one(monkeypatch):
    monkeypatch.delenv("PHOTOSCALE_REGIONS", raising=False)
    config = StackConfig()
    assert config.regions == ("us-east-1", "eu-west-1")
    assert config.region_ports["eu-west-1"] == RegionPorts(api=8011, dax=8121, dax_control=8122)
    monkeypatch.setenv("PHOTOSCALE_REGIONS", "us-east-1")
    assert StackConfig().regions == ("us-east-1",)
