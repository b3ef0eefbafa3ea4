"""The pure parts of the load scenario (bench/loadmix.py): Zipf draws, percentiles, error
categories, loopback targets and how a recorded AWS call is replayed."""
from __future__ import annotations

import random
from collections import Counter

from bench.loadmix import ROUTES, WEIGHTS, Zipf, error_category, loopback, percentile, replayable


def test_zipf_draws_favour_the_earliest_ranks_and_stay_in_range():
    rng = random.Random(11)
    zipf = Zipf(1.1)
    draws = Counter(zipf.draw(rng, 50) for _ in range(20_000))
    assert set(draws) <= set(range(50))
    assert draws[0] > draws[1] > draws[4] > draws[40]
    # P(rank 1) / P(rank 2) = 2 ** 1.1 ~ 2.14
    assert 1.9 < draws[0] / draws[1] < 2.4


def test_zipf_draws_are_reproducible_from_the_seed_even_as_the_population_grows():
    def sequence() -> list[int]:
        rng, zipf = random.Random("11/member/1"), Zipf(1.1)
        return [zipf.draw(rng, n) for n in range(1, 200)]

    assert sequence() == sequence()
    assert sequence()[0] == 0  # a population of one has only rank 0


def test_percentile_interpolates_between_samples():
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(101))), 0.95) == 95.0


def test_429_is_an_error_category_of_its_own():
    assert error_category(200, None) is None
    assert error_category(204, None) is None
    assert error_category(429, Exception("429")) == "429"
    assert error_category(503, Exception("503")) == "5xx"
    assert error_category(404, Exception("404")) == "4xx"
    assert error_category(0, ConnectionError("refused")) == "connection"
    assert error_category(200, RuntimeError("photo ended 'failed'")) == "other"


def test_only_loopback_urls_are_targets():
    assert loopback("http://127.0.0.1:4566/photoscale-local-media")
    assert loopback("http://localhost:8000/api")
    assert not loopback("http://10.0.0.5:4566/bucket")
    assert not loopback("https://photoscale-media.s3.amazonaws.com/")


def test_every_weighted_action_is_a_route_of_the_mix():
    assert set(WEIGHTS) <= set(ROUTES)
    assert all(weight > 0 for weight in WEIGHTS.values())


def test_replayed_update_drops_its_condition_and_the_values_only_the_condition_used():
    recorded = {
        "TableName": "t", "Key": {"pk": {"S": "photo#1"}},
        "UpdateExpression": "ADD #likes :one",
        "ConditionExpression": "attribute_exists(#pk) AND #owner <> :me",
        "ExpressionAttributeNames": {"#likes": "likes", "#pk": "pk", "#owner": "owner"},
        "ExpressionAttributeValues": {":one": {"N": "1"}, ":me": {"S": "alice"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    replayed = replayable("dynamodb", "UpdateItem", recorded)
    assert replayed == {
        "TableName": "t", "Key": {"pk": {"S": "photo#1"}}, "UpdateExpression": "ADD #likes :one",
        "ExpressionAttributeNames": {"#likes": "likes"}, "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    assert "ConditionExpression" in recorded  # the recording itself is left as it was


def test_replayed_transaction_keeps_condition_checks_and_drops_its_token_and_write_conditions():
    recorded = {
        "ClientRequestToken": "abc",
        "TransactItems": [
            {"ConditionCheck": {"TableName": "p", "Key": {"pk": {"S": "photo#1"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
            {"Put": {"TableName": "l", "Item": {"pk": {"S": "like#1"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ],
    }
    replayed = replayable("dynamodb", "TransactWriteItems", recorded)
    assert "ClientRequestToken" not in replayed
    assert replayed["TransactItems"][0] == recorded["TransactItems"][0]
    assert replayed["TransactItems"][1] == {"Put": {"TableName": "l", "Item": {"pk": {"S": "like#1"}}}}


def test_replayed_reads_and_other_services_are_unchanged():
    query = {"TableName": "t", "KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "x"}}}
    assert replayable("dynamodb", "Query", query) == query
    auth = {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "c", "AuthParameters": {"USERNAME": "u"}}
    assert replayable("cognito-idp", "InitiateAuth", auth) == auth
