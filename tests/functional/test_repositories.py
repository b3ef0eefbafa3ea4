"""The repositories read through one table reader (``chalicelib.aws.table_reader``): the DynamoDB
client today, the DAX client in a stage that has one. Writes and strongly consistent reads never do."""
from __future__ import annotations

import boto3
import pytest
from api_helpers import body_of, call, member

from chalicelib import aws, cache


@pytest.fixture
def reader_calls(client, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Swap the table reader for a client of its own and record the operations sent with it."""
    seen: list[str] = []
    reader = boto3.client("dynamodb", region_name="us-east-1")
    reader.meta.events.register("before-call.dynamodb.*",
                                lambda event_name, **_: seen.append(event_name.rsplit(".", 1)[-1]))
    monkeypatch.setattr(aws, "table_reader", lambda: reader)
    aws.reset()
    yield seen
    aws.reset()


def test_profile_reads_go_through_the_table_reader_and_writes_do_not(client, reader_calls: list[str]):
    username, token = member(client)
    writes_seen = list(reader_calls)
    cache.reset()  # sign-up cached the new profile: read it as a container that has not seen it
    reader_calls.clear()
    # When the profile is read / Then the profile and its counters come through the reader
    assert body_of(call(client, "GET", f"/users/{username}"))["username"] == username
    assert "GetItem" in reader_calls and "BatchGetItem" in reader_calls
    # And sign-up's profile write, the session check and the profile update never use it
    assert "PutItem" not in writes_seen
    reader_calls.clear()
    assert call(client, "PATCH", "/me", {"bio": "hello"}, token=token).status_code == 200
    assert "UpdateItem" not in reader_calls


def test_consistent_reads_bypass_the_table_reader(client, reader_calls: list[str]):
    _, token = member(client)
    reader_calls.clear()
    # When a signed-in request is authorized (one consistent BatchGetItem of the session records)
    response = call(client, "POST", "/auth/logout", {}, token=token)
    # Then that read did not go through the reader
    assert response.status_code == 204
    assert reader_calls == []


def test_a_cancelled_transaction_names_the_item_whose_condition_failed(client):
    # Given a transaction whose items are added out of PynamoDB's wire order (updates, puts, deletes, checks)
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.models import GraphEdgeRecord, bound
    from chalicelib.repositories import _tx

    graph = bound(GraphEdgeRecord)
    graph("tx#present", "a").save()
    tx = _tx.Transaction(graph)
    tx.update("counted", graph("tx#counted", "a"), actions=[GraphEdgeRecord.members.add({"x"})])
    tx.save("new", graph("tx#new", "a"), condition=GraphEdgeRecord.pk.does_not_exist())
    tx.delete("gone", graph("tx#absent", "a"), condition=GraphEdgeRecord.pk.exists())
    tx.condition_check("present", graph, "tx#present", "a", condition=GraphEdgeRecord.pk.exists())
    # When it is sent (the delete's item does not exist)
    with pytest.raises(TransactWriteError) as cancelled:
        tx.commit()
    # Then the cancellation names the delete's item, and no other
    assert [name for name in ("counted", "new", "gone", "present") if tx.failed(cancelled.value, name)] == ["gone"]
    assert [tx.index(name) for name in ("present", "gone", "new", "counted")] == [0, 1, 2, 3]
    # And nothing was written
    with pytest.raises(graph.DoesNotExist):
        graph.get("tx#new", "a")
