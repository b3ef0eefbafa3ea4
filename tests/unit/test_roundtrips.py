"""The round-trip counter of ``bench/roundtrips.py``: every botocore request is counted, once."""
from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from bench.roundtrips import BEFORE, ROUTES, TOTAL_BEFORE, Call, Measure, RoundTripCounter


@pytest.fixture
def counter(aws_credentials: None) -> Iterator[RoundTripCounter]:
    counter = RoundTripCounter()
    counter.install()
    yield counter
    counter.uninstall()


def test_counter_records_each_request_a_client_created_after_install_sends(counter: RoundTripCounter) -> None:
    # Given in-process moto and clients built after the counter was installed
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        # When a known sequence of calls runs inside the counting block
        with counter.counting() as calls:
            ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
            ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})
            ddb.get_item(TableName="t", Key={"pk": {"S": "b"}})
            sqs.create_queue(QueueName="q")
        # And one more outside it
        ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})
    # Then exactly the calls inside the block are counted, in order, per service and operation
    assert calls == [Call("dynamodb", "PutItem"), Call("dynamodb", "GetItem"), Call("dynamodb", "GetItem"),
                     Call("sqs", "CreateQueue")]
    assert counter.api_calls == calls


def test_counter_reaches_pynamodb_models_own_botocore_client(counter: RoundTripCounter) -> None:
    # Given a PynamoDB model (it builds its own botocore session and client, not boto3's)
    from pynamodb.attributes import UnicodeAttribute
    from pynamodb.models import Model

    class Item(Model):
        class Meta:
            table_name = "items"
            region = "us-east-1"

        pk = UnicodeAttribute(hash_key=True)

    with mock_aws():
        Item.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        # When it saves one item and fails to find another
        with counter.counting() as calls:
            Item("x").save()
            with pytest.raises(Item.DoesNotExist):
                Item.get("missing")
    # Then both requests are counted
    assert calls == [Call("dynamodb", "PutItem"), Call("dynamodb", "GetItem")]


def test_presigning_sends_nothing_and_counts_nothing(counter: RoundTripCounter) -> None:
    # Given an S3 client
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        # When an upload policy is presigned (signed locally)
        with counter.counting() as calls:
            s3.generate_presigned_post(Bucket="b", Key="k")
    # Then no round trip is counted
    assert calls == []


def test_measure_splits_dynamodb_from_other_aws_and_adds_http_downloads() -> None:
    measure = Measure(status=200, calls=[Call("dynamodb", "GetItem"), Call("dynamodb", "GetItem"),
                                         Call("secrets-manager", "GetSecretValue")], http=1)
    assert (measure.dynamodb, measure.other, measure.http, measure.total) == (2, 1, 1, 4)
    assert measure.operations() == {"dynamodb.GetItem": 2, "secrets-manager.GetSecretValue": 1}


def test_the_benchmark_covers_eleven_routes_and_the_issues_figures_fit_its_total() -> None:
    assert len(ROUTES) == 11
    known = [v for v in BEFORE.values() if v is not None]
    assert known == [3, 3, 5, 6, 6, 7, 6]
    assert sum(known) <= TOTAL_BEFORE


def test_dynamodb_units_follow_the_on_demand_rules_for_reads_writes_and_transactions() -> None:
    from bench.roundtrips import dynamodb_units

    big = {"pk": {"S": "x"}, "blob": {"S": "a" * 5000}}  # > 4 KB: two read units, five write units
    # eventually consistent GetItem of a small item: half a unit; consistent: one; a miss still costs
    assert dynamodb_units("GetItem", {}, {"Item": {"pk": {"S": "x"}}}, {}) == (0.5, 0.0)
    assert dynamodb_units("GetItem", {"ConsistentRead": True}, {}, {}) == (1.0, 0.0)
    assert dynamodb_units("GetItem", {}, {"Item": big}, {}) == (1.0, 0.0)
    # BatchGet: per key, found or not
    params = {"RequestItems": {"t": {"Keys": [{}, {}, {}]}}}
    assert dynamodb_units("BatchGetItem", params, {"Responses": {"t": [big]}}, {}) == (2.0, 0.0)
    # a write to a table with one GSI costs double; a transaction doubles again, condition checks excluded
    assert dynamodb_units("PutItem", {"TableName": "p", "Item": big}, {}, {"p": 1}) == (0.0, 10.0)
    tx = {"TransactItems": [{"ConditionCheck": {"TableName": "p"}}, {"Put": {"TableName": "g", "Item": {}}},
                            {"Update": {"TableName": "p"}}]}
    assert dynamodb_units("TransactWriteItems", tx, {}, {"p": 1}) == (0.0, 2.0 + 2.0 + 4.0)
