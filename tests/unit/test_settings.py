"""Settings are read from the environment and validated all at once."""
from __future__ import annotations

import json
import uuid

import pytest

from chalicelib.settings import _REQUIRED, SettingsError, load_settings


def complete_env(**overrides: str) -> dict[str, str]:
    """Every required variable with a random value, plus the region."""
    env = {name: f"{name.lower()}-{uuid.uuid4().hex[:8]}" for name in _REQUIRED.values()}
    env["AWS_REGION"] = "eu-west-1"
    env.update(overrides)
    return env


def test_a_complete_environment_loads_with_defaults_for_optional_settings():
    # Given every required variable
    env = complete_env()
    # When the settings are loaded
    settings = load_settings(env)
    # Then the values come from the environment and optional settings keep their defaults
    assert settings.users_table == env["USERS_TABLE"]
    assert settings.user_pool_client_id == env["USER_POOL_CLIENT_ID"]
    assert settings.region == "eu-west-1"
    assert settings.stage == "local"
    assert settings.aws_endpoint is None
    assert settings.media_base_url == "/media"
    assert settings.auto_confirm_signup is False
    assert settings.counter_default_shards == 1


def test_every_missing_variable_is_named_at_once():
    # Given an environment lacking three required variables and the region
    env = complete_env()
    for name in ("USERS_TABLE", "MEDIA_BUCKET", "USER_POOL_ID", "AWS_REGION"):
        del env[name]
    # When the settings are loaded
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    # Then one error names all of them
    message = str(raised.value)
    for name in ("USERS_TABLE", "MEDIA_BUCKET", "USER_POOL_ID", "AWS_REGION"):
        assert f"{name} is required" in message


def test_a_blank_required_variable_counts_as_missing():
    # Given a required variable that is only whitespace
    env = complete_env(SESSIONS_TABLE="   ")
    # When / Then loading names it
    with pytest.raises(SettingsError, match="SESSIONS_TABLE is required"):
        load_settings(env)


def test_aws_default_region_is_accepted_when_aws_region_is_absent():
    # Given only AWS_DEFAULT_REGION
    env = complete_env()
    del env["AWS_REGION"]
    env["AWS_DEFAULT_REGION"] = "ap-southeast-2"
    # When / Then it is the region
    assert load_settings(env).region == "ap-southeast-2"


@pytest.mark.parametrize("value", ["ten", "1.5", ""])
def test_an_integer_setting_that_is_not_an_integer_is_rejected(value: str):
    # Given a non-integer integer setting
    env = complete_env(MAX_UPLOAD_BYTES=value)
    # When / Then loading rejects it, quoting the value
    with pytest.raises(SettingsError, match=r"MAX_UPLOAD_BYTES must be an integer, got "):
        load_settings(env)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_an_integer_setting_must_be_positive(value: str):
    # Given a zero or negative shard count
    env = complete_env(COUNTER_DEFAULT_SHARDS=value)
    # When / Then loading rejects it
    with pytest.raises(SettingsError, match="COUNTER_DEFAULT_SHARDS must be positive"):
        load_settings(env)


def test_invalid_numbers_and_missing_variables_are_reported_together():
    # Given a missing variable, a bad integer and a bad float
    env = complete_env(AWS_MAX_ATTEMPTS="many", AWS_READ_TIMEOUT="slow")
    del env["JOBS_TABLE"]
    # When loading
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    # Then every problem is in the one message
    message = str(raised.value)
    assert "JOBS_TABLE is required" in message
    assert "AWS_MAX_ATTEMPTS must be an integer" in message
    assert "AWS_READ_TIMEOUT must be a number" in message


def test_valid_integers_and_flags_are_parsed():
    # Given overrides for numeric and boolean settings
    env = complete_env(
        COUNTER_DEFAULT_SHARDS="4", AWS_CONNECT_TIMEOUT="0.5", AUTO_CONFIRM_SIGNUP="TRUE",
        ACTIVE_REGIONS="us-east-1, eu-west-1,", MEDIA_BASE_URL="https://cdn.example.com/media/",
    )
    # When loading
    settings = load_settings(env)
    # Then they are typed values
    assert settings.counter_default_shards == 4
    assert settings.aws_connect_timeout == 0.5
    assert settings.auto_confirm_signup is True
    assert settings.active_regions == ("us-east-1", "eu-west-1")
    assert settings.media_base_url == "https://cdn.example.com/media"


def test_jwks_url_is_aws_cognito_without_an_endpoint_override():
    # Given no endpoint override
    pool_id = f"us-east-1_{uuid.uuid4().hex[:9]}"
    settings = load_settings(complete_env(USER_POOL_ID=pool_id, AWS_REGION="us-east-1"))
    # When / Then the key set is AWS's
    assert settings.jwks_url == f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}/.well-known/jwks.json"


def test_jwks_url_uses_the_endpoint_override_when_set():
    # Given the embedded AWS as endpoint override (with a trailing slash)
    pool_id = f"us-east-1_{uuid.uuid4().hex[:9]}"
    settings = load_settings(complete_env(USER_POOL_ID=pool_id, PHOTOSCALE_AWS_ENDPOINT="http://127.0.0.1:4566/"))
    # When / Then the keys are fetched from the override
    assert settings.aws_endpoint == "http://127.0.0.1:4566/"
    assert settings.jwks_url == f"http://127.0.0.1:4566/{pool_id}/.well-known/jwks.json"


def test_cognito_issuer_is_the_regional_idp_url_of_the_pool_even_with_an_override():
    # Given a pool in eu-west-1 reached through an endpoint override
    pool_id = f"eu-west-1_{uuid.uuid4().hex[:9]}"
    settings = load_settings(complete_env(
        USER_POOL_ID=pool_id, AWS_REGION="eu-west-1", PHOTOSCALE_AWS_ENDPOINT="http://127.0.0.1:4566",
    ))
    # When / Then the issuer is AWS's form (moto issues the same)
    assert settings.cognito_issuer == f"https://cognito-idp.eu-west-1.amazonaws.com/{pool_id}"


# --- multi-region (issue 10) ---------------------------------------------------------------

def test_one_region_defaults_make_this_region_primary_and_trust_only_its_own_pool():
    # Given a single-region environment
    env = complete_env(AWS_REGION="us-east-1", USER_POOL_ID="us-east-1_abc", USER_POOL_CLIENT_ID="client1")
    # When loading
    settings = load_settings(env)
    # Then every multi-region setting falls back to this region
    assert settings.primary_region == "us-east-1" and settings.is_primary
    assert settings.serving_regions == ("us-east-1",)
    assert settings.primary_user_pool_id == "us-east-1_abc"
    assert settings.primary_user_pool_client_id == "client1"
    assert settings.trusted_issuers == {"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc": "client1"}
    assert settings.region_api_urls == {}
    assert settings.media_buckets == {"us-east-1": env["MEDIA_BUCKET"]}


def test_the_primary_region_defaults_to_the_first_active_region():
    # Given a replica region of a two-region stage without PRIMARY_REGION
    settings = load_settings(complete_env(AWS_REGION="eu-west-1", ACTIVE_REGIONS="us-east-1,eu-west-1"))
    # Then the primary is the first of ACTIVE_REGIONS, and this function is not in it
    assert settings.primary_region == "us-east-1"
    assert settings.is_primary is False


def test_the_contract_variables_are_parsed_into_typed_maps():
    # Given every multi-region variable
    issuers = {"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_p": "c1",
               "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_r": "c2"}
    env = complete_env(
        AWS_REGION="eu-west-1", ACTIVE_REGIONS="us-east-1,eu-west-1", PRIMARY_REGION="us-east-1",
        PRIMARY_USER_POOL_ID="us-east-1_p", PRIMARY_USER_POOL_CLIENT_ID="c1", MEDIA_BUCKET="media-eu",
        TRUSTED_ISSUERS=json.dumps(issuers),
        REGION_API_URLS='{"us-east-1": "http://127.0.0.1:8001/", "eu-west-1": "http://127.0.0.1:8011"}',
        MEDIA_BUCKETS='{"us-east-1": "media-us", "eu-west-1": "media-eu"}',
        FANOUT_QUEUE_URLS='{"us-east-1": "https://sqs.us-east-1.amazonaws.com/1/fanout"}', FANOUT_QUEUE_URL="q-eu",
    )
    # When loading
    settings = load_settings(env)
    # Then they are typed values (URLs without a trailing slash)
    assert settings.trusted_issuers == issuers
    assert settings.primary_user_pool_id == "us-east-1_p" and settings.primary_user_pool_client_id == "c1"
    assert settings.region_api_urls == {"us-east-1": "http://127.0.0.1:8001", "eu-west-1": "http://127.0.0.1:8011"}
    assert settings.media_bucket_of("us-east-1") == "media-us"
    assert settings.media_bucket_of(None) == "media-eu"
    assert settings.media_bucket_of("ap-south-1") == "media-eu"
    # And each region's fan-out queue is known, this region's from its own FANOUT_QUEUE_URL
    assert settings.fanout_queue_urls == {"us-east-1": "https://sqs.us-east-1.amazonaws.com/1/fanout",
                                          "eu-west-1": "q-eu"}


@pytest.mark.parametrize("name, value", [
    ("TRUSTED_ISSUERS", "not json"),
    ("TRUSTED_ISSUERS", '["https://issuer"]'),
    ("TRUSTED_ISSUERS", '{"not-a-url": "client"}'),
    ("REGION_API_URLS", '{"us-east-1": 8001}'),
    ("MEDIA_BUCKETS", '{"us-east-1": ""}'),
    ("FANOUT_QUEUE_URLS", '{"us-east-1": 1}'),
    ("PRIMARY_REGION", "ap-south-1"),
    ("ACTIVE_REGIONS", "us-east-1,us-west-2"),
])
def test_invalid_multi_region_variables_are_named(name, value):
    # Given a two-region environment with one bad variable
    env = complete_env(AWS_REGION="eu-west-1", ACTIVE_REGIONS="us-east-1,eu-west-1")
    env[name] = value
    # When / Then loading names it
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


def test_jwks_of_a_trusted_issuer_is_the_issuer_key_set_in_aws_and_the_pool_path_locally():
    issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_r"
    in_aws = load_settings(complete_env())
    local = load_settings(complete_env(PHOTOSCALE_AWS_ENDPOINT="http://127.0.0.1:4566"))
    assert in_aws.jwks_url_of(issuer) == f"{issuer}/.well-known/jwks.json"
    assert local.jwks_url_of(issuer) == "http://127.0.0.1:4566/eu-west-1_r/.well-known/jwks.json"
