"""Two regions of the app against in-process moto: identity, home regions, media and reconciliation.

The stateful template is provisioned in ``us-east-1`` (primary) and ``eu-west-1``; moto keys every
resource by region, so the same table names coexist. moto replicates nothing: ``replicate`` copies
the items of the global tables between the regions with last-writer-wins per item, as DynamoDB
global tables do (the local replicator in ``devstack/`` does the same, continuously).
"""
from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from chalicelib import aws, cache, settings
from chalicelib import regions as region_module
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
        monkeypatch.setenv("FANOUT_QUEUE_URLS", json.dumps({r: outputs[r]["FanoutQueueUrl"] for r in REGIONS}))
        settings.reset_settings()
        aws.reset()
        cache.reset()

    serve_in(PRIMARY)
    return serve_in


#: The items of each global table as of the last replication, by key (what both regions agreed on).
_synced: dict[str, dict[str, dict]] = {}


def replicate(table: str) -> None:
    """Bring both regions' copies of ``table`` together as global tables do: an item a region
    changed (or deleted) since the last replication is that region's write and reaches the other;
    an item both changed goes to the last writer, which here is always the replica region."""
    replicas = {r: boto3.client("dynamodb", region_name=r) for r in REGIONS}
    schema = replicas[PRIMARY].describe_table(TableName=table)["Table"]["KeySchema"]

    def key_of(item: dict) -> str:
        return json.dumps({k["AttributeName"]: item[k["AttributeName"]] for k in schema}, sort_keys=True)

    synced = _synced.get(table, {})
    now = {r: {key_of(i): i for i in replicas[r].scan(TableName=table, ConsistentRead=True)["Items"]}
           for r in REGIONS}
    merged = dict(synced)
    for region in REGIONS:  # the replica's changes are applied last: it is the last writer on conflicts
        for key in set(synced) | set(now[region]):
            if now[region].get(key) != synced.get(key):
                merged[key] = now[region].get(key)
    for region, client in replicas.items():
        for key, item in merged.items():
            if item is None and key in now[region]:
                client.delete_item(TableName=table, Key=json.loads(key))
            elif item is not None and now[region].get(key) != item:
                client.put_item(TableName=table, Item=item)
    _synced[table] = {k: v for k, v in merged.items() if v is not None}


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


# --- home region: forwarding and failover ----------------------------------------------------------

class FakeHomeRegion:
    """The home region's API as an HTTP server: answers ``/health`` with ``health_status`` and any
    other request with 201 and a JSON body; records every request it gets."""

    def __init__(self) -> None:
        self.health_status = 200
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path == "/health":
                    fake.requests.append({"method": self.command, "path": self.path})
                    status, payload = fake.health_status, b'{"status": "ok"}'
                else:
                    fake.requests.append({"method": self.command, "path": self.path, "body": body,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                    status, payload = 201, b'{"served_by": "home"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Photoscale-Region", PRIMARY)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] != "/health"]


def fake_home_in(region: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHomeRegion]:
    """``region``'s API replaced by :class:`FakeHomeRegion` in ``REGION_API_URLS`` (for a fixture)."""
    fake = FakeHomeRegion()
    monkeypatch.setenv("REGION_API_URLS", json.dumps({region: fake.url}))
    settings.reset_settings()
    region_module.forget_health()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    region_module.forget_health()


@pytest.fixture
def home_region(regions, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHomeRegion]:
    """The primary region's API replaced by :class:`FakeHomeRegion`."""
    yield from fake_home_in(PRIMARY, monkeypatch)


def at_home_in_primary(client, regions, replica_outputs) -> tuple[str, str]:
    """A user signed up in the primary region (their home), replicated, then served by the replica."""
    username, _ = member(client, log_in=False)
    replicate_user({REPLICA: replica_outputs}, username)
    replicate_all(replica_outputs)
    regions(REPLICA)
    login = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.body
    return username, body_of(login)["access_token"]


def test_sign_up_records_the_serving_region_as_home(client, regions):
    # Given the replica region serving
    regions(REPLICA)
    # When a user signs up there
    username, _ = member(client, log_in=False)
    # Then the profile names the replica region as the user's home
    from chalicelib import users

    assert users.home_region(username) == REPLICA


def profile_item(outputs: dict[str, str], region: str, username: str) -> dict | None:
    return boto3.client("dynamodb", region_name=region).get_item(
        TableName=outputs["UsersTable"], Key={"username": {"S": username}}, ConsistentRead=True).get("Item")


def test_a_log_in_through_the_other_region_before_the_profile_replicated_writes_no_second_profile(
        client, regions, api_env, replica_outputs):
    # Given a user who signed up through the replica region (her home), her profile not replicated yet
    regions(REPLICA)
    username, _ = member(client, log_in=False)
    # When she logs in through the primary region at once
    regions(PRIMARY)
    login = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    # Then she is signed in, and the primary wrote no profile of its own (last writer wins would
    # otherwise replace hers, with the wrong home and no email)
    assert login.status_code == 200, login.body
    assert profile_item(api_env, PRIMARY, username) is None
    # And once replicated, both regions hold the original: at home in the replica, with her email
    replicate_all(replica_outputs)
    for outputs, region in ((api_env, PRIMARY), (replica_outputs, REPLICA)):
        item = profile_item(outputs, region, username)
        assert (item["home_region"]["S"], item["email"]["S"]) == (REPLICA, f"{username}@example.com")


def test_a_log_in_heals_a_profile_lost_at_sign_up_once_no_replication_can_bring_it(
        client, regions, api_env, monkeypatch):
    # Given a user whose profile write failed after Cognito's (the profile is missing everywhere),
    # old enough that no replication is still on its way
    from chalicelib import users

    username, _ = member(client, log_in=False)
    boto3.client("dynamodb", region_name=PRIMARY).delete_item(TableName=api_env["UsersTable"],
                                                              Key={"username": {"S": username}})
    monkeypatch.setattr(users, "PROFILE_HEAL_AFTER_SECONDS", 0)
    # When she logs in
    login = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    # Then her profile is back, with the email of her identity and this region as home
    assert login.status_code == 200, login.body
    item = profile_item(api_env, PRIMARY, username)
    assert (item["home_region"]["S"], item["email"]["S"]) == (PRIMARY, f"{username}@example.com")


def test_a_write_away_from_home_is_forwarded_with_its_method_path_body_and_credentials(
        client, regions, replica_outputs, home_region):
    # Given a user at home in the (healthy) primary region, served by the replica region
    username, token = at_home_in_primary(client, regions, replica_outputs)
    # When they change their profile through the replica region
    response = call(client, "PATCH", "/me", {"bio": "forwarded"}, token=token)
    # Then the home region's answer is returned
    assert (response.status_code, body_of(response)) == (201, {"served_by": "home"})
    assert response.headers["X-Photoscale-Region"] == PRIMARY
    # And the home region got the same request, marked as forwarded from the replica
    [forwarded] = home_region.writes()
    assert (forwarded["method"], forwarded["path"]) == ("PATCH", "/me")
    assert json.loads(forwarded["body"]) == {"bio": "forwarded"}
    assert forwarded["headers"]["authorization"] == f"Bearer {token}"
    assert forwarded["headers"][region_module.FORWARDED_HEADER.lower()] == REPLICA
    # And nothing was written in the replica region itself
    assert body_of(call(client, "GET", "/me", token=token))["bio"] == ""


def test_reads_away_from_home_are_served_locally(client, regions, replica_outputs, home_region):
    username, token = at_home_in_primary(client, regions, replica_outputs)
    response = call(client, "GET", f"/users/{username}", token=token)
    assert response.status_code == 200 and body_of(response)["username"] == username
    assert home_region.requests == []


def test_a_forwarded_request_is_served_where_it_lands(client, regions, replica_outputs, home_region):
    # Given a request that was already forwarded once (the regions disagree about the home)
    username, token = at_home_in_primary(client, regions, replica_outputs)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               region_module.FORWARDED_HEADER: PRIMARY}
    response = client.http.request("PATCH", "/me", headers=headers, body=json.dumps({"bio": "here"}).encode())
    # Then it is served here, never bounced back
    assert response.status_code == 200 and body_of(response)["bio"] == "here"
    assert home_region.writes() == []


def test_a_write_whose_home_is_unhealthy_is_accepted_here_and_its_counters_noted_as_suspects(
        client, regions, replica_outputs, home_region):
    # Given a user at home in the primary region, whose health check fails
    username, token = at_home_in_primary(client, regions, replica_outputs)
    regions(PRIMARY)
    target, _ = member(client, log_in=False)
    replicate_all(replica_outputs)
    regions(REPLICA)
    home_region.health_status = 503
    # When they follow someone through the replica region
    response = call(client, "PUT", f"/users/{target}/follow", token=token)
    # Then the replica region accepts it (failover) without forwarding anything
    assert response.status_code == 204, response.body
    assert home_region.writes() == []
    assert body_of(call(client, "GET", f"/users/{target}"))["followers"] == 1
    # And both counters it changed are noted for reconciliation, in the (global) graph table
    from chalicelib.repositories import reconciliation

    noted = {(kind, entity) for kind, entity, _ in reconciliation.suspects(100)}
    assert {("followers", target), ("following", username)} <= noted


def test_a_write_whose_home_is_unreachable_is_accepted_here(client, regions, replica_outputs, monkeypatch):
    # Given a home region whose API refuses connections
    username, token = at_home_in_primary(client, regions, replica_outputs)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("REGION_API_URLS", json.dumps({PRIMARY: f"http://127.0.0.1:{port}"}))
    settings.reset_settings()
    region_module.forget_health()
    # When the user writes through the replica region
    response = call(client, "PATCH", "/me", {"bio": "failover"}, token=token)
    # Then it is accepted here
    assert response.status_code == 200 and body_of(response)["bio"] == "failover"


def test_the_home_regions_health_is_asked_once_for_several_writes(client, regions, replica_outputs, home_region):
    username, token = at_home_in_primary(client, regions, replica_outputs)
    for bio in ("one", "two", "three"):
        assert call(client, "PATCH", "/me", {"bio": bio}, token=token).status_code == 201
    assert [r["path"] for r in home_region.requests].count("/health") == 1
    assert len(home_region.writes()) == 3


class NegativeItemCache:
    """DAX's item cache as it treats absences, standing in for the table reader: a GetItem that
    found nothing is answered "nothing" again (DAX keeps negative results up to its record TTL,
    and a replicated write never passes through it); everything else goes to DynamoDB."""

    _request_signer = None  # PynamoDB checks it before reusing a client

    def __init__(self, dynamodb: Any, absent: set[str]) -> None:
        self.dynamodb, self.absent = dynamodb, absent

    @property
    def meta(self) -> Any:
        return self.dynamodb.meta

    def _make_api_call(self, operation: str, params: dict) -> dict:
        key = json.dumps([params.get("TableName"), params.get("Key")], sort_keys=True)
        cacheable = operation == "GetItem" and not params.get("ConsistentRead")
        if cacheable and key in self.absent:
            return {}
        answer = self.dynamodb._make_api_call(operation, params)
        if cacheable and "Item" not in answer:
            self.absent.add(key)
        return answer


@pytest.fixture
def stale_absences(regions, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every region's table reader caches absent items like DAX (one negative cache per region)."""
    absent: dict[str, set[str]] = {}

    def reader() -> NegativeItemCache:
        region = settings.get_settings().region
        return NegativeItemCache(aws.client("dynamodb"), absent.setdefault(region, set()))

    monkeypatch.setattr(aws, "table_reader", reader)
    aws.reset()


@pytest.fixture
def replica_home(regions, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHomeRegion]:
    """The replica region's API replaced by :class:`FakeHomeRegion`."""
    yield from fake_home_in(REPLICA, monkeypatch)


def signed_up_in_the_replica(client, regions, replica_outputs) -> tuple[str, str]:
    """A user who signed up and logged in through the replica region (their home); nothing replicated."""
    regions(REPLICA)
    username, _ = member(client, log_in=False)
    replicate_user({REPLICA: replica_outputs}, username)
    login = call(client, "POST", "/auth/login", {"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.body
    return username, body_of(login)["access_token"]


def test_a_write_after_a_cached_absence_of_the_profile_is_still_forwarded_to_the_home_region(
        client, regions, replica_outputs, stale_absences, replica_home):
    # Given a user at home in the replica region, whose profile the primary region read (and its
    # cache tier remembered as absent) before the sign-up replicated
    username, token = signed_up_in_the_replica(client, regions, replica_outputs)
    regions(PRIMARY)
    assert call(client, "GET", f"/users/{username}").status_code == 404
    replicate_all(replica_outputs)
    assert call(client, "GET", f"/users/{username}").status_code == 404  # the cached absence is stale
    # When the user writes through the primary region
    response = call(client, "PATCH", "/me", {"bio": "written at home"}, token=token)
    # Then the write is forwarded to the home region, not served here
    assert (response.status_code, body_of(response)) == (201, {"served_by": "home"}), response.body
    [forwarded] = replica_home.writes()
    assert (forwarded["method"], forwarded["path"]) == ("PATCH", "/me")
    assert forwarded["headers"][region_module.FORWARDED_HEADER.lower()] == PRIMARY


def test_a_write_before_the_profile_replicated_answers_503_home_region_unknown_and_its_retry_is_forwarded(
        client, regions, replica_outputs, replica_home):
    # Given a user at home in the replica region whose profile has not replicated to the primary yet
    username, token = signed_up_in_the_replica(client, regions, replica_outputs)
    regions(PRIMARY)
    # When they follow someone through the primary region
    refused = call(client, "PUT", f"/users/{username}/follow", token=token)
    # Then nothing is done and the client is told to retry shortly
    assert refused.status_code == 503, refused.body
    assert body_of(refused)["error"]["code"] == "home_region_unknown"
    assert int(refused.headers["Retry-After"]) == region_module.UNKNOWN_HOME_RETRY_AFTER
    assert replica_home.writes() == []
    # And once the profile has replicated, the retry is forwarded to the home region
    replicate_all(replica_outputs)
    retried = call(client, "PATCH", "/me", {"bio": "retried"}, token=token)
    assert (retried.status_code, body_of(retried)) == (201, {"served_by": "home"}), retried.body
    assert len(replica_home.writes()) == 1


# --- reconciliation ---------------------------------------------------------------------------------

def follow_in_both_regions(client, regions, replica_outputs) -> tuple[str, str]:
    """A follow acknowledged in the primary region and retried in the replica region before the
    graph replicated (the replica accepts it: no home API known, so failover), then merged."""
    follower, token = member(client)
    followee, _ = member(client, log_in=False)
    replicate_all(replica_outputs)
    assert call(client, "PUT", f"/users/{followee}/follow", token=token).status_code == 204
    regions(REPLICA)
    assert call(client, "PUT", f"/users/{followee}/follow", token=token).status_code == 204
    replicate_all(replica_outputs)
    return follower, followee


def counts(client, username: str) -> tuple[int, int]:
    cache.reset()
    profile = body_of(call(client, "GET", f"/users/{username}"))
    return profile["followers"], profile["following"]


def test_a_follow_counted_in_both_regions_is_repaired_exactly_by_the_primary(client, regions, replica_outputs):
    # Given one follow edge counted twice (once in each region's shard) after the merge
    follower, followee = follow_in_both_regions(client, regions, replica_outputs)
    assert counts(client, followee)[0] == 2 and counts(client, follower)[1] == 2
    # When the reconciliation job runs in the primary region
    regions(PRIMARY)
    from chalicelib import reconcile

    report = reconcile.run(full=True)
    # Then both counters read exactly one, in both regions once the repair replicates
    assert report["repaired"] >= 2
    replicate_all(replica_outputs)
    for region in REGIONS:
        regions(region)
        assert counts(client, followee)[0] == 1 and counts(client, follower)[1] == 1, region
    # And the failover noted them as suspects, which the run cleared
    from chalicelib.repositories import reconciliation

    left = {(k, e) for k, e, _ in reconciliation.suspects(1000)}
    assert ("followers", followee) not in left and ("following", follower) not in left


def test_running_the_reconciliation_twice_changes_nothing_the_second_time(client, regions, replica_outputs):
    follower, followee = follow_in_both_regions(client, regions, replica_outputs)
    regions(PRIMARY)
    from chalicelib import reconcile

    reconcile.run(full=True)
    before = counts(client, followee), counts(client, follower)
    again = reconcile.run(full=True)
    assert again["repaired"] == 0
    assert (counts(client, followee), counts(client, follower)) == before == ((1, 0), (0, 1))


def test_the_reconciliation_runs_only_in_the_primary_region(client, regions, replica_outputs):
    follower, followee = follow_in_both_regions(client, regions, replica_outputs)
    from chalicelib import reconcile

    assert "skipped" in reconcile.run(full=True)  # served in the replica region
    assert counts(client, followee)[0] == 2


def test_a_like_counted_in_both_regions_and_a_suspect_photo_count_are_repaired(client, regions, replica_outputs):
    # Given a ready photo that was never counted in its owner's photos (marked ready behind the
    # counter's back; its count noted as suspect, as a failover upload is) and a like of it counted
    # in both regions
    from tests.functional.test_social import ready_photo

    owner, owner_token = member(client)
    fan, fan_token = member(client)
    photo_id = ready_photo(client, owner_token)
    from chalicelib import reconcile

    reconcile.note_suspects([("photos", owner)])
    replicate_all(replica_outputs)
    assert body_of(call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token))["likes"] == 1
    cache.reset()  # a counter read in the primary delivers its stream to its aggregator (about 1 s in AWS)
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 1
    regions(REPLICA)
    assert call(client, "PUT", f"/photos/{photo_id}/like", token=fan_token).status_code == 200
    replicate_all(replica_outputs)
    cache.reset()
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 2
    replicate_all(replica_outputs)  # the replica's aggregated total reaches the primary
    # When the primary reconciles
    regions(PRIMARY)
    from chalicelib import reconcile

    reconcile.run(full=True)
    # Then the like counts once and the photo is counted
    cache.reset()
    assert body_of(call(client, "GET", f"/photos/{photo_id}"))["likes"] == 1
    assert body_of(call(client, "GET", f"/users/{owner}"))["photos"] == 1


def test_a_scheduled_run_sweeps_one_page_and_resumes_from_its_checkpoint(client, regions, replica_outputs):
    from chalicelib import reconcile
    from chalicelib.repositories import reconciliation

    regions(PRIMARY)
    member(client)
    first = reconcile.run(page_items=1)
    assert first["complete"] is False
    assert reconciliation.checkpoint() is not None
    while not reconcile.run(page_items=50)["complete"]:
        pass
    assert reconciliation.checkpoint() is None


def test_a_reconcile_message_on_the_fanout_queue_runs_the_job(client, regions, replica_outputs):
    # Given a double-counted follow and the on-demand message the drill sends
    follower, followee = follow_in_both_regions(client, regions, replica_outputs)
    regions(PRIMARY)
    from chalicelib import feed

    event = {"Records": [{"messageId": "m1", "receiptHandle": "r", "body": json.dumps({"type": "reconcile_counters"}),
                          "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fanout", "awsRegion": PRIMARY}]}
    # When the fan-out worker takes it
    result = feed.handle_fanout(event, None)
    # Then nothing failed and the count is exact
    assert result == {"batchItemFailures": []}
    assert counts(client, followee)[0] == 1


# --- health: the replication lag each region sees -------------------------------------------------

def test_health_reports_the_region_and_the_age_of_the_other_regions_heartbeat(client, regions, replica_outputs,
                                                                              monkeypatch):
    from chalicelib import health

    # Given the primary region's health answered once (its heartbeat written), not yet replicated
    monkeypatch.setattr(health, "_last_heartbeat", [0.0])
    assert client.http.get("/health").status_code == 200
    regions(REPLICA)
    monkeypatch.setattr(health, "_last_heartbeat", [0.0])
    before = body_of(client.http.get("/health"))
    # When the users table replicates
    replicate_all(replica_outputs)
    after = client.http.get("/health")
    # Then the replica names itself and sees the primary's heartbeat, as an age in seconds
    assert before["region"] == REPLICA and before["replication_lag_seconds"] == {PRIMARY: None}
    assert after.status_code == 200
    lag = body_of(after)["replication_lag_seconds"][PRIMARY]
    assert isinstance(lag, float) and lag >= 0


# --- media: originals are found where they were uploaded ----------------------------------------------

def test_an_edit_processed_in_the_other_region_reads_the_original_from_the_bucket_it_was_uploaded_to(
        client, regions, api_env, replica_outputs):
    import io

    from PIL import Image

    from chalicelib import keys, pipeline
    from chalicelib.models import PhotoRecord, bound

    # Given a photo granted (and uploaded) in the primary region: the record names its original's home
    owner, token = member(client)
    grant = call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000}, token=token)
    photo_id = body_of(grant)["photo"]["id"]
    record = bound(PhotoRecord).get(photo_id)
    assert (record.original_region, record.original_bucket) == (PRIMARY, api_env["MediaBucket"])
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 160, 90)).save(buffer, "JPEG")
    etag = boto3.client("s3", region_name=PRIMARY).put_object(
        Bucket=api_env["MediaBucket"], Key=keys.upload_key(owner, photo_id), Body=buffer.getvalue())["ETag"]
    record.update(actions=[PhotoRecord.status.set("ready"), PhotoRecord.width.set(64), PhotoRecord.height.set(48),
                           PhotoRecord.version.set("v1"), PhotoRecord.original_etag.set(etag)])
    replicate_all(replica_outputs)
    # When an edit is processed in the replica region before S3 replicated the original
    regions(REPLICA)
    outcome = pipeline.process_edit({"photo_id": photo_id, "edit_id": keys.new_id(), "edits": {"rotate": 90}})
    # Then it read the original from the primary's bucket and wrote the renditions in its own
    assert outcome == "applied"
    edited = bound(PhotoRecord).get(photo_id)
    assert (edited.width, edited.height) == (48, 64)
    written = boto3.client("s3", region_name=REPLICA).list_objects_v2(
        Bucket=replica_outputs["MediaBucket"], Prefix=keys.rendition_prefix(photo_id)).get("KeyCount", 0)
    assert written > 0


def test_a_replicated_upload_is_left_to_the_region_that_granted_it(client, regions, replica_outputs):
    from chalicelib import keys, pipeline

    owner, token = member(client)
    photo_id = body_of(call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000},
                            token=token))["photo"]["id"]
    replicate_all(replica_outputs)
    regions(REPLICA)
    upload = {"bucket": replica_outputs["MediaBucket"], "key": keys.upload_key(owner, photo_id)}
    assert pipeline.process_upload(upload) == "processed-in-home-region"


def test_a_replica_copy_landing_before_its_photo_record_is_never_deleted(client, regions, replica_outputs, api_env):
    from chalicelib import keys, pipeline

    # Given a photo granted in the primary region, whose upload carries the granting region
    owner, token = member(client)
    grant = body_of(call(client, "POST", "/photos", {"content_type": "image/jpeg", "size": 1000}, token=token))
    photo_id, fields = grant["photo"]["id"], grant["upload"]["fields"]
    assert fields[f"x-amz-meta-{keys.UPLOAD_REGION_METADATA}"] == PRIMARY
    key = keys.upload_key(owner, photo_id)
    # and S3 replication's copy (user metadata kept) in the replica's bucket before the record replicated
    boto3.client("s3", region_name=REPLICA).put_object(
        Bucket=replica_outputs["MediaBucket"], Key=key, Body=b"original",
        Metadata={keys.UPLOAD_REGION_METADATA: PRIMARY})
    # When the replica region's upload worker sees it
    regions(REPLICA)
    outcome = pipeline.process_upload({"bucket": replica_outputs["MediaBucket"], "key": key})
    # Then it is left to the home region: the copy stays (no delete to replicate back)
    assert outcome == "processed-in-home-region"
    assert boto3.client("s3", region_name=REPLICA).head_object(Bucket=replica_outputs["MediaBucket"], Key=key)


def test_an_upload_for_a_deleted_photo_is_removed_in_the_region_that_granted_it(client, regions, api_env):
    from chalicelib import keys, pipeline

    # Given an upload granted here whose photo record no longer exists
    owner = new_username()
    key = keys.upload_key(owner, keys.new_id())
    s3 = boto3.client("s3", region_name=PRIMARY)
    s3.put_object(Bucket=api_env["MediaBucket"], Key=key, Body=b"orphan",
                  Metadata={keys.UPLOAD_REGION_METADATA: PRIMARY})
    # When the home region's worker processes it, then the orphan is removed
    assert pipeline.process_upload({"bucket": api_env["MediaBucket"], "key": key}) == "orphan"
    assert s3.list_objects_v2(Bucket=api_env["MediaBucket"], Prefix=key).get("KeyCount", 0) == 0


# --- late items: replicated in after a reader's page, with an older timestamp ---------------------------

def photo_at(owner: str, created_at: str):
    """A ready photo of ``owner`` created at ``created_at`` (written as replication would write it)."""
    from chalicelib import keys
    from chalicelib.models import PhotoRecord, bound

    photo_id = keys.new_id()
    bound(PhotoRecord)(photo_id, owner=owner, owner_sort=keys.owner_sort_key(created_at, photo_id), status="ready",
                       content_type="image/jpeg", declared_size=1000, created_at=created_at, width=8, height=6,
                       version="v1").save()
    return photo_id


def test_late_items_between_pages_are_never_duplicated_and_never_break_paging(client):
    # Given four photos a second apart, read newest first two per page
    owner, _ = member(client)
    at = [f"2026-01-01T00:00:0{n}.000Z" for n in range(1, 5)]
    p1, p2, p3, p4 = (photo_at(owner, t) for t in at)
    first = body_of(call(client, "GET", f"/users/{owner}/photos?limit=2"))
    assert [i["id"] for i in first["items"]] == [p4, p3]
    # When, between pages, two items replicate in late: one newer than the page's end, one older
    above = photo_at(owner, "2026-01-01T00:00:03.500Z")
    below = photo_at(owner, "2026-01-01T00:00:01.500Z")
    rest, cursor = [], first["next_cursor"]
    while cursor:
        page = body_of(call(client, "GET", f"/users/{owner}/photos?limit=2&cursor={cursor}"))
        rest += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    # Then the rest of the pass has no duplicates and keeps the order: the older late item is seen in
    # place, the newer one (above the cursor) is missed by this pass and seen from the top
    assert rest == [p2, below, p1]
    fresh = body_of(call(client, "GET", f"/users/{owner}/photos?limit=10"))
    assert [i["id"] for i in fresh["items"]] == [p4, above, p3, p2, below, p1]


# --- last-writer-wins safety: single-writer items ------------------------------------------------

def test_only_the_primary_raises_a_shard_count_or_adds_to_the_celebrity_registry(client, regions, replica_outputs):
    from chalicelib import celebrities, follows
    from chalicelib.repositories import counters

    # Given a user with one followers shard, seen from the replica region
    star, _ = member(client)
    regions(REPLICA)
    # When the replica region's boundary check would reshard and register them
    in_force = follows.reshard_user(star, 8)
    celebrities.add_celebrity(star)
    # Then nothing is written there (a concurrent raise in both regions could go down under LWW)
    assert in_force == 1 and counters.shard_count(counters.FOLLOWERS, star, fresh=True) == 1
    cache.reset()
    assert star not in celebrities.celebrities()
    # And in the primary the same calls take effect, and replicate to the replica
    regions(PRIMARY)
    assert follows.reshard_user(star, 8) == 8
    celebrities.add_celebrity(star)
    replicate_all(replica_outputs)
    regions(REPLICA)
    assert counters.shard_count(counters.FOLLOWERS, star, fresh=True) == 8
    assert star in celebrities.celebrities()


# --- erasure in several regions ---------------------------------------------------------------------

def take_messages(region: str, queue_url: str, kind: str) -> list[dict]:
    """Receive (and delete) every message on ``region``'s queue; the bodies of type ``kind``."""
    sqs = boto3.client("sqs", region_name=region)
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [body for body in bodies if body["type"] == kind]


def regional_mentions(region: str, outputs: dict[str, str], username: str) -> list[str]:
    """Items of ``region``'s regional tables and objects of its media bucket that name ``username``."""
    dynamodb, s3 = boto3.client("dynamodb", region_name=region), boto3.client("s3", region_name=region)
    found = [f"{table}: {item}" for table in ("QuotasTable", "JobsTable", "IdempotencyTable")
             for item in dynamodb.scan(TableName=outputs[table], ConsistentRead=True)["Items"]
             if username in json.dumps(item)]
    objects = s3.list_objects_v2(Bucket=outputs["MediaBucket"]).get("Contents", [])
    return found + [f"s3://{outputs['MediaBucket']}/{o['Key']}" for o in objects if username in o["Key"]]


def test_an_erasure_sweeps_the_other_regions_quotas_and_exports_through_that_regions_queue(
        client, regions, api_env, replica_outputs):
    from tests.functional.test_feed import run_worker

    outputs = {PRIMARY: api_env, REPLICA: replica_outputs}
    # Given a user at home in the primary who, served by the replica region during a failover (no
    # home API known), followed someone and exported their data there
    username, token = member(client)
    target, _ = member(client, log_in=False)
    replicate_user({REPLICA: replica_outputs}, username)
    replicate_all(replica_outputs)
    regions(REPLICA)
    assert call(client, "PUT", f"/users/{target}/follow", token=token).status_code == 204
    assert call(client, "POST", "/me/export", token=token).status_code == 202
    run_worker(client, *take_messages(REPLICA, replica_outputs["FanoutQueueUrl"], "export_account"))
    held = regional_mentions(REPLICA, replica_outputs, username)
    assert any(m.startswith("QuotasTable") for m in held) and any("exports/" in m for m in held), held
    replicate_all(replica_outputs)
    # When the account is erased in its home region
    regions(PRIMARY)
    assert call(client, "DELETE", "/me", {"password": PASSWORD}, token=token).status_code == 202
    run_worker(client, *take_messages(PRIMARY, api_env["FanoutQueueUrl"], "erase_account"))
    # Then the replica region's regional data is still there, and one sweep of it is queued there
    assert regional_mentions(REPLICA, replica_outputs, username) == held
    [sweep] = take_messages(REPLICA, replica_outputs["FanoutQueueUrl"], "erase_regional")
    assert sweep == {"type": "erase_regional", "user": username, "from": PRIMARY}
    # And when the replica region's worker runs it (twice: a redelivery is harmless)
    regions(REPLICA)
    run_worker(client, sweep)
    run_worker(client, sweep)
    # Then neither region's regional tables nor bucket name the user any more
    for region in REGIONS:
        assert regional_mentions(region, outputs[region], username) == [], region

