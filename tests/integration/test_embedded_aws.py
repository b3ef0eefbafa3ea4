"""The local stack's embedded AWS keeps every committed write under parallel, conflicting requests.

moto alone is not thread-safe (a cancelled transaction restores an old copy of the table); the
launcher in ``devstack.embedded_aws`` serialises requests, so these counts are exact.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

WORKERS = 6
TRANSACTIONS_PER_WORKER = 15
DISTINCT_EDGES = 30  # fewer than WORKERS * TRANSACTIONS_PER_WORKER: many duplicates get cancelled
BACKGROUND_ITEMS = 500


def edge_and_increment(table: str, edge: int) -> list[dict]:
    """The shape of a like: count an edge and put it if absent, in one transaction."""
    return [
        {"Update": {"TableName": table, "Key": {"pk": {"S": "counter"}},
                    "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Put": {"TableName": table, "Item": {"pk": {"S": f"edge#{edge}"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
    ]


def test_parallel_conflicting_transactions_keep_every_committed_write(aws_client: Callable[..., Any],
                                                                      unique_name: Callable[[str], str]) -> None:
    # Given a table on the embedded AWS
    ddb = aws_client("dynamodb")
    table = unique_name("tx")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    filler = ddb.get_waiter("table_exists")
    filler.wait(TableName=table)
    for batch in range(BACKGROUND_ITEMS // 25):  # a table of some size, as a developer's is
        ddb.batch_write_item(RequestItems={table: [
            {"PutRequest": {"Item": {"pk": {"S": f"other#{batch}-{i}"}, "payload": {"S": "x" * 200}}}}
            for i in range(25)]})
    committed: list[int] = []
    cancelled: list[int] = []
    errors: list[BaseException] = []
    record = threading.Lock()
    start = threading.Barrier(WORKERS)

    # When several clients at once each try to add edges (many of them already added by another),
    # so committed transactions interleave with cancelled ones
    def work(worker: int) -> None:
        client = aws_client("dynamodb")
        start.wait()
        for i in range(TRANSACTIONS_PER_WORKER):
            edge = (worker * 7 + i) % DISTINCT_EDGES
            try:
                client.transact_write_items(TransactItems=edge_and_increment(table, edge))
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    errors.append(exc)
                with record:
                    cancelled.append(edge)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            else:
                with record:
                    committed.append(edge)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every edge was committed exactly once, and the counter counts exactly the commits
    assert errors == []
    assert sorted(committed) == list(range(DISTINCT_EDGES))
    assert len(cancelled) == WORKERS * TRANSACTIONS_PER_WORKER - DISTINCT_EDGES
    counter = ddb.get_item(TableName=table, Key={"pk": {"S": "counter"}}, ConsistentRead=True)["Item"]
    assert int(counter["n"]["N"]) == DISTINCT_EDGES
    edges = list(ddb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True).search("Items"))
    assert len(edges) == DISTINCT_EDGES + 1 + BACKGROUND_ITEMS
