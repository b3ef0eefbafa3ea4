"""Two regions of the app against in-process moto: identity, home regions, media and reconciliation.

The stateful template is provisioned in ``us-east-1`` (primary) and ``eu-west-1``; moto keys every
resource by region, so the same table names coexist. moto replicates nothing: ``replicate`` copies
the items of the global tables between the regions with last-writer-wins per item, as DynamoDB
global tables do (the local replicator in ``devstack/`` does the same, continuously).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from chalicelib import aws, cache, settings
from devstack.provision import provision
from infra.cfn import STATEFUL_TEMPLATE, load_template, output_env_name
from tests.functional.api_helpers import PASSWORD, body_of, call, member, new_username
from tests.functional.conftest import STAGE, client_factory
from tests.functional.faults import failing

PRIMARY, REPLICA = "us-east-1", "eu-west-1"
REGIONS = (PRIMARY, REPLICA)
#: The tables the app treats as global (replicated): everything but idempotency and jobs.
GLOBAL_TABLES = ("UsersTable", "SessionsTable", "PhotosTable", "CountersTable", "GraphTable", "FeedsTable")


def issuer(region: str, pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


@pytest.fixture(scope="module")
def replica_outputs(deployed: dict[str, Any]) -> dict[str, str]:
    """The same template provisioned in the replica region (inside the module's mock)."""
    return provision(load_template(STATEFUL_TEMPLATE), stage=STAGE, clients=client_factory(REPLICA))


@pytest.fixture
def regions(client, api_env: dict[str, str], replica_outputs: dict[str, str],
            monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``serve_in(region)``: the app runs as the function deployed in that region (a cold start)."""
    outputs = {PRIMARY: api_env, REPLICA: replica_outputs}
    trusted = {issuer(r, outputs[r]["UserPoolId"]): outputs[r]["UserPoolClientId"] for r in REGIONS}

    def serve_in(region: str) -> None:
        for name, value in outputs[region].items():
            monkeypatch.setenv(output_env_name(name), value)
        monkeypatch.setenv("AWS_REGION", region)
        monkeypatch.setenv("ACTIVE_REGIONS", ",".join(REGIONS))
        monkeypatch.setenv("PRIMARY_USER_POOL_ID", api_env["UserPoolId"])
        monkeypatch.setenv("PRIMARY_USER_POOL_CLIENT_ID", api_env["UserPoolClientId"])
        monkeypatch.setenv("TRUSTED_ISSUERS", json.dumps(trusted))
        monkeypatch.setenv("MEDIA_BUCKETS", json.dumps({r: outputs[r]["MediaBucket"] for r in REGIONS}))
        settings.reset_settings()
        aws.reset()
        cache.reset()

    serve_in(PRIMARY)
    return serve_in


def replicate(table: str) -> None:
    """Copy every item of ``table`` between the two regions, last writer wins per whole item."""
    replicas = [boto3.client("dynamodb", region_name=r) for r in REGIONS]
    snapshots = [r.scan(TableName=table, ConsistentRead=True)["Items"] for r in replicas]
    for source, items in enumerate(snapshots):
        for item in items:
            replicas[1 - source].put_item(TableName=table, Item=item)


def replicate_all(outputs: dict[str, str]) -> None:
    for table in GLOBAL_TABLES:
        replicate(outputs[table])


def replicate_user(outputs_by_region: dict[str, dict[str, str]], username: str) -> None:
    """The Cognito replica stand-in's job, for one user: the primary pool's user appears in the
    replica pool with the same password (moto has no replicas)."""
    boto3.client("cognito-idp", region_name=REPLICA).admin_create_user(
        UserPoolId=outputs_by_region[REPLICA]["UserPoolId"], Username=username, MessageAction="SUPPRESS")
    boto3.client("cognito-idp", region_name=REPLICA).admin_set_user_password(
        UserPoolId=outputs_by_region[REPLICA]["UserPoolId"], Username=username, Password=PASSWORD, Permanent=True)


def pool_has(region: str, pool_id: str, username: str) -> bool:
    idp = boto3.client("cognito-idp", region_name=region)
    try:
        idp.admin_get_user(UserPoolId=pool_id, Username=username)
    except idp.exceptions.UserNotFoundException:
        return False
    return True


# --- identity ------------------------------------------------------------------------------------

def test_a_sign_up_served_by_the_replica_region_creates_the_user_in_the_primary_pool(
        client, regions, api_env, replica_outputs):
    # Given the app serving in the replica region
    regions(REPLICA)
    username = new_username()
    # When a user signs up there
    response = call(client, "POST", "/auth/signup",
                    {"username": username, "email": f"{username}@example.com", "password": PASSWORD})
    # Then the account is written to the primary pool, not the replica's
    assert response.status_code == 201, response.body
    assert pool_has(PRIMARY, api_env["UserPoolId"], username)
    assert not pool_has(REPLICA, replica_outputs["UserPoolId"], username)


def test_identity_writes_answer_503_primary_region_unavailable_while_the_primary_is_down(
        client, regions, replica_outputs):
    # Given the replica region serving, a user already replicated into its pool
    regions(REPLICA)
    username = new_username()
    replicate_user({REPLICA: replica_outputs}, username)
    # When the primary region's Cognito fails (every attempt: 503 from AWS)
    with failing(aws.identity_writer(), "SignUp", "ServiceUnavailable") as tried:
        signup = call(client, "POST", "/auth/signup",
                      {"username": new_username(), "email": "x@example.com", "password": PASSWORD})
    with failing(aws.identity_writer(), "ConfirmSignUp", "ServiceUnavailable"):
        confirm = call(client, "POST", "/auth/confirm", {"username": username, "code": "123456"})
    # Then sign-up and confirmation answer 503 primary_region_unavailable with Retry-After
    for response in (signup, confirm):
        assert response.status_code == 503, response.body
        assert body_of(response)["error"]["code"] == "primary_region_unavailable"
        assert int(response.headers["Retry-After"]) > 0
    assert tried  # the primary was really asked
    # And log-in, which uses this region's pool, keeps working
    with failing(aws.identity_writer(), "InitiateAuth", "ServiceUnavailable"):
        login = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.body


def test_a_token_from_either_regions_pool_is_accepted_in_both(client, regions, api_env, replica_outputs):
    # Given a user signed in in the primary region, and the same user signed in in the replica region
    username, primary_token = member(client)
    regions(REPLICA)
    replicate_user({REPLICA: replica_outputs}, username)
    login = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    replica_token = body_of(login)["access_token"]
    replicate_all(replica_outputs)
    # When each token is used in each region
    for region in REGIONS:
        regions(region)
        for token in (primary_token, replica_token):
            # Then both are accepted (the allow-list holds both issuers)
            assert call(client, "GET", "/me", token=token).status_code == 200, (region, token[:12])


def test_a_token_from_a_pool_off_the_allow_list_is_refused(client, regions, api_env, monkeypatch):
    # Given the app trusting only the primary pool, and a user of the replica pool
    username, token = member(client)
    replicate_all(api_env)
    regions(REPLICA)
    monkeypatch.setenv("TRUSTED_ISSUERS", json.dumps({issuer(PRIMARY, api_env["UserPoolId"]): api_env["UserPoolClientId"]}))
    settings.reset_settings()
    stranger = new_username()
    replicate_user({REPLICA: {"UserPoolId": settings.get_settings().user_pool_id}}, stranger)
    login = call(client, "POST", "/auth/login", {"username": stranger, "password": PASSWORD})
    assert login.status_code == 200, login.body
    # When the replica pool's token (signed with the very key moto signs every pool with) is used
    refused = call(client, "GET", "/me", token=body_of(login)["access_token"])
    # Then it is refused by its issuer, while the trusted pool's token passes
    assert refused.status_code == 401, refused.body
    assert call(client, "GET", "/me", token=token).status_code == 200


def test_a_logout_in_one_region_is_honoured_in_the_other_after_replication(client, regions, replica_outputs):
    # Given a user signed in in the primary region
    username, token = member(client)
    replicate_all(replica_outputs)
    # When the user logs out in the replica region, and the sessions table replicates
    regions(REPLICA)
    assert call(client, "POST", "/auth/logout", token=token).status_code == 204
    replicate_all(replica_outputs)
    # Then the token is refused in both regions
    for region in REGIONS:
        regions(region)
        assert call(client, "GET", "/me", token=token).status_code == 401, region
