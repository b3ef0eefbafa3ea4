"""The DAX read path: routing per access pattern, the circuit breaker, fallback to DynamoDB, metrics."""
from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from chalicelib import dax
from chalicelib.observability import logger, metrics

USERS, COUNTERS, PHOTOS = "users-t", "counters-t", "photos-t"


def router(operation, params):
    return dax.route(operation, params, users_table=USERS, counters_table=COUNTERS)


class FakeClient:
    """A botocore-style client that answers, or raises what it is told to, and records what it saw."""

    def __init__(self, name, fail=None):
        self.name, self.fail, self.calls = name, fail, []

    def _make_api_call(self, operation, params):
        self.calls.append(operation)
        if self.fail is not None:
            raise self.fail
        return {"served_by": self.name}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def _fresh_metrics():
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def counted(name):
    return sum(metrics.metric_set.get(name, {}).get("Value", []))


def tier(fail=None, clock=None):
    cache, dynamodb = FakeClient("dax", fail), FakeClient("dynamodb")
    client = dax.CacheTierClient(lambda: cache, dynamodb, router, dax.CircuitBreaker(10, clock or Clock()))
    return client, cache, dynamodb


PROFILE = ("GetItem", {"TableName": USERS, "Key": {"username": {"S": "ann"}}})


def test_profiles_and_counter_shard_counts_read_through_dax():
    assert router(*PROFILE) == dax.DAX
    assert router("GetItem", {"TableName": COUNTERS, "Key": {"counter_id": {"S": "likes#p1#meta"}}}) == dax.DAX
    assert router("BatchGetItem", {"RequestItems": {
        USERS: {"Keys": [{"username": {"S": "a"}}]},
        COUNTERS: {"Keys": [{"counter_id": {"S": "likes#p1#meta"}}]}}}) == dax.DAX
    assert router("UpdateItem", {"TableName": USERS, "Key": {"username": {"S": "ann"}}}) == dax.DAX


def test_counter_shards_photos_queries_consistent_reads_and_transactions_go_to_dynamodb():
    assert router("BatchGetItem", {"RequestItems": {
        COUNTERS: {"Keys": [{"counter_id": {"S": "likes#p1#us-east-1#0"}}]}}}) == dax.DYNAMODB
    assert router("GetItem", {"TableName": PHOTOS, "Key": {"photo_id": {"S": "p"}}}) == dax.DYNAMODB
    assert router("Query", {"TableName": USERS}) == dax.DYNAMODB
    assert router("GetItem", {**PROFILE[1], "ConsistentRead": True}) == dax.DYNAMODB
    assert router("BatchGetItem", {"RequestItems": {USERS: {"Keys": [], "ConsistentRead": True}}}) == dax.DYNAMODB
    assert router("TransactWriteItems", {"TransactItems": []}) == dax.DYNAMODB
    assert router("UpdateItem", {"TableName": COUNTERS, "Key": {"counter_id": {"S": "likes#p1#meta"}}}) == dax.DYNAMODB


NEWEST_PAGE = ("Query", {"TableName": PHOTOS, "IndexName": "by_owner", "Limit": 20, "ScanIndexForward": False,
                         "KeyConditionExpression": "#0 = :0", "ExpressionAttributeValues": {":0": {"S": "star"}}})


def shared_router(operation, params):
    return dax.route_shared_timeline(operation, params, photos_table=PHOTOS)


def test_no_query_of_the_ordinary_routes_goes_to_dax_not_even_an_owners_photo_listing():
    # the owner's listing and own feed send the very same Query: it must reach DynamoDB itself
    assert router(*NEWEST_PAGE) == dax.DYNAMODB


def test_the_pull_side_of_a_feed_reads_a_celebritys_newest_page_through_dax_and_nothing_else():
    operation, params = NEWEST_PAGE
    assert shared_router(operation, params) == dax.DAX
    assert shared_router(operation, {**params, "ExclusiveStartKey": {"photo_id": {"S": "p"}}}) == dax.DYNAMODB
    assert shared_router(operation, {**params, "ConsistentRead": True}) == dax.DYNAMODB
    assert shared_router(operation, {**params, "IndexName": None}) == dax.DYNAMODB
    assert shared_router(operation, {**params, "TableName": USERS}) == dax.DYNAMODB
    assert shared_router("GetItem", {"TableName": PHOTOS, "Key": {"photo_id": {"S": "p"}}}) == dax.DYNAMODB


def test_the_shared_timeline_client_shares_the_cache_tiers_connection_and_circuit():
    # Given the cache tier's client and its twin for the pulled timelines, over one failing DAX
    built = []
    cache, dynamodb = FakeClient("dax", EndpointConnectionError(endpoint_url="x")), FakeClient("dynamodb")
    client = dax.CacheTierClient(lambda: built.append(1) or cache, dynamodb, router, dax.CircuitBreaker(10, Clock()))
    shared = client.routed(shared_router)
    # When the pulled page is read: it tries DAX, falls back to DynamoDB and counts it
    assert shared._make_api_call(*NEWEST_PAGE) == {"served_by": "dynamodb"}
    assert counted("DaxReads") == 1 and counted("DaxFallbacks") == 1
    # Then the circuit it opened is the tier's (a profile read skips DAX too), with one DAX client built
    assert client._make_api_call(*PROFILE) == {"served_by": "dynamodb"}
    assert cache.calls == ["Query"] and built == [1]
    # And with DAX back, the twin's query is served by it
    cache.fail = None
    client.breaker.succeeded()
    assert shared._make_api_call(*NEWEST_PAGE) == {"served_by": "dax"}
    assert built == [1]


def test_a_healthy_dax_serves_its_reads_and_counts_them():
    client, cache, dynamodb = tier()
    assert client._make_api_call(*PROFILE) == {"served_by": "dax"}
    assert dynamodb.calls == [] and counted("DaxReads") == 1 and counted("DaxFallbacks") == 0


def test_requests_dax_does_not_serve_never_build_the_dax_client():
    built = []
    client = dax.CacheTierClient(lambda: built.append(1), FakeClient("dynamodb"), router)
    client._make_api_call("Query", {"TableName": PHOTOS})
    assert built == [] and counted("DaxReads") == 0


@pytest.mark.parametrize("failure", [
    EndpointConnectionError(endpoint_url="http://dax:8111"),
    ConnectTimeoutError(endpoint_url="http://dax:8111"),
    ReadTimeoutError(endpoint_url="http://dax:8111"),  # a silent endpoint, after the short read timeout
    ConnectionRefusedError(),
    ClientError({"Error": {"Code": "InternalServerError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetItem"),
], ids=["unreachable", "connect-timeout", "stalled", "refused", "server-error"])
def test_a_failing_dax_falls_back_to_dynamodb_with_a_metric_and_a_log_line(failure, monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", log)
    client, cache, dynamodb = tier(fail=failure)
    assert client._make_api_call(*PROFILE) == {"served_by": "dynamodb"}
    assert counted("DaxReads") == 1 and counted("DaxFallbacks") == 1
    assert client.breaker.is_open
    assert "DAX unavailable, reading from DynamoDB" in log.getvalue()


def test_dax_client_error_falls_back():
    amazondax = pytest.importorskip("amazondax.DaxError")
    client, _, dynamodb = tier(fail=amazondax.DaxClientError("no route", "NoRouteException"))
    assert client._make_api_call(*PROFILE) == {"served_by": "dynamodb"}


def test_an_open_circuit_skips_dax_until_the_retry_time_then_one_trial_closes_it():
    clock = Clock()
    client, cache, dynamodb = tier(fail=EndpointConnectionError(endpoint_url="x"), clock=clock)
    client._make_api_call(*PROFILE)
    client._make_api_call(*PROFILE)
    assert cache.calls == ["GetItem"]  # the second read never tried DAX
    assert counted("DaxFallbacks") == 2
    cache.fail = None
    clock.now += 10
    assert client._make_api_call(*PROFILE) == {"served_by": "dax"}
    assert not client.breaker.is_open
    assert client._make_api_call(*PROFILE) == {"served_by": "dax"}


def test_dynamodb_refusing_the_request_through_dax_is_raised_not_retried():
    refused = ClientError({"Error": {"Code": "ConditionalCheckFailedException"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "UpdateItem")
    client, cache, dynamodb = tier(fail=refused)
    with pytest.raises(ClientError):
        client._make_api_call("UpdateItem", {"TableName": USERS, "Key": {}})
    assert dynamodb.calls == [] and not client.breaker.is_open


def test_a_write_that_timed_out_after_it_was_sent_is_not_sent_again():
    client, cache, dynamodb = tier(fail=ReadTimeoutError(endpoint_url="x"))
    with pytest.raises(ReadTimeoutError):
        client._make_api_call("PutItem", {"TableName": USERS, "Item": {}})
    assert dynamodb.calls == []


def test_a_write_that_never_reached_dax_goes_to_dynamodb():
    client, cache, dynamodb = tier(fail=EndpointConnectionError(endpoint_url="x"))
    assert client._make_api_call("PutItem", {"TableName": USERS, "Item": {}}) == {"served_by": "dynamodb"}


def test_the_dax_client_is_called_by_its_method_names():
    class DaxLike:
        def get_item(self, **params):
            return {"Item": params["Key"]}

    assert dax._call(DaxLike(), "GetItem", {"TableName": USERS, "Key": {"k": 1}}) == {"Item": {"k": 1}}


def test_a_frozen_sandbox_does_not_keep_the_circuit_open():
    clock = Clock()
    breaker = dax.CircuitBreaker(10, clock)
    assert breaker.failed() is True and breaker.failed() is False
    assert not breaker.allow()
    clock.now += 3600  # wall time moves on while the sandbox is frozen
    assert breaker.allow() and not breaker.allow()  # one trial at a time


def test_with_a_cache_tier_the_pulled_timelines_twin_reads_through_it_and_without_one_through_dynamodb(monkeypatch):
    from chalicelib import aws, settings
    from chalicelib.models import PhotoRecord, pulled, reading

    def connection_client(model):
        return model._get_connection().connection._client

    for name in settings._REQUIRED.values():
        monkeypatch.setenv(name, f"{name.lower()}-unit")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # no credential lookup (it would reach the network)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("DAX_ENDPOINT", "http://127.0.0.1:1")  # never reached: nothing is sent here
    settings.reset_settings()
    aws.reset()
    try:
        shared, tier = connection_client(pulled(PhotoRecord)), connection_client(reading(PhotoRecord))
        assert isinstance(shared, dax.CacheTierClient) and shared is not tier
        assert shared.breaker is tier.breaker and shared.dynamodb is tier.dynamodb
        assert shared.router(*NEWEST_PAGE[:1], {**NEWEST_PAGE[1], "TableName": settings.get_settings().photos_table}) \
            == dax.DAX
        assert tier.router(*NEWEST_PAGE[:1], {**NEWEST_PAGE[1], "TableName": settings.get_settings().photos_table}) \
            == dax.DYNAMODB
        monkeypatch.delenv("DAX_ENDPOINT")
        settings.reset_settings()
        aws.reset()
        assert connection_client(pulled(PhotoRecord)) is aws.client("dynamodb")
    finally:
        monkeypatch.delenv("DAX_ENDPOINT", raising=False)
        settings.reset_settings()
        aws.reset()
