"""The Cognito replica stand-in (devstack.cognito_replica): primary users and both pools' refresh tokens
reach the other pool after the lag; revocations win; nothing moves while a region is down."""
from __future__ import annotations

from types import SimpleNamespace

from devstack.cognito_replica import CognitoReplicator, PoolRef

PRIMARY = PoolRef("us-east-1", "us-east-1_p", "client-p")
REPLICA = PoolRef("eu-west-1", "eu-west-1_r", "client-r")


def pool(pool_id: str):
    return SimpleNamespace(id=pool_id, users={}, refresh_tokens={})


def user(name: str, password: str = "Passw0rdOK", sub: str = "sub-1"):
    attrs = [{"Name": "sub", "Value": sub}, {"Name": "email", "Value": f"{name}@example.com"}]
    return SimpleNamespace(id=sub, username=name, user_pool_id="us-east-1_p", password=password, status="CONFIRMED",
                           enabled=True, attributes=attrs, attribute_lookup={a["Name"]: a["Value"] for a in attrs},
                           groups=set())


def setup():
    pools = {PRIMARY.region: pool(PRIMARY.pool_id), REPLICA.region: pool(REPLICA.pool_id)}
    return pools, CognitoReplicator(PRIMARY, [REPLICA], lag_seconds=0.5)


def test_a_primary_user_appears_in_the_replica_with_the_same_sub_and_password_after_the_lag():
    pools, replicator = setup()
    pools[PRIMARY.region].users["ann"] = user("ann")
    replicator.tick(pools, now=10.0)
    assert "ann" not in pools[REPLICA.region].users
    replicator.tick(pools, now=10.5)
    copy = pools[REPLICA.region].users["ann"]
    assert (copy.id, copy.password, copy.user_pool_id) == ("sub-1", "Passw0rdOK", REPLICA.pool_id)


def test_a_password_change_in_the_primary_replaces_the_replicas_copy():
    pools, replicator = setup()
    pools[PRIMARY.region].users["ann"] = user("ann")
    replicator.tick(pools, 0.0)
    replicator.tick(pools, 1.0)
    pools[PRIMARY.region].users["ann"] = user("ann", password="N3wPassword")
    replicator.tick(pools, 2.0)
    replicator.tick(pools, 3.0)
    assert pools[REPLICA.region].users["ann"].password == "N3wPassword"


def test_refresh_tokens_from_either_pool_work_in_the_other_bound_to_its_app_client():
    pools, replicator = setup()
    pools[PRIMARY.region].refresh_tokens["t1"] = ("client-p", "ann", "jti-1")
    pools[REPLICA.region].refresh_tokens["t2"] = ("client-r", "bob", "jti-2")
    replicator.tick(pools, 0.0)
    replicator.tick(pools, 1.0)
    assert pools[REPLICA.region].refresh_tokens["t1"] == ("client-r", "ann", "jti-1")
    assert pools[PRIMARY.region].refresh_tokens["t2"] == ("client-p", "bob", "jti-2")


def test_a_revocation_in_either_pool_revokes_the_token_in_both():
    pools, replicator = setup()
    pools[PRIMARY.region].refresh_tokens["t1"] = ("client-p", "ann", "jti-1")
    replicator.tick(pools, 0.0)
    replicator.tick(pools, 1.0)
    pools[REPLICA.region].refresh_tokens["t1"] = None  # signed out in the replica region
    replicator.tick(pools, 2.0)
    replicator.tick(pools, 3.0)
    assert pools[PRIMARY.region].refresh_tokens["t1"] is None


def test_nothing_is_copied_while_the_primary_is_down_and_everything_once_it_is_back():
    pools, replicator = setup()
    pools[PRIMARY.region].users["ann"] = user("ann")
    replicator.tick(pools, 0.0, down=frozenset({PRIMARY.region}))
    replicator.tick(pools, 5.0, down=frozenset({PRIMARY.region}))
    assert not pools[REPLICA.region].users
    replicator.tick(pools, 6.0)
    replicator.tick(pools, 7.0)
    assert "ann" in pools[REPLICA.region].users
